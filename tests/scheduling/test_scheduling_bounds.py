"""The changeover lower bound (bounds.py): exact on a hand-built instance, never above the true minimum (found by
CP-SAT with the cuts switched off and changeovers the only cost), and the solver's bound uses it."""
import copy

import pytest
from sched_fixtures import tiny_instance

from vai.verticals.scheduling import Instance, check_schedule, generate_instance, solve
from vai.verticals.scheduling.bounds import changeover_bound


def _three_runs_instance() -> dict:
    """7 periods, CDU1 takes exactly 10 per period from CT1 (holds at most 20, starts full, must send 50) or CT2
    (starts empty, must send 20). One run of CT1 delivers at most 20, so CT1 needs 3 runs; they cannot touch, so
    CT2 must run in between: at least 5 runs, 4 changeovers (e.g. CT1 CT1 CT2 CT1 CT1 CT2 CT1, CT1 refilled
    from ST1 while CT2 feeds)."""
    d = copy.deepcopy(tiny_instance())
    d.update(name="three-runs", periods=7)
    d["vessels"] = [{"id": "V1", "arrival": 0, "crude": "C1", "volume": 10, "tanks": ["ST1"]}]
    d["storage_tanks"] = [{"id": "ST1", "min": 0, "max": 100, "initial": {"C1": 60}},
                          {"id": "ST2", "min": 0, "max": 100, "initial": {}}]
    d["charging_tanks"][0].update(max=20, initial={"C1": 20}, demand=50)
    d["charging_tanks"][1].update(max=20, initial={}, demand=20)
    return d


def _changeovers(sched: dict) -> int:
    feeding: dict = {}
    for c in sorted(sched["charges"], key=lambda c: c["period"]):
        feeding.setdefault(c["cdu"], []).append(c["tank"])
    return sum(sum(a != b for a, b in zip(seq, seq[1:])) for seq in feeding.values())


def test_bound_on_the_hand_built_instance_is_exact():
    data = _three_runs_instance()
    cb = changeover_bound(Instance.from_dict(data))
    assert cb.runs_needed == {"CT1": 3, "CT2": 1}
    assert cb.per_cdu == {"CDU1": 4} and cb.total == 4
    sched = solve(Instance.from_dict(data), time_limit=20, workers=2, seed=0)
    assert sched["status"] == "OPTIMAL", sched.get("diagnosis")
    assert check_schedule(data, sched).ok
    assert _changeovers(sched) == 4 and sched["cost_breakdown"]["changeover"] == 200
    assert sched["solver"]["changeovers_at_least"] == 4


def test_no_bound_when_a_cdu_may_run_at_zero_rate():
    data = _three_runs_instance()
    data["cdus"][0]["rate"] = [0, 10]
    cb = changeover_bound(Instance.from_dict(data))
    assert cb.per_cdu == {} and cb.total == 0


def _min_changeovers_without_cuts(data: dict, monkeypatch) -> int:
    """The true minimum: changeovers the only cost, solved to optimality with the cuts (and the MILP) off."""
    from vai.verticals.scheduling import bounds

    d = copy.deepcopy(data)
    d["costs"] = {k: (1 if k == "changeover" else 0) for k in d["costs"]}
    monkeypatch.setattr(bounds, "VALID_CUTS", False)
    sched = solve(Instance.from_dict(d), time_limit=30, workers=2, seed=0, use_milp=False)
    monkeypatch.undo()
    assert sched["status"] == "OPTIMAL", sched.get("diagnosis")
    assert check_schedule(d, sched).ok
    return _changeovers(sched)


@pytest.mark.parametrize("case", ["three-runs", "generated-s0", "generated-s1"])
def test_bound_never_exceeds_the_true_minimum(case, monkeypatch):
    if case == "three-runs":
        data = _three_runs_instance()
    else:
        data = generate_instance(periods=8, vessels=2, storage_tanks=3, charging_tanks=2, cdus=1, properties=1,
                                 seed=int(case[-1]))
        for ct in data["charging_tanks"]:  # small tanks, so that several runs are needed
            ct["max"] = max(sum(ct.get("initial", {}).values()), ct["demand"] / 2.5)
    bound = changeover_bound(Instance.from_dict(data)).total
    assert bound >= 1
    assert bound <= _min_changeovers_without_cuts(data, monkeypatch)


def test_cuts_keep_known_optima(monkeypatch):
    """The cuts only remove what no valid schedule does: optima found without them are kept. lee1996-example1's
    MILP optimum 218.55 was measured before the cuts existed; on a generated instance the exact CP-SAT optimum is
    the same with and without them."""
    from vai.verticals.scheduling import bounds, load_example
    from vai.verticals.scheduling.milp import classic_milp

    lee = classic_milp(load_example("lee1996-example1"), time_limit=20)
    assert lee["status"] == "OPTIMAL" and lee["objective"] == pytest.approx(218.55)
    data = generate_instance(periods=8, vessels=2, storage_tanks=3, charging_tanks=2, cdus=1, properties=1, seed=2)
    for ct in data["charging_tanks"]:
        ct["max"] = max(sum(ct.get("initial", {}).values()), ct["demand"] / 2.5)
    optimum = {}
    for cuts in (True, False):
        monkeypatch.setattr(bounds, "VALID_CUTS", cuts)
        sched = solve(Instance.from_dict(data), time_limit=30, workers=2, seed=0, use_milp=False)
        assert sched["status"] == "OPTIMAL", sched.get("diagnosis")
        optimum[cuts] = sched["objective"]
    assert optimum[True] == pytest.approx(optimum[False])


