"""Instance reading and validation: every error names its field path; pre-checks prove infeasibility."""

import pytest
from sched_fixtures import tiny_instance

from vai.core.errors import VaiError
from vai.verticals.scheduling import (Instance, load_example, load_instance, save_instance, validate_dict,
                                      validate_instance)


def _paths(rep, kind="errors"):
    return {i.path for i in getattr(rep, kind)}


def test_tiny_and_example_are_valid():
    assert validate_dict(tiny_instance()).ok
    inst = load_example("lee1996-example1")
    assert inst.periods == 8 and len(inst.vessels) == 2
    assert "Lee, Pinto, Grossmann & Park (1996)" in inst.raw["source"]


def test_structural_errors_name_the_field_path():
    d = tiny_instance()
    d["vessels"][1]["crude"] = "C9"
    d["vessels"][0]["volume"] = -5
    d["vessels"][0]["tanks"] = ["ST1", "ST7"]
    d["storage_tanks"][1]["initial"] = {"C1": -1}
    d["charging_tanks"][0]["from"] = ["STX"]
    d["charging_tanks"][1]["spec"] = {"sulphur": [0, 1]}
    d["cdus"][0]["from"] = ["CT1", "CT9"]
    d["cdus"][0]["rate"] = [20, 10]
    d["limits"].pop("transfer_max")
    d["costs"]["changeover"] = -1
    rep = validate_dict(d)
    assert not rep.ok
    paths = _paths(rep)
    for expected in ("vessels[1].crude", "vessels[0].volume", "vessels[0].tanks[1]", "storage_tanks[1].initial.C1",
                     "charging_tanks[0].from[0]", "charging_tanks[1].spec.sulphur", "cdus[0].from[1]", "cdus[0].rate",
                     "limits.transfer_max", "costs.changeover"):
        assert expected in paths, (expected, rep.lines())
    msg = {i.path: i.message for i in rep.errors}
    assert "unknown crude 'C9'" in msg["vessels[1].crude"]
    with pytest.raises(VaiError, match=r"vessels\[1\]\.crude"):
        Instance.from_dict(d)


def test_duplicate_ids_periods_and_arrivals():
    d = tiny_instance()
    d["storage_tanks"][1]["id"] = "ST1"
    d["vessels"][0]["arrival"] = 9
    rep = validate_dict(d)
    assert "ST1" in _paths(rep) and "vessels[0].arrival" in _paths(rep)
    rep = validate_dict(dict(tiny_instance(), periods=0))
    assert "periods" in _paths(rep)


def test_infeasibility_prechecks_explain_in_plain_words():
    d = tiny_instance()
    d["charging_tanks"][1]["spec"] = {"sulfur": [0.03, 0.04]}  # only C1 (0.01) can reach CT2
    d["charging_tanks"][0]["demand"] = 500                     # far more than can ever reach CT1
    d["vessels"][0]["volume"] = 200                            # 20 per period x 4 periods < 200
    rep = validate_dict(d)
    assert not rep.errors
    inf = {i.path: i.message for i in rep.infeasible}
    assert "cannot be met" in inf["charging_tanks[1].spec.sulfur"] and "C1" in inf["charging_tanks[1].spec.sulfur"]
    assert "charging_tanks[0].demand" in inf
    assert "vessels[0].volume" in inf


def test_unknown_keys_warn_and_extra_keys_survive_a_round_trip(tmp_path):
    d = tiny_instance()
    rep = validate_dict(d)
    assert "site" in _paths(rep, "warnings") and rep.ok
    for suffix in (".json", ".yaml"):
        path = save_instance(Instance.from_dict(d), tmp_path / f"tiny{suffix}")
        back = load_instance(path)
        assert back.raw["site"] == d["site"]
        assert back.to_dict() == d


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(VaiError, match=r"bad.json: not valid JSON \(line 1, column 2"):
        validate_instance(bad)
    with pytest.raises(VaiError, match="no such file"):
        load_instance(tmp_path / "missing.json")


def test_a_cdu_fed_by_one_tank_that_cannot_hold_its_demand_is_found_before_solving():
    d = tiny_instance()
    cdu = d["cdus"][0]
    ct = next(t for t in d["charging_tanks"] if t["id"] == cdu["from"][0])
    cdu["from"] = [ct["id"]]  # its only tank must send every period, so it is never refilled
    for t in d["charging_tanks"]:
        if t["id"] != ct["id"]:
            t["demand"] = 0
    ct["demand"] = sum(ct["initial"].values()) + 10
    rep = validate_dict(d)
    msgs = {i.path: i.message for i in rep.infeasible}
    assert "cdus[0].from" in msgs and "never be refilled" in msgs["cdus[0].from"] and ct["id"] in msgs["cdus[0].from"]
