"""The classic linear MILP of the feed-scheduling rules, solved by HiGHS (scipy.optimize.milp).

Per-crude volumes in every tank and per-crude flows, with each spec imposed on the crude flows a charging tank
sends (Lee et al. 1996 style). Nothing ties a flow's crude split to the tank's composition (proportional
withdrawal is bilinear), so its schedules may "drift": it is a RELAXATION of the exact problem. Continuous
volumes, so its proven bound is a lower bound for the exact problem at any resolution.

The solver uses it as a first phase: its bound is the reported lower bound, and when its schedule simulates
exactly to zero spec violation and matching contents (no drift) the schedule is exact as it stands; otherwise
its flows hint the exact CP-SAT model. Needs scipy (HiGHS); without it the phase is skipped.

For the lower bound on long horizons (`lp_only`) the same model is solved as an LP with two extended
formulations that cut off no schedule but that its plain relaxation misses: each vessel's unloading as one window
[first, last] (so trickling a cargo in just in time costs a long or a late window) and each charging tank's runs
on a CDU (so a run's changeover and the volume it must hold before and during it are paid). On the generated
30-period instance they raise the bound from 1626.6 to 2198.8 (4 s); the windows also go into the MILP itself
(HiGHS then proves lee1996-example1 in ~1 s instead of ~4 s).
"""
from __future__ import annotations

import time

import numpy as np

from . import bounds


class _Lp:
    def __init__(self):
        self.n = 0
        self.lb, self.ub, self.integ, self.cost = [], [], [], []
        self.rows, self.rlo, self.rhi = [], [], []

    def var(self, lb=0.0, ub=np.inf, integer=False, cost=0.0) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.integ.append(1 if integer else 0)
        self.cost.append(cost)
        self.n += 1
        return self.n - 1

    def row(self, coefs: dict[int, float], lo=-np.inf, hi=np.inf) -> None:
        self.rows.append(coefs)
        self.rlo.append(lo)
        self.rhi.append(hi)

    def matrix(self):
        from scipy.sparse import coo_matrix

        ri = [r for r, coefs in enumerate(self.rows) for _ in coefs]
        ci = [j for coefs in self.rows for j in coefs]
        vals = [a for coefs in self.rows for a in coefs.values()]
        return coo_matrix((vals, (ri, ci)), shape=(len(self.rows), self.n)).tocsr()  # duplicates summed

    def solve(self, time_limit: float):
        from scipy.optimize import Bounds, LinearConstraint, milp

        t0 = time.perf_counter()
        res = milp(np.array(self.cost), constraints=LinearConstraint(self.matrix(), self.rlo, self.rhi),
                   integrality=np.array(self.integ), bounds=Bounds(self.lb, self.ub),
                   options={"time_limit": time_limit, "disp": False, "mip_rel_gap": 1e-6})
        return res, time.perf_counter() - t0

    def solve_relaxation(self, time_limit: float):
        """The linear relaxation by HiGHS' interior-point method (with crossover): on the 30-period bound LP
        4 s where HiGHS' default LP solver takes 22 s."""
        from scipy.optimize import linprog
        from scipy.sparse import vstack

        t0 = time.perf_counter()
        A, lo, hi = self.matrix(), np.array(self.rlo), np.array(self.rhi)
        eq = lo == hi
        ub, lb = ~eq & np.isfinite(hi), ~eq & np.isfinite(lo)
        res = linprog(np.array(self.cost), A_ub=vstack([A[ub], -A[lb]]), b_ub=np.concatenate([hi[ub], -lo[lb]]),
                      A_eq=A[eq], b_eq=lo[eq], bounds=list(zip(self.lb, self.ub)), method="highs-ipm",
                      options={"time_limit": time_limit, "disp": False})
        return res, time.perf_counter() - t0


def _unloading_windows(lp: _Lp, v, W: list[int], unload_max: float, unl: dict, start: dict) -> None:
    """The vessel's unloading block as a choice of one window [a, b] (continuous weights summing to 1; the integer
    unl/start already force a single block, so this cuts off no schedule): unl_t is the weight of the windows
    covering t, start_a that of the windows opening at a, and windows too short to unload the cargo are left out.
    Why: in the plain LP a vessel "starts" at arrival and then trickles its cargo in just in time at fractional
    unl, so the bound sees neither sea waiting nor the inventory an early unloading costs; over windows, trickling
    means paying for a long window or a late one."""
    need = max(1, int(np.ceil(v.volume / unload_max - 1e-9)))
    win = {(a, b): lp.var(0, 1) for i, a in enumerate(W) for b in W[i + need - 1:]}
    if not win:
        return
    lp.row({j: 1 for j in win.values()}, lo=1, hi=1)
    for t in W:
        lp.row({unl[v.id, t]: 1, **{j: -1 for (a, b), j in win.items() if a <= t <= b}}, lo=0, hi=0)
        lp.row({start[v.id, t]: 1, **{j: -1 for (a, b), j in win.items() if a == t}}, lo=0, hi=0)


