"""Re-planning after an event: keep what already happened fixed, change as little as needed.

Events (text form, as on the CLI):
  late:V1:2          vessel V1 arrives 2 periods later than planned (its depart_by, if any, moves too)
  tank-out:ST2:3     tank ST2 can neither receive nor send from period 3 on (`tank-out:ST2:3-5` for 3..5)
  demand:CT1:120     charging tank CT1 must now send 120 over the horizon
`at` is the first period that may change (default: a late vessel's planned arrival, an outage's first period,
0 for a demand change); every unload, transfer and charge before it is kept as it was.

Two CP-SAT phases on the exact-mixing model: (1) minimise the number of operations (unload, transfer or
charge entries, by period and pair) whose volume changes; (2) with that number fixed, minimise the cost.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from vai.core.errors import VaiError

from .instance import Instance
from .solver import (_RES_CANDIDATES, FORMAT, FeedModel, STATUS_NAMES, _apply_hint, _on_grid, _params, auto_resolution,
                     diagnose_infeasibility, schedule_costs, simulate_inventory, stoppable_solve, volumes_of)


@dataclass
class Event:
    kind: str    # late | tank-out | demand
    target: str
    value: float = 0.0
    start: int = 0
    end: int | None = None

    def __str__(self) -> str:
        if self.kind == "late":
            return f"{self.target} late by {int(self.value)} period(s)"
        if self.kind == "tank-out":
            return f"{self.target} out of service in periods {self.start}..{'end' if self.end is None else self.end}"
        return f"{self.target} demand changed to {self.value:g}"


def parse_event(text: str) -> Event:
    parts = text.strip().split(":")
    usage = "events look like late:V1:2, tank-out:ST2:3 (or 3-5), demand:CT1:120"
    if len(parts) != 3:
        raise VaiError(f"--event {text!r}: {usage}")
    kind, target, arg = parts
    try:
        if kind == "late":
            n = int(arg)
            if n < 1:
                raise ValueError
            return Event("late", target, n)
        if kind == "tank-out":
            a, _, b = arg.partition("-")
            start, end = int(a), int(b) if b else None
            if end is not None and end < start:
                raise VaiError(f"--event {text!r}: the outage ends (period {end}) before it starts (period {start})")
            return Event("tank-out", target, 0, start, end)
        if kind == "demand":
            return Event("demand", target, float(arg))
    except ValueError:
        raise VaiError(f"--event {text!r}: bad number {arg!r}; {usage}") from None
    raise VaiError(f"--event {text!r}: unknown kind {kind!r}; {usage}")


def apply_event(inst: Instance, ev: Event) -> Instance:
    """The instance after the event (outages are not part of the format: they are enforced by the repair)."""
    data = copy.deepcopy(inst.raw)
    if ev.kind == "late":
        for v in data.get("vessels", []):
            if v["id"] == ev.target:
                v["arrival"] = int(v["arrival"]) + int(ev.value)
                if v.get("depart_by") is not None:
                    v["depart_by"] = int(v["depart_by"]) + int(ev.value)
                if v["arrival"] >= inst.periods:
                    raise VaiError(f"--event: {ev.target} would arrive in period {v['arrival']}, after the horizon")
                break
        else:
            raise VaiError(f"--event: no vessel {ev.target!r} (vessels: {', '.join(v.id for v in inst.vessels)})")
    elif ev.kind == "demand":
        for c in data.get("charging_tanks", []):
            if c["id"] == ev.target:
                c["demand"] = ev.value
                break
        else:
            raise VaiError(f"--event: no charging tank {ev.target!r}")
    elif ev.kind == "tank-out":
        if ev.target not in {t.id for t in inst.tanks}:
            raise VaiError(f"--event: no tank {ev.target!r}")
        if not 0 <= ev.start < inst.periods:
            raise VaiError(f"--event: outage start {ev.start} outside 0..{inst.periods - 1}")
    return Instance.from_dict(data, source="instance after the event")


def default_at(inst: Instance, ev: Event) -> int:
    if ev.kind == "late":
        return inst.vessel(ev.target).arrival
    if ev.kind == "tank-out":
        return ev.start
    return 0


def _flows(sched: dict) -> dict[tuple, float]:
    out = {}
    for r in sched.get("unloads", []):
        out["u", r["vessel"], r["tank"], r["period"]] = out.get(("u", r["vessel"], r["tank"], r["period"]), 0) + r["volume"]
    for r in sched.get("transfers", []):
        out["x", r["from"], r["to"], r["period"]] = out.get(("x", r["from"], r["to"], r["period"]), 0) + r["volume"]
    for r in sched.get("charges", []):
        out["y", r["tank"], r["cdu"], r["period"]] = out.get(("y", r["tank"], r["cdu"], r["period"]), 0) + r["volume"]
    return out


def _describe(key: tuple) -> str:
    kind, a, b, t = key
    return {"u": f"unload {a}->{b}", "x": f"transfer {a}->{b}", "y": f"charge {a}->{b}"}[kind] + f" in period {t}"


def moved_operations(old: dict, new: dict, tol: float = 1e-6) -> list[dict[str, Any]]:
    fo, fn = _flows(old), _flows(new)
    moved = []
    for key in sorted(set(fo) | set(fn), key=lambda k: (k[3], k[0], k[1], k[2])):
        a, b = fo.get(key, 0.0), fn.get(key, 0.0)
        if abs(a - b) > tol:
            moved.append({"operation": _describe(key), "period": key[3], "old": a, "new": b})
    return moved


def repair(inst: Instance, old: dict[str, Any], event: Event | str, at: int | None = None, time_limit: float = 20.0,
           workers: int = 2, seed: int = 0) -> dict[str, Any]:
    """Returns the repaired schedule (spec format) with a `repair` section: event, at, moved operations."""
    t0 = time.monotonic()
    ev = parse_event(event) if isinstance(event, str) else event
    if old.get("status") not in ("OPTIMAL", "FEASIBLE"):
        raise VaiError("the schedule to repair has no operations (status "
                       f"{old.get('status')!r}): solve the instance first")
    new_inst = apply_event(inst, ev)
    at = default_at(inst, ev) if at is None else int(at)
    if not 0 <= at < inst.periods:
        raise VaiError(f"--at {at} is outside 0..{inst.periods - 1}")
    old_flows = _flows(old)
    # the coarsest grid that holds the instance and every old flow (a schedule from the MILP phase has
    # continuous volumes), so that "unchanged" means exactly unchanged
    res = (old.get("solver") or {}).get("resolution") or auto_resolution(new_inst)
    for q in [res] + [c for c in _RES_CANDIDATES if c < res]:
        if all(_on_grid(x, q) for x in list(old_flows.values()) + volumes_of(new_inst)):
            res = q
            break
    else:
        res = _RES_CANDIDATES[-1]
    fixed_rule = f"what already happened before period {at} stays fixed"

    def constrain(fm: FeedModel, with_diffs: bool = True) -> list:
        diffs = []
        for kind, table in (("u", fm.u), ("x", fm.x), ("y", fm.y)):
            for key, var in table.items():
                t = key[-1]
                old_v = fm.vi(old_flows.get((kind, *key), 0.0))
                if t < at:
                    fm.add(var == old_v, fixed_rule)
                elif with_diffs:
                    d = fm.m.NewBoolVar(f"moved[{kind},{key}]")
                    fm.m.Add(var == old_v).OnlyEnforceIf(d.Not())
                    diffs.append(d)
        if ev.kind == "tank-out":
            end = inst.periods - 1 if ev.end is None else min(ev.end, inst.periods - 1)
            for t in range(ev.start, end + 1):
                fm.add(fm.recv[ev.target, t] == 0, f"{ev.target} is out of service in periods {ev.start}..{end}")
                fm.add(fm.send[ev.target, t] == 0, f"{ev.target} is out of service in periods {ev.start}..{end}")
        return diffs

    fm = FeedModel(new_inst, res, mode="exact")
    diffs = constrain(fm)
    _apply_hint(fm, old)
    cost_obj = fm.objective
    fm.m.Minimize(sum(diffs))
    s1 = fm.cp.CpSolver()
    _params(s1, max(1.0, time_limit * 0.5), workers, seed)
    st1 = STATUS_NAMES.get(s1.StatusName(stoppable_solve(s1, fm.m)), "UNKNOWN")
    base = {"format": FORMAT, "instance": new_inst.name, "objective": None, "bound": None, "gap": None,
            "cost_breakdown": {}, "unloads": [], "transfers": [], "charges": [], "inventory": {},
            "max_spec_violation": None}
    info = {"event": str(ev), "at": at, "old_objective": old.get("objective")}
    if st1 not in ("OPTIMAL", "FEASIBLE"):
        base["status"] = st1
        if st1 == "INFEASIBLE":
            base["diagnosis"] = diagnose_infeasibility(new_inst, res, time_limit=max(5.0, time_limit / 2),
                                                       extra=lambda m: constrain(m, with_diffs=False))
        else:
            base["diagnosis"] = [f"no repaired schedule found within {time_limit:g} s; try a longer --time-limit"]
        base["wall_seconds"] = round(time.monotonic() - t0, 3)
        base["repair"] = info
        return base
    n_moved = int(round(s1.ObjectiveValue()))
    min_proven = st1 == "OPTIMAL"
    # phase 2: cheapest schedule among those moving no more operations
    hint_vals = {var.Index(): s1.Value(var) for table in (fm.u, fm.x, fm.y) for var in table.values()}
    fm.m.Add(sum(diffs) <= n_moved)
    fm.m.ClearHints()
    for table in (fm.u, fm.x, fm.y):
        for var in table.values():
            fm.m.AddHint(var, hint_vals[var.Index()])
    fm.m.Minimize(cost_obj)
    s2 = fm.cp.CpSolver()
    _params(s2, max(1.0, time_limit - (time.monotonic() - t0)), workers, seed)
    st2 = STATUS_NAMES.get(s2.StatusName(stoppable_solve(s2, fm.m)), "UNKNOWN")
    solver = s2 if st2 in ("OPTIMAL", "FEASIBLE") else s1
    ops = fm.decode(solver)
    inventory, worst = simulate_inventory(new_inst, ops)
    costs = schedule_costs(new_inst, ops, inventory)
    objective = round(sum(costs.values()), 9)
    bound = objective if st2 == "OPTIMAL" else min(objective, s2.BestObjectiveBound() / fm.F if st2 == "FEASIBLE" else objective)
    moved = moved_operations(old, ops)
    info.update({"moved": moved, "n_moved": len(moved), "moves_minimal": min_proven,
                 "new_objective": objective})
    return {**base, "status": "OPTIMAL" if st2 == "OPTIMAL" else "FEASIBLE", "objective": objective,
            "bound": round(bound, 6), "gap": round(0.0 if objective == 0 else (objective - bound) / abs(objective), 6),
            "wall_seconds": round(time.monotonic() - t0, 3), "cost_breakdown": costs, **ops, "inventory": inventory,
            "max_spec_violation": round(worst, 12), "repair": info,
            "solver": {"engine": "cp-sat exact mixing (repair)", "resolution": res, "workers": workers, "seed": seed,
                       "time_limit": time_limit,
                       "note": "OPTIMAL = cheapest among schedules moving the fewest operations"}}
