"""What the first round of review fixes left open: reported figures of the wrong type, an empty reported
inventory, ids and names that are not strings, "missing field" and "whole number" wording, unreadable files
named as such, a malformed instance under `sweep --delay`, and a sweep's results.csv only ever describing the
sweep that wrote it."""
import json

import pytest
from sched_fixtures import tiny_instance, tiny_schedule

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.scheduling import check_schedule, validate_dict
from vai.verticals.scheduling.instance import read_document
from vai.verticals.scheduling.sweep import load_json


def _texts(rep):
    return [str(v) for v in rep.violations]


@pytest.mark.parametrize("edit, where, message", [
    (lambda s: s["inventory"]["ST1"].__setitem__(0, {"C1": "20"}), "ST1", "inventory.ST1[0].C1: must be a number, got '20'"),
    (lambda s: s["inventory"]["CT2"].__setitem__(1, {"C1": None}), "CT2", "inventory.CT2[1].C1: must be a number, got None"),
    (lambda s: s.update(objective="84"), "objective", "objective: must be a number, got '84'"),
    (lambda s: s["cost_breakdown"].update(inventory="13"), "inventory", "cost_breakdown.inventory: must be a number"),
    (lambda s: s.update(cost_breakdown=[16, 5]), "cost_breakdown", "must map cost term -> value"),
    (lambda s: s.update(max_spec_violation=float("nan")), "max_spec_violation", "must be a number, got nan"),
])
def test_reported_figures_of_the_wrong_type_are_format_findings_not_crashes(edit, where, message):
    sched = tiny_schedule()
    edit(sched)
    rep = check_schedule(tiny_instance(), sched)
    assert any(v.rule == "format" and v.where == where and message in v.message for v in rep.violations), _texts(rep)


def test_an_empty_reported_inventory_is_short_for_every_tank_and_an_absent_one_is_not_checked():
    sched = tiny_schedule()
    sched["inventory"] = {}
    rep = check_schedule(tiny_instance(), sched)
    assert {v.where for v in rep.violations if v.rule == "inventory"} == {"ST1", "ST2", "CT1", "CT2"}, _texts(rep)
    del sched["inventory"]
    del sched["max_spec_violation"]
    assert check_schedule(tiny_instance(), sched).ok  # optional figures left out are not checked


def test_ids_and_crude_names_that_are_not_strings_are_errors_with_paths_not_crashes():
    d = tiny_instance()
    d["storage_tanks"][0]["id"] = 5            # a number where an id belongs (YAML `id: 5`)
    d["vessels"][1]["crude"] = ["C2"]          # a list where a crude name belongs
    errors = {i.path: i.message for i in validate_dict(d).errors}
    assert "must be a non-empty string (got 5)" in errors["storage_tanks[0].id"]
    assert "must be a crude name (got ['C2']" in errors["vessels[1].crude"]
    d = tiny_instance()
    d["crudes"][3] = {"sulfur": 0.02}          # YAML reads an unquoted `3:` as a number
    d["storage_tanks"][1]["initial"] = {3: 5}
    errors = {i.path: i.message for i in validate_dict(d).errors}
    assert "a crude name must be a string" in errors["crudes.3"]


def test_missing_fields_are_named_as_missing_fields():
    d = tiny_instance()
    del d["vessels"][0]["crude"]
    del d["vessels"][1]["id"]
    del d["cdus"][0]["from"]
    del d["periods"]
    errors = {i.path: i.message for i in validate_dict(d).errors}
    assert errors["vessels[0].crude"].startswith("missing field 'crude'")
    assert errors["vessels[1].id"] == "missing field 'id'"
    assert errors["cdus[0].from"].startswith("missing field 'from'")
    assert errors["periods"].startswith("missing field 'periods'")
    d = tiny_instance()
    del d["limits"]
    errors = {i.path: i.message for i in validate_dict(d).errors}
    assert list(errors) == ["limits"] and errors["limits"].startswith("missing field 'limits'")


@pytest.mark.parametrize("field, value", [("arrival", "1"), ("arrival", True), ("arrival", 1.5), ("depart_by", 2.5),
                                          ("depart_by", "3")])
