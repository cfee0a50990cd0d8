"""Side-by-side benchmark on ESOL, FreeSolv and Cheruvu log Kp (and Tox21's twelve assays as a multi-task
classification check): chemprop-style `scaffold_balanced` 80/10/10 splits for seeds 0, 1, 2, written to
`splits_<dataset>.json` (chemprop's `--splits-file` format: row indices of `data_<dataset>.csv`, written beside
it) so another tool runs on exactly the same splits; RMSE/MAE/R2 (classification: ROC-AUC/PR-AUC, each the
mean over the targets) as mean +- SD and wall time per dataset.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.io import atomic_write_json, atomic_write_text

class BenchmarkSet(NamedTuple):
    """A benchmark data set under <data dir>/discovery: one file (split here, scaffold-balanced per seed), or
    the train/val/test files of a published split (the same split for every seed)."""
    files: tuple[str, ...]
    smiles_col: str
    targets: list[str]
    task: str
    solvent_col: str | None = None  # a second molecule per row (UV lambda max: the solvent)


DATASETS = {
    "esol": BenchmarkSet(("moleculenet/esol.csv",), "smiles", ["logSolubility"], "regression"),
    "freesolv": BenchmarkSet(("moleculenet/freesolv.csv",), "smiles", ["expt"], "regression"),
    "cheruvu_logkp": BenchmarkSet(("skin_permeability/cheruvu2022_logkp_by_smiles.derived.csv",), "smiles",
                                  ["logKp_cm_h"], "regression"),
    # not in issue 4's comparison: a multi-task classification check (12 assays, untested pairs blank)
    "tox21": BenchmarkSet(("toxicity/tox21.csv.gz",), "smiles",
                          ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
                           "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"], "classification"),
    # not in issue 4's comparison: the published Deep4Chem scaffold split (Greenman et al. 2022), solvent as a
    # second molecule; chemprop takes ~1 h on one thread here
    "uv_lambda_max": BenchmarkSet(tuple(f"uv_vis/deep4chem_lambda_max_abs_scaffold_{part}.csv"
                                        for part in ("train", "val", "test")), "smiles", ["peakwavs_max"],
                                  "regression", solvent_col="solvent"),
}
REGRESSION_METRICS = ("rmse", "mae", "r2", "interval_coverage")
CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "set_coverage")  # each the mean over the targets
# Chemprop 2.3.1 with defaults, measured on these identical splits on the 2-core box (2026-12-01,
# benchmarks/discovery_chemprop_run.py, one thread; see benchmarks/results/discovery.md).
CHEMPROP_REFERENCE = {"esol": {"rmse": (0.845, 0.163)}, "freesolv": {"rmse": (2.280, 0.416)},
                      "cheruvu_logkp": {"rmse": (0.650, 0.117)},
                      "uv_lambda_max": {"rmse": (38.0, 0.0)}}  # published split, seed 0 only (2026-12-02)


@dataclass
class BenchmarkTable:
    frame: pd.DataFrame            # the rows both tools see, as written to `csv`
    smiles: list[str]              # their standardised SMILES
    solvents: list[str] | None     # the second molecule per row, for a set with a solvent column
    csv: Path                      # what chemprop reads; split indices are its row numbers
    published_split: dict | None   # train/val/test row numbers of a published split, else None


def benchmark_table(data_dir: Path, name: str, out: Path) -> BenchmarkTable:
    """The data set's rows both tools see: those that pass standardisation (and have a solvent, where one is
    needed), in file order, written to `<out>/data_<name>.csv`. Split indices are row numbers of that file,
    so chemprop (which reads it) and we train and test on exactly the same molecules."""
    from .chem import standardize_frame

    if name not in DATASETS:
        raise VaiError(f"unknown benchmark data set {name!r}; choose from {', '.join(DATASETS)}")
    spec = DATASETS[name]
    base = data_dir / "discovery" if (data_dir / "discovery").is_dir() else data_dir
    parts = []
    for rel in spec.files:
        if not (base / rel).exists():
            raise VaiError(f"{base / rel}: benchmark data file missing")
        parts.append(pd.read_csv(base / rel, encoding_errors="replace"))
    part = np.concatenate([np.full(len(f), i) for i, f in enumerate(parts)])
    frame = pd.concat(parts, ignore_index=True)
    std = standardize_frame(frame, spec.smiles_col)
    ok = std["error"].to_numpy() == ""
    if spec.solvent_col:
        ok &= frame[spec.solvent_col].notna().to_numpy()
    frame, part = frame[ok].reset_index(drop=True), part[ok]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(benchmark_csv(out, name), frame.to_csv(index=False))
    published = None
    if len(spec.files) == 3:
        published = {k: np.flatnonzero(part == i).tolist() for i, k in enumerate(("train", "val", "test"))}
    return BenchmarkTable(frame, std["smiles_std"][ok].tolist(),
                          frame[spec.solvent_col].astype(str).tolist() if spec.solvent_col else None,
                          benchmark_csv(out, name), published)


def benchmark_csv(out: Path, name: str) -> Path:
    """Where `benchmark_table` writes the rows the split indices of `<out>/splits_<name>.json` refer to."""
    return out / f"data_{name}.csv"


def make_splits(smiles: list[str], seeds) -> list[dict]:
    """chemprop-style scaffold-balanced 80/10/10 splits of standardised SMILES, one per seed."""
    from .splits import scaffold_split

    splits = []
    for seed in seeds:
        tr, va, te = scaffold_split(smiles, (0.8, 0.1, 0.1), seed)
        splits.append({"train": list(map(int, tr)), "val": list(map(int, va)), "test": list(map(int, te))})
    return splits


def run_benchmark(data_dir: Path, out: Path, datasets=("esol", "freesolv", "cheruvu_logkp"), seeds=(0, 1, 2),
                  model: str = "gbm", epochs: int = 60, **model_kwargs) -> dict:
    from .models import PropertyPredictor

    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
                     "model": model, "epochs": epochs, "seeds": list(seeds), "datasets": {}}
    summary = {}
    for name in datasets:
        t0 = time.perf_counter()
        table = benchmark_table(data_dir, name, out)
        smiles, solvents, targets, task = table.smiles, table.solvents, DATASETS[name].targets, DATASETS[name].task
        splits = [table.published_split] * len(seeds) if table.published_split else make_splits(smiles, seeds)
        atomic_write_text(out / f"splits_{name}.json", json.dumps(splits))
        y = table.frame[targets].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        kw = dict(targets=targets, epochs=epochs, solvent=solvents is not None, **model_kwargs)
        features = PropertyPredictor(model, task, **kw).featurize(smiles, solvents, full=True)
        featurize_s = time.perf_counter() - t0
        keys = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
        per_seed = []
        for seed, split in zip(seeds, splits):
            ts = time.perf_counter()
            p = PropertyPredictor(model, task, seed=seed, **kw)
            idx = {k: np.asarray(v, dtype=int) for k, v in split.items()}
            m = p.fit(smiles, y, train_idx=idx["train"], val_idx=idx["val"], test_idx=idx["test"], solvents=solvents,
                      features=features)
            row = {"seed": seed, **{k: float(np.nanmean([m["test"][t].get(k, np.nan) for t in targets])) for k in keys}}
            if len(targets) > 1:
                row["per_target"] = {t: {k: m["test"][t].get(k) for k in keys} for t in targets}
            per_seed.append(row | {"seconds": time.perf_counter() - ts})
        wall = time.perf_counter() - t0
        agg = {k: {"mean": float(np.mean([r[k] for r in per_seed])), "sd": float(np.std([r[k] for r in per_seed], ddof=1))
                   if len(per_seed) > 1 else 0.0} for k in keys}
        results["datasets"][name] = {"n": len(smiles), "task": task, "per_seed": per_seed, "metrics": agg,
                                     "wall_s": round(wall, 1), "featurize_s": round(featurize_s, 1),
                                     "chemprop_reference": CHEMPROP_REFERENCE.get(name)}
        summary[name] = {k: f"{v['mean']:.3f} +- {v['sd']:.3f}" for k, v in agg.items()} | {"wall_s": round(wall, 1)}
        results["summary"] = summary
        # written after every data set, so a long run that is stopped keeps what it finished
        atomic_write_json(out / "results.json", results)
        atomic_write_text(out / "results.md", results_markdown(results))
    results["summary"] = summary
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", results_markdown(results))
    return results


def results_markdown(results: dict) -> str:
    lines = [f"Model: {results['model']} (D-MPNN epochs {results['epochs']}); seeds {results['seeds']}; "
             f"machine: {results['machine']}", ""]
    reg = {n: r for n, r in results["datasets"].items() if r.get("task", "regression") == "regression"}
    cls = {n: r for n, r in results["datasets"].items() if n not in reg}
    if reg:
        lines += ["| data set | n | RMSE | MAE | R2 | 90% interval coverage | wall time (s, all seeds) | chemprop 2.3.1 RMSE (same splits) |",
                  "|---|---|---|---|---|---|---|---|"]
    for name, r in reg.items():
        m = r["metrics"]
        ref = r.get("chemprop_reference")
        ref_txt = f"{ref['rmse'][0]:.2f} +- {ref['rmse'][1]:.2f}" if ref else "not measured"
        lines.append(f"| {name} | {r['n']} | {m['rmse']['mean']:.3f} +- {m['rmse']['sd']:.3f} | "
                     f"{m['mae']['mean']:.3f} +- {m['mae']['sd']:.3f} | {m['r2']['mean']:.3f} +- {m['r2']['sd']:.3f} | "
                     f"{m['interval_coverage']['mean']:.2f} | {r['wall_s']} | {ref_txt} |")
    if cls:
        lines += ["", "| data set | n | ROC-AUC (mean over targets) | PR-AUC | prediction-set coverage (90%) | "
                      "wall time (s, all seeds) |", "|---|---|---|---|---|---|"]
    for name, r in cls.items():
        m = r["metrics"]
        lines.append(f"| {name} | {r['n']} | " + " | ".join(f"{m[k]['mean']:.3f} +- {m[k]['sd']:.3f}"
                                                          for k in CLASSIFICATION_METRICS) + f" | {r['wall_s']} |")
    return "\n".join(lines) + "\n"
