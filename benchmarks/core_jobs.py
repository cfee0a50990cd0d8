"""Batch-runner overhead: items/s for trivial items (the bookkeeping cost per item: markers, progress,
report) on the in-process engine and the process pool; and the resume cost (a re-run that skips all)."""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from pathlib import Path

from vai.core.jobs import run_job


def square(x: int) -> dict:
    return {"y": x * x}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for engine, workers in (("local", 1), ("local", args.workers)):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            t0 = time.perf_counter()
            res = run_job(square, range(args.items), out_dir=out, key=str, engine=engine, workers=workers,
                          desc="bench")
            first = time.perf_counter() - t0
            assert len(res.done) == args.items
            t0 = time.perf_counter()
            res = run_job(square, range(args.items), out_dir=out, key=str, engine=engine, workers=workers,
                          desc="bench")
            resume = time.perf_counter() - t0
            assert len(res.resumed) == args.items
            rows.append((f"{engine}, workers={workers}", args.items / first, args.items / resume))
    print(f"\nmachine: {platform.processor() or platform.machine()}, date {dt.date.today()}, "
          f"command: python -m benchmarks.core_jobs --items {args.items}")
    print("| engine | items/s (first run) | items/s (resume, all skipped) |\n|---|---|---|")
    for name, a, b in rows:
        print(f"| {name} | {a:,.0f} | {b:,.0f} |")


if __name__ == "__main__":
    main()
