"""The CP-SAT solver: a hand-checked optimum, every solved schedule passes the independent checker (example and
several generated instances), infeasible instances come with a diagnosis. Short time limits, 2 workers."""
import pytest
from sched_fixtures import TINY_OPTIMUM, stuck_instance, tiny_instance

from vai.verticals.scheduling import Instance, check_schedule, generate_instance, load_example, solve


def _solve(data, tl=5.0, **kw):
    return solve(Instance.from_dict(data), time_limit=tl, workers=2, seed=0, **kw)


def test_tiny_instance_solves_to_the_hand_checked_optimum():
    sched = _solve(tiny_instance(), tl=10)
    assert sched["status"] == "OPTIMAL"
    assert sched["objective"] == pytest.approx(TINY_OPTIMUM)
    assert sched["bound"] == pytest.approx(TINY_OPTIMUM) and sched["gap"] == 0
    assert sched["cost_breakdown"] == pytest.approx({"unloading": 16, "sea_waiting": 5, "inventory": 13,
                                                     "changeover": 50})
    assert {(r["period"], r["vessel"]) for r in sched["unloads"]} == {(0, "V1"), (1, "V2")}
    rep = check_schedule(tiny_instance(), sched)
    assert rep.ok, [str(v) for v in rep.violations]
    # spec format
    for key in ("format", "instance", "status", "objective", "bound", "gap", "wall_seconds", "cost_breakdown",
                "unloads", "transfers", "charges", "inventory", "max_spec_violation"):
        assert key in sched
    assert len(sched["inventory"]["ST1"]) == 4


def test_lee_example_schedule_is_exactly_mixed_and_passes_the_checker():
    inst = load_example("lee1996-example1")
    sched = solve(inst, time_limit=8, workers=2)
    assert sched["status"] in ("OPTIMAL", "FEASIBLE")
    rep = check_schedule(inst.to_dict(), sched)
    assert rep.ok, [str(v) for v in rep.violations]
    assert rep.objective == pytest.approx(sched["objective"])
    assert sched["max_spec_violation"] == 0
    assert 0 <= sched["bound"] <= sched["objective"] and 0 <= sched["gap"] <= 1
    assert sched["solver"]["relaxation_bound"] is not None


def test_lee_example_with_the_cpsat_exact_model_alone():
    inst = load_example("lee1996-example1")
    sched = solve(inst, time_limit=6, workers=2, use_milp=False)
    assert sched["status"] in ("OPTIMAL", "FEASIBLE")
    assert check_schedule(inst.to_dict(), sched).ok
    assert "CT1" in sched["solver"]["tracked_tanks"]  # both charging tanks really mix two crudes


def test_milp_schedule_is_accepted_only_when_exact_simulation_agrees():
    from vai.verticals.scheduling.milp import classic_milp
    from vai.verticals.scheduling.solver import simulate_inventory

    inst = load_example("lee1996-example1")
    mi = classic_milp(inst, time_limit=20)
    assert mi["status"] == "OPTIMAL"
    _, worst = simulate_inventory(inst, mi)
    sched = solve(inst, time_limit=20, workers=2)
    if worst <= 1e-7:  # the relaxation's optimum happens to be exact: proven optimal as it stands
        assert sched["status"] == "OPTIMAL" and sched["objective"] == pytest.approx(mi["objective"])
    assert sched["bound"] == pytest.approx(mi["bound"], rel=1e-6)
    assert check_schedule(inst.to_dict(), sched).ok


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_instances_solve_to_valid_schedules(seed):
    data = generate_instance(periods=8, vessels=2, storage_tanks=3, charging_tanks=2, cdus=1, properties=2, seed=seed,
                             tight_specs=0.5)  # CT1 must blend: its window cuts into what can reach it
    sched = _solve(data, tl=4, use_milp=False)
    assert sched["status"] in ("OPTIMAL", "FEASIBLE"), sched.get("diagnosis")
    assert "CT1" in sched["solver"]["tracked_tanks"]  # exact mixing is really in play
    rep = check_schedule(data, sched)
    assert rep.ok, [str(v) for v in rep.violations]


