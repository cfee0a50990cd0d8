"""The CP-SAT scheduling model: time-indexed, integer volumes, exact mixing.

Resolution. Volumes are integers in units of `resolution` (auto: the coarsest of 1, 0.5, 0.1, ... that divides
every volume in the instance and gives the largest tank at least 1000 steps). Properties are integers in units
of 1/`prop_scale` (auto: a power of ten making every crude property and spec bound whole, with the largest
property at least 2000 units; small domains keep the products below easy for CP-SAT).

Exact mixing (why the schedule the model promises is the one the checker measures). Because a tank never
receives and sends in the same period, its composition only changes in a receiving period and what leaves it
has the composition it had at the end of the period before. For every tank whose composition can vary and
every property k the model carries an integer interval [lo, hi] (scaled) that provably contains the tank's
exact property:
  - a period without receipt keeps the interval: lo_t = lo_{t-1}, hi_t = hi_{t-1};
  - a receiving period:  lo_t * V_t <= lo_{t-1} * V_{t-1} + sum_in flow * lo_source,
                         hi_t * V_t >= hi_{t-1} * V_{t-1} + sum_in flow * hi_source
    (products are CP-SAT integer multiplications, exact);
  - a charging tank that feeds a CDU in period t needs [lo_{t-1}, hi_{t-1}] inside its spec.
By induction the exact property lies in [lo, hi], so every spec the model keeps holds under exact
simulation; rounding is only conservative (a schedule may be refused for being within one property unit of a
bound, never accepted wrongly). Tanks that can only ever hold one crude (or crudes with equal properties)
need no tracking. There is no per-crude flow variable, hence no "composition drift".

Pipeline (`solve`). (1) The classic linear MILP of the same rules (`milp.py`, HiGHS; per-crude flows, drift
allowed, continuous volumes) gives a proven lower bound; its schedule is simulated exactly and, when no spec
breaks (drift in claimed contents alone is harmless: costs do not depend on composition), it is accepted as
is; if its objective equals its bound it is proven optimal. (2) Otherwise the exact CP-SAT model runs, hinted
by the MILP's schedule or by a linear CP-SAT relaxation's (property-volume balance, drift allowed). (3) Long
horizons (> 1.5 x `window` periods) skip the MILP (HiGHS finds nothing in a minute on 30 periods) and use a
rolling horizon: exact model on periods < 15, committing < 10, then the rest with those fixed, then a
time-window search (flows outside a window fixed, CP-SAT re-optimises the window), then the free full exact
model hinted with the result. The reported bound is the best valid one (MILP, relaxation, the
MILP's linear relaxation when the MILP gives none, or the free exact model's). Time-indexed LP bounds leave
changeovers at ~0, so every full-horizon model (CP-SAT and HiGHS) carries the combinatorial changeover bound of
`bounds.py` as valid inequalities, and every non-diagnosis model the stock cut (a tank sends only what it held
at the end of the period before); large-instance gaps stay conservative.

Diagnosis. With `diagnose=True` every rule group (a vessel's window, a tank's capacity, a spec, a demand,
the berth...) is enforced through an assumption literal; an infeasible model yields a sufficient core, which
is shrunk by deletion to an irreducible set of rules that cannot hold together.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from vai.core.errors import VaiError

from . import bounds
from .instance import FORMAT, Instance, precheck, reachable_materials

_STEPS = 100
_RES_CANDIDATES = (10.0, 5.0, 1.0, 0.5, 0.1, 0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001)


# Share of the time left that each rolling window gets; the rest goes to the free full model. Measured on the
# generated 30-period instance (60 s, 21 runs incl. 4 interleaved pairs): 0.7 mean 3038 (10 runs), 0.35 mean 3012
# (11), 0.5 and 0.2 similar; run-to-run spread (~7%) swamps the differences, so the windows keep the larger share
# that leaves them more time to find a first schedule on a slow machine.
ROLLING_SHARE = 0.7
# Time-window large-neighbourhood search after the rolling horizon (`_window_search`): the share of the time limit
# it keeps for itself, its window (periods left free, all others fixed), the step between windows, and each
# sub-solve's limit. Measured on the generated 30-period instance at 60 s, CP-SAT seeds 0-8: share 0.35 mean
# 2753.5 (2710-2822), 0.5 mean 2857 (2657-3741: with half the limit the second window of seed 3 found no schedule
# in its time and its retry left the search nothing), without the search mean 3038 (21 runs, 2745-3309). Since
# windows search on until a first schedule instead of restarting: mean 2846.4 (2789-2891), and schedules on a
# harder instance that got none before (benchmarks/results/scheduling.md, 2d).
LNS_SHARE, LNS_WINDOW, LNS_STEP, LNS_SUBSOLVE_S = 0.35, 8, 4, 3.0

def volumes_of(inst: Instance) -> list[float]:
    vals = [inst.unload_max, inst.transfer_max]
    for v in inst.vessels:
        vals.append(v.volume)
    for t in inst.tanks:
        vals += [t.min, t.max, *t.initial.values(), t.demand]
    for d in inst.cdus:
        vals += [d.rate_min, d.rate_max]
    return vals


def _on_grid(x: float, q: float) -> bool:
    r = x / q
    return abs(r - round(r)) <= 1e-6 * max(1.0, abs(r))


def auto_resolution(inst: Instance) -> float:
    cap = max(t.max for t in inst.tanks)
    # A vessel's initial-stock data (e.g. 37.25) decide how fine the grid must be; tank size decides how
    # fine it is worth being (finer grids mean larger integer domains and slower search).
    for q in _RES_CANDIDATES:
        if cap / q >= _STEPS and all(_on_grid(x, q) for x in volumes_of(inst)):
            return q
    for q in _RES_CANDIDATES:
        if all(_on_grid(x, q) for x in volumes_of(inst)):
            return q
    return _RES_CANDIDATES[-1]


@dataclass
class SolveResult:
    schedule: dict[str, Any]
    status: str
    log: list[str] = field(default_factory=list)


class FeedModel:
    """Builds the CP-SAT model. mode: "exact" (interval property tracking) or "relaxed" (linear, drift
    allowed: used for the lower bound and as the CP-SAT twin of the classic MILP)."""

    def __init__(self, inst: Instance, resolution: float | None = None, mode: str = "exact", diagnose: bool = False,
                 prop_scale: float | None = None, exact_until: int | None = None, horizon: int | None = None):
        from ortools.sat.python import cp_model

        # horizon < periods: only periods before it exist (rolling horizon); vessels and demands may then be
        # finished later, within what the remaining periods can still do
        self.P = inst.periods if horizon is None else max(1, min(int(horizon), inst.periods))
        self.open_end = self.P < inst.periods

        # exact_until < periods: exact mixing only for periods before it, the relaxation for all (used by the
        # rolling horizon; the last window is always the full exact model)
        self.exact_until = self.P if exact_until is None else min(int(exact_until), self.P)

        self.cp = cp_model
        self.inst = inst
        self.mode = mode
        self.diagnose = diagnose
        self.q = resolution or auto_resolution(inst)
        for x in volumes_of(inst):
            if not _on_grid(x, self.q):
                raise VaiError(f"volume {x:g} in the instance is not a multiple of the resolution {self.q:g}: "
                               "pass a finer --resolution")
        maxp = max([c[p] for c in inst.crudes.values() for p in inst.properties] + [1e-9])
        self.S = prop_scale or self._auto_scale(maxp)
        self.m = cp_model.CpModel()
        self.rules: dict[str, Any] = {}  # description -> assumption literal (diagnose mode)
        self.ub: dict[int, int] = {}  # variable index -> upper bound
        self._build()

    # -- helpers -------------------------------------------------------------------------------------
    def _auto_scale(self, maxp: float) -> float:
        """A power of ten that makes every crude property and spec bound a whole number (so pure crudes and
        blends that sit exactly on a spec bound are represented exactly, not rounded away) and gives the
        largest property at least 2000 units."""
        vals = [c[p] for c in self.inst.crudes.values() for p in self.inst.properties]
        vals += [b for t in self.inst.charging_tanks for lo_hi in t.spec.values() for b in lo_hi]
        d = 0
        while d < 6 and any(abs(x * 10 ** d - round(x * 10 ** d)) > 1e-9 for x in vals):
            d += 1
        return float(10 ** max(d, math.ceil(math.log10(2000.0 / maxp))))

    def vi(self, x: float) -> int:
        return int(round(x / self.q))

    def ivar(self, lo: int, hi: int, name: str):
        var = self.m.NewIntVar(int(lo), int(hi), name)
        self.ub[var.Index()] = int(hi)
        return var

    def ubound(self, var) -> int:
        return self.ub[var.Index()]

    def rule(self, name: str) -> list:
        if not self.diagnose:
            return []
        if name not in self.rules:
            self.rules[name] = self.m.NewBoolVar(f"rule[{name}]")
        return [self.rules[name]]

    def add(self, expr, rule: str | None = None, when: list | None = None):
        ct = self.m.Add(expr)
        lits = list(when or []) + (self.rule(rule) if rule else [])
        if lits:
            ct.OnlyEnforceIf(lits)
        return ct

    def pint(self, x: float, up: bool) -> int:
        v = x * self.S
        return int(math.ceil(v - 1e-7)) if up else int(math.floor(v + 1e-7))

    # -- model ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        inst, m, P = self.inst, self.m, self.P
        T = range(P)
        big = sum(self.vi(t.initial_volume) for t in inst.tanks) + sum(self.vi(v.volume) for v in inst.vessels) + 1
        D = self.diagnose
        self.u, self.ou, self.unl, self.start = {}, {}, {}, {}
        self.x, self.ox, self.y, self.z, self.V = {}, {}, {}, {}, {}
        self.recv, self.send = {}, {}
        for i in inst.tanks:
            for t in T:
                self.recv[i.id, t] = m.NewBoolVar(f"recv[{i.id},{t}]")
                self.send[i.id, t] = m.NewBoolVar(f"send[{i.id},{t}]")
                self.add(self.recv[i.id, t] + self.send[i.id, t] <= 1, "a tank never receives and sends in the same period")
                hi = big if D else self.vi(i.max)
                self.V[i.id, t] = self.ivar(0, hi, f"V[{i.id},{t}]")
                self.add(self.V[i.id, t] >= self.vi(i.min), f"{i.id} volume stays within [{i.min:g}, {i.max:g}]")
                self.add(self.V[i.id, t] <= self.vi(i.max), f"{i.id} volume stays within [{i.min:g}, {i.max:g}]")
        # vessels
        self.must_finish = {}
        for v in inst.vessels:
            last = P - 1 if v.depart_by is None else min(v.depart_by, P - 1)
            window = range(P) if D else range(v.arrival, last + 1)
            if not window:
                continue  # arrives after this (rolling) horizon
            self.must_finish[v.id] = not self.open_end or (v.depart_by is not None and v.depart_by < P)
            vol = self.vi(v.volume)
            ub = vol if D else min(vol, self.vi(inst.unload_max))
            for t in window:
                ops = []
                for s in v.tanks:
                    u = self.ivar(0, ub, f"u[{v.id},{s},{t}]")
                    o = m.NewBoolVar(f"ou[{v.id},{s},{t}]")
                    m.Add(u >= 1).OnlyEnforceIf(o)
                    m.Add(u == 0).OnlyEnforceIf(o.Not())
                    m.AddImplication(o, self.recv[s, t])
                    self.u[v.id, s, t], self.ou[v.id, s, t] = u, o
                    ops.append(o)
                    if not v.arrival <= t <= last:
                        w = f"{v.id} unloads only in periods {v.arrival}..{last} (arrival" + (
                            ", depart_by)" if v.depart_by is not None else ")")
                        self.add(u == 0, w)
                unl = m.NewBoolVar(f"unl[{v.id},{t}]")
                m.AddMaxEquality(unl, ops)
                self.unl[v.id, t] = unl
                self.add(sum(self.u[v.id, s, t] for s in v.tanks) <= self.vi(inst.unload_max),
                         f"at most unload_max={inst.unload_max:g} per vessel per period")
            prev = None
            starts = []
            for t in window:
                st = m.NewBoolVar(f"start[{v.id},{t}]")
                if prev is None:
                    m.Add(st >= self.unl[v.id, t])
                else:
                    m.Add(st >= self.unl[v.id, t] - prev)
                prev = self.unl[v.id, t]
                self.start[v.id, t] = st
                starts.append(st)
            self.add(sum(starts) <= 1, "a vessel's unloading periods are consecutive")
            # Valid tightenings (a vessel unloads, so it starts exactly once; no unloading before the start):
            # they make the LP bound on waiting and unloading costs much stronger.
            if not D and self.must_finish[v.id]:
                m.Add(sum(starts) == 1)
                for j, t in enumerate(window):
                    m.Add(self.unl[v.id, t] <= sum(starts[: j + 1]))
                    m.Add(sum(self.u[v.id, s, t] for s in v.tanks) <= ub * self.unl[v.id, t])
            unloaded = sum(self.u[v.id, s, t] for s in v.tanks for t in window)
            if self.must_finish[v.id]:
                self.add(unloaded == vol, f"{v.id} is unloaded completely ({v.volume:g}) within the horizon")
            else:  # rolling window: the rest must still fit in the periods after it
                m.Add(unloaded <= vol)
                m.Add(unloaded >= vol - self.vi(inst.unload_max) * (inst.periods - P))
        for t in T:
            here = [self.unl[v.id, t] for v in inst.vessels if (v.id, t) in self.unl]
            if len(here) > 1:
                self.add(sum(here) <= 1, "one berth: at most one vessel unloads in a period")
        # transfers storage -> charging
        tmax = self.vi(inst.transfer_max)
        for c in inst.charging_tanks:
            for s in c.sources:
                for t in T:
                    x = self.ivar(0, big if D else min(tmax, self.vi(c.max)), f"x[{s},{c.id},{t}]")
                    o = m.NewBoolVar(f"ox[{s},{c.id},{t}]")
                    m.Add(x >= 1).OnlyEnforceIf(o)
                    m.Add(x == 0).OnlyEnforceIf(o.Not())
                    m.AddImplication(o, self.send[s, t])
                    m.AddImplication(o, self.recv[c.id, t])
                    self.add(x <= tmax, f"at most transfer_max={inst.transfer_max:g} per storage->charging pair per period")
                    self.x[s, c.id, t], self.ox[s, c.id, t] = x, o
        # CDU charges
        for d in inst.cdus:
            rmax, rmin = self.vi(d.rate_max), max(1, self.vi(d.rate_min))
            for t in T:
                zs = []
                for c in d.sources:
                    y = self.ivar(0, big if D else rmax, f"y[{c},{d.id},{t}]")
                    z = m.NewBoolVar(f"z[{c},{d.id},{t}]")
                    m.Add(y >= 1).OnlyEnforceIf(z)
                    m.Add(y == 0).OnlyEnforceIf(z.Not())
                    self.add(y >= rmin, f"{d.id} charge within rate [{d.rate_min:g}, {d.rate_max:g}]", [z])
                    self.add(y <= rmax, f"{d.id} charge within rate [{d.rate_min:g}, {d.rate_max:g}]")
                    m.AddImplication(z, self.send[c, t])
                    self.y[c, d.id, t], self.z[c, d.id, t] = y, z
                    zs.append(z)
                m.Add(sum(zs) <= 1)
                self.add(sum(zs) >= 1, f"{d.id} runs in every period")
        for c in inst.charging_tanks:
            for t in T:
                zs = [self.z[c.id, d.id, t] for d in inst.cdus if c.id in d.sources]
                if len(zs) > 1:
                    self.add(sum(zs) <= 1, "a charging tank feeds at most one CDU in a period")
            outs = [self.y[c.id, d.id, t] for d in inst.cdus if c.id in d.sources for t in T]
            if not self.open_end:
                self.add(sum(outs) == self.vi(c.demand), f"{c.id} sends exactly its demand {c.demand:g}")
            else:  # rolling window: what is left must fit in the remaining periods at the CDUs' top rates
                rest = (inst.periods - P) * max(self.vi(d.rate_max) for d in inst.cdus if c.id in d.sources) \
                    if any(c.id in d.sources for d in inst.cdus) else 0
                m.Add(sum(outs) <= self.vi(c.demand))
                m.Add(sum(outs) >= self.vi(c.demand) - rest)
        # volume balances
        for i in inst.tanks:
            for t in T:
                prev = self.vi(i.initial_volume) if t == 0 else self.V[i.id, t - 1]
                m.Add(self.V[i.id, t] == prev + sum(self.inflows(i, t)) - sum(self.outflows(i, t)))
                if not D and bounds.VALID_CUTS and self.outflows(i, t):
                    # valid cut: a tank that sends receives nothing, so it holds what it sends beforehand; the
                    # LP relaxation otherwise refills while sending (fractional receive/send) and hides inventory
                    m.Add(prev - sum(self.outflows(i, t)) >= self.vi(i.min))
        self._build_properties()
        if not D:
            self._build_objective()
        else:
            m.AddAssumptions(list(self.rules.values()))

    def inflows(self, i, t) -> list:
        if i.kind == "storage":
            return [self.u[v.id, i.id, t] for v in self.inst.vessels if (v.id, i.id, t) in self.u]
        return [self.x[s, i.id, t] for s in i.sources]

    def outflows(self, i, t) -> list:
        if i.kind == "storage":
            return [self.x[i.id, c.id, t] for c in self.inst.charging_tanks if i.id in c.sources]
        return [self.y[i.id, d.id, t] for d in self.inst.cdus if i.id in d.sources]

    def _prop_range(self, tank) -> dict[str, tuple[float, float]]:
        mats = reachable_materials(self.inst, tank) or set(self.inst.crudes)
        return {p: (min(self.inst.crudes[c][p] for c in mats), max(self.inst.crudes[c][p] for c in mats))
                for p in self.inst.properties}

    def _build_properties(self) -> None:
        inst, P = self.inst, self.P
        self.tracked: dict[str, bool] = {}
        self.lo, self.hi = {}, {}
        ranges = {i.id: self._prop_range(i) for i in inst.tanks}
        # Only properties that some spec constrains matter, and only where the spec is not implied: a spec
        # window holding every crude that can reach the tank can never be broken (any mix stays inside).
        props = sorted({p for c in inst.charging_tanks for p in c.spec})
        varies = lambda i, k: ranges[i][k][1] - ranges[i][k][0] > 1e-12  # noqa: E731
        binding = {(c.id, k) for c in inst.charging_tanks for k, (slo, shi) in c.spec.items()
                   if not (slo - 1e-12 <= ranges[c.id][k][0] and ranges[c.id][k][1] <= shi + 1e-12)}
        self.binding = binding
        self.trk: dict[tuple[str, str], bool] = {}
        for k in props:
            for c in inst.charging_tanks:
                self.trk[c.id, k] = (c.id, k) in binding and varies(c.id, k)
            for st in inst.storage_tanks:
                self.trk[st.id, k] = varies(st.id, k) and any(
                    self.trk[c.id, k] and st.id in c.sources for c in inst.charging_tanks)
        for i in inst.tanks:
            self.tracked[i.id] = any(self.trk[i.id, k] for k in props)
        for k in props:
            for i in inst.tanks:
                lo_r, hi_r = ranges[i.id][k]
                if not self.trk[i.id, k]:
                    c = self.pint(lo_r, False), self.pint(hi_r, True)
                    for t in range(-1, P):
                        self.lo[i.id, k, t], self.hi[i.id, k, t] = c
                    continue
                a, b = self.pint(lo_r, False), self.pint(hi_r, True)
                p0 = inst.property_of(i.initial, k)
                if p0 is None:
                    self.lo[i.id, k, -1], self.hi[i.id, k, -1] = a, b
                else:
                    self.lo[i.id, k, -1], self.hi[i.id, k, -1] = max(a, self.pint(p0, False)), min(b, self.pint(p0, True))
                for t in range(P):
                    self.lo[i.id, k, t] = self.ivar(a, b, f"lo[{i.id},{k},{t}]")
                    self.hi[i.id, k, t] = self.ivar(a, b, f"hi[{i.id},{k},{t}]")
        if self.mode == "exact":
            self._exact_mixing(props)
            if self.exact_until < P:
                self._relaxed_mixing(props)
        else:
            self._relaxed_mixing(props)

    def _exact_mixing(self, props) -> None:
        inst, m = self.inst, self.m
        for k in props:
            # storage tanks first: charging tanks read their intervals
            for i in inst.tanks:
                if not self.trk[i.id, k]:
                    continue
                vmax = self.ubound(self.V[i.id, 0])
                prev_ml = self.lo[i.id, k, -1] * self.vi(i.initial_volume)
                prev_mh = self.hi[i.id, k, -1] * self.vi(i.initial_volume)
                for t in range(self.exact_until):
                    lo, hi, V = self.lo[i.id, k, t], self.hi[i.id, k, t], self.V[i.id, t]
                    pmax = self.ubound(lo)
                    ml = self.ivar(0, vmax * pmax, f"ml[{i.id},{k},{t}]")
                    mh = self.ivar(0, vmax * pmax, f"mh[{i.id},{k},{t}]")
                    m.AddMultiplicationEquality(ml, [lo, V])
                    m.AddMultiplicationEquality(mh, [hi, V])
                    r = self.recv[i.id, t]
                    in_lo, in_hi = [], []
                    if i.kind == "storage":
                        for v in inst.vessels:
                            if (v.id, i.id, t) in self.u:
                                pv = inst.crudes[v.crude][k]
                                in_lo.append(self.u[v.id, i.id, t] * self.pint(pv, False))
                                in_hi.append(self.u[v.id, i.id, t] * self.pint(pv, True))
                    else:
                        for s in i.sources:
                            x = self.x[s, i.id, t]
                            if self.trk[s, k]:
                                xub = self.ubound(x)
                                sl, sh = self.lo[s, k, t - 1], self.hi[s, k, t - 1]
                                if isinstance(sl, int):
                                    in_lo.append(x * sl)
                                    in_hi.append(x * sh)
                                    continue
                                smax = self.ubound(sh)
                                xl = self.ivar(0, xub * smax, f"xl[{s},{i.id},{k},{t}]")
                                xh = self.ivar(0, xub * smax, f"xh[{s},{i.id},{k},{t}]")
                                m.AddMultiplicationEquality(xl, [x, sl])
                                m.AddMultiplicationEquality(xh, [x, sh])
                                in_lo.append(xl)
                                in_hi.append(xh)
                            else:
                                in_lo.append(x * self.lo[s, k, t])
                                in_hi.append(x * self.hi[s, k, t])
                    m.Add(ml <= prev_ml + sum(in_lo)).OnlyEnforceIf(r)
                    m.Add(mh >= prev_mh + sum(in_hi)).OnlyEnforceIf(r)
                    m.Add(lo == self.lo[i.id, k, t - 1]).OnlyEnforceIf(r.Not())
                    m.Add(hi == self.hi[i.id, k, t - 1]).OnlyEnforceIf(r.Not())
                    prev_ml, prev_mh = ml, mh
        self._spec_constraints(props)

    def _spec_constraints(self, props) -> None:
        inst, P = self.inst, self.P
        for c in inst.charging_tanks:
            for k in props:
                if k not in c.spec or (c.id, k) not in self.binding:
                    continue  # no spec, or one that every reachable mix keeps
                slo, shi = c.spec[k]
                name = f"{c.id} spec {k} in [{slo:g}, {shi:g}]"
                a, b = self.pint(slo, True), self.pint(shi, False)
                for t in range(min(P, self.exact_until)):
                    lo, hi = self.lo[c.id, k, t - 1], self.hi[c.id, k, t - 1]
                    snd = self.send[c.id, t]
                    if isinstance(lo, int) and isinstance(hi, int):
                        if lo < a or hi > b:
                            self.add(snd == 0, name)
                        continue
                    self.add(lo >= a, name, [snd])
                    self.add(hi <= b, name, [snd])

    def _relaxed_mixing(self, props) -> None:
        """Property-volume balance Q = V * property * S per tank; each flow carries a property-volume only
        bounded by its source's reachable range (or spec): every exactly-mixed schedule satisfies it, up to one
        unit of rounding per flow, which the bounds allow."""
        inst, m, P = self.inst, self.m, self.P
        ranges = {i.id: self._prop_range(i) for i in inst.tanks}
        for k in props:
            Q = {}
            for i in inst.tanks:
                a, b = self.pint(ranges[i.id][k][0], False), self.pint(ranges[i.id][k][1], True)
                vmax = self.ubound(self.V[i.id, 0])
                p0 = inst.property_of(i.initial, k) or 0.0
                Q[i.id, -1] = int(round(p0 * self.S * self.vi(i.initial_volume)))
                for t in range(P):
                    Q[i.id, t] = self.ivar(0, vmax * b + P * 4, f"Q[{i.id},{k},{t}]")
                    m.Add(Q[i.id, t] >= a * self.V[i.id, t] - (t + 2) * 4)
                    m.Add(Q[i.id, t] <= b * self.V[i.id, t] + (t + 2) * 4)
            rflow = {}

            def carried(key, flow, src_lo, src_hi):
                r = self.ivar(-2, self.ubound(flow) * max(src_hi, 1) + 2, f"r[{key},{k}]")
                m.Add(r >= flow * src_lo - 1)
                m.Add(r <= flow * src_hi + 1)
                rflow[key] = r
                return r

            for t in range(P):
                for v in inst.vessels:
                    for s in v.tanks:
                        if (v.id, s, t) in self.u:
                            pv = inst.crudes[v.crude][k]
                            carried(("u", v.id, s, t), self.u[v.id, s, t], self.pint(pv, False), self.pint(pv, True))
                for c in inst.charging_tanks:
                    for s in c.sources:
                        a, b = self.pint(ranges[s][k][0], False), self.pint(ranges[s][k][1], True)
                        carried(("x", s, c.id, t), self.x[s, c.id, t], a, b)
                    for d in inst.cdus:
                        if c.id in d.sources:
                            a, b = self.pint(ranges[c.id][k][0], False), self.pint(ranges[c.id][k][1], True)
                            if k in c.spec:
                                a, b = max(a, self.pint(c.spec[k][0], True)), min(b, self.pint(c.spec[k][1], False))
                            carried(("y", c.id, d.id, t), self.y[c.id, d.id, t], min(a, b), b)
            for i in inst.tanks:
                for t in range(P):
                    if i.kind == "storage":
                        ins = [rflow["u", v.id, i.id, t] for v in inst.vessels if ("u", v.id, i.id, t) in rflow]
                        outs = [rflow["x", i.id, c.id, t] for c in inst.charging_tanks if i.id in c.sources]
                    else:
                        ins = [rflow["x", s, i.id, t] for s in i.sources]
                        outs = [rflow["y", i.id, d.id, t] for d in inst.cdus if i.id in d.sources]
                    m.Add(Q[i.id, t] == Q[i.id, t - 1] + sum(ins) - sum(outs))
            for c in inst.charging_tanks:
                if k not in c.spec:
                    continue
                a, b = self.pint(c.spec[k][0], False), self.pint(c.spec[k][1], True)
                for t in range(P):
                    Vp = self.vi(c.initial_volume) if t == 0 else self.V[c.id, t - 1]
                    if t == 0:  # constants: CP-SAT refuses a plain True/False constraint
                        if not a * Vp - 8 <= Q[c.id, -1] <= b * Vp + 8:
                            m.Add(self.send[c.id, 0] == 0)
                        continue
                    m.Add(Q[c.id, t - 1] >= a * Vp - (t + 2) * 4).OnlyEnforceIf(self.send[c.id, t])
                    m.Add(Q[c.id, t - 1] <= b * Vp + (t + 2) * 4).OnlyEnforceIf(self.send[c.id, t])

    def _build_objective(self) -> None:
        inst, P, c = self.inst, self.P, self.inst.costs
        terms = []  # (coefficient in cost units, var)
        const = 0.0
        for v in inst.vessels:
            for t in range(P):
                if (v.id, t) in self.unl:
                    terms.append((c["unloading"], self.unl[v.id, t]))
                    terms.append((c["sea_waiting"] * (t - v.arrival), self.start[v.id, t]))
            if v.id in self.must_finish and not self.must_finish[v.id]:
                # rolling window: a vessel not started yet has waited at least until the window's end
                waiting = self.m.NewBoolVar(f"waiting[{v.id}]")
                self.m.Add(waiting + sum(self.start[v.id, t] for t in range(P) if (v.id, t) in self.start) == 1)
                terms.append((c["sea_waiting"] * (P - v.arrival), waiting))
        for i in inst.tanks:
            w = c["storage_inventory"] if i.kind == "storage" else c["charging_inventory"]
            for t in range(P):
                terms.append((w * self.q, self.V[i.id, t]))
        self.ch = {}
        for d in inst.cdus:
            for t in range(1, P):
                ch = self.m.NewBoolVar(f"ch[{d.id},{t}]")
                for cc in d.sources:
                    self.m.Add(ch >= self.z[cc, d.id, t] - self.z[cc, d.id, t - 1])
                self.ch[d.id, t] = ch
                terms.append((c["changeover"], ch))
        self._add_changeover_cuts()
        # integer objective: the smallest power of ten that makes every coefficient whole
        self.F = 1e6
        for e in range(0, 7):
            f = 10.0 ** e
            if all(abs(w * f - round(w * f)) < 1e-6 for w, _ in terms):
                self.F = f
                break
        self.obj_const = const
        self.objective = sum(int(round(w * self.F)) * var for w, var in terms if w)
        self.m.Minimize(self.objective)

    def _add_changeover_cuts(self) -> None:
        """The fewest changeovers any valid schedule has (`bounds.changeover_bound`), as valid inequalities: they
        lift the LP bound, which on its own leaves changeovers at ~0. Left out of rolling windows (they cover
        only part of the horizon) and of diagnosis models (an unguarded cut would distort the conflict cores)."""
        if self.open_end or self.diagnose or not self.ch or not bounds.VALID_CUTS:
            return
        cb = bounds.changeover_bound(self.inst)
        for d, n in cb.per_cdu.items():
            if n > 0:
                self.m.Add(sum(self.ch[d, t] for t in range(1, self.P)) >= n)
        if cb.total > 0:
            self.m.Add(sum(self.ch.values()) >= cb.total)

    # -- decoding ------------------------------------------------------------------------------------
    def decode(self, solver) -> dict[str, list]:
        rnd = lambda n: round(n * self.q, 9)  # noqa: E731
        unloads = [{"period": t, "vessel": v, "tank": s, "volume": rnd(solver.Value(var))}
                   for (v, s, t), var in self.u.items() if solver.Value(var) > 0]
        transfers = [{"period": t, "from": s, "to": c, "volume": rnd(solver.Value(var))}
                     for (s, c, t), var in self.x.items() if solver.Value(var) > 0]
        charges = [{"period": t, "cdu": d, "tank": c, "volume": rnd(solver.Value(var))}
                   for (c, d, t), var in self.y.items() if solver.Value(var) > 0]
        key = lambda r: (r["period"], *[str(x) for x in r.values()])  # noqa: E731
        return {"unloads": sorted(unloads, key=key), "transfers": sorted(transfers, key=key),
                "charges": sorted(charges, key=key)}


# -- exact simulation of a decoded schedule (the solver's own; the checker has an independent one) --------
def simulate_inventory(inst: Instance, ops: dict[str, list]) -> tuple[dict[str, list], float]:
    """Per tank, per period: end-of-period crude volumes; and the largest spec violation found."""
    comp = {t.id: dict(t.initial) for t in inst.tanks}
    inv = {t.id: [] for t in inst.tanks}
    worst = 0.0
    by_t = lambda rows, t: [r for r in rows if r["period"] == t]  # noqa: E731
    for t in range(inst.periods):
        start = {k: dict(v) for k, v in comp.items()}
        delta: dict[str, dict[str, float]] = {k: {} for k in comp}

        def move(src_comp, vol, dst):
            tot = sum(src_comp.values())
            for c, x in src_comp.items():
                share = vol * x / tot if tot > 0 else 0.0
                if dst is not None:
                    delta[dst][c] = delta[dst].get(c, 0.0) + share

        for r in by_t(ops["unloads"], t):
            delta[r["tank"]][inst.vessel(r["vessel"]).crude] = delta[r["tank"]].get(inst.vessel(r["vessel"]).crude, 0.0) + r["volume"]
        outs: dict[str, float] = {}
        for r in by_t(ops["transfers"], t):
            move(start[r["from"]], r["volume"], r["to"])
            outs[r["from"]] = outs.get(r["from"], 0.0) + r["volume"]
        for r in by_t(ops["charges"], t):
            outs[r["tank"]] = outs.get(r["tank"], 0.0) + r["volume"]
            spec = inst.tank(r["tank"]).spec
            for p, (lo, hi) in spec.items():
                val = inst.property_of(start[r["tank"]], p)
                if val is not None:
                    worst = max(worst, lo - val, val - hi)
        for k in comp:
            tot = sum(start[k].values())
            keep = 1.0 - (outs.get(k, 0.0) / tot if tot > 0 else 0.0)
            new = {c: x * keep for c, x in start[k].items()}
            for c, x in delta[k].items():
                new[c] = new.get(c, 0.0) + x
            comp[k] = new
            inv[k].append({c: round(x, 9) for c, x in new.items() if abs(x) > 1e-12})
    return inv, max(0.0, worst)


def schedule_costs(inst: Instance, ops: dict[str, list], inventory: dict[str, list]) -> dict[str, float]:
    c = inst.costs
    unloading = sea = 0.0
    for v in inst.vessels:
        ts = sorted({r["period"] for r in ops["unloads"] if r["vessel"] == v.id})
        if ts:
            unloading += c["unloading"] * (ts[-1] - ts[0] + 1)
            sea += c["sea_waiting"] * (ts[0] - v.arrival)
    inventory_cost = 0.0
    for i in inst.tanks:
        w = c["storage_inventory"] if i.kind == "storage" else c["charging_inventory"]
        inventory_cost += w * sum(sum(s.values()) for s in inventory[i.id])
    changeover = 0.0
    for d in inst.cdus:
        feed = {}
        for r in ops["charges"]:
            if r["cdu"] == d.id:
                feed[r["period"]] = r["tank"]
        for t in range(1, inst.periods):
            if t in feed and t - 1 in feed and feed[t] != feed[t - 1]:
                changeover += c["changeover"]
    return {"unloading": round(unloading, 9), "sea_waiting": round(sea, 9), "inventory": round(inventory_cost, 9),
            "changeover": round(changeover, 9)}


def _empty_schedule(inst: Instance, status: str, wall: float) -> dict[str, Any]:
    return {"format": FORMAT, "instance": inst.name, "status": status, "objective": None, "bound": None, "gap": None,
            "wall_seconds": round(wall, 3), "cost_breakdown": {}, "unloads": [], "transfers": [], "charges": [],
            "inventory": {}, "max_spec_violation": None}


def _params(solver, time_limit: float, workers: int, seed: int, prove: bool = False) -> None:
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    if prove and workers >= 2:
        # For the bound: full LP cuts plus core-based search raise the lower bound far faster than the
        # default portfolio on these time-indexed models (measured on lee1996-example1).
        for name in ("max_lp", "core"):
            solver.parameters.subsolvers.append(name)
    elif prove:
        solver.parameters.linearization_level = 2


STATUS_NAMES = {"OPTIMAL": "OPTIMAL", "FEASIBLE": "FEASIBLE", "INFEASIBLE": "INFEASIBLE", "UNKNOWN": "UNKNOWN",
                "MODEL_INVALID": "UNKNOWN"}


def solve(inst: Instance, time_limit: float = 10.0, workers: int = 2, seed: int = 0, resolution: float | None = None,
          diagnose: bool = True, bound_share: float = 0.3, hint: dict | None = None,
          extra=None, window: int = 10, use_milp: bool = True, milp_share: float = 0.3) -> dict[str, Any]:
    """Solve an instance; returns a schedule dict (spec format). `extra(model)` may add constraints.

    Up to 1.5 x `window` periods: relaxation (bound + hint), then the full exact model. Longer horizons: a
    rolling horizon first (exact model on periods < 1.5 x window, committing periods < window, then on
    < 2.5 x window with those fixed, committing < 2 x window, ...;
    the last step is the full exact model with the earlier windows fixed, so its schedule is exact), then the
    free full exact model hinted with that schedule for what time is left (it gives the bound).
    """
    t0 = time.monotonic()
    deadline = t0 + time_limit
    issues = precheck(inst)
    if issues:
        sched = _empty_schedule(inst, "INFEASIBLE", time.monotonic() - t0)
        sched["diagnosis"] = [str(i) for i in issues]
        return sched
    res = resolution or auto_resolution(inst)
    bad = [x for x in volumes_of(inst) if not _on_grid(x, res)]
    if bad:
        raise VaiError(f"volume {bad[0]:g} in the instance is not a multiple of the resolution {res:g}: "
                       "pass a finer --resolution")
    P = inst.periods
    rolling = bool(window) and P > 1.5 * window
    relax = {"bound": None, "status": None}

    def new_model(mode: str = "exact", horizon: int | None = None) -> FeedModel:
        fm = FeedModel(inst, res, mode=mode, horizon=horizon)
        if extra:
            extra(fm)
        return fm

    def run_relaxation(seconds: float) -> dict | None:
        rm = new_model("relaxed")
        rs = rm.cp.CpSolver()
        _params(rs, max(0.5, seconds), workers, seed)
        status = rs.StatusName(stoppable_solve(rs, rm.m))
        _log().info("relaxation: %s, bound %.6g, in %.1f s", status, rs.BestObjectiveBound() / rm.F, rs.WallTime())
        relax["status"] = status
        if status in ("OPTIMAL", "FEASIBLE"):
            relax["bound"] = max(rs.BestObjectiveBound() / rm.F, relax["bound"] if relax["bound"] is not None else -math.inf)
            return rm.decode(rs)
        if status == "INFEASIBLE":
            relax["bound"] = math.inf
        elif relax["bound"] is None:
            relax["bound"] = rs.BestObjectiveBound() / rm.F  # a valid bound even without a solution
        return None

    em = solver = None
    em_free = False
    name, st_name = "UNKNOWN", "UNKNOWN"
    windows_used = 0
    # HiGHS finds nothing within a minute on 30-period instances (measured): long horizons skip the phase
    milp = _milp_phase(inst, milp_share * time_limit) if use_milp and extra is None and not rolling else None
    if milp is not None:
        relax["bound"] = milp["bound"]
        relax["status"] = milp["status"]
        hint = hint or milp["ops"]
        if milp["exact"] and milp["bound"] is not None and \
                milp["objective"] - milp["bound"] <= 1e-6 * max(1.0, abs(milp["objective"])):
            # the relaxation's optimum is itself exactly mixed: proven optimal, nothing left to search
            return _result(inst, "OPTIMAL", milp["ops"], milp["bound"], t0, res, None, {
                "engine": "HiGHS MILP relaxation, verified drift-free by exact simulation", "resolution": None,
                "relaxation_bound": milp["bound"], "milp_status": milp["status"], "workers": workers, "seed": seed,
                "time_limit": time_limit})
        if milp["exact"]:
            bound_share = 0.0  # an exact start and a bound already: all the time to the exact model
        else:
            hint = None  # a drifting continuous start repairs badly (measured); the CP-SAT relaxation's is better
    # the bound LP's share: at 30 s, 20% (6 s) left the 30-period charging runs (4.4 s, predicted 7x the plain LP's
    # 0.8 s) out now and then, and the gap at 48% instead of ~23% (measured)
    lp_share, lp_spent, plain_lp_s = min(60.0, 0.25 * time_limit), 0.0, None

    def bound_lp(runs: bool) -> None:
        nonlocal lp_spent, plain_lp_s
        t = time.monotonic()
        b, plain_s = _lp_bound_phase(inst, lp_share - lp_spent, runs=runs, plain_s=plain_lp_s)
        lp_spent += time.monotonic() - t
        plain_lp_s = plain_lp_s or plain_s
        if b is not None:
            relax["bound"] = max(b, relax["bound"] if relax["bound"] is not None else -math.inf)

    want_lp = use_milp and extra is None and (milp is None or milp["status"] != "OPTIMAL")
    if milp is not None and milp["status"] == "INFEASIBLE":
        relax["status"], relax["bound"] = "INFEASIBLE", math.inf
    elif want_lp:
        # the MILP unproven or skipped (long horizon): the bound LP (its relaxation plus run and window
        # formulations, milp.py) is often higher than HiGHS' bound after its share. On long horizons its costly
        # part (the charging runs, 4 s on 30 periods) waits until the rolling windows have a schedule: at a 30 s
        # limit it otherwise took the time the second window needed to find one (measured)
        bound_lp(runs=not rolling)
    if not rolling and bound_share > 0:
        relaxed_sol = run_relaxation(min(time_limit * bound_share, 0.5 * (deadline - time.monotonic())))
        hint = hint or relaxed_sol or (milp or {}).get("ops")  # drifting flows: CP-SAT repairs the hint for the exact model
    lns = rolling and LNS_SHARE > 0
    # the rolling windows share the time up to here; the window search gets the rest (a window that has found
    # nothing may still search until the real deadline: no schedule at all is the worst outcome)
    window_deadline = deadline - LNS_SHARE * time_limit if lns else deadline
    lns_ops, lns_info, full = None, None, None
    dead_ends: list[tuple[int, int]] = []  # rolling windows proven infeasible: (horizon, periods fixed)
    if rolling and hint is None:
        ends = list(range(window, P, window)) + [P]
        sol, fixed_before = None, 0
        for n, end in enumerate(ends):
            # look half a window ahead but commit only periods < end: a window that ends at its horizon
            # drains its tanks (inventory costs) and leaves the next one unable to feed the CDUs; the window
            # before the last looks to the end, so its schedule is complete and exact
            horizon = P if P - end <= window else min(P, end + window // 2)
            fix = fixed_before
            while True:
                wm = new_model(horizon=horizon)
                if sol is not None:
                    _fix_before(wm, sol, fix)
                    _apply_hint(wm, sol)
                left = window_deadline - time.monotonic()
                # keep the rest of the time for the window search and the free full model (it polishes the result)
                share_s = max(0.5, ROLLING_SHARE * left / max(1, len([e for e in ends[n:] if e < P]) or 1))
                # the window's first schedule comes from its model without the objective (found, or the
                # commitments proven a dead end, in 0-4 s where the optimising search found none in 30 s); no
                # schedule at all is the worst outcome, so the probe may go on past the share, until the deadline
                t_probe = time.monotonic()
                wst, values = _feasibility_probe(wm, max(share_s, 0.8 * (deadline - t_probe)), workers, seed)
                probe_s = time.monotonic() - t_probe
                _log().info("rolling window: feasibility probe (periods <%d fixed): %s in %.1f s", fix, wst, probe_s)
                if wst == "INFEASIBLE":
                    dead_ends.append((horizon, fix))
                    if fix > 0 and deadline - time.monotonic() > 2.0:
                        # the commitments so far leave this window no way on (measured on 45 periods: the second
                        # window): give half a window of them back and search again
                        fix = max(0, fix - max(1, window // 2))
                        continue
                if values is None:
                    break
                # CP-SAT checks a complete hint at once and optimises from it for what is left of the share (it
                # stops there, or at its first schedule if it has none by then)
                _hint_every_variable(wm, values)
                ws = wm.cp.CpSolver()
                opt_s = max(0.5, share_s - probe_s)
                _params(ws, max(opt_s, 0.8 * (deadline - time.monotonic())), workers, seed)
                wst = _solve_share_or_first(ws, wm, opt_s)
                _log().info("rolling window: periods <%d committed, horizon %d, periods <%d fixed: %s in %.1f s", end,
                            horizon, fix, wst, ws.WallTime())
                break
            if wst not in ("OPTIMAL", "FEASIBLE"):
                break
            sol, fixed_before = wm.decode(ws), end
            windows_used = n + 1
            if horizon == P:
                em, solver, st_name, name = wm, ws, wst, "FEASIBLE"  # optimal only given the fixed windows
                break
        hint = sol
        if want_lp and sol is not None and plain_lp_s is not None:
            bound_lp(runs=True)
        if lns and em is not None:
            # the last window's model covers the whole horizon; search from its schedule, keep a tenth of the
            # limit for the free full model
            full = new_model()
            # the search solves clones of `full`, so the free full model below is still untouched
            lns_ops, lns_info = _window_search(inst, full, sol, deadline - max(1.0, 0.1 * time_limit), workers, seed)
            hint = lns_ops
    if em is None or deadline - time.monotonic() > 1.0:
        if full is None:
            full = new_model()
        if hint:
            _apply_hint(full, hint)
        fs = full.cp.CpSolver()
        _params(fs, max(0.5, deadline - time.monotonic()), workers, seed)
        fst = fs.StatusName(stoppable_solve(fs, full.m))
        _log().info("full exact model: %s in %.1f s", fst, fs.WallTime())
        found = fst in ("OPTIMAL", "FEASIBLE")
        if found and (em is None or fst == "OPTIMAL" or fs.ObjectiveValue() <= solver.ObjectiveValue() + 1e-9):
            em, solver, st_name, em_free = full, fs, fst, True
            name = STATUS_NAMES.get(fst, "UNKNOWN")
        elif em is None:
            st_name, name = fst, STATUS_NAMES.get(fst, "UNKNOWN")
    relax_bound, relax_status = relax["bound"], relax["status"]
    wall = time.monotonic() - t0
    if milp is not None and milp["exact"] and (name not in ("OPTIMAL", "FEASIBLE")
                                               or milp["objective"] < solver.ObjectiveValue() / em.F - 1e-9):
        return _result(inst, "FEASIBLE", milp["ops"], relax_bound, t0, res, None, {
            "engine": "HiGHS MILP relaxation, verified drift-free by exact simulation", "resolution": None,
            "relaxation_bound": relax_bound, "milp_status": milp["status"], "cpsat_status": st_name,
            "workers": workers, "seed": seed, "time_limit": time_limit})
    if name in ("INFEASIBLE", "UNKNOWN"):
        sched = _empty_schedule(inst, name, wall)
        if relax_status == "INFEASIBLE" or name == "INFEASIBLE":
            sched["status"] = "INFEASIBLE"
            if diagnose:
                sched["diagnosis"] = diagnose_infeasibility(inst, res, time_limit=max(5.0, time_limit), extra=extra)
        else:
            sched["diagnosis"] = [f"no schedule found within {time_limit:g} s (status {st_name}); "
                                  "try a longer --time-limit"]
            if rolling and dead_ends:
                h, f = min(dead_ends, key=lambda d: (-d[0], d[1]))  # the latest window, the least kept
                sched["diagnosis"].append(
                    f"the rolling horizon's periods < {h} have no schedule even with only periods < {f} kept from "
                    "earlier windows: the instance may be infeasible (check that vessels arrive early enough for "
                    "the CDUs' demand, given that a tank cannot receive and send in the same period)")
        return sched
    ops = em.decode(solver)
    inventory, worst = simulate_inventory(inst, ops)
    costs = schedule_costs(inst, ops, inventory)
    if lns_ops is not None and lns_info["cost"] < sum(costs.values()) - 1e-9:
        ops = lns_ops  # the window search's schedule is cheaper than what the last model returned
        inventory, worst = simulate_inventory(inst, ops)
        costs = schedule_costs(inst, ops, inventory)
        if name == "OPTIMAL":  # cannot happen for a free model's proven optimum; be safe
            name = "FEASIBLE"
    objective = round(sum(costs.values()), 9)
    # a window model's bound holds only given its fixed past; the free full model's bound is global
    model_bound = solver.BestObjectiveBound() / em.F if em_free else -math.inf
    bound = objective if (name == "OPTIMAL" and em_free) else max(
        model_bound, relax_bound if relax_bound is not None else -math.inf)
    bound = max(0.0, min(bound, objective))
    if objective - bound <= 1e-6 * max(1.0, abs(objective)):
        name = "OPTIMAL"  # the relaxation's proven bound is reached: optimal at this resolution
    elif name == "OPTIMAL" and not em_free:
        name = "FEASIBLE"
    gap = 0.0 if objective == 0 else max(0.0, (objective - bound) / abs(objective))
    return {"format": FORMAT, "instance": inst.name, "status": name, "objective": objective,
            "bound": round(bound, 6), "gap": round(gap, 6), "wall_seconds": round(time.monotonic() - t0, 3),
            "cost_breakdown": costs, **ops, "inventory": inventory, "max_spec_violation": round(worst, 12),
            "solver": {"engine": "cp-sat exact mixing", "resolution": res, "property_scale": em.S,
                       "relaxation_bound": None if relax_bound is None or math.isinf(relax_bound) else round(relax_bound, 6),
                       "model_bound": None if math.isinf(model_bound) else round(model_bound, 6),
                       "changeovers_at_least": bounds.changeover_bound(inst).total,
                       "rolling_windows": windows_used, "window_search": lns_info, "workers": workers, "seed": seed,
                       "time_limit": time_limit, "tracked_tanks": sorted(k for k, v in em.tracked.items() if v)}}


def _lp_bound_phase(inst: Instance, seconds: float, runs: bool = True,
                    plain_s: float | None = None) -> tuple[float | None, float | None]:
    """The classic MILP's linear relaxation with the valid cuts and the extended formulations of the bound
    (unloading windows, charging runs) by HiGHS' interior point: a valid lower bound, and the solve time of the
    LP without the runs. That LP first (unless `plain_s` says it was solved already), then (with `runs`) the one
    with them only if 7x its solve time fits in what is left (measured on generated instances: 6.7x, 6.3x, 5.6x
    at 30, 45 and 60 periods): on 45+ periods a 60 s solve would otherwise spend its share on an LP that does
    not finish."""
    if not _have_highs():
        return None, None
    from .milp import classic_milp

    t0 = time.monotonic()

    def solve_lp(with_runs: bool) -> tuple[float | None, float]:
        lp = classic_milp(inst, time_limit=max(0.5, seconds - (time.monotonic() - t0)), lp_only=True, runs=with_runs)
        _log().info("LP relaxation%s (HiGHS): %s, bound %s, in %.1f s", " with charging runs" if with_runs else "",
                    lp["status"], "none" if lp["bound"] is None else f"{lp['bound']:.6g}", lp["wall_seconds"])
        return lp["bound"], lp["wall_seconds"]

    best = None
    if plain_s is None:
        best, wall = solve_lp(False)
        plain_s = wall if best is not None else None
    if runs and plain_s is not None and 7.0 * plain_s <= seconds - (time.monotonic() - t0):
        bound, _ = solve_lp(True)
        if bound is not None:
            best = bound if best is None else max(best, bound)
    return best, plain_s


def _have_highs() -> bool:
    """Whether scipy's HiGHS is importable; without it (an install without the `[scheduling]` extra) the solve
    still runs, with CP-SAT's own weaker bound and no hint, and says so once."""
    global _HIGHS_WARNED
    try:
        import scipy.optimize  # noqa: F401 - HiGHS: milp, linprog
        import scipy.sparse  # noqa: F401
    except ImportError:
        if not _HIGHS_WARNED:
            _HIGHS_WARNED = True
            _log().warning("scipy is not installed: no HiGHS relaxation, so the lower bound is CP-SAT's own (weaker) "
                           "and the exact model gets no hint; pip install 'vai-platform[scheduling]'")
        return False
    return True


