"""Solve time, objective and gap vs instance size (generated, synthetic), CP-SAT workers 1 vs 2, and a small
scenario sweep on the local and Ray engines. Every schedule is checked by the independent checker.

    python -m benchmarks.scheduling_scaling [--out benchmarks/results/scheduling_scaling.json] [--skip-ray]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

SIZES = [  # (periods, vessels, storage, charging, cdus, properties, time limit s)
    (8, 2, 3, 2, 1, 2, 10),
    (12, 3, 4, 4, 2, 2, 20),
    (20, 4, 6, 4, 2, 2, 30),
    (30, 5, 8, 6, 3, 2, 60),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/scheduling_scaling.json")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--tight-specs", type=float, default=0.34)
    args = ap.parse_args(argv)
    from vai.core.io import atomic_write_json
    from vai.verticals.scheduling import Instance, check_schedule, generate_instance, solve
    from vai.verticals.scheduling.sweep import delay_variants, run_sweep

    rows = []

    def run(size, workers, label):
        p, v, s, c, d, k, tl = size
        data = generate_instance(p, v, s, c, d, k, seed=0, tight_specs=args.tight_specs)
        inst = Instance.from_dict(data)
        sched = solve(inst, time_limit=tl, workers=workers, seed=0)
        ok = check_schedule(data, sched).ok if sched["status"] in ("OPTIMAL", "FEASIBLE") else None
        row = {"case": label, "periods": p, "vessels": v, "storage_tanks": s, "charging_tanks": c, "cdus": d,
               "properties": k, "time_limit": tl, "workers": workers, "status": sched["status"],
               "objective": sched["objective"], "bound": sched["bound"], "gap": sched["gap"],
               "wall_seconds": sched["wall_seconds"], "check_ok": ok,
               "engine": (sched.get("solver") or {}).get("engine"),
               "rolling_windows": (sched.get("solver") or {}).get("rolling_windows"),
               "tracked_tanks": len((sched.get("solver") or {}).get("tracked_tanks") or [])}
        rows.append(row)
        print(json.dumps(row), flush=True)

    for size in SIZES:
        run(size, 2, "size")
    run(SIZES[1], 1, "workers")
    sweeps = []
    data = generate_instance(8, 2, 3, 2, 1, 1, seed=0)
    items = delay_variants(data, "V1", [0, 1, 2, 3])
    for engine in ["local"] + ([] if args.skip_ray else ["ray"]):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result, frame = run_sweep(items, tmp, engine=engine, workers=2, time_limit=4.0, solver_workers=1)
            sweeps.append({"engine": engine, "scenarios": len(items), "workers": 2, "seconds": round(time.perf_counter() - t0, 1),
                           "failed": len(result.failed),
                           "statuses": frame["status"].tolist() if not frame.empty else [],
                           "objectives": frame["objective"].tolist() if not frame.empty else [],
                           "all_checked_ok": bool(frame.loc[frame["status"].isin(["OPTIMAL", "FEASIBLE"]), "check_ok"].all())
                           if not frame.empty else None})
            print(json.dumps(sweeps[-1]), flush=True)
    atomic_write_json(args.out, {"rows": rows, "sweeps": sweeps, "tight_specs": args.tight_specs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