def test_infeasible_instance_gets_an_irreducible_diagnosis():
    sched = _solve(stuck_instance(), tl=5)
    assert sched["status"] == "INFEASIBLE"
    diag = " | ".join(sched["diagnosis"])
    assert "never receives and sends" in diag and "CDU1" in diag, diag
    assert len(sched["diagnosis"]) <= 5
    assert "berth" not in diag and "V2" not in diag  # irrelevant rules are not blamed


def test_precheck_infeasibility_is_reported_without_search():
    d = tiny_instance()
    d["charging_tanks"][1]["spec"] = {"sulfur": [0.03, 0.04]}
    sched = _solve(d)
    assert sched["status"] == "INFEASIBLE"
    assert any("CT2 spec sulfur" in line and "cannot be met" in line for line in sched["diagnosis"])


def test_resolution_must_divide_the_data():
    from vai.core.errors import VaiError

    d = tiny_instance()
    d["vessels"][1]["volume"] = 10.25
    with pytest.raises(VaiError, match="resolution"):
        _solve(d, resolution=0.1)
    sched = _solve(d, use_milp=False)  # auto resolution picks a finer grid
    assert sched["solver"]["resolution"] <= 0.05
    assert check_schedule(d, sched).ok


def test_window_search_improves_a_first_schedule_and_stays_exact():
    """From CP-SAT's first schedule of a 12-period instance, the time-window search only ever keeps a cheaper
    schedule, costed by exact simulation, and what it returns passes the independent checker."""
    import time

    from vai.verticals.scheduling.instance import FORMAT
    from vai.verticals.scheduling.solver import FeedModel, _params, _window_search, auto_resolution, schedule_costs, \
        simulate_inventory

    data = generate_instance(12, 3, 4, 4, 2, 2, seed=1, tight_specs=0.5)
    inst = Instance.from_dict(data)
    model = FeedModel(inst, auto_resolution(inst), mode="exact")
    first = model.cp.CpSolver()
    _params(first, 10.0, 1, 0)
    first.parameters.stop_after_first_solution = True
    assert first.StatusName(first.Solve(model.m)) in ("OPTIMAL", "FEASIBLE")
    start = model.decode(first)

    def cost(ops):
        return sum(schedule_costs(inst, ops, simulate_inventory(inst, ops)[0]).values())

    ops, info = _window_search(inst, model, start, time.monotonic() + 8.0, workers=1, seed=0)
    assert info["start_cost"] == pytest.approx(cost(start)) and info["cost"] == pytest.approx(cost(ops))
    assert info["cost"] < info["start_cost"] and info["improvements"] >= 1 and info["sub_solves"] >= info["improvements"]
    inventory, worst = simulate_inventory(inst, ops)
    sched = {"format": FORMAT, "instance": inst.name, "status": "FEASIBLE", **ops, "inventory": inventory,
             "cost_breakdown": schedule_costs(inst, ops, inventory), "objective": info["cost"]}
    rep = check_schedule(data, sched)
    assert rep.ok, [str(v) for v in rep.violations]


def test_a_rolling_window_left_infeasible_gives_commitments_back(monkeypatch):
    """12 periods in windows of 4: the first window's commitments leave the second (the rest of the horizon) no
    way on; it gives half a window back (periods < 2 fixed instead of < 4), finishes the rolling horizon, and the
    schedule is exact."""
    from vai.verticals.scheduling import solver as S

    fixed_at, probes = [], []
    real, real_probe = S._fix_before, S._feasibility_probe

    def record(model, sched, end):
        fixed_at.append(end)
        real(model, sched, end)

    def record_probe(model, seconds, workers, seed):
        out = real_probe(model, seconds, workers, seed)
        probes.append(out[0])
        return out

    monkeypatch.setattr(S, "_fix_before", record)
    monkeypatch.setattr(S, "_feasibility_probe", record_probe)
    data = generate_instance(12, 3, 3, 2, 1, 2, seed=0, tight_specs=0.5)
    sched = solve(Instance.from_dict(data), time_limit=6, window=4, seed=0)
    assert fixed_at[:2] == [4, 2]  # infeasible with periods < 4 fixed, searched again with < 2
    # the objective-free probe is what finds the dead end, before any optimising search of that window
    assert probes[:3] == ["FEASIBLE", "INFEASIBLE", "FEASIBLE"]
    assert sched["status"] in ("OPTIMAL", "FEASIBLE") and sched["solver"]["rolling_windows"] == 2
    rep = check_schedule(data, sched)
    assert rep.ok, [str(v) for v in rep.violations]


