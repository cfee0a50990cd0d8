"""Run benchmark modules one after another, each in its own process (so one crash or OOM does not stop
the rest), and print a one-line outcome per module."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("names", nargs="*", help="benchmark modules (default: all); prefixes match, e.g. 'path'")
    ap.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    args, extra = ap.parse_known_args(argv)
    names = available()
    if args.list:
        print("\n".join(names))
        return 0
    if args.names:
        chosen = [n for n in names if any(n == a or n.startswith(a) for a in args.names)]
        unknown = [a for a in args.names if not any(n == a or n.startswith(a) for n in names)]
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}", file=sys.stderr)
            return 2
    else:
        chosen = names
    outcomes = []
    for name in chosen:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *extra], cwd=HERE.parent)
        outcomes.append((name, rc, time.perf_counter() - t0))
    print("\nBenchmark outcomes:")
    for name, rc, secs in outcomes:
        print(f"  {name:<32} {'ok' if rc == 0 else f'exit {rc}':<8} {secs:7.1f} s")
    return 0 if all(rc == 0 for _, rc, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
