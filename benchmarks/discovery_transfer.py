"""Transfer to a small data set: does starting from a model trained on a large public set (`--base-model`) help?

    python -m benchmarks.discovery_transfer [--set esol|uv|tox21] [--sizes 25,50,100] [--seeds 0,1,2,3,4] [--out DIR]

The base model is the zoo's kind of GBM (2 LightGBM members) trained on AqSolDB with every molecule that is also
in ESOL removed (matched by the InChIKey's connectivity block, so stereo or salt forms of an ESOL molecule are
out too): it has never seen a test molecule. The small set is ESOL: per seed a random permutation gives a fixed
test set (the last 400 molecules), 20 validation molecules (early stopping, conformal calibration) and the first
N as training molecules. Arms, all on the same molecules: the base model alone (no ESOL data), GBM and GP trained
from scratch on the N molecules, and GBM and GP on top of the base (learning its error). Test RMSE.

`--set uv`: UV lambda-max with the solvent as a second input (Deep4Chem's published scaffold split). The base is the
zoo's kind of GBM on the scaffold-train part; the small set is the scaffold-test part (scaffolds the base never
saw: a new chromophore series measured in the usual solvents), per seed 400 test rows, 20 validation rows and N
training rows. Arms: base alone, GBM from scratch, GBM on the base (the base gets each row's solvent). Test RMSE (nm).

`--set tox21`: a classifier base for a related assay. Tox21's molecules are split once in two halves by InChIKey
connectivity block (a molecule and its salts or stereo forms on one side); the base is a GBM classifier of NR-ER
(estrogen receptor, full-length, cell assay) on the first half; the small set is NR-ER-LBD (the ligand-binding
domain assay, ~5% active) on the second half, per seed 1500 test, 100 validation and N training molecules (sizes
default 100,200,400 here). Arms: base alone (its NR-ER probability as the LBD score), GBM from scratch, GBM on the
base (boosting from its log-odds). Test ROC-AUC and PR-AUC.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def connectivity_keys(smiles: list[str]) -> list[str]:
    from rdkit import Chem

    return [Chem.MolToInchiKey(Chem.MolFromSmiles(s)).split("-")[0] for s in smiles]


def fit_arm(sub: pd.DataFrame, target: str, idx: dict, seed: int, **kw) -> tuple[dict, float]:
    """One arm on one small set: its test metrics for `target` and the fit's seconds."""
    from vai.verticals.discovery.workflows import train_table

    t = time.perf_counter()
    _, m = train_table(sub, smiles_col="smiles_std", target_cols=[target], out=None, split_indices=idx, seed=seed, **kw)
    return m["test"][target], round(time.perf_counter() - t, 1)


def rmse_row(seed: int, n: int, arm: str, res: dict, seconds: float) -> dict:
    return {"seed": seed, "n_train": n, "arm": arm, "rmse": res["rmse"], "coverage": res.get("interval_coverage"),
            "seconds": seconds}


def print_seed_line(rows: list[dict], seed: int, n: int, fmt: str) -> None:
    print(f"seed {seed} n {n}: " + ", ".join(f"{r['arm']} {r['rmse']:{fmt}}" for r in rows
                                             if r["seed"] == seed and r["n_train"] == n), flush=True)