def test_feasibility_probe_returns_a_complete_solution_of_the_model_with_its_objective():
    """The probe drops the objective but its assignment is a solution of the full model: fixing every variable
    to it must leave the optimising model feasible, with the same exact cost. Contradictory data: INFEASIBLE."""
    from vai.verticals.scheduling import solver as S

    inst = Instance.from_dict(generate_instance(8, 2, 3, 2, 1, 2, seed=1))
    model = S.FeedModel(inst, mode="exact")
    status, values = S._feasibility_probe(model, 10.0, 2, 0)
    assert status == "FEASIBLE" and len(values) == len(model.m.Proto().variables)
    S._hint_every_variable(model, values)
    fs = model.cp.CpSolver()
    S._params(fs, 10.0, 1, 0)
    fs.parameters.fix_variables_to_their_hinted_value = True
    assert fs.StatusName(fs.Solve(model.m)) in ("OPTIMAL", "FEASIBLE")
    ops = model.decode(fs)
    rep = check_schedule(inst.to_dict(), {"status": "FEASIBLE", **ops}, check_reported=False)
    assert rep.ok, [str(v) for v in rep.violations]

    stuck = S.FeedModel(inst, mode="exact")
    cdu_charges = [var for (c, d, t), var in stuck.y.items() if t == 0]
    stuck.m.Add(sum(cdu_charges) == 0)  # no CDU fed in period 0 although every CDU must run in every period
    assert S._feasibility_probe(stuck, 10.0, 2, 0)[0] == "INFEASIBLE"


def test_solve_without_scipy_still_finds_the_optimum_and_says_what_is_missing(monkeypatch):
    """An install without the `[scheduling]` extra has no HiGHS: the solve must not crash in the bound phase."""
    import logging
    import sys

    from vai.verticals.scheduling import solver

    monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # `import scipy.optimize` now raises ImportError
    monkeypatch.setattr(solver, "_HIGHS_WARNED", False)
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = solver._log()
    logger.addHandler(handler)
    try:
        inst = Instance.from_dict(tiny_instance())
        sched = solve(inst, time_limit=8, workers=2, seed=0)
    finally:
        logger.removeHandler(handler)
    assert sched["status"] == "OPTIMAL" and sched["objective"] == pytest.approx(TINY_OPTIMUM)
    assert check_schedule(inst.to_dict(), sched).ok
    assert any("scipy is not installed" in m for m in said) and not any("HiGHS):" in m for m in said)


def test_ctrl_c_stops_a_cp_sat_search_at_once_and_leaves_no_solver_thread():
    """A real SIGINT (Ctrl-C) during a long search, in a fresh process: KeyboardInterrupt within a fraction of a
    second, not the search's time limit; CP-SAT's own handler neither swallows it (the solve used to go on to its
    next phase) nor aborts the process; the solver thread has ended when the interpreter exits."""
    import subprocess
    import sys

    script = """
import os, signal, threading, time
from ortools.sat.python import cp_model
from vai.verticals.scheduling.solver import stoppable_solve
m = cp_model.CpModel()
xs = [m.NewIntVar(0, 100, f"x{i}") for i in range(60)]
for i in range(59):
    m.Add(xs[i] + xs[i + 1] <= 100 + i % 7)
m.AddAllDifferent(xs)
m.Maximize(sum((i % 5 + 1) * x for i, x in enumerate(xs)))
solver = cp_model.CpSolver()
solver.parameters.max_time_in_seconds = 30
solver.parameters.num_workers = 2
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever the test runner inherited
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    stoppable_solve(solver, m)
    print("not interrupted")
except KeyboardInterrupt:
    time.sleep(0.05)
    print("interrupted", round(time.monotonic() - t0, 2), "cp-sat" in [t.name for t in threading.enumerate()])
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    word, seconds, thread_alive = res.stdout.split()
    assert word == "interrupted" and float(seconds) < 5 and thread_alive == "False", res.stdout