_HIGHS_WARNED = False


def _milp_phase(inst: Instance, seconds: float) -> dict | None:
    """Classic MILP relaxation by HiGHS: bound, hint, and an exact schedule when it happens not to drift."""
    if not _have_highs():
        return None
    from .milp import classic_milp

    mi = classic_milp(inst, time_limit=max(0.5, seconds))
    def _num(v):
        return "none" if v is None else f"{v:.6g}"

    _log().info("MILP relaxation (HiGHS): %s, objective %s, bound %s, in %.1f s", mi["status"], _num(mi.get("objective")),
                _num(mi.get("bound")), mi["wall_seconds"])
    out = {"status": mi["status"], "bound": mi.get("bound"), "exact": False, "ops": None, "objective": None}
    if mi["status"] not in ("OPTIMAL", "FEASIBLE"):
        return out
    ops = {k: mi[k] for k in ("unloads", "transfers", "charges")}
    inventory, worst = simulate_inventory(inst, ops)
    drift = max((abs(row.get(c, 0.0) - sim.get(c, 0.0)) for tid in inventory
                 for row, sim in zip(mi["inventory"][tid], inventory[tid]) for c in set(row) | set(sim)), default=0.0)
    within = all(tank.min - 1e-6 * max(1, tank.min) <= sum(r.values()) <= tank.max + 1e-6 * max(1, tank.max)
                 for tank in inst.tanks for r in inventory[tank.id])
    out.update(ops=ops, exact=worst <= 1e-7 and within, drift=drift,
               objective=round(sum(schedule_costs(inst, ops, inventory).values()), 9))
    return out