def rmse_summary(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows as a table, and RMSE mean / SD / count per training size and arm (printed)."""
    table = pd.DataFrame(rows)
    summary = table.groupby(["n_train", "arm"])["rmse"].agg(["mean", "std", "count"]).reset_index()
    print(summary.to_string(index=False))
    return table, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,50,100")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default="/tmp/vai-bench-transfer")
    ap.add_argument("--set", choices=["esol", "uv", "tox21"], default="esol")
    args = ap.parse_args()
    os.environ.setdefault("VAI_TORCH_THREADS", "1")
    if args.set == "uv":
        return uv_transfer(args)
    if args.set == "tox21":
        return tox21_transfer(args)
    from vai.core.settings import get_settings
    from vai.verticals.discovery.chem import standardize_frame
    from vai.verticals.discovery.models import PropertyPredictor
    from vai.verticals.discovery.workflows import train_table

    data = get_settings().data_dir
    aq_path = None if data is None else data / "discovery" / "solubility" / "aqsoldb_data_curated.csv"
    esol_path = None if data is None else data / "discovery" / "moleculenet" / "esol.csv"
    if aq_path is None or not aq_path.exists() or not esol_path.exists():
        print(f"skipped: AqSolDB or ESOL not under {data} (set VAI_DATA_DIR)")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    esol = standardize_frame(pd.read_csv(esol_path), "smiles")
    esol = esol[esol["error"] == ""].reset_index(drop=True)
    aq = standardize_frame(pd.read_csv(aq_path), "SMILES")
    aq = aq[aq["error"] == ""].reset_index(drop=True)
    esol_keys = set(connectivity_keys(esol["smiles_std"].tolist()))
    overlap = np.array([k in esol_keys for k in connectivity_keys(aq["smiles_std"].tolist())])
    public = aq[~overlap].reset_index(drop=True)
    print(f"AqSolDB: {len(aq)} molecules, {int(overlap.sum())} also in ESOL removed, {len(public)} left for the base; "
          f"ESOL: {len(esol)}", flush=True)

    t0 = time.perf_counter()
    base_dir = out / "base_aqsoldb_minus_esol"
    _, base_metrics = train_table(public, smiles_col="smiles_std", target_cols=["Solubility"], out=base_dir,
                                  model="gbm", split="random", seed=0, sizes=(0.9, 0.1, 0.0), gbm_members=2)
    base_s = time.perf_counter() - t0
    print(f"base model trained in {base_s:.0f} s", flush=True)
    base = PropertyPredictor.load(base_dir)

    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(esol))
        test_rows, val_rows = order[-400:], order[-420:-400]
        test = esol.iloc[test_rows].reset_index(drop=True)
        base_pred = base.predict_smiles(test["smiles_std"].tolist(), domain=False)["prediction"].to_numpy()
        base_rmse = float(np.sqrt(np.mean((base_pred - test["logSolubility"].to_numpy()) ** 2)))
        for n in sizes:
            rows.append({"seed": seed, "n_train": n, "arm": "base alone", "rmse": base_rmse, "seconds": 0.0})
            sub = esol.iloc[np.r_[order[:n], val_rows, test_rows]].reset_index(drop=True)
            idx = {"train": list(range(n)), "val": list(range(n, n + 20)), "test": list(range(n + 20, len(sub)))}
            for kind in ("gbm", "gp"):
                for arm, extra in ((f"{kind}, scratch", {}), (f"{kind} on the base", {"base_model": base_dir})):
                    kw = {"gbm_members": 2} if kind == "gbm" else {}
                    rows.append(rmse_row(seed, n, arm, *fit_arm(sub, "logSolubility", idx, seed, model=kind,
                                                                 **kw, **extra)))
            print_seed_line(rows, seed, n, ".3f")
    _, summary = rmse_summary(rows)
    result = {"base": {"n_public": len(public), "removed_overlap": int(overlap.sum()), "seconds": round(base_s, 1),
                       "val_rmse_note": "the base's own split has no test part; its ESOL RMSE is the 'base alone' arm"},
              "rows": rows, "summary": summary.to_dict(orient="records")}
    (out / "transfer.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out / 'transfer.json'}")


def uv_transfer(args) -> None:
    from vai.core.settings import get_settings
    from vai.verticals.discovery.chem import standardize_frame
    from vai.verticals.discovery.models import PropertyPredictor
    from vai.verticals.discovery.workflows import train_table

    data = get_settings().data_dir
    folder = None if data is None else data / "discovery" / "uv_vis"
    if folder is None or not (folder / "deep4chem_lambda_max_abs_scaffold_train.csv").exists():
        print(f"skipped: Deep4Chem's scaffold split not under {data} (set VAI_DATA_DIR)")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def load(part: str) -> pd.DataFrame:
        f = standardize_frame(pd.read_csv(folder / f"deep4chem_lambda_max_abs_scaffold_{part}.csv"), "smiles")
        return f[(f["error"] == "") & f["peakwavs_max"].notna()].reset_index(drop=True)

    public, series = load("train"), load("test")
    print(f"Deep4Chem scaffold split: {len(public)} rows for the base, {len(series)} rows on unseen scaffolds",
          flush=True)
    t0 = time.perf_counter()
    base_dir = out / "base_deep4chem_scaffold_train"
    train_table(public, smiles_col="smiles_std", target_cols=["peakwavs_max"], out=base_dir, model="gbm",
                split="random", seed=0, sizes=(0.9, 0.1, 0.0), gbm_members=2, solvent_col="solvent")
    base_s = time.perf_counter() - t0
    print(f"base model trained in {base_s:.0f} s", flush=True)
    base = PropertyPredictor.load(base_dir)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        order = np.random.default_rng(seed).permutation(len(series))
        test_rows, val_rows = order[-400:], order[-420:-400]
        test = series.iloc[test_rows].reset_index(drop=True)
        base_pred = base.predict_smiles(test["smiles_std"].tolist(), test["solvent"].tolist(),
                                        domain=False)["prediction"].to_numpy()
        base_rmse = float(np.sqrt(np.mean((base_pred - test["peakwavs_max"].to_numpy()) ** 2)))
        for n in sizes:
            rows.append({"seed": seed, "n_train": n, "arm": "base alone", "rmse": base_rmse, "seconds": 0.0})
            sub = series.iloc[np.r_[order[:n], val_rows, test_rows]].reset_index(drop=True)
            idx = {"train": list(range(n)), "val": list(range(n, n + 20)), "test": list(range(n + 20, len(sub)))}
            for arm, extra in (("gbm, scratch", {}), ("gbm on the base", {"base_model": base_dir})):
                rows.append(rmse_row(seed, n, arm, *fit_arm(sub, "peakwavs_max", idx, seed, model="gbm",
                                                             gbm_members=2, solvent_col="solvent", **extra)))
            print_seed_line(rows, seed, n, ".1f")
    table, summary = rmse_summary(rows)
    cover = table.dropna(subset=["coverage"]).groupby("arm")["coverage"].agg(["min", "max"])
    print("90% interval coverage on the test rows:\n" + cover.to_string())
    result = {"base": {"n_public": len(public), "n_series": len(series), "seconds": round(base_s, 1)},
              "rows": rows, "summary": summary.to_dict(orient="records")}
    (out / "transfer_uv.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out / 'transfer_uv.json'}")


def tox21_transfer(args) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from vai.core.settings import get_settings
    from vai.verticals.discovery.chem import standardize_frame
    from vai.verticals.discovery.models import PropertyPredictor
    from vai.verticals.discovery.workflows import train_table

    data = get_settings().data_dir
    path = None if data is None else data / "discovery" / "toxicity" / "tox21.csv.gz"
    if path is None or not path.exists():
        print(f"skipped: Tox21 not under {data} (set VAI_DATA_DIR)")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in (args.sizes if args.sizes != "25,50,100" else "100,200,400").split(",")]
    tox = standardize_frame(pd.read_csv(path), "smiles")
    tox = tox[tox["error"] == ""].reset_index(drop=True)
    keys = np.array(connectivity_keys(tox["smiles_std"].tolist()))
    unique = np.array(sorted(set(keys)))
    first = set(np.random.default_rng(12345).permutation(unique)[: len(unique) // 2])
    half = np.array([k in first for k in keys])
    public = tox[half & tox["NR-ER"].notna()].reset_index(drop=True)
    series = tox[~half & tox["NR-ER-LBD"].notna()].reset_index(drop=True)
    print(f"Tox21: NR-ER base on {len(public)} molecules ({public['NR-ER'].mean():.1%} active); NR-ER-LBD series "
          f"{len(series)} molecules ({series['NR-ER-LBD'].mean():.1%} active), no connectivity block shared", flush=True)
    t0 = time.perf_counter()
    base_dir = out / "base_tox21_nr_er_half"
    train_table(public, smiles_col="smiles_std", target_cols=["NR-ER"], out=base_dir, task="classification",
                model="gbm", split="random", seed=0, sizes=(0.9, 0.1, 0.0), gbm_members=2)
    base_s = time.perf_counter() - t0
    print(f"base model trained in {base_s:.0f} s", flush=True)
    base = PropertyPredictor.load(base_dir)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        order = np.random.default_rng(seed).permutation(len(series))
        test_rows, val_rows = order[-1500:], order[-1600:-1500]
        test = series.iloc[test_rows].reset_index(drop=True)
        y_test = test["NR-ER-LBD"].to_numpy()
        p_base = base.predict_smiles(test["smiles_std"].tolist(), domain=False)["prob"].to_numpy()
        alone = {"roc_auc": float(roc_auc_score(y_test, p_base)), "pr_auc": float(average_precision_score(y_test, p_base))}
        for n in sizes:
            rows.append({"seed": seed, "n_train": n, "arm": "base alone", **alone, "seconds": 0.0})
            sub = series.iloc[np.r_[order[:n], val_rows, test_rows]].reset_index(drop=True)
            idx = {"train": list(range(n)), "val": list(range(n, n + 100)), "test": list(range(n + 100, len(sub)))}
            n_pos = int(sub["NR-ER-LBD"].iloc[:n].sum())
            for arm, extra in (("gbm, scratch", {}), ("gbm on the base", {"base_model": base_dir})):
                res, seconds = fit_arm(sub, "NR-ER-LBD", idx, seed, task="classification", model="gbm",
                                       gbm_members=2, **extra)
                rows.append({"seed": seed, "n_train": n, "n_pos_train": n_pos, "arm": arm, "roc_auc": res["roc_auc"],
                             "pr_auc": res["pr_auc"], "seconds": seconds})
            print(f"seed {seed} n {n} ({n_pos} active): " + ", ".join(
                f"{r['arm']} {r['roc_auc']:.3f}/{r['pr_auc']:.3f}" for r in rows
                if r["seed"] == seed and r["n_train"] == n), flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["n_train", "arm"])[["roc_auc", "pr_auc"]].agg(["mean", "std"]).reset_index()
    print(summary.to_string(index=False))
    result = {"base": {"n_public": len(public), "n_series": len(series), "seconds": round(base_s, 1)},
              "rows": rows, "summary": json.loads(table.groupby(["n_train", "arm"])[["roc_auc", "pr_auc"]].mean()
                                                  .reset_index().to_json(orient="records"))}
    (out / "transfer_tox21.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out / 'transfer_tox21.json'}")


if __name__ == "__main__":
    main()