def _shared_tank_variant(data: dict) -> dict:
    """A charging tank that may feed two CDUs (runs on either), the first CDU's second tank made small."""
    d = copy.deepcopy(data)
    shared = d["cdus"][0]["from"][0]
    if shared not in d["cdus"][1]["from"]:
        d["cdus"][1]["from"].append(shared)
    return d


@pytest.mark.parametrize("case", ["three-runs", "gen-s0", "three-vessels-s1", "two-cdus-s1", "shared-tank-s1", "zero-rate-s2"])
def test_lp_bound_never_exceeds_the_milp_optimum(case, monkeypatch):
    """The bound LP (unloading windows, charging runs with their holding and changeovers, stock cut) is a valid
    lower bound: never above the optimum of the classic MILP solved to optimality with every cut switched off
    (the MILP relaxes composition, not volumes, and every cut is about volumes, runs and timing)."""
    from vai.verticals.scheduling import bounds
    from vai.verticals.scheduling.milp import classic_milp

    seed = int(case[-1]) if case[-1].isdigit() else 0
    if case == "three-runs":
        data = _three_runs_instance()
    else:
        two, three = case.startswith(("two-cdus", "shared-tank")), case.startswith("three-vessels")
        data = generate_instance(periods=10 if three else 8 if two else 9, vessels=3 if three else 2,
                                 storage_tanks=4 if three else 3, charging_tanks=4 if two else 3 if three else 2,
                                 cdus=2 if two else 1, properties=1, seed=seed)
        for ct in data["charging_tanks"]:  # small tanks, so that runs, refills and holding matter
            ct["max"] = max(sum(ct.get("initial", {}).values()), ct["demand"] / 2.5)
        if case.startswith("shared-tank"):
            data = _shared_tank_variant(data)
    if case.startswith("zero-rate"):
        data["cdus"][0]["rate"][0] = 0
    inst = Instance.from_dict(data)
    monkeypatch.setattr(bounds, "VALID_CUTS", False)
    plain = classic_milp(inst, time_limit=300)  # proven optimal in 1-17 s here; slack for slower CI machines
    plain_lp = classic_milp(inst, time_limit=60, lp_only=True)
    monkeypatch.setattr(bounds, "VALID_CUTS", True)
    lp = classic_milp(inst, time_limit=60, lp_only=True)
    assert plain["status"] == "OPTIMAL" and lp["status"] == "OPTIMAL"
    assert lp["bound"] <= plain["objective"] + 1e-6 * max(1.0, abs(plain["objective"])), (lp, plain["objective"])
    assert lp["bound"] >= plain_lp["bound"] - 1e-6


def test_lp_bound_phase_adds_the_charging_runs_only_when_they_fit(monkeypatch):
    """The solver's bound LP: without the runs first, then with them only if 7x the first solve time fits in what
    is left; the runs' bound is never lower. Solve times are faked (1 s) so the decision is deterministic."""
    from vai.verticals.scheduling import milp
    from vai.verticals.scheduling.solver import _lp_bound_phase

    data = generate_instance(periods=9, vessels=2, storage_tanks=3, charging_tanks=2, cdus=1, properties=1, seed=0)
    for ct in data["charging_tanks"]:
        ct["max"] = max(sum(ct.get("initial", {}).values()), ct["demand"] / 2.5)
    inst = Instance.from_dict(data)
    real, calls = milp.classic_milp, []

    def timed(inst, time_limit=30.0, lp_only=False, runs=True):
        calls.append(runs)
        return {**real(inst, time_limit, lp_only=lp_only, runs=runs), "wall_seconds": 1.0}

    monkeypatch.setattr(milp, "classic_milp", timed)
    plain = real(inst, 30, lp_only=True, runs=False)["bound"]
    with_runs = real(inst, 30, lp_only=True)["bound"]
    assert with_runs > plain + 1.0
    assert _lp_bound_phase(inst, 6.0) == (pytest.approx(plain), 1.0) and calls == [False]
    calls.clear()
    assert _lp_bound_phase(inst, 20.0) == (pytest.approx(with_runs), 1.0) and calls == [False, True]
    calls.clear()  # the solver's two steps on long horizons: without the runs, later with them
    assert _lp_bound_phase(inst, 20.0, runs=False) == (pytest.approx(plain), 1.0) and calls == [False]
    assert _lp_bound_phase(inst, 20.0, plain_s=1.0) == (pytest.approx(with_runs), 1.0) and calls == [False, True]