def _result(inst: Instance, status: str, ops: dict, bound: float | None, t0: float, res, model, solver_info) -> dict:
    inventory, worst = simulate_inventory(inst, ops)
    costs = schedule_costs(inst, ops, inventory)
    objective = round(sum(costs.values()), 9)
    b = objective if bound is None or math.isinf(bound) else max(0.0, min(bound, objective))
    if status == "FEASIBLE" and objective - b <= 1e-6 * max(1.0, abs(objective)):
        status = "OPTIMAL"
    gap = 0.0 if objective == 0 else max(0.0, (objective - b) / abs(objective))
    return {"format": FORMAT, "instance": inst.name, "status": status, "objective": objective, "bound": round(b, 6),
            "gap": round(gap, 6), "wall_seconds": round(time.monotonic() - t0, 3), "cost_breakdown": costs, **ops,
            "inventory": inventory, "max_spec_violation": round(worst, 12),
            "solver": {**solver_info, "changeovers_at_least": bounds.changeover_bound(inst).total, "tracked_tanks": []}}


def stoppable_solve(solver, model, callback=None) -> int:
    """`solver.Solve(model[, callback])`, in a helper thread while the main thread waits: Python runs signal handlers
    only in the main thread between bytecodes, so during a plain Solve, Ctrl-C or the CLI's SIGTERM would wait until
    the search ended (up to the time limit); here they stop the search at once and re-raise."""
    import threading

    # CP-SAT's own Ctrl-C handler would end only the current search (the solve then went on to its next phase) and,
    # installed from the helper thread, aborts the process; Python's handler raises in the main thread instead
    solver.parameters.catch_sigint_signal = False
    solve = (lambda: solver.Solve(model, callback)) if callback is not None else (lambda: solver.Solve(model))
    if threading.current_thread() is not threading.main_thread():
        return solve()
    out: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: a join interrupted by a signal can later return early (CPython 3.11)

    def work() -> None:
        try:
            out["status"] = solve()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="cp-sat", daemon=True).start()
    try:
        while not done.wait(0.1):
            pass
    except BaseException:
        solver.StopSearch()  # thread-safe: CP-SAT checks it between steps
        done.wait()  # the search must end before the interpreter may (a live solver thread aborts the exit)
        raise
    if "error" in out:
        raise out["error"]
    return out["status"]


