"""Re-planning: a late vessel, a tank outage, keeping the past fixed and moving as little as needed."""
import pytest
from sched_fixtures import tiny_instance, tiny_schedule

from vai.core.errors import VaiError
from vai.verticals.scheduling import Instance, apply_event, check_schedule, parse_event, repair


def test_late_vessel_moves_only_its_unloading_and_stays_valid():
    inst = Instance.from_dict(tiny_instance())
    fixed = repair(inst, tiny_schedule(), "late:V2:2", time_limit=10, workers=2)
    assert fixed["status"] == "OPTIMAL"
    info = fixed["repair"]
    # V2 can no longer unload in period 1: exactly two entries change (t1 10 -> 0, t2 0 -> 10)
    assert info["n_moved"] == 2 and info["moves_minimal"]
    assert {(m["operation"], m["old"], m["new"]) for m in info["moved"]} == {
        ("unload V2->ST2 in period 1", 10, 0), ("unload V2->ST2 in period 2", 0, 10)}
    # hand-checked: sea waiting 0, ST2 holds 10 for two periods instead of three
    assert fixed["objective"] == pytest.approx(78.0)
    new_inst = apply_event(inst, parse_event("late:V2:2"))
    assert new_inst.vessel("V2").arrival == 2
    rep = check_schedule(new_inst.to_dict(), fixed)
    assert rep.ok, [str(v) for v in rep.violations]


def test_the_past_stays_fixed():
    inst = Instance.from_dict(tiny_instance())
    old = tiny_schedule()
    fixed = repair(inst, old, "tank-out:ST2:2", at=2, time_limit=10, workers=2)
    assert fixed["status"] in ("OPTIMAL", "FEASIBLE")
    before = lambda s: sorted((r["period"], r.get("vessel", r.get("from", r.get("cdu")))) for k in ("unloads", "transfers", "charges")  # noqa: E731
                              for r in s[k] if r["period"] < 2)
    assert before(fixed) == before(old)
    assert fixed["repair"]["n_moved"] == 0  # the old plan never touches ST2 after period 1


def test_an_impossible_repair_is_diagnosed():
    inst = Instance.from_dict(tiny_instance())
    fixed = repair(inst, tiny_schedule(), "tank-out:ST1:0", at=0, time_limit=6, workers=2)
    assert fixed["status"] == "INFEASIBLE"
    assert any("ST1 is out of service" in line for line in fixed["diagnosis"]), fixed["diagnosis"]


def test_bad_events_are_clear_errors():
    inst = Instance.from_dict(tiny_instance())
    for text, match in (("late:V9:1", "no vessel 'V9'"), ("sideways:V1:1", "unknown kind"), ("late:V1", "events look like"),
                        ("late:V1:x", "bad number"), ("late:V1:9", "after the horizon"),
                        ("tank-out:ST1:3-1", "ends \\(period 1\\) before it starts")):
        with pytest.raises(VaiError, match=match):
            apply_event(inst, parse_event(text))
