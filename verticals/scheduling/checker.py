"""The independent schedule checker (`vai schedule check INSTANCE SCHEDULE`).

It shares no code with the solver: it reads the instance and the schedule as plain dicts (the spec's JSON),
simulates the crude volumes in every tank exactly (perfect mixing, outflows at the start-of-period
composition), checks every operating rule of the spec, recomputes each cost term and reports each violation
with its rule, period, tank/vessel/CDU and amount. Tolerances are the spec's: a flow is an operation when
its volume exceeds 1e-6*max(1, its per-period limit); volumes are compared with 1e-6*max(1, |bound|) and
properties with 1e-6 absolute.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

PROP_TOL = 1e-6


def _vtol(bound: float) -> float:
    return 1e-6 * max(1.0, abs(bound))


@dataclass
class Violation:
    rule: str          # berth, window, unload_max, consecutive, complete, tanks, recv_send, capacity, cdu_feed,
                       # cdu_rate, ct_one_cdu, demand, spec, routing, transfer_max, negative, cost, inventory, format,
                       # reported (a reported figure, e.g. max_spec_violation, the simulation contradicts)
    period: int | None
    where: str         # the vessel, tank or CDU concerned
    amount: float      # by how much the rule is broken, >= 0 (volume, property, count or cost units)
    message: str

    def __str__(self) -> str:
        at = f"period {self.period}" if self.period is not None else "horizon"
        return f"[{self.rule}] {at} {self.where}: {self.message} (by {self.amount:.6g})"


@dataclass
class CheckReport:
    violations: list[Violation] = field(default_factory=list)
    costs: dict[str, float] = field(default_factory=dict)
    objective: float | None = None
    max_spec_violation: float = 0.0
    max_composition_drift: float = 0.0  # largest |reported - simulated| crude volume in the schedule's inventory
    inventory: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    properties: dict[str, list[dict[str, float | None]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def rules_broken(self) -> set[str]:
        return {v.rule for v in self.violations}

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": [asdict(v) for v in self.violations], "costs": self.costs,
                "objective": self.objective, "max_spec_violation": self.max_spec_violation,
                "max_composition_drift": self.max_composition_drift}


def _whole(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x) -> bool:
    """A finite JSON number (true/false, strings, NaN and infinities are not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _index(items: list[dict]) -> dict[str, dict]:
    return {it["id"]: it for it in items}


def check_schedule(instance: dict[str, Any], schedule: dict[str, Any], check_reported: bool = True) -> CheckReport:
    """Check `schedule` against every rule of `instance` (both plain dicts in the spec's format)."""
    rep = CheckReport()
    bad = lambda rule, t, where, amount, msg: rep.violations.append(Violation(rule, t, where, abs(float(amount)), msg))  # noqa: E731
    P = int(instance["periods"])
    props = list(instance.get("properties", []))
    crudes = instance["crudes"]
    vessels = _index(instance.get("vessels", []))
    sts = _index(instance.get("storage_tanks", []))
    cts = _index(instance.get("charging_tanks", []))
    cdus = _index(instance.get("cdus", []))
    tanks = {**sts, **cts}
    limits = instance.get("limits", {})
    umax = float(limits.get("unload_max", float("inf")))
    tmax = float(limits.get("transfer_max", float("inf")))
    costs_in = instance.get("costs", {})
    if not isinstance(schedule, dict):
        bad("format", None, "schedule", 0, f"the schedule must be a JSON object, got {type(schedule).__name__}")
        return rep
    if schedule.get("status") not in ("OPTIMAL", "FEASIBLE"):
        bad("format", None, "schedule", 0, f"status is {schedule.get('status')!r}: there is no schedule to check")
        return rep

    # the shape first: each list of rows, each row an object with a numeric volume (a string "5" or a list
    # where an object belongs is a format finding with its path, not a crash further down)
    lists = {}
    for kind in ("unloads", "transfers", "charges"):
        rows = schedule.get(kind, [])
        if not isinstance(rows, list):
            bad("format", None, kind, 0, f"{kind}: must be a list of rows, got {type(rows).__name__}")
            rows = []
        kept = []
        for i, r in enumerate(rows):
            if not isinstance(r, dict):
                bad("format", None, kind, 0, f"{kind}[{i}]: must be an object, got {r!r}")
            elif "volume" in r and not _number(r["volume"]):
                bad("format", r.get("period") if isinstance(r.get("period"), int) else None, kind, 0,
                    f"{kind}[{i}].volume: must be a number, got {r['volume']!r}")
            else:
                kept.append(r)
        lists[kind] = kept
    unloads, transfers, charges = lists["unloads"], lists["transfers"], lists["charges"]
    eps_u, eps_x = _vtol(umax) if umax != float("inf") else 1e-6, _vtol(tmax) if tmax != float("inf") else 1e-6

    def is_op(vol: float, limit: float) -> bool:
        return vol > 1e-6 * max(1.0, limit if limit != float("inf") else 1.0)

    # -- row sanity and routing -------------------------------------------------------------------------
    def row_ok(kind: str, r: dict, keys: tuple[str, ...]) -> bool:
        missing = [k for k in keys if k not in r]
        if missing:
            bad("format", r.get("period") if _whole(r.get("period")) else None, kind, 0,
                f"a {kind} row lacks {', '.join(missing)}: {r}")
            return False
        if not _whole(r["period"]):  # "3", 3.0 or true is a typo in the file, not a period off the horizon
            bad("format", None, kind, 0, f"period must be a whole number, got {r['period']!r}: {r}")
            return False
        if not 0 <= r["period"] < P:
            bad("format", None, kind, 0, f"period {r['period']!r} is outside 0..{P - 1}: {r}")
            return False
        for k in keys[1:-1]:  # the ids: a list or number where a name belongs cannot be looked up
            if not isinstance(r[k], str):
                bad("format", r["period"], kind, 0, f"{k} must be an id string, got {r[k]!r}: {r}")
                return False
        if r["volume"] < -1e-9:
            bad("negative", r["period"], kind, -r["volume"], f"negative volume in {r}")
            return False
        return True

    unloads = [r for r in unloads if row_ok("unload", r, ("period", "vessel", "tank", "volume"))]
    transfers = [r for r in transfers if row_ok("transfer", r, ("period", "from", "to", "volume"))]
    charges = [r for r in charges if row_ok("charge", r, ("period", "cdu", "tank", "volume"))]
    for r in unloads:
        v = vessels.get(r["vessel"])
        if v is None or r["tank"] not in sts:
            bad("routing", r["period"], r["vessel"], r["volume"], f"unknown vessel or storage tank in {r}")
        elif r["tank"] not in v["tanks"]:
            bad("tanks", r["period"], v["id"], r["volume"], f"unloads into {r['tank']}, not one of its tanks {v['tanks']}")
    for r in transfers:
        if r["from"] not in sts or r["to"] not in cts:
            bad("routing", r["period"], f"{r['from']}->{r['to']}", r["volume"], "a transfer must go storage -> charging tank")
        elif r["from"] not in cts[r["to"]].get("from", []):
            bad("routing", r["period"], f"{r['from']}->{r['to']}", r["volume"], f"{r['to']} may not receive from {r['from']}")
    for r in charges:
        if r["cdu"] not in cdus or r["tank"] not in cts:
            bad("routing", r["period"], r["cdu"], r["volume"], f"unknown CDU or charging tank in {r}")
        elif r["tank"] not in cdus[r["cdu"]]["from"]:
            bad("routing", r["period"], r["cdu"], r["volume"], f"{r['cdu']} may not be charged from {r['tank']}")
    unloads = [r for r in unloads if r["vessel"] in vessels and r["tank"] in sts]
    transfers = [r for r in transfers if r["from"] in sts and r["to"] in cts]
    charges = [r for r in charges if r["cdu"] in cdus and r["tank"] in cts]

    # -- rule 1 and 2: vessels --------------------------------------------------------------------------
    unl_periods: dict[str, list[int]] = {}
    for vid, v in vessels.items():
        per_t: dict[int, float] = {}
        for r in unloads:
            if r["vessel"] == vid:
                per_t[r["period"]] = per_t.get(r["period"], 0.0) + r["volume"]
        last = P - 1 if v.get("depart_by") is None else min(int(v["depart_by"]), P - 1)
        for t, vol in sorted(per_t.items()):
            if not is_op(vol, umax):
                continue
            if t < v["arrival"] or t > last:
                bad("window", t, vid, vol, f"unloads {vol:g} outside its window {v['arrival']}..{last}")
            if vol > umax + eps_u:
                bad("unload_max", t, vid, vol - umax, f"unloads {vol:g} > unload_max {umax:g}")
        ts = sorted(t for t, vol in per_t.items() if is_op(vol, umax))
        unl_periods[vid] = ts
        if ts and ts[-1] - ts[0] + 1 != len(ts):
            gaps = sorted(set(range(ts[0], ts[-1] + 1)) - set(ts))
            bad("consecutive", gaps[0], vid, len(gaps), f"unloading periods {ts} are not consecutive")
        total = sum(per_t.values())
        if abs(total - v["volume"]) > _vtol(v["volume"]):
            bad("complete", None, vid, v["volume"] - total, f"unloads {total:g} of its {v['volume']:g}")
    for t in range(P):
        here = [vid for vid, ts in unl_periods.items() if t in ts]
        if len(here) > 1:
            bad("berth", t, "+".join(here), len(here) - 1, f"{len(here)} vessels unload at once: {', '.join(here)}")

    # -- rule 5: CDUs and charging-tank feeds -----------------------------------------------------------
    feeding: dict[str, dict[int, str]] = {d: {} for d in cdus}
    for did, d in cdus.items():
        lo, hi = float(d["rate"][0]), float(d["rate"][1])
        for t in range(P):
            rows = [r for r in charges if r["cdu"] == did and r["period"] == t]
            feeders = sorted({r["tank"] for r in rows if is_op(r["volume"], hi)})
            total = sum(r["volume"] for r in rows)
            if len(feeders) != 1:
                bad("cdu_feed", t, did, abs(len(feeders) - 1),
                    f"is charged by {len(feeders)} tanks ({', '.join(feeders) or 'none'}); it must run on exactly one")
            else:
                feeding[did][t] = feeders[0]
            if total < lo - _vtol(lo) or total > hi + _vtol(hi):
                bad("cdu_rate", t, did, max(lo - total, total - hi), f"charge {total:g} outside its rate [{lo:g}, {hi:g}]")
    for cid, c in cts.items():
        for t in range(P):
            fed = sorted({did for did in cdus if feeding[did].get(t) == cid})
            if len(fed) > 1:
                bad("ct_one_cdu", t, cid, len(fed) - 1, f"feeds {len(fed)} CDUs at once ({', '.join(fed)})")
        sent = sum(r["volume"] for r in charges if r["tank"] == cid)
        dem = float(c.get("demand", 0))
        if abs(sent - dem) > _vtol(dem):
            bad("demand", None, cid, sent - dem, f"sends {sent:g} to CDUs; its demand is {dem:g}")
    per_pair: dict[tuple, float] = {}  # the limit is per storage->charging pair per period, however many rows
    for r in transfers:
        key = (r["period"], r["from"], r["to"])
        per_pair[key] = per_pair.get(key, 0.0) + r["volume"]
    for (t, src, dst), vol in sorted(per_pair.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), str(kv[0][2]))):
        if vol > tmax + eps_x:
            bad("transfer_max", t, f"{src}->{dst}", vol - tmax, f"transfers {vol:g} > transfer_max {tmax:g}")

    # -- exact simulation (rules 3, 4, 6) ---------------------------------------------------------------
    comp = {tid: {c: float(x) for c, x in t.get("initial", {}).items()} for tid, t in tanks.items()}
    for tid in tanks:
        rep.inventory[tid] = []
        rep.properties[tid] = []

    def prop(mix: dict[str, float], p: str) -> float | None:
        tot = sum(mix.values())
        if tot <= 1e-12:
            return None
        return sum(x * float(crudes[c][p]) for c, x in mix.items()) / tot

    for t in range(P):
        start = {k: dict(v) for k, v in comp.items()}
        inflow: dict[str, dict[str, float]] = {k: {} for k in tanks}
        outflow: dict[str, float] = {k: 0.0 for k in tanks}
        recv_ops: dict[str, list[str]] = {k: [] for k in tanks}
        send_ops: dict[str, list[str]] = {k: [] for k in tanks}
        for r in unloads:
            if r["period"] == t:
                crude = vessels[r["vessel"]]["crude"]
                inflow[r["tank"]][crude] = inflow[r["tank"]].get(crude, 0.0) + r["volume"]
                if is_op(r["volume"], umax):
                    recv_ops[r["tank"]].append(r["vessel"])
        for r in transfers:
            if r["period"] != t:
                continue
            src = start[r["from"]]
            tot = sum(src.values())
            for c, x in src.items():
                share = r["volume"] * x / tot if tot > 1e-12 else 0.0
                inflow[r["to"]][c] = inflow[r["to"]].get(c, 0.0) + share
            outflow[r["from"]] += r["volume"]
            if is_op(r["volume"], tmax):
                send_ops[r["from"]].append(r["to"])
                recv_ops[r["to"]].append(r["from"])
        for r in charges:
            if r["period"] != t:
                continue
            outflow[r["tank"]] += r["volume"]
            rate_hi = float(cdus[r["cdu"]]["rate"][1])
            if is_op(r["volume"], rate_hi):
                send_ops[r["tank"]].append(r["cdu"])
                for p, b in cts[r["tank"]].get("spec", {}).items():
                    val = prop(start[r["tank"]], p)
                    if val is None:
                        continue
                    over = max(float(b[0]) - val, val - float(b[1]))
                    rep.max_spec_violation = max(rep.max_spec_violation, over)
                    if over > PROP_TOL:
                        bad("spec", t, r["tank"], over, f"sends {p} = {val:.6g} to {r['cdu']}, outside its spec "
                            f"[{b[0]:g}, {b[1]:g}]")
        for tid, tank in tanks.items():
            if recv_ops[tid] and send_ops[tid]:
                bad("recv_send", t, tid, 1, f"receives (from {', '.join(recv_ops[tid])}) and sends "
                    f"(to {', '.join(send_ops[tid])}) in the same period")
            tot = sum(start[tid].values())
            out = outflow[tid]
            if out > tot + _vtol(tot):
                bad("capacity", t, tid, out - tot, f"sends {out:g} but holds only {tot:g} at the start of the period")
            keep = max(0.0, 1.0 - out / tot) if tot > 1e-12 else 0.0
            new = {c: x * keep for c, x in start[tid].items()}
            for c, x in inflow[tid].items():
                new[c] = new.get(c, 0.0) + x
            comp[tid] = new
            vol = sum(new.values())
            lo, hi = float(tank.get("min", 0)), float(tank["max"])
            if vol < lo - _vtol(lo):
                bad("capacity", t, tid, lo - vol, f"ends the period at {vol:g}, below its min {lo:g}")
            if vol > hi + _vtol(hi):
                bad("capacity", t, tid, vol - hi, f"ends the period at {vol:g}, above its max {hi:g}")
            rep.inventory[tid].append({c: x for c, x in new.items() if abs(x) > 1e-12})
            rep.properties[tid].append({p: prop(new, p) for p in props})

    # -- costs ----------------------------------------------------------------------------------------
    cu, cs = float(costs_in.get("unloading", 0)), float(costs_in.get("sea_waiting", 0))
    unloading = sea = 0.0
    for vid, ts in unl_periods.items():
        if ts:
            unloading += cu * (ts[-1] - ts[0] + 1)
            sea += cs * (ts[0] - int(vessels[vid]["arrival"]))
    inv_cost = 0.0
    for tid in tanks:
        w = float(costs_in.get("storage_inventory" if tid in sts else "charging_inventory", 0))
        inv_cost += w * sum(sum(m.values()) for m in rep.inventory[tid])
    changeover = 0.0
    for did in cdus:
        for t in range(1, P):
            a, b = feeding[did].get(t - 1), feeding[did].get(t)
            if a is not None and b is not None and a != b:
                changeover += float(costs_in.get("changeover", 0))
    rep.costs = {"unloading": unloading, "sea_waiting": sea, "inventory": inv_cost, "changeover": changeover}
    rep.objective = sum(rep.costs.values())

    if check_reported:
        # every figure the schedule reports is recomputed; an absent optional figure is not checked, but one that
        # is there must be a finite number (a string or null is a format finding with its field, not a crash)
        obj = schedule.get("objective")
        if obj is not None and not _number(obj):
            bad("format", None, "objective", 0, f"objective: must be a number, got {obj!r}")
        elif obj is not None and abs(float(obj) - rep.objective) > _vtol(rep.objective):
            bad("cost", None, "objective", float(obj) - rep.objective,
                f"reports objective {obj:g}; the rules' costs add up to {rep.objective:.6g}")
        breakdown = schedule.get("cost_breakdown") or {}
        if not isinstance(breakdown, dict):
            bad("format", None, "cost_breakdown", 0, f"cost_breakdown: must map cost term -> value, got {breakdown!r}")
            breakdown = {}
        for term, val in breakdown.items():
            if term not in rep.costs:
                continue
            if not _number(val):
                bad("format", None, term, 0, f"cost_breakdown.{term}: must be a number, got {val!r}")
            elif abs(float(val) - rep.costs[term]) > _vtol(rep.costs[term]):
                bad("cost", None, term, float(val) - rep.costs[term],
                    f"reports {term} cost {val:g}; recomputed {rep.costs[term]:.6g}")
        reported_inv = schedule.get("inventory")
        if reported_inv is not None and not isinstance(reported_inv, dict):
            bad("format", None, "inventory", 0, f"inventory must map tank -> per-period rows, got {type(reported_inv).__name__}")
            reported_inv = None
        if reported_inv is not None:  # a schedule that reports inventory (even {}) reports every tank and period
            for tid in rep.inventory:
                rows = reported_inv.get(tid)
                if rows is None:
                    bad("inventory", None, tid, P, f"has no reported inventory (the schedule needs {P} rows for each tank)")
                elif not isinstance(rows, list) or len(rows) != P:
                    n = len(rows) if isinstance(rows, list) else type(rows).__name__
                    bad("inventory", None, tid, abs(P - len(rows)) if isinstance(rows, list) else 0,
                        f"reports {n} inventory rows; the horizon has {P} periods")
            for tid in reported_inv:
                if tid not in rep.inventory:
                    bad("format", None, tid, 0, "inventory reported for a tank the instance does not have")
        worst = schedule.get("max_spec_violation")
        if worst is not None:
            if not _number(worst):
                bad("format", None, "max_spec_violation", 0, f"must be a number, got {worst!r}")
            elif abs(float(worst) - rep.max_spec_violation) > PROP_TOL:
                bad("reported", None, "max_spec_violation", float(worst) - rep.max_spec_violation,
                    f"reports {worst:g}; exact mixing gives {rep.max_spec_violation:.6g}")
        for tid, rows in (reported_inv or {}).items():
            if tid not in rep.inventory or not isinstance(rows, list):
                continue
            for t, row in enumerate(rows[:P]):
                if not isinstance(row, dict):
                    bad("format", t, tid, 0, f"inventory row must map crude -> volume, got {row!r}")
                    continue
                odd = [c for c, x in row.items() if not _number(x)]
                if odd:
                    bad("format", t, tid, 0, f"inventory.{tid}[{t}].{odd[0]}: must be a number, got {row[odd[0]]!r}")
                    continue
                sim = rep.inventory[tid][t]
                for c in set(row) | set(sim):
                    d = abs(float(row.get(c, 0.0)) - sim.get(c, 0.0))
                    rep.max_composition_drift = max(rep.max_composition_drift, d)
                    if d > _vtol(float(tanks[tid]["max"])):
                        bad("inventory", t, tid, d, f"reports {c} = {row.get(c, 0.0):g}; exact mixing gives {sim.get(c, 0.0):.6g}")
                        break
    return rep
