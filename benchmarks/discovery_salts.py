"""Solubility of salts: does keeping counter-ions (`keep_salts`) help? AqSolDB, paired comparison.

    python -m benchmarks.discovery_salts [--seeds 0,1,2,3,4]

Both arms see the same rows, labels and test molecules: scaffold-balanced 80/10/10 splits computed once per seed
from the default (parent) standardisation, then the GBM of the zoo (2 LightGBM members) is trained on features
of the parent SMILES or of the salt SMILES (counter-ions kept). Test RMSE overall and on the organic-salt rows
(those whose SMILES differ between the two standardisations).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--gbm-members", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("VAI_TORCH_THREADS", "1")
    from vai.core.settings import get_settings
    from vai.verticals.discovery.chem import standardize_frame
    from vai.verticals.discovery.models import PropertyPredictor
    from vai.verticals.discovery.splits import make_split

    data = get_settings().data_dir
    path = None if data is None else data / "discovery" / "solubility" / "aqsoldb_data_curated.csv"
    if path is None or not path.exists():
        print(f"skipped: no AqSolDB at {path} (set VAI_DATA_DIR)")
        return
    frame = pd.read_csv(path)
    parent = standardize_frame(frame, "SMILES")
    salts = standardize_frame(frame, "SMILES", keep_salts=True)
    ok = ((parent["error"] == "") & (salts["error"] == "")).to_numpy()
    smiles = {"parent": parent["smiles_std"][ok].tolist(), "counter-ions kept": salts["smiles_std"][ok].tolist()}
    y = frame["Solubility"][ok].to_numpy(float)
    is_salt = np.array([a != b for a, b in zip(smiles["parent"], smiles["counter-ions kept"])])
    print(f"{ok.sum()} rows, {is_salt.sum()} whose SMILES keep counter-ions", flush=True)
    rows = []
    for arm, smi in smiles.items():
        feats = PropertyPredictor("gbm", targets=["logS"], gbm_members=args.gbm_members).featurize(smi)
        for seed in map(int, args.seeds.split(",")):
            tr, va, te = make_split("scaffold", smiles["parent"], (0.8, 0.1, 0.1), seed)
            t0 = time.perf_counter()
            p = PropertyPredictor("gbm", targets=["logS"], gbm_members=args.gbm_members, seed=seed)
            p.fit(smi, y, train_idx=tr, val_idx=va, features=feats)
            pred = p._predict_feat(PropertyPredictor._subset(feats, te))["mean"][:, 0]
            err, m = pred - y[te], is_salt[te]
            rows.append({"arm": arm, "seed": seed, "rmse": float(np.sqrt(np.mean(err ** 2))),
                         "rmse_salts": float(np.sqrt(np.mean(err[m] ** 2))) if m.any() else np.nan,
                         "rmse_other": float(np.sqrt(np.mean(err[~m] ** 2))), "n_test_salts": int(m.sum()),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    res = pd.DataFrame(rows)
    print(res.pivot(index="seed", columns="arm", values=["rmse", "rmse_salts"]).round(3).to_string())
    print(res.groupby("arm")[["rmse", "rmse_salts", "rmse_other"]].agg(["mean", "std"]).round(3).to_string())


if __name__ == "__main__":
    main()