def _log():
    from vai.core.progress import get_logger

    return get_logger("vai.scheduling")


def _solve_share_or_first(solver, model: FeedModel, share_s: float) -> str:
    """Solve within the solver's time limit, but stop at `share_s` seconds if a solution exists by then, else at
    the first one after it. Returns the status name."""
    import threading

    found, past = threading.Event(), threading.Event()

    class _FirstAfterShare(model.cp.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            found.set()
            if past.is_set():
                self.StopSearch()

    def share_over() -> None:
        past.set()
        if found.is_set():
            solver.StopSearch()

    timer = threading.Timer(share_s, share_over)
    timer.daemon = True
    timer.start()
    try:
        return solver.StatusName(stoppable_solve(solver, model.m, _FirstAfterShare()))
    finally:
        timer.cancel()


def _feasibility_probe(model: FeedModel, seconds: float, workers: int, seed: int) -> tuple[str, list | None]:
    """Search a copy of the model without its objective: (status, every variable's value or None). Without the
    objective CP-SAT finds a rolling window's first schedule, or proves the window's commitments a dead end, in
    0-4 s where the optimising search found nothing in 30 s, 3 runs of 3 (measured on the tight-spec 30-period
    instance seed 1, its second window)."""
    probe = model.m.Clone()
    probe.ClearObjective()
    ps = model.cp.CpSolver()
    _params(ps, max(0.2, seconds), workers, seed)
    status = ps.StatusName(stoppable_solve(ps, probe))
    if status in ("OPTIMAL", "FEASIBLE"):
        return "FEASIBLE", list(ps.ResponseProto().solution)
    return status, None


def _hint_every_variable(model: FeedModel, values: list) -> None:
    """Replace the model's hint by a value for every variable (as `_feasibility_probe` returns them)."""
    model.m.ClearHints()
    hint = model.m.Proto().solution_hint
    hint.vars.extend(range(len(values)))
    hint.values.extend(values)


def _schedule_values(sched: dict) -> dict[tuple, float]:
    vals = {}
    for r in sched.get("unloads", []):
        vals[("u", r["vessel"], r["tank"], r["period"])] = r["volume"]
    for r in sched.get("transfers", []):
        vals[("x", r["from"], r["to"], r["period"])] = r["volume"]
    for r in sched.get("charges", []):
        vals[("y", r["tank"], r["cdu"], r["period"])] = r["volume"]
    return vals


def _flow_values(model: FeedModel, sched: dict):
    """(period, flow variable, its value in `sched` on the model's grid; absent = 0) for every flow variable."""
    vals = _schedule_values(sched)
    for kind, table in (("u", model.u), ("x", model.x), ("y", model.y)):
        for key, var in table.items():
            yield key[-1], var, model.vi(vals.get((kind, *key), 0))


def _window_search(inst: Instance, model: FeedModel, sched: dict, until: float, workers: int,
                   seed: int) -> tuple[dict, dict]:
    """Large-neighbourhood search over time windows: every flow outside periods [a, a + LNS_WINDOW) is fixed to
    the best schedule so far and CP-SAT re-optimises the window (hinted), sweeping a by LNS_STEP; a sweep in which
    every window was solved to optimality without a gain widens the window. Each candidate is costed by exact
    simulation, so only a truly cheaper schedule replaces the best. CP-SAT's own neighbourhoods (random variables
    and constraints) do not follow time, which is where these schedules' freedom is: a vessel moved together with
    the transfers and charges it feeds. Returns the best schedule and what the search did."""
    def cost_of(ops: dict) -> float:
        inventory, _ = simulate_inventory(inst, ops)
        return sum(schedule_costs(inst, ops, inventory).values())

    P = inst.periods
    best = {k: sched.get(k, []) for k in ("unloads", "transfers", "charges")}
    best_cost = start_cost = cost_of(best)
    flows = list(_flow_values(model, best))  # re-made only when the best schedule changes
    width, solves, gains, k = min(LNS_WINDOW, P), 0, 0, 0
    t0 = time.monotonic()
    while until - time.monotonic() > 0.5:
        starts = sorted(set(list(range(0, P - width + 1, LNS_STEP)) + [P - width]))
        gained, all_optimal = False, True
        for a in starts:
            left = until - time.monotonic()
            if left <= 0.5:
                break
            sub = model.m.Clone()
            proto = sub.Proto()
            for t, var, v in flows:
                if a <= t < a + width:
                    sub.AddHint(var, v)
                else:
                    dom = proto.variables[var.Index()].domain  # fixed in place: cheaper than a constraint
                    if len(dom) == 2:
                        dom[0], dom[1] = v, v
                    else:
                        sub.Add(var == v)
            ws = model.cp.CpSolver()
            _params(ws, min(LNS_SUBSOLVE_S, left), workers, seed + k)
            k += 1
            st = ws.StatusName(stoppable_solve(ws, sub))
            solves += 1
            all_optimal &= st == "OPTIMAL"
            if st in ("OPTIMAL", "FEASIBLE"):
                ops = model.decode(ws)
                c = cost_of(ops)
                if c < best_cost - 1e-9:
                    best, best_cost, gained, gains = ops, c, True, gains + 1
                    flows = list(_flow_values(model, best))
        if not gained and all_optimal:
            if width >= P:
                break  # the window spans the horizon and was solved to optimality: nothing left to gain
            width = min(P, width + LNS_STEP)
    _log().info("window search: %d sub-solves, %d gains, %.6g -> %.6g in %.1f s (window now %d periods)", solves,
                gains, start_cost, best_cost, time.monotonic() - t0, width)
    return best, {"sub_solves": solves, "improvements": gains, "start_cost": round(start_cost, 6),
                  "cost": round(best_cost, 6), "seconds": round(time.monotonic() - t0, 3), "final_window": width}


def _fix_before(model: FeedModel, sched: dict, end: int) -> None:
    """Fix every flow in periods < end to its value in `sched` (absent = 0)."""
    if end <= 0:
        return
    for t, var, v in _flow_values(model, sched):
        if t < end:
            model.m.Add(var == v)


def _apply_hint(model: FeedModel, sched: dict) -> None:
    for _, var, v in _flow_values(model, sched):
        model.m.AddHint(var, v)


def diagnose_infeasibility(inst: Instance, resolution: float | None = None, time_limit: float = 10.0,
                           extra=None) -> list[str]:
    """An irreducible set of rule groups that cannot all hold (deletion-minimised sufficient core)."""
    fm = FeedModel(inst, resolution, mode="exact", diagnose=True)
    if extra:
        extra(fm)
    names = {lit.Index(): n for n, lit in fm.rules.items()}
    lits = list(fm.rules.values())
    deadline = time.monotonic() + time_limit

    def infeasible_with(subset, share: float = 0.2) -> tuple[bool | None, list]:
        fm.m.ClearAssumptions()
        fm.m.AddAssumptions(subset)
        s = fm.cp.CpSolver()
        _params(s, max(0.2, share * (deadline - time.monotonic())), 1, 0)
        st = s.StatusName(stoppable_solve(s, fm.m))
        if st == "INFEASIBLE":
            core = set(s.SufficientAssumptionsForInfeasibility())
            return True, [lit for lit in subset if lit.Index() in core] or list(subset)
        return (False if st in ("OPTIMAL", "FEASIBLE") else None), []

    ok, core = infeasible_with(lits, share=0.6)
    if ok is not True:
        return ["infeasible, but no small set of conflicting rules was found in time (the conflict involves tank "
                "mixing; try validate and a longer time limit)"]
    i = 0
    while i < len(core) and time.monotonic() < deadline:
        trial = core[:i] + core[i + 1:]
        res, smaller = infeasible_with(trial)
        if res is True:
            core = [lit for lit in trial if lit in smaller] if smaller else trial
        else:
            i += 1
    return [names[lit.Index()] for lit in core]
