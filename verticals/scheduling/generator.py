"""Seeded generator of realistic instances (synthetic): vessels spread over the horizon, each bringing one crude
into two storage tanks (so some tanks see two crudes and really mix), charging tanks fed by a few storage
tanks each with a spec window around a blend of what can reach them, two or more charging tanks per CDU so
one can receive while the other runs, and volumes sized so that supply covers the CDUs' demand.

Feasibility is likely by construction (stock and supply cover demand; each spec window holds the initial
blend and covers what can reach the tank, except that for the first `tight_specs` share of charging tanks
the first property's window cuts 10% into that range on one side, so one crude must be blended there) but
not proven: solve to find out. Volumes are multiples of 5, so the solver's grid is coarse and fast.
"""
from __future__ import annotations

import random
from typing import Any

from .instance import FORMAT

_PROPS = [("sulfur", 0.004, 0.045), ("aromatics", 0.10, 0.45), ("asphaltenes", 0.01, 0.08), ("wax", 0.02, 0.12)]


def generate_instance(periods: int = 30, vessels: int = 5, storage_tanks: int = 8, charging_tanks: int = 6, cdus: int = 3,
                      properties: int = 2, seed: int = 0, name: str | None = None,
                      tight_specs: float = 0.0) -> dict[str, Any]:
    if min(periods, vessels, storage_tanks, charging_tanks, cdus, properties) < 1:
        raise ValueError("every count must be at least 1")
    if charging_tanks < 2 * cdus:
        # a CDU runs every period; with one tank, that tank can never be refilled (it sends every period)
        raise ValueError(f"need at least two charging tanks per CDU ({2 * cdus} for {cdus} CDU(s), got {charging_tanks}): "
                         "a CDU's only tank would send in every period and could never receive")
    if not 0.0 <= tight_specs <= 1.0:
        raise ValueError(f"tight_specs is a share of the charging tanks, between 0 and 1 (got {tight_specs:g})")
    if properties > len(_PROPS):
        raise ValueError(f"at most {len(_PROPS)} properties")
    rng = random.Random(seed)
    props = [p for p, _, _ in _PROPS[:properties]]
    crudes = {}
    for i in range(vessels):
        crudes[f"C{i + 1}"] = {p: round(rng.uniform(lo, hi), 4) for p, lo, hi in _PROPS[:properties]}
    cids = list(crudes)
    # each vessel unloads into two storage tanks; storage tank j starts with the crude of a vessel that uses it
    v_tanks = [[f"ST{(2 * i) % storage_tanks + 1}", f"ST{(2 * i + 1) % storage_tanks + 1}"] for i in range(vessels)]
    st_crude: dict[str, str] = {}
    for i, ts in enumerate(v_tanks):
        for s in ts:
            st_crude.setdefault(s, cids[i])
    rate_lo, rate_hi, rate_avg = 20, 60, 40
    demand_total = rate_avg * periods * cdus
    st_init, ct_init = 120, 120
    # vessels alone bring the whole demand: the initial stocks are slack, so blending is never forced to use
    # every last barrel of an off-spec crude
    vol = max(100, int(round(demand_total / vessels / 10.0)) * 10)
    unload_max = max(50, -(-vol // 30) * 10)  # three periods per vessel
    st_max = max(600, vol + st_init)
    sts = []
    for j in range(storage_tanks):
        sid = f"ST{j + 1}"
        crude = st_crude.get(sid, cids[j % len(cids)])
        sts.append({"id": sid, "min": 0, "max": st_max, "initial": {crude: st_init}})
    ves = []
    for i in range(vessels):
        arrival = int(i * periods / vessels) + rng.randint(0, max(0, periods // (3 * vessels)))
        # leave room to unload completely (and a period to spare) before the horizon ends
        arrival = max(0, min(arrival, periods - 1 - -(-vol // unload_max) - 1))
        ves.append({"id": f"V{i + 1}", "arrival": arrival, "crude": cids[i], "volume": vol, "tanks": v_tanks[i]})
    # charging tanks: CT k feeds CDU k % cdus; demand split evenly among a CDU's tanks
    per_cdu = [[f"CT{k + 1}" for k in range(charging_tanks) if k % cdus == d] for d in range(cdus)]
    cts = []
    for k in range(charging_tanks):
        cid = f"CT{k + 1}"
        d = k % cdus
        demand = rate_avg * periods // len(per_cdu[d])
        if per_cdu[d][-1] == cid:
            demand = rate_avg * periods - demand * (len(per_cdu[d]) - 1)
        n_from = min(storage_tanks, rng.randint(3, 4))
        src = sorted(rng.sample([s["id"] for s in sts], n_from), key=lambda s: int(s[2:]))
        reach = sorted({st_crude.get(s, cids[int(s[2:]) % len(cids)]) for s in src} | {c for s in src for i, ts in enumerate(v_tanks) if s in ts for c in [cids[i]]})
        # initial blend of two reachable crudes, and a spec window around it
        a, b = (rng.sample(reach, 2) if len(reach) >= 2 else (reach[0], reach[0]))
        wa = rng.choice([0.4, 0.5, 0.6])
        share = int(round(ct_init * wa / 10.0)) * 10
        init = {a: share, b: ct_init - share} if a != b else {a: ct_init}
        spec = {}
        for p, lo, hi in _PROPS[:properties]:
            vals = [crudes[c][p] for c in reach]
            vmin, vmax = min(vals), max(vals)
            width = max(vmax - vmin, 0.05 * (hi - lo))
            center = sum(crudes[c][p] * v for c, v in init.items()) / ct_init
            # one side of the window cuts 15% into the reachable range: the crude at that extreme is
            # off-spec alone and must be blended; the window always holds the initial blend
            cut = 0.1 if (p == props[0] and k < round(tight_specs * charging_tanks)) else 0.0
            if rng.random() < 0.5:
                w = [vmin + cut * width, vmax + 0.05 * width]
            else:
                w = [vmin - 0.05 * width, vmax - cut * width]
            w = [min(w[0], center - 0.02 * width), max(w[1], center + 0.02 * width)]
            spec[p] = [round(max(0.0, w[0]), 4), round(w[1], 4)]
        cts.append({"id": cid, "min": 0, "max": 400, "initial": init, "from": src, "demand": demand, "spec": spec})
    cdu_list = [{"id": f"CDU{d + 1}", "from": per_cdu[d], "rate": [rate_lo, rate_hi]} for d in range(cdus)]
    return {"format": FORMAT, "name": name or f"generated-p{periods}-v{vessels}-s{seed}", "periods": periods,
            "period_hours": 24, "properties": props, "crudes": crudes, "vessels": ves, "storage_tanks": sts,
            "charging_tanks": cts, "cdus": cdu_list, "limits": {"unload_max": unload_max, "transfer_max": 150},
            "costs": {"unloading": 8, "sea_waiting": 5, "storage_inventory": 0.05, "charging_inventory": 0.08,
                      "changeover": 50},
            "source": f"synthetic: vai.verticals.scheduling.generator seed={seed}"}
