"""The `vai schedule` CLI contract end to end (validate, solve, check, gantt, repair, generate, sweep, example),
with runs recorded in the store."""
import json

import pytest
from sched_fixtures import tiny_instance, tiny_schedule

from vai.cli import main


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_instance()))
    return path


def test_validate_ok_and_errors_with_paths(tiny_file, tmp_path, capsys):
    assert main(["schedule", "validate", str(tiny_file)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tiny_instance()
    bad["vessels"][0]["crude"] = "CX"
    bad["charging_tanks"][1]["spec"] = {"sulfur": [0.03, 0.04]}
    p = tmp_path / "bad.yaml"
    import yaml

    p.write_text(yaml.safe_dump(bad))
    assert main(["schedule", "validate", str(p)]) == 1
    out = capsys.readouterr().out
    assert "vessels[0].crude" in out and "unknown crude 'CX'" in out
    assert main(["schedule", "validate", str(tmp_path / "nope.json")]) == 2  # VaiError: one line, no traceback
    assert "no such file" in capsys.readouterr().err


def test_solve_check_gantt_repair(tiny_file, tmp_path, capsys):
    out = tmp_path / "sched.json"
    png = tmp_path / "gantt.png"
    rc = main(["schedule", "solve", str(tiny_file), "--out", str(out), "--time-limit", "8", "--workers", "2",
               "--seed", "1", "--gantt", str(png), "--plots", str(tmp_path / "inv.png")])
    assert rc == 0
    sched = json.loads(out.read_text())
    assert sched["status"] == "OPTIMAL" and sched["objective"] == pytest.approx(84)
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["schedule", "check", str(tiny_file), str(out)]) == 0
    assert "OK: the schedule keeps every rule" in capsys.readouterr().out
    broken = tiny_schedule()
    broken["unloads"][1]["period"] = 0
    bp = tmp_path / "broken.json"
    bp.write_text(json.dumps(broken))
    assert main(["schedule", "check", str(tiny_file), str(bp)]) == 1
    text = capsys.readouterr().out
    assert "[berth] period 0 V1+V2" in text and "FAIL" in text
    g2 = tmp_path / "g2.png"
    assert main(["schedule", "gantt", str(tiny_file), str(out), "--out", str(g2)]) == 0 and g2.exists()
    assert g2.read_bytes()[:4] == b"\x89PNG"
    page, inv = tmp_path / "gantt.html", tmp_path / "inventory.html"  # the interactive versions
    assert main(["schedule", "gantt", str(tiny_file), str(out), "--out", str(page), "--inventory", str(inv)]) == 0
    html = page.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and "plotly" in html.lower() and "V1" in html
    assert "tank volume" in inv.read_text()
    with pytest.raises(SystemExit) as stop:  # a chart of another kind: refused while parsing, before any drawing
        main(["schedule", "gantt", str(tiny_file), str(out), "--out", str(tmp_path / "g.jpg")])
    assert stop.value.code == 2 and "g.jpg: a chart is an image or an interactive page" in capsys.readouterr().err
    rep = tmp_path / "repaired.json"
    rc = main(["schedule", "repair", str(tiny_file), str(out), "--event", "late:V2:2", "--out", str(rep),
               "--time-limit", "8", "--instance-out", str(tmp_path / "after.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "2 operation(s) moved" in text and f"vai schedule check {tmp_path / 'after.json'} {rep}" in text
    assert main(["schedule", "check", str(tmp_path / "after.json"), str(rep)]) == 0
    from vai.core.store import Store

    runs = Store().runs(vertical="scheduling")
    assert {"solve", "check", "repair"} <= set(runs["command"])


def test_infeasible_solve_exits_nonzero_with_diagnosis(tmp_path, capsys):
    from sched_fixtures import stuck_instance

    p = tmp_path / "stuck.json"
    p.write_text(json.dumps(stuck_instance()))
    out = tmp_path / "s.json"
    assert main(["schedule", "solve", str(p), "--out", str(out), "--time-limit", "5"]) == 1
    sched = json.loads(out.read_text())
    assert sched["status"] == "INFEASIBLE" and sched["diagnosis"]
    assert "diagnosis:" in capsys.readouterr().out


def test_generate_example_and_sweep(tmp_path, capsys):
    inst = tmp_path / "gen.json"
    assert main(["schedule", "generate", "--periods", "6", "--vessels", "2", "--storage-tanks", "3",
                 "--charging-tanks", "2", "--cdus", "1", "--properties", "1", "--seed", "3", "--out", str(inst)]) == 0
    assert main(["schedule", "validate", str(inst)]) == 0
    # tight specs narrow the first property's window of the first charging tanks (they must blend there)
    tight = tmp_path / "tight.json"
    assert main(["schedule", "generate", "--periods", "6", "--vessels", "2", "--storage-tanks", "3",
                 "--charging-tanks", "2", "--cdus", "1", "--properties", "1", "--seed", "3", "--tight-specs", "1",
                 "--out", str(tight)]) == 0
    loose_specs = [t["spec"] for t in json.loads(inst.read_text())["charging_tanks"]]
    tight_specs = [t["spec"] for t in json.loads(tight.read_text())["charging_tanks"]]
    assert tight_specs != loose_specs
    for loose, narrow in zip(loose_specs, tight_specs):
        for prop, (lo, hi) in narrow.items():
            assert loose[prop][0] <= lo <= hi <= loose[prop][1]
    assert main(["schedule", "generate", "--periods", "6", "--tight-specs", "1.5", "--out", str(tight)]) == 2
    assert "tight_specs" in capsys.readouterr().err
    ex = tmp_path / "lee.json"
    assert main(["schedule", "example", "lee1996-example1", "--out", str(ex)]) == 0
    sweep = tmp_path / "sweep"
    rc = main(["schedule", "sweep", str(inst), "--out", str(sweep), "--delay", "V1:0,1", "--time-limit", "3",
               "--engine", "local", "--workers", "1"])
    assert rc == 0
    import pandas as pd

    frame = pd.read_csv(sweep / "results.csv")
    assert list(frame["delay"]) == [0, 1]
    assert set(frame["status"]) <= {"OPTIMAL", "FEASIBLE", "INFEASIBLE"}
    assert frame.loc[frame["status"].isin(["OPTIMAL", "FEASIBLE"]), "check_ok"].all()
    # a re-run resumes from the job markers instead of solving again
    capsys.readouterr()
    assert main(["schedule", "sweep", str(inst), "--out", str(sweep), "--delay", "V1:0,1", "--time-limit", "3"]) == 0
    assert json.loads((sweep / "job.json").read_text())["resumed"] == 2


@pytest.mark.slow
def test_sweep_on_the_ray_engine(tmp_path):
    """The same what-if sweep through Ray (local cluster, 2 CPUs): about 30 s on the shared 2-core box."""
    pytest.importorskip("ray")
    from vai.verticals.scheduling import generate_instance
    from vai.verticals.scheduling.sweep import delay_variants, run_sweep

    items = delay_variants(generate_instance(6, 2, 3, 2, 1, 1, seed=3), "V1", [0, 1])
    import ray

    try:
        result, frame = run_sweep(items, tmp_path / "ray", engine="ray", workers=2, time_limit=3.0)
    finally:
        ray.shutdown()
    assert result.ok and len(frame) == 2
    assert frame.loc[frame["status"].isin(["OPTIMAL", "FEASIBLE"]), "check_ok"].all()


def test_sweep_rerun_redoes_an_instance_whose_file_changed(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for p in (a, b):
        assert main(["schedule", "example", "lee1996-example1", "--out", str(p)]) == 0
    sweep = tmp_path / "sweep"
    cmd = ["schedule", "sweep", str(a), str(b), "--out", str(sweep), "--time-limit", "5"]
    assert main(cmd) == 0
    import pandas as pd

    before = pd.read_csv(sweep / "results.csv").set_index("name")["objective"]
    data = json.loads(b.read_text())
    data["costs"]["changeover"] = 999  # the planner edits one scenario
    b.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(cmd) == 0
    job = json.loads((sweep / "job.json").read_text())
    assert job["resumed"] == 1 and job["done"] == 1
    after = pd.read_csv(sweep / "results.csv").set_index("name")["objective"]
    assert after["a"] == before["a"] and after["b"] > before["b"]
    assert main(["schedule", "check", str(b), str(sweep / "schedules" / "b.json")]) == 0


def test_check_names_malformed_schedule_fields_instead_of_crashing(tmp_path, capsys):
    inst = tmp_path / "lee.json"
    assert main(["schedule", "example", "lee1996-example1", "--out", str(inst)]) == 0
    sched = tmp_path / "s.json"
    assert main(["schedule", "solve", str(inst), "--out", str(sched), "--time-limit", "5"]) == 0
    data = json.loads(sched.read_text())
    data["transfers"][0]["volume"] = "5"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["schedule", "check", str(inst), str(bad)]) == 1
    assert "transfers[0].volume: must be a number, got '5'" in capsys.readouterr().out
    bad.write_text("[1, 2]")
    assert main(["schedule", "check", str(inst), str(bad)]) == 1
    assert "must be a JSON object" in capsys.readouterr().out


def test_schedule_for_another_instance_is_refused(tiny_file, tmp_path, capsys):
    sched = tiny_schedule()
    sched["instance"] = "some-other-plant"
    sp = tmp_path / "other.json"
    sp.write_text(json.dumps(sched))
    for verb in (["check"], ["gantt", "--out", str(tmp_path / "g.png")], ["repair", "--event", "late:V2:1",
                                                                          "--out", str(tmp_path / "r.json")]):
        args = ["schedule", verb[0], str(tiny_file), str(sp)] + verb[1:]
        assert main(args) == 2, verb
        err = capsys.readouterr().err
        assert "made for instance 'some-other-plant'" in err and "Traceback" not in err


def test_operations_table_lists_every_movement_with_what_it_carries(tmp_path):
    import pandas as pd

    from vai.core.tables import read_user_table
    from vai.verticals.scheduling import check_schedule, load_instance

    inst = tmp_path / "lee.json"
    assert main(["schedule", "example", "lee1996-example1", "--out", str(inst)]) == 0
    sched_path, table_path = tmp_path / "s.json", tmp_path / "ops.xlsx"
    assert main(["schedule", "solve", str(inst), "--out", str(sched_path), "--time-limit", "10",
                 "--table", str(table_path)]) == 0
    sched, data = json.loads(sched_path.read_text()), load_instance(inst).to_dict()
    ops = read_user_table(table_path)
    assert len(ops) == len(sched["unloads"]) + len(sched["transfers"]) + len(sched["charges"])
    assert ops["period"].is_monotonic_increasing
    assert set(ops["operation"]) == {"unload", "transfer", "charge"}
    assert (ops["start_hour"] == ops["period"] * data["period_hours"]).all()
    # a charge carries the charging tank's mix at the start of the period, as the checker simulates it
    report = check_schedule(data, sched)
    specs = {t["id"]: t.get("spec", {}) for t in data["charging_tanks"]}
    for r in ops[ops["operation"] == "charge"].itertuples():
        mix = report.inventory[r.source][r.period - 1] if r.period else data["charging_tanks"][
            [t["id"] for t in data["charging_tanks"]].index(r.source)]["initial"]
        expected = sum(x * data["crudes"][c]["sulfur"] for c, x in mix.items()) / sum(mix.values())
        assert r.sulfur == pytest.approx(expected, abs=1e-9)
        lo, hi = specs[r.source]["sulfur"]
        assert lo - 1e-6 <= r.sulfur <= hi + 1e-6  # a valid schedule sends only on-spec feed
    unloads = ops[ops["operation"] == "unload"]
    crude_of = {v["id"]: v["crude"] for v in data["vessels"]}
    assert (unloads["crudes"] == unloads["source"].map(lambda v: f"{crude_of[v]} 100%")).all()
    # a repaired plan's table, as CSV
    repaired, table2 = tmp_path / "r.json", tmp_path / "ops_repaired.csv"
    assert main(["schedule", "repair", str(inst), str(sched_path), "--event", "late:V1:1", "--out", str(repaired),
                 "--time-limit", "10", "--table", str(table2)]) == 0
    again = pd.read_csv(table2)
    moved = json.loads(repaired.read_text())
    assert len(again) == len(moved["unloads"]) + len(moved["transfers"]) + len(moved["charges"])
    first_v1 = again[(again["operation"] == "unload") & (again["source"] == "V1")]["period"].min()
    assert first_v1 >= next(v["arrival"] for v in data["vessels"] if v["id"] == "V1") + 1


@pytest.mark.parametrize("flags, named", [
    (["--out", "plan.yaml"], "a schedule is written as JSON"),
    (["--out", "s.json", "--gantt", "gantt.jpg"], "a chart is an image or an interactive page: name it .png or .html"),
    (["--out", "s.json", "--plots", "inventory"], "name it .png or .html (e.g. "),
])
def test_solve_refuses_an_output_name_of_another_format_before_solving(tiny_file, tmp_path, capsys, flags, named):
    flags = [str(tmp_path / f) if not f.startswith("--") else f for f in flags]
    with pytest.raises(SystemExit) as exc:
        main(["schedule", "solve", str(tiny_file), *flags])
    assert exc.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "plan.yaml").exists()  # nothing solved


def test_example_and_generate_write_json_or_yaml_only(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["schedule", "example", "lee1996-example1", "--out", str(tmp_path / "lee.txt")])
    assert "an instance is written as JSON or YAML: name it .json or .yaml or .yml" in capsys.readouterr().err
    assert main(["schedule", "example", "lee1996-example1", "--out", str(tmp_path / "lee.yml")]) == 0
