"""Small hand-made scheduling instances and a hand-built schedule (costs worked out by hand)."""
import copy


def tiny_instance() -> dict:
    """4 periods, CDU1 must take exactly 10 per period. CT1 holds 20 (demand 20); CT2 starts empty (demand 20)
    and can only be filled from ST1 once V1 has unloaded there. V2 (10, arrives at 0) must wait for the berth.

    Hand-checked optimum (84): t0 V1->ST1 20, CDU1<-CT1; t1 V2->ST2 10, ST1->CT2 20, CDU1<-CT1; t2, t3 CDU1<-CT2.
    unloading 2x8=16, sea waiting V2 1x5=5, inventory ST1 20*0.1 + ST2 30*0.1 + CT1 10*0.2 + CT2 30*0.2 = 13,
    changeover 1x50 = 50.
    """
    return {
        "format": "feed-schedule/1", "name": "tiny", "periods": 4, "period_hours": 24, "properties": ["sulfur"],
        "crudes": {"C1": {"sulfur": 0.01}, "C2": {"sulfur": 0.05}},
        "vessels": [{"id": "V1", "arrival": 0, "crude": "C1", "volume": 20, "tanks": ["ST1"]},
                    {"id": "V2", "arrival": 0, "crude": "C2", "volume": 10, "tanks": ["ST2"]}],
        "storage_tanks": [{"id": "ST1", "min": 0, "max": 100, "initial": {}},
                          {"id": "ST2", "min": 0, "max": 100, "initial": {}}],
        "charging_tanks": [
            {"id": "CT1", "min": 0, "max": 100, "initial": {"C1": 20}, "from": ["ST1"], "demand": 20,
             "spec": {"sulfur": [0.0, 0.02]}},
            {"id": "CT2", "min": 0, "max": 100, "initial": {}, "from": ["ST1"], "demand": 20,
             "spec": {"sulfur": [0.0, 0.02]}}],
        "cdus": [{"id": "CDU1", "from": ["CT1", "CT2"], "rate": [10, 10]}],
        "limits": {"unload_max": 20, "transfer_max": 50},
        "costs": {"unloading": 8, "sea_waiting": 5, "storage_inventory": 0.1, "charging_inventory": 0.2,
                  "changeover": 50},
        "site": {"note": "an extra key that must survive a round trip"},
    }


TINY_OPTIMUM = 84.0


def tiny_schedule() -> dict:
    return {
        "format": "feed-schedule/1", "instance": "tiny", "status": "OPTIMAL", "objective": 84.0, "bound": 84.0,
        "gap": 0.0, "wall_seconds": 0.0,
        "cost_breakdown": {"unloading": 16, "sea_waiting": 5, "inventory": 13, "changeover": 50},
        "unloads": [{"period": 0, "vessel": "V1", "tank": "ST1", "volume": 20},
                    {"period": 1, "vessel": "V2", "tank": "ST2", "volume": 10}],
        "transfers": [{"period": 1, "from": "ST1", "to": "CT2", "volume": 20}],
        "charges": [{"period": t, "cdu": "CDU1", "tank": "CT1" if t < 2 else "CT2", "volume": 10} for t in range(4)],
        "inventory": {"ST1": [{"C1": 20}, {}, {}, {}], "ST2": [{}, {"C2": 10}, {"C2": 10}, {"C2": 10}],
                      "CT1": [{"C1": 10}, {}, {}, {}], "CT2": [{}, {"C1": 20}, {"C1": 10}, {}]},
        "max_spec_violation": 0.0,
    }


def stuck_instance() -> dict:
    """Infeasible, but no pre-check sees it: CT1 is CDU1's only tank, so it sends every period and can never
    receive; its 10 in stock cannot cover 4 periods at >= 10."""
    d = tiny_instance()
    d["name"] = "stuck"
    d["vessels"][0]["volume"] = 40  # enough crude reaches CT1 in principle, so no pre-check fires
    d["charging_tanks"] = [dict(d["charging_tanks"][0], initial={"C1": 10}, demand=40)]
    d["cdus"] = [{"id": "CDU1", "from": ["CT1"], "rate": [10, 10]}]
    return d


def variant(base: dict, **changes) -> dict:
    d = copy.deepcopy(base)
    d.update(changes)
    return d
