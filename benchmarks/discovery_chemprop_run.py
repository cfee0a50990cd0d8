"""Run chemprop (its CLI, defaults) on the split files written by `benchmarks.discovery_chemprop_compare`.

    python -m benchmarks.discovery_chemprop_compare --model gbm --out /tmp/bench_gbm      # writes splits_*.json
    python -m benchmarks.discovery_chemprop_run --chemprop /tmp/chemprop-venv/bin/chemprop \
        --splits-dir /tmp/bench_gbm --out /tmp/bench_chemprop

chemprop lives in its own virtual environment; this script only shells out to `chemprop train`, one run per
data set and seed (a one-entry `--splits-file` per seed, `--data-seed`/`--pytorch-seed` = seed). It checks
that chemprop reports the same train/val/test sizes and echoes back the same indices, recomputes RMSE/MAE/R2
from `test_predictions.csv`, and writes `results.json` and `results.md` (mean +- SD over seeds, ddof=1, and
wall time per data set: the whole `chemprop train` process, and the part after its imports, from its log).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) - ", re.M)


def run_one(chemprop: str, csv: Path, smiles_cols: list[str], targets: list[str], task: str, split: dict, seed: int,
            out: Path, threads: int, extra: list[str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "split.json").write_text(json.dumps([split]))
    metrics = ["rmse", "mae", "r2"] if task == "regression" else ["roc", "prc"]
    cmd = [chemprop, "train", "--data-path", str(csv), "-s", *smiles_cols, "--target-columns", *targets,
           "--splits-file", str(out / "split.json"), "--output-dir", str(out / "run"),
           "--metrics", *metrics, "--num-workers", "0",
           "--data-seed", str(seed), "--pytorch-seed", str(seed), *extra]
    if task != "regression":
        cmd += ["--task-type", "classification"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    (out / "chemprop.log").write_text(log)
    if proc.returncode:
        raise SystemExit(f"chemprop failed (rc {proc.returncode}), see {out / 'chemprop.log'}")
    sizes = re.search(r"train/val/test split_0 sizes: \[(\d+), (\d+), (\d+)\]", log)
    want = [len(split["train"]), len(split["val"]), len(split["test"])]
    if sizes is None or [int(x) for x in sizes.groups()] != want:
        raise SystemExit(f"chemprop split sizes {sizes and sizes.groups()} != ours {want}")
    if json.loads((out / "run" / "splits.json").read_text()) != [split]:
        raise SystemExit("chemprop's splits.json differs from the split given")
    # recompute the test metrics from chemprop's predictions (rows in test-index order)
    frame = pd.read_csv(csv)
    pred = pd.read_csv(out / "run" / "model_0" / "test_predictions.csv")
    truth = frame.iloc[split["test"]]
    if pred[smiles_cols].values.tolist() != truth[smiles_cols].values.tolist():
        raise SystemExit("test_predictions.csv rows do not match the test indices")
    if task == "regression":
        y, p = truth[targets[0]].to_numpy(float), pred[targets[0]].to_numpy(float)
        ours = {"rmse": float(np.sqrt(np.mean((y - p) ** 2))), "mae": float(np.mean(np.abs(y - p))),
                "r2": float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))}
    else:
        from sklearn.metrics import average_precision_score, roc_auc_score

        per = {}
        for t in targets:  # the same metrics as ours: per target over its tested molecules, then the mean
            y, p = truth[t].to_numpy(float), pred[t].to_numpy(float)
            ok = ~np.isnan(y)
            if len(np.unique(y[ok])) == 2:
                per[t] = {"roc_auc": float(roc_auc_score(y[ok], p[ok])),
                          "pr_auc": float(average_precision_score(y[ok], p[ok]))}
        ours = {k: float(np.mean([m[k] for m in per.values()])) for k in ("roc_auc", "pr_auc")} | {"per_target": per}
    logged = {k: float(v) for k, v in re.findall(r"test/(rmse|mae|r2|roc|prc): ([-\d.eE+]+)", log)}
    stamps = [datetime.fromisoformat(s) for s in STAMP.findall(log)]
    return {"seed": seed, **ours, "chemprop_logged": logged, "sizes": want, "wall_s": round(wall, 2),
            "in_process_s": (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chemprop", default="/tmp/chemprop-venv/bin/chemprop", help="chemprop executable (own venv)")
    ap.add_argument("--splits-dir", default="/tmp/bench_gbm", type=Path, help="folder holding splits_<dataset>.json")
    ap.add_argument("--out", default="/tmp/bench_chemprop", type=Path)
    ap.add_argument("--datasets", default="esol,freesolv,cheruvu_logkp")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads for chemprop (default 1, as ours)")
    ap.add_argument("--extra", default="", help="extra chemprop train arguments, one string")
    args = ap.parse_args()
    if shutil.which(args.chemprop) is None or not args.splits_dir.is_dir():
        # `python -m benchmarks` runs every module without arguments; without chemprop there is nothing to do
        print(f"skipped: no chemprop at {args.chemprop} or no split files in {args.splits_dir} (see --help)")
        return
    from vai.verticals.discovery.benchmark import DATASETS, benchmark_csv

    version = subprocess.run([args.chemprop, "--version"], capture_output=True, text=True).stdout.strip().split()[-1:]
    results = {"chemprop": version[0] if version else "unknown", "threads": args.threads, "extra": args.extra,
               "load_before": os.getloadavg(), "datasets": {}}
    for name in args.datasets.split(","):
        spec = DATASETS[name]
        targets, task = spec.targets, spec.task
        smiles_cols = [spec.smiles_col] + ([spec.solvent_col] if spec.solvent_col else [])  # chemprop: 2 molecules
        # the rows the split indices refer to, as the benchmark wrote them beside the splits
        csv = benchmark_csv(args.splits_dir, name)
        if not csv.exists():
            raise SystemExit(f"{csv} missing: rerun benchmarks.discovery_chemprop_compare with --out {args.splits_dir}")
        splits = json.loads((args.splits_dir / f"splits_{name}.json").read_text())
        per_seed = []
        for seed, split in enumerate(splits):
            r = run_one(args.chemprop, csv, smiles_cols, targets, task, split, seed, args.out / name / f"seed{seed}",
                        args.threads, args.extra.split())
            print(name, json.dumps(r), flush=True)
            per_seed.append(r)
        keys = ("rmse", "mae", "r2") if task == "regression" else ("roc_auc", "pr_auc")
        agg = {k: {"mean": float(np.mean([r[k] for r in per_seed])),
                   "sd": float(np.std([r[k] for r in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0}
               for k in keys}
        results["datasets"][name] = {"task": task, "per_seed": per_seed, "metrics": agg,
                                     "wall_s": round(sum(r["wall_s"] for r in per_seed), 1),
                                     "in_process_s": sum(r["in_process_s"] or 0 for r in per_seed)}
    results["load_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    lines = [f"chemprop {results['chemprop']} defaults, threads {args.threads}, extra {args.extra!r}; load average "
             f"{results['load_before'][0]:.1f} before / {results['load_after'][0]:.1f} after", "",
             "| data set | RMSE or ROC-AUC | MAE or PR-AUC | R2 | wall time (s, all seeds, whole process) | after imports (s) |",
             "|---|---|---|---|---|---|"]
    for name, r in results["datasets"].items():
        m = r["metrics"]
        keys = ("rmse", "mae", "r2") if r["task"] == "regression" else ("roc_auc", "pr_auc")
        cells = [f"{m[k]['mean']:.3f} +- {m[k]['sd']:.3f}" for k in keys] + ([] if r["task"] == "regression" else ["-"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['wall_s']} | {r['in_process_s']:.0f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