def _charging_runs(lp: _Lp, inst, z: dict, y: dict, chg: dict, Vc: dict) -> None:
    """Runs for the bound LP. A run is a maximal stretch of periods in which tank s charges CDU d; every schedule
    decomposes uniquely into runs, so these rows cut off none. Per (s, d) and start period a: start[a] (a run
    starts at a), act[a, t] (that run is still going at t; non-increasing in t, so a fractional one is a mixture
    of end periods), q[a, t] its charge at t (rate_min..rate_max while active, in total at most what the tank can
    hold) and R[a, t] what it has still to charge after t. They give the LP what a fractional z hides: a run
    starting after period 0 is a changeover on d, and the tank holds min + R from the period before a run starts
    to its second-last period (it receives nothing while sending). Only CDUs that must charge a real flow every
    period (rate_min > 0), as in `bounds`. Indexing runs by (start, period) rather than (start, end) keeps the LP
    small: 4 s on 30 periods where volumes per (start, end, period) took 26 s for a bound 0.7% higher."""
    tol = bounds.volume_tolerance
    P = inst.periods
    held: dict[tuple[str, int], list[int]] = {}  # (tank, t) -> R variables of the runs that may be going then
    for d in inst.cdus:
        lo_r, hi_r = d.rate_min, d.rate_max
        if lo_r <= tol(hi_r):
            continue
        starting: dict[int, list[int]] = {}  # period -> start variables of the runs on d beginning then
        for s in d.sources:
            tank = inst.tank(s)
            start, act, q = {}, {}, {}
            for a in range(P):
                top = (tank.initial_volume if a == 0 else tank.max) - tank.min
                cap = top + tol(top) + tol(tank.min)
                longest = min(P - a, int((cap + tol(cap)) // lo_r))  # a run charges >= rate_min per period
                if longest < 1:
                    continue
                start[a] = lp.var(0, 1)
                periods = range(a, a + longest)
                for t in periods:
                    act[a, t], q[a, t] = lp.var(0, 1), lp.var(0)
                    lp.row({q[a, t]: 1, act[a, t]: -lo_r}, lo=-tol(lo_r))
                    lp.row({q[a, t]: 1, act[a, t]: -hi_r}, hi=tol(hi_r))
                    lp.row({act[a, t]: 1, (start[a] if t == a else act[a, t - 1]): -1}, **(
                        {"lo": 0, "hi": 0} if t == a else {"hi": 0}))
                lp.row({**{q[a, t]: 1 for t in periods}, start[a]: -cap}, hi=tol(cap))
                after = None
                for t in range(a + longest - 2, max(a - 1, 0) - 1, -1):  # R[a, t] = sum of q[a, tau > t]
                    R = lp.var(0)
                    lp.row({R: 1, q[a, t + 1]: -1, **({after: -1} if after is not None else {})}, lo=0, hi=0)
                    held.setdefault((s, t), []).append(R)
                    after = R
                if a >= 1:
                    starting.setdefault(a, []).append(start[a])
            for t in range(P):
                going = {act[a, t]: -1 for a in start if (a, t) in act}
                lp.row({z[s, d.id, t]: 1, **going}, lo=0, hi=0)
                lp.row({y[s, d.id, t]: 1, **{q[a, t]: -1 for a in start if (a, t) in q}}, lo=0, hi=0)
                if t + 1 in start:  # a run ending at t and another starting at t + 1 would be one run
                    lp.row({z[s, d.id, t]: 1, start[t + 1]: 1,
                            **{act[a, t + 1]: -1 for a in start if a <= t and (a, t + 1) in act}}, hi=1)
        for a, js in starting.items():  # one tank follows another on d: a changeover
            lp.row({chg[d.id, a]: 1, **{j: -1 for j in js}}, lo=0)
    for (s, t), Rs in held.items():
        floor = inst.tank(s).min - tol(inst.tank(s).min)
        lp.row({**{Vc[s, k, t]: 1 for k in inst.crudes}, **{j: -1 for j in Rs}}, lo=floor)


def classic_milp(inst, time_limit: float = 30.0, lp_only: bool = False, runs: bool = True) -> dict:
    """Build and solve the drift-prone MILP; returns a spec-format schedule (+ its claimed inventory).
    `lp_only`: solve its linear relaxation instead and return only that optimum, a lower bound for the exact
    problem found in seconds where the MILP itself finds nothing (30 periods); `runs=False` leaves the charging
    runs out of it (6-7x faster, a weaker bound)."""
    lp = _Lp()
    P, c = inst.periods, inst.costs
    crudes = list(inst.crudes)
    T = range(P)
    recv = {(i.id, t): lp.var(0, 1, True) for i in inst.tanks for t in T}
    send = {(i.id, t): lp.var(0, 1, True) for i in inst.tanks for t in T}
    for i in inst.tanks:
        for t in T:
            lp.row({recv[i.id, t]: 1, send[i.id, t]: 1}, hi=1)
    u, unl, start = {}, {}, {}
    for v in inst.vessels:
        last = P - 1 if v.depart_by is None else min(v.depart_by, P - 1)
        W = list(range(v.arrival, last + 1))
        for t in W:
            unl[v.id, t] = lp.var(0, 1, True, cost=c["unloading"])
            start[v.id, t] = lp.var(0, 1, True, cost=c["sea_waiting"] * (t - v.arrival))
            tot = {}
            for s in v.tanks:
                u[v.id, s, t] = lp.var(0, min(inst.unload_max, v.volume))
                lp.row({u[v.id, s, t]: 1, recv[s, t]: -inst.unload_max}, hi=0)
                tot[u[v.id, s, t]] = 1
            lp.row({**tot, unl[v.id, t]: -inst.unload_max}, hi=0)
            lp.row({**tot, unl[v.id, t]: -1e-3}, lo=0)  # unl only when unloading
        lp.row({start[v.id, t]: 1 for t in W}, lo=1, hi=1)
        for j, t in enumerate(W):
            lp.row({unl[v.id, t]: 1, **{start[v.id, t2]: -1 for t2 in W[: j + 1]}}, hi=0)
            if j > 0:
                lp.row({start[v.id, t]: 1, unl[v.id, t]: -1, unl[v.id, W[j - 1]]: 1}, lo=0)
            else:
                lp.row({start[v.id, t]: 1, unl[v.id, t]: -1}, lo=0)
        lp.row({u[k]: 1 for k in u if k[0] == v.id}, lo=v.volume, hi=v.volume)
        if bounds.VALID_CUTS:
            _unloading_windows(lp, v, W, inst.unload_max, unl, start)
    for t in T:
        here = {unl[v.id, t]: 1 for v in inst.vessels if (v.id, t) in unl}
        if len(here) > 1:
            lp.row(here, hi=1)
    x, xc = {}, {}
    for ct in inst.charging_tanks:
        for s in ct.sources:
            for t in T:
                x[s, ct.id, t] = lp.var(0, inst.transfer_max)
                lp.row({x[s, ct.id, t]: 1, send[s, t]: -inst.transfer_max}, hi=0)
                lp.row({x[s, ct.id, t]: 1, recv[ct.id, t]: -inst.transfer_max}, hi=0)
                for k in crudes:
                    xc[s, ct.id, k, t] = lp.var(0)
                lp.row({x[s, ct.id, t]: -1, **{xc[s, ct.id, k, t]: 1 for k in crudes}}, lo=0, hi=0)
    y, yc, z, chg = {}, {}, {}, {}
    for d in inst.cdus:
        for t in T:
            for ct in d.sources:
                y[ct, d.id, t] = lp.var(0, d.rate_max)
                z[ct, d.id, t] = lp.var(0, 1, True)
                lp.row({y[ct, d.id, t]: 1, z[ct, d.id, t]: -d.rate_max}, hi=0)
                lp.row({y[ct, d.id, t]: 1, z[ct, d.id, t]: -max(d.rate_min, 1e-3)}, lo=0)
                lp.row({z[ct, d.id, t]: 1, send[ct, t]: -1}, hi=0)
                for k in crudes:
                    yc[ct, d.id, k, t] = lp.var(0)
                lp.row({y[ct, d.id, t]: -1, **{yc[ct, d.id, k, t]: 1 for k in crudes}}, lo=0, hi=0)
                spec = inst.tank(ct).spec
                for p, (lo, hi) in spec.items():  # the classic linear spec: on the crude flows sent
                    lp.row({yc[ct, d.id, k, t]: inst.crudes[k][p] - lo for k in crudes}, lo=0)
                    lp.row({yc[ct, d.id, k, t]: inst.crudes[k][p] - hi for k in crudes}, hi=0)
            lp.row({z[ct, d.id, t]: 1 for ct in d.sources}, lo=1, hi=1)
            if t > 0:
                ch = chg[d.id, t] = lp.var(0, 1, True, cost=c["changeover"])
                for ct in d.sources:
                    lp.row({ch: 1, z[ct, d.id, t]: -1, z[ct, d.id, t - 1]: 1}, lo=0)
    cb = bounds.changeover_bound(inst) if bounds.VALID_CUTS else None  # valid inequalities: the LP leaves changeovers at ~0
    for d, n in (cb.per_cdu.items() if cb else ()):
        if n > 0:
            lp.row({chg[k]: 1 for k in chg if k[0] == d}, lo=n)
    if cb and cb.total > 0 and chg:
        lp.row({j: 1 for j in chg.values()}, lo=cb.total)
    for ct in inst.charging_tanks:
        for t in T:
            zs = {z[ct.id, d.id, t]: 1 for d in inst.cdus if ct.id in d.sources}
            if len(zs) > 1:
                lp.row(zs, hi=1)
        lp.row({y[k]: 1 for k in y if k[0] == ct.id}, lo=ct.demand, hi=ct.demand)
    Vc = {}
    for i in inst.tanks:
        w = c["storage_inventory"] if i.kind == "storage" else c["charging_inventory"]
        for t in T:
            for k in crudes:
                Vc[i.id, k, t] = lp.var(0, cost=w)
            lp.row({Vc[i.id, k, t]: 1 for k in crudes}, lo=i.min, hi=i.max)
            for k in crudes:
                row = {Vc[i.id, k, t]: 1}
                if t > 0:
                    row[Vc[i.id, k, t - 1]] = -1
                const = i.initial.get(k, 0.0) if t == 0 else 0.0
                if i.kind == "storage":
                    for v in inst.vessels:
                        if v.crude == k and (v.id, i.id, t) in u:
                            row[u[v.id, i.id, t]] = row.get(u[v.id, i.id, t], 0) - 1
                    for ct in inst.charging_tanks:
                        if i.id in ct.sources:
                            row[xc[i.id, ct.id, k, t]] = 1
                else:
                    for s in i.sources:
                        row[xc[s, i.id, k, t]] = -1
                    for d in inst.cdus:
                        if i.id in d.sources:
                            row[yc[i.id, d.id, k, t]] = 1
                lp.row(row, lo=const, hi=const)
    for i in (inst.tanks if bounds.VALID_CUTS else ()):  # valid cut: a tank sends only what it held the period before
        for t in T:
            if i.kind == "charging":
                sent = [y[i.id, d.id, t] for d in inst.cdus if i.id in d.sources]
            else:
                sent = [x[i.id, ct.id, t] for ct in inst.charging_tanks if i.id in ct.sources]
            if not sent:
                continue
            held = {} if t == 0 else {Vc[i.id, k, t - 1]: 1 for k in crudes}
            lp.row({**held, **{j: -1 for j in sent}}, lo=i.min - (i.initial_volume if t == 0 else 0.0))
    if lp_only and runs and bounds.VALID_CUTS:
        _charging_runs(lp, inst, z, y, chg, Vc)
    if lp_only:
        res, wall = lp.solve_relaxation(time_limit)
        solved = res.status == 0 and res.fun is not None
        return {"status": "OPTIMAL" if solved else ("INFEASIBLE" if res.status == 2 else "UNKNOWN"),
                "wall_seconds": wall, "bound": float(res.fun) if solved else None}
    res, wall = lp.solve(time_limit)
    if res.x is None:
        bound = getattr(res, "mip_dual_bound", None)
        status = "INFEASIBLE" if res.status == 2 else "UNKNOWN"
        return {"status": status, "wall_seconds": wall,
                "bound": None if bound is None or not np.isfinite(bound) else float(bound)}
    X = res.x
    r = lambda j: float(round(X[j], 7))  # noqa: E731
    ops = {"unloads": [{"period": k[2], "vessel": k[0], "tank": k[1], "volume": r(j)} for k, j in u.items() if X[j] > 1e-6],
           "transfers": [{"period": k[2], "from": k[0], "to": k[1], "volume": r(j)} for k, j in x.items() if X[j] > 1e-6],
           "charges": [{"period": k[2], "cdu": k[1], "tank": k[0], "volume": r(j)} for k, j in y.items() if X[j] > 1e-6]}
    inventory = {i.id: [{k: r(Vc[i.id, k, t]) for k in crudes if X[Vc[i.id, k, t]] > 1e-9} for t in T] for i in inst.tanks}
    status = "OPTIMAL" if res.status == 0 else "FEASIBLE"
    bound = getattr(res, "mip_dual_bound", None)
    return {"format": "feed-schedule/1", "instance": inst.name, "status": status, "objective": float(res.fun),
            "bound": None if bound is None else float(bound), "wall_seconds": wall, **ops, "inventory": inventory}


