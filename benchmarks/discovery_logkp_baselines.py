"""Skin permeability log Kp: the classic physicochemical baselines on the benchmark's own splits.

    python -m benchmarks.discovery_chemprop_compare --model gbm --datasets cheruvu_logkp --out /tmp/bench_gbm
    python -m benchmarks.discovery_logkp_baselines --splits-dir /tmp/bench_gbm

A formulation chemist's first estimate of log Kp is the Potts & Guy (1992) equation,
log Kp [cm/s] = -6.3 + 0.71 log Kow - 0.0061 MW, i.e. -2.744 + 0.71 log Kow - 0.0061 MW in cm/h (Cheruvu's unit).
Reported twice on each test split: with the published coefficients (no fitting) and refitted on that split's
train+val rows (least squares on the same two inputs). log Kow is RDKit's Crippen logP (no measured values).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def potts_guy_cm_h(logp: np.ndarray, mw: np.ndarray) -> np.ndarray:
    return -6.3 + np.log10(3600.0) + 0.71 * logp - 0.0061 * mw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits-dir", type=Path, default=Path("/tmp/bench_gbm"),
                    help="folder with data_cheruvu_logkp.csv and splits_cheruvu_logkp.json")
    args = ap.parse_args()
    csv, splits_file = args.splits_dir / "data_cheruvu_logkp.csv", args.splits_dir / "splits_cheruvu_logkp.json"
    if not csv.exists() or not splits_file.exists():
        # `python -m benchmarks` runs every module without arguments; without the split files there is nothing to do
        print(f"skipped: no {csv.name} / {splits_file.name} in {args.splits_dir} (see --help)")
        return
    from rdkit.Chem import Crippen, Descriptors

    from vai.verticals.discovery.benchmark import DATASETS
    from vai.verticals.discovery.chem import standardize_frame, to_mols

    spec = DATASETS["cheruvu_logkp"]
    frame = pd.read_csv(csv)
    mols = to_mols(standardize_frame(frame, spec.smiles_col)["smiles_std"].tolist())
    logp = np.array([Crippen.MolLogP(m) for m in mols])
    mw = np.array([Descriptors.MolWt(m) for m in mols])
    y = frame[spec.targets[0]].to_numpy(float)
    fixed = potts_guy_cm_h(logp, mw)
    rows = []
    for seed, split in enumerate(json.loads(splits_file.read_text())):
        te, fit = np.asarray(split["test"]), np.asarray(split["train"] + split["val"])
        X = np.c_[logp, mw, np.ones(len(y))]
        coef = np.linalg.lstsq(X[fit], y[fit], rcond=None)[0]
        for name, pred in (("Potts-Guy, published coefficients", fixed), ("Potts-Guy form, refitted", X @ coef)):
            err = pred[te] - y[te]
            rows.append({"seed": seed, "baseline": name, "rmse": float(np.sqrt(np.mean(err ** 2))),
                         "mae": float(np.mean(np.abs(err))),
                         "r2": float(1 - np.sum(err ** 2) / np.sum((y[te] - y[te].mean()) ** 2))})
    res = pd.DataFrame(rows)
    print(res.pivot(index="seed", columns="baseline", values="rmse").round(3).to_string())
    agg = res.groupby("baseline")[["rmse", "mae", "r2"]].agg(["mean", "std"]).round(3)
    print(agg.to_string())


if __name__ == "__main__":
    main()
