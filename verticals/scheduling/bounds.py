"""Combinatorial lower bounds that hold for every schedule keeping the spec's rules; the solver adds them to
its models as valid inequalities (they tighten the LP bounds that time-indexed models are weak on).

Changeovers. Call a *run* a maximal stretch of consecutive periods in which one CDU is charged from one tank.
During a run that tank sends in every period, so it receives in none (rule 3) and feeds no other CDU (rule 5):
it enters the run holding at most max(`max`, initial volume) and leaves it holding at least `min` (rule 4), so
one run delivers at most cap = max(`max`, initial) - `min` (plus the spec's volume tolerances). A tank that must
send `demand` over the horizon therefore needs at least R = ceil(demand / cap) runs. A CDU with n runs has n - 1
changeovers (the first period's choice is free). Hence:
- over the CDUs: changeovers >= sum over tanks of R - number of CDUs (every run belongs to one tank and one CDU);
- per CDU, counting only the tanks that feed no other CDU: runs >= the sum of their R, and, since two runs of
  the same tank on one CDU are never adjacent (they would be one run), runs >= 2 max(R) - 1.
The argument needs every period's charge to be a real flow, so a CDU whose minimum rate is zero gets no
per-CDU bound and its tanks are left out of the total.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .instance import Instance

# The models add these bounds (and the stock cut: a tank sends only what it held the period before) as valid
# inequalities; switched off only to test that they cut off no valid schedule.
VALID_CUTS = True


def volume_tolerance(x: float) -> float:
    return 1e-6 * max(1.0, abs(x))  # the spec's volume tolerance


@dataclass(frozen=True)
class ChangeoverBound:
    runs_needed: dict[str, int]   # charging tank -> fewest runs it needs to send its demand
    per_cdu: dict[str, int]       # CDU -> fewest changeovers
    total: int                    # fewest changeovers over all CDUs


def changeover_bound(inst: Instance) -> ChangeoverBound:
    feeders: dict[str, list] = {}
    for d in inst.cdus:
        for s in d.sources:
            feeders.setdefault(s, []).append(d)
    runs: dict[str, int] = {}
    for ct in inst.charging_tanks:
        users = feeders.get(ct.id, [])
        if not users or any(d.rate_min <= volume_tolerance(d.rate_max) for d in users):
            continue  # a zero-rate "charge" is no flow: the run argument does not hold
        top = max(ct.max, ct.initial_volume)
        cap = (top + volume_tolerance(top)) - (ct.min - volume_tolerance(ct.min))
        need = ct.demand - volume_tolerance(ct.demand)
        if need <= 0:
            continue
        runs[ct.id] = 1 if cap <= 0 else max(1, math.ceil(need / cap - 1e-9))
    per_cdu: dict[str, int] = {}
    charged = [d for d in inst.cdus if d.rate_min > volume_tolerance(d.rate_max)]
    for d in charged:
        own = [runs[s] for s in d.sources if s in runs and len(feeders[s]) == 1]
        if own:
            per_cdu[d.id] = max(sum(own), 2 * max(own) - 1) - 1
    total = max(sum(per_cdu.values()), sum(runs.values()) - len(charged), 0)
    return ChangeoverBound(runs, per_cdu, total)