def test_a_period_of_the_wrong_type_must_be_a_whole_number(field, value):
    d = tiny_instance()
    d["vessels"][0][field] = value
    errors = {i.path: i.message for i in validate_dict(d).errors}
    assert errors[f"vessels[0].{field}"].startswith("must be a whole number"), errors


def test_unreadable_instance_and_schedule_files_name_the_file_and_what_is_wrong(tmp_path, capsys):
    binary = tmp_path / "plant.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(VaiError, match=r"plant.json: not a text file \(control character 0x1a at character 6"):
        read_document(binary)
    with pytest.raises(VaiError, match=r"plant.json: not a text file"):
        load_json(binary)
    bad_yaml = tmp_path / "plant.yaml"
    bad_yaml.write_text("periods: 4\nvessels: [1, 2\ncdus: []\n")
    with pytest.raises(VaiError, match=r"plant.yaml: not valid YAML \(line 3, column 5: "):
        read_document(bad_yaml)
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    for read in (read_document, load_json):
        with pytest.raises(VaiError, match=r"empty.json: the file is empty"):
            read(empty)
    with pytest.raises(VaiError, match=r"gone.json: no such file"):
        load_json(tmp_path / "gone.json")
    inst = tmp_path / "tiny.json"
    inst.write_text(json.dumps(tiny_instance()))
    listed = tmp_path / "listed.json"
    listed.write_text("[1, 2]")
    capsys.readouterr()
    for verb in (["gantt", "--out", str(tmp_path / "g.png")], ["repair", "--event", "late:V2:1", "--out",
                                                                str(tmp_path / "r.json")]):
        assert main(["schedule", verb[0], str(inst), str(listed)] + verb[1:]) == 2, verb
        err = capsys.readouterr().err
        assert "listed.json: the top level must be a JSON object (a schedule), got list" in err, err


def test_sweep_delay_on_a_malformed_instance_names_the_field(tmp_path, capsys):
    d = tiny_instance()
    d["vessels"][1] = ["V2", 0, "C2"]  # a list where a vessel object belongs
    p = tmp_path / "plant.json"
    p.write_text(json.dumps(d))
    assert main(["schedule", "sweep", str(p), "--out", str(tmp_path / "sweep"), "--delay", "V1:0,1"]) == 2
    err = capsys.readouterr().err
    assert "plant.json is not a valid feed-schedule instance" in err and "vessels[1]: must be an object" in err, err
    assert "TypeError" not in err


def test_a_sweep_results_file_only_ever_describes_that_sweep(tmp_path, capsys):
    good, broken = tmp_path / "good.json", tmp_path / "broken.json"
    good.write_text(json.dumps(tiny_instance()))
    d = tiny_instance()
    d["vessels"][0]["crude"] = "C9"
    broken.write_text(json.dumps(d))
    out = tmp_path / "sweep"
    cmd = ["schedule", "sweep", str(good), str(broken), "--out", str(out), "--time-limit", "5"]
    capsys.readouterr()
    assert main(cmd) == 1  # one solved, one failed: results for the one, and the failure pointed at
    err = capsys.readouterr().err
    assert f"1 of 2 scenario(s) failed; see {out}/job_errors.csv" in err, err
    assert (out / "results.csv").exists()
    good.write_text(json.dumps(d))  # now nothing can be solved: the earlier results.csv must not stay behind
    assert main(cmd) == 1
    err = capsys.readouterr().err
    assert "no scenario was solved" in err and "job_errors.csv" in err
    assert not (out / "results.csv").exists()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_an_instance_saved_by_windows_tools_reads_the_same(tmp_path, encoding):
    """Notepad saves UTF-8 with a byte-order mark or "ANSI" (Windows-1252); PowerShell's `>` writes UTF-16."""
    d = tiny_instance()
    d["name"] = "Raffinerie Süd"
    path = tmp_path / "plant.json"
    path.write_bytes(json.dumps(d, ensure_ascii=False, indent=1).encode(encoding))
    assert read_document(path) == d
    import yaml

    path = tmp_path / "plant.yaml"
    path.write_bytes(yaml.safe_dump(d, allow_unicode=True).encode(encoding))
    assert read_document(path)["name"] == "Raffinerie Süd"
