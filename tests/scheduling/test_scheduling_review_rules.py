"""Rules from the scheduling review: the checker compares every reported figure (inventory for each tank and
period, max_spec_violation), rows with a wrong type are format findings, instances name missing fields and
unknown limits, a YAML file under a .json name says so, and a sweep that solved nothing does not claim results."""
import json

import pytest
from sched_fixtures import tiny_instance, tiny_schedule

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.scheduling import check_schedule, validate_dict
from vai.verticals.scheduling.instance import read_document


def _check(edit):
    sched = tiny_schedule()
    edit(sched)
    return check_schedule(tiny_instance(), sched)


def _texts(rep):
    return [str(v) for v in rep.violations]


def test_reported_inventory_must_cover_every_tank_and_period():
    assert check_schedule(tiny_instance(), tiny_schedule()).ok
    rep = _check(lambda s: s["inventory"].pop("CT1"))
    assert any(v.rule == "inventory" and v.where == "CT1" and "no reported inventory" in v.message
               for v in rep.violations), _texts(rep)
    rep = _check(lambda s: s["inventory"]["ST2"].pop())
    assert any("reports 3 inventory rows; the horizon has 4" in t for t in _texts(rep)), _texts(rep)
    rep = _check(lambda s: s["inventory"].update(ST9=[{}, {}, {}, {}]))
    assert any(v.rule == "format" and v.where == "ST9" for v in rep.violations)


def test_reported_max_spec_violation_is_recomputed():
    rep = _check(lambda s: s.update(max_spec_violation=0.25))
    assert [v.rule for v in rep.violations] == ["reported"], _texts(rep)
    assert "exact mixing gives 0" in rep.violations[0].message
    assert not check_schedule(tiny_instance(), tiny_schedule(), check_reported=False).violations


@pytest.mark.parametrize("field, value, message", [
    ("period", "1", "period must be a whole number, got '1'"),
    ("period", 1.0, "period must be a whole number, got 1.0"),
    ("period", True, "period must be a whole number, got True"),
    ("tank", ["ST1"], "tank must be an id string, got ['ST1']"),
])
def test_rows_with_a_wrong_type_are_format_findings_not_crashes(field, value, message):
    def edit(s):
        s["unloads"][0][field] = value
    rep = _check(edit)
    assert any(v.rule == "format" and message in v.message for v in rep.violations), _texts(rep)


def test_missing_fields_and_unknown_limits_are_named():
    d = tiny_instance()
    del d["vessels"][0]["crude"]
    del d["cdus"][0]["rate"]
    del d["storage_tanks"][0]["max"]
    d["limits"]["transfer_maximum"] = 10
    rep = validate_dict(d)
    errors = {i.path: i.message for i in rep.errors}
    assert errors["vessels[0].crude"].startswith("missing") and "None" not in errors["vessels[0].crude"]
    assert errors["cdus[0].rate"].startswith("missing") and errors["storage_tanks[0].max"].startswith("missing")
    assert any(i.path == "limits.transfer_maximum" and "unknown limit" in i.message for i in rep.warnings)


def test_yaml_under_a_json_name_says_so(tmp_path):
    import yaml

    p = tmp_path / "plant.json"
    p.write_text(yaml.safe_dump(tiny_instance()))
    with pytest.raises(VaiError, match=r"plant.json: not valid JSON \(line 1, column 1.*rename it to .yaml"):
        read_document(p)
    bad = tmp_path / "sched.json"
    bad.write_text("{not json")
    good = tmp_path / "tiny.json"
    good.write_text(json.dumps(tiny_instance()))
    assert main(["schedule", "check", str(good), str(bad)]) == 2


def test_a_sweep_that_solved_nothing_says_so(tmp_path, capsys):
    d = tiny_instance()
    d["vessels"][0]["crude"] = "C9"
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(d))
    out = tmp_path / "sweep"
    rc = main(["schedule", "sweep", str(p), "--out", str(out), "--time-limit", "2"])
    err = capsys.readouterr().err
    assert rc != 0 and "no scenario was solved" in err and "job_errors.csv" in err
    assert not (out / "results.csv").exists()
