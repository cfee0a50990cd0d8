"""The property zoo: one model per cosmetic-relevant property, trained and evaluated on the real data sets
under `<data dir>/discovery/`, each with a model card (data, split, metrics as mean +- SD over seeds).

Trained models live under `<home>/models/discovery/zoo/<property>/model` (local, never in git).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.io import atomic_write_json, atomic_write_text, read_json
from vai.core.progress import get_logger

log = get_logger("vai.discovery.zoo")


@dataclass
class PropertySpec:
    name: str
    description: str
    files: list[str]               # relative to <data dir>/discovery
    smiles_col: str
    target_col: str | list[str]    # one column, or several for a multi-task model (missing labels allowed)
    task: str = "regression"
    unit: str = ""
    model: str = "gbm"
    split: str = "scaffold"
    solvent_col: str | None = None
    given_split: bool = False      # files are train/val/test of a published split
    reference: str = ""
    published: str = ""            # published figure to compare with, with its source
    model_kwargs: dict = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        return [self.target_col] if isinstance(self.target_col, str) else list(self.target_col)

TOX21_ASSAYS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE",
                "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


PROPERTIES: dict[str, PropertySpec] = {p.name: p for p in [
    PropertySpec("solubility_esol", "aqueous solubility log S (mol/L), ESOL / Delaney 2004", ["moleculenet/esol.csv"],
                 "smiles", "logSolubility", unit="log10(mol/L)", model="ensemble",
                 reference="Delaney, J. Chem. Inf. Comput. Sci. 2004, 44, 1000 (via MoleculeNet)",
                 published="chemprop 2.3.1 defaults on this machine, our scaffold-balanced 80/10/10 splits, seeds 0-2: "
                           "RMSE 0.845 +- 0.163 (benchmarks/results/discovery.md)"),
    PropertySpec("solubility_aqsoldb", "aqueous solubility log S (mol/L), AqSolDB", ["solubility/aqsoldb_data_curated.csv"],
                 "SMILES", "Solubility", unit="log10(mol/L)", model="gbm",
                 # counter-ions kept: a sodium and a zinc salt of one acid differ by orders of magnitude in
                 # solubility (benchmarks/results/discovery.md, "Salts")
                 model_kwargs={"gbm_members": 2, "keep_salts": True},
                 reference="Sorkun et al., Sci. Data 2019, 6, 143"),
    PropertySpec("skin_permeability_logkp", "human skin permeability log Kp (cm/h), Cheruvu 2022",
                 ["skin_permeability/cheruvu2022_logkp_by_smiles.derived.csv"], "smiles", "logKp_cm_h",
                 unit="log10(cm/h)", model="gbm", split="scaffold",
                 reference="Cheruvu et al., Data in Brief 2022, 41, 108242"),
    PropertySpec("skin_sensitization", "human skin sensitiser (1) or not (0), HuSSPred",
                 ["skin_sensitization/husspred_human_ss_binary.derived.csv"], "smiles", "label",
                 task="classification", model="gbm", split="random",
                 # the alerts are for the chemist (the mechanism, named and drawn); as inputs they were neutral
                 # (ROC-AUC 0.725 vs 0.717 over seeds 0-9, SD 0.15; benchmarks/results/discovery.md)
                 model_kwargs={"alerts": True},
                 reference="Scheufen Tieghi et al., Toxics 2024, 12, 803"),
    PropertySpec("skin_sensitization_potency", "human skin sensitisation potency, GHS sub-category: 0 non-sensitiser, "
                 "1 = 1B (weaker), 2 = 1A (strong), HuSSPred",
                 ["skin_sensitization/husspred_human_ss_ghs_multiclass.derived.csv"], "smiles", "label",
                 task="classification", model="gbm", split="random",
                 # balanced: the strong sensitisers (1A) are the rare class that matters most; over seeds 0-9
                 # balanced accuracy 0.51 vs 0.39 unweighted (benchmarks/results/discovery.md)
                 model_kwargs={"alerts": True, "balanced": True},
                 # the file's class codes are not documented; 2 = 1A is read from the data: DNCB,
                 # p-phenylenediamine, methylisothiazolinone and methyl heptine carbonate are 2, citral and
                 # benzocaine 1 (1A / 1B under CLP)
                 reference="Scheufen Tieghi et al., Toxics 2024, 12, 803 (GHS sub-categorisation data set)",
                 published="Class codes read from the data (see zoo.py): 2 = 1A, 1 = 1B. 158 molecules, so the "
                           "per-class figures rest on a handful of test molecules per seed."),
    PropertySpec("uv_lambda_max", "UV-vis absorption maximum (nm) with the solvent as a second input, Deep4Chem",
                 ["uv_vis/deep4chem_lambda_max_abs_scaffold_train.csv", "uv_vis/deep4chem_lambda_max_abs_scaffold_val.csv",
                  "uv_vis/deep4chem_lambda_max_abs_scaffold_test.csv"], "smiles", "peakwavs_max", unit="nm",
                 model="gbm", solvent_col="solvent", given_split=True, model_kwargs={"gbm_members": 1},
                 reference="Joung et al., Sci. Data 2020, 7, 295; scaffold split of Greenman et al., Chem. Sci. 2022",
                 published="Same scaffold split as Greenman et al., Chem. Sci. 2022 (chemprop-based models); their "
                           "figures are not reproduced or re-measured here: compare with the paper's tables."),
    PropertySpec("logd_lipophilicity", "octanol/water logD at pH 7.4, AstraZeneca ChEMBL set",
                 ["moleculenet/lipophilicity.csv"], "smiles", "exp", unit="log units", model="gbm",
                 model_kwargs={"gbm_members": 2},
                 reference="ChEMBL CHEMBL3301361 via MoleculeNet (Wu et al. 2018)"),
    PropertySpec("toxicity_tox21", "Tox21 in-vitro assays, active (1) or not (0): androgen / estrogen receptor, "
                 "aromatase, AhR, PPAR-gamma (endocrine activity) and five stress-response pathways; one multi-task "
                 "model, untested pairs left out of the loss", ["toxicity/tox21.csv.gz"], "smiles", TOX21_ASSAYS,
                 task="classification", model="gbm", split="scaffold", model_kwargs={"gbm_members": 1},
                 reference="Tox21 Data Challenge 2014 (NIH NCATS, EPA, NTP), via MoleculeNet / DeepChem (Wu et al., "
                           "Chem. Sci. 2018, 9, 513)",
                 published="MoleculeNet's Tox21 figures are on a random split (mean ROC-AUC over the 12 assays); a "
                           "scaffold split is harder, so they are not comparable and none is re-measured here."),
]}


def _read(spec: PropertySpec, data_dir: Path) -> tuple[pd.DataFrame, dict | None, list[Path]]:
    base = data_dir / "discovery" if (data_dir / "discovery").is_dir() else data_dir
    paths = [base / f for f in spec.files]
    for p in paths:
        if not p.exists():
            raise VaiError(f"{spec.name}: data file {p} is missing (expected under <data dir>/discovery/)")
    frames = [pd.read_csv(p, encoding_errors="replace") for p in paths]
    if not spec.given_split:
        return frames[0], None, paths
    counts = [len(f) for f in frames]
    frame = pd.concat(frames, ignore_index=True)
    return frame, {"sizes": counts}, paths


def _given_indices(data: pd.DataFrame, frame_sizes: list[int], original_index: np.ndarray) -> dict[str, np.ndarray]:
    bounds = np.cumsum([0] + frame_sizes)
    out = {}
    for name, lo, hi in zip(("train", "val", "test"), bounds[:-1], bounds[1:]):
        out[name] = np.flatnonzero((original_index >= lo) & (original_index < hi))
    return out


def _mean_sd(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None and not np.isnan(x)], dtype=float)
    if not len(v):
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def train_property(spec: PropertySpec, data_dir: Path, out_dir: Path, seeds=(0, 1, 2), model: str | None = None,
                   epochs: int | None = None) -> dict[str, Any]:
    from vai.core.artifacts import fingerprint_files

    from .models import PropertyPredictor
    from .splits import make_split
    from .workflows import prepare_training_frame

    t0 = time.perf_counter()
    frame, given, paths = _read(spec, data_dir)
    frame["_orig_row"] = np.arange(len(frame))
    targets = spec.targets
    data, report = prepare_training_frame(frame, spec.smiles_col, targets, spec.name, spec.solvent_col,
                                          keep_salts=bool(spec.model_kwargs.get("keep_salts")))
    smiles = data["smiles_std"].tolist()
    solvents = data[spec.solvent_col].astype(str).tolist() if spec.solvent_col else None
    kind = model or spec.model
    kwargs = dict(spec.model_kwargs)
    if epochs:
        kwargs["epochs"] = epochs
    probe = PropertyPredictor(kind, spec.task, targets=targets, solvent=bool(spec.solvent_col), **kwargs)
    feat = probe.featurize(smiles, solvents)
    y = data[targets].to_numpy(dtype=float)
    per_seed = []
    saved = None
    fingerprint = fingerprint_files(paths)
    for seed in seeds:
        if given:
            idx = _given_indices(data, given["sizes"], data["_orig_row"].to_numpy())
            tr, va, te = idx["train"], idx["val"], idx["test"]
        else:
            tr, va, te = make_split(spec.split, smiles, (0.8, 0.1, 0.1), seed)
        pred = PropertyPredictor(kind, spec.task, targets=targets, seed=seed, solvent=bool(spec.solvent_col), **kwargs)
        ts = time.perf_counter()
        metrics = pred.fit(smiles, y, train_idx=tr, val_idx=va, test_idx=te, solvents=solvents, features=feat)
        metrics["seconds"] = round(time.perf_counter() - ts, 1)
        metrics["seed"] = seed
        per_seed.append(metrics)
        metrics["headline"] = _headline_metrics(metrics["test"], targets)
        log.info("%s seed %d: %s", spec.name, seed, metrics["headline"])
        if saved is None:
            pred.metrics = {**metrics, "data": report}
            saved = pred.save(out_dir / spec.name / "model", data_fingerprint=fingerprint)
    keys = sorted({k for m in per_seed for k, v in m["headline"].items() if isinstance(v, (int, float))})
    keys = [k for k in keys if k not in ("n", "n_targets")]
    summary = {k: _mean_sd([m["headline"].get(k) for m in per_seed]) for k in keys}
    per_target = {t: {k: _mean_sd([m["test"][t].get(k) for m in per_seed]) for k in keys}
                  for t in targets} if len(targets) > 1 else None
    card = {"property": spec.name, "description": spec.description, "task": per_seed[0]["task"], "unit": spec.unit,
            "model": kind, "model_options": dict(kwargs), "split": "published split (given files)" if given else f"{spec.split} 80/10/10",
            "seeds": list(seeds), "data": {"files": spec.files, **report}, "reference": spec.reference,
            "published_comparison": spec.published, "targets": targets, "metrics_mean_sd": summary,
            "metrics_per_target_mean_sd": per_target,
            "per_seed": [{"seed": m["seed"], "test": m["headline"], "n_train": m["n_train"],
                          "n_val": m["n_val"], "n_test": m.get("n_test"), "seconds": m["seconds"]} for m in per_seed],
            "seconds_total": round(time.perf_counter() - t0, 1), "model_dir": str(saved),
            "data_paths": [str(p) for p in paths], "data_fingerprint": fingerprint}
    headline = ("rmse", "mae", "r2", "interval_coverage") if per_seed[0]["task"] == "regression" else \
        ("roc_auc", "pr_auc", "balanced_accuracy", "macro_f1", "accuracy", "set_coverage")
    card["summary"] = {k: f"{summary[k]['mean']:.3f} +- {summary[k]['sd']:.3f}" for k in headline if k in summary}
    atomic_write_json(out_dir / spec.name / "card.json", card)
    atomic_write_text(out_dir / spec.name / "MODEL_CARD.md", model_card_markdown(card))
    return card


def _headline_metrics(test: dict[str, dict], targets: list[str]) -> dict[str, Any]:
    """One target's test metrics, or for several the mean over targets of each metric (macro average; a target
    without the metric on this split, e.g. ROC-AUC with one class in the test set, is left out of its mean)."""
    if len(targets) == 1:
        return test[targets[0]]
    keys = {k for t in targets for k, v in test[t].items() if isinstance(v, (int, float)) and v is not None}
    out: dict[str, Any] = {}
    for k in sorted(keys):
        vals = [test[t][k] for t in targets if isinstance(test[t].get(k), (int, float))]
        out[k] = int(sum(vals)) if k == "n" else float(np.nanmean(vals))
    out["n_targets"] = len(targets)
    return out


def model_card_markdown(card: dict) -> str:
    lines = [f"# Model card: {card['property']}", "", card["description"], "",
             f"- Model: {card['model']} ({card['task']}); unit: {card['unit'] or '-'}"
             + (f"; options: {', '.join(f'{k}={v}' for k, v in card['model_options'].items())}"
                if card.get("model_options") else ""),
             f"- Data: {', '.join(card['data']['files'])}; rows {card['data']['rows']}, used {card['data']['used']}, "
             f"unparsable {card['data']['bad_molecules']}, unlabelled {card['data']['no_label']}",
             f"- Split: {card['split']}; seeds {card['seeds']} (each seed: its own split and model seed)",
             f"- Reference: {card['reference']}", "", "## Held-out test metrics (mean +- SD over seeds)", "",
             f"| metric{' (mean over the targets)' if card.get('metrics_per_target_mean_sd') else ''} | mean | SD |",
             "|---|---|---|"]
    for k, v in card["metrics_mean_sd"].items():
        lines.append(f"| {k} | {v['mean']:.4f} | {v['sd']:.4f} |")
    if card.get("metrics_per_target_mean_sd"):
        per = card["metrics_per_target_mean_sd"]
        keys = [k for k in ("roc_auc", "pr_auc", "balanced_accuracy", "rmse", "r2", "interval_coverage", "set_coverage")
                if any(k in m for m in per.values())]
        lines += ["", "Per target (mean +- SD over seeds):", "", "| target | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]
        for t, m in per.items():
            lines.append(f"| {t} | " + " | ".join(f"{m[k]['mean']:.3f} +- {m[k]['sd']:.3f}" if k in m else "-"
                                                  for k in keys) + " |")
    if card["task"] == "regression":
        lines += ["", "Intervals: split-conformal at 90% nominal, calibrated on the validation split; "
                  "`interval_coverage` is measured on the test split.",
                  "Applicability domain: nearest-neighbour Tanimoto to training >= the 5th percentile of validation "
                  "molecules; `rmse_in_domain` / `rmse_out_of_domain` show whether it separates errors.", ""]
    else:
        lines += ["", "Prediction sets: split-conformal (LAC) at 90% nominal, calibrated on the validation split; "
                  "`set_coverage` is measured on the test split. `accuracy` and `balanced_accuracy` use a 0.5 "
                  "probability cut; ROC-AUC and PR-AUC do not depend on a cut (PR-AUC's chance level is the "
                  "positive rate).",
                  "Applicability domain: nearest-neighbour Tanimoto to training >= the 5th percentile of validation "
                  "molecules (`in_domain` in every prediction).", ""]
    if (card.get("model_options") or {}).get("alerts"):
        lines += ["Structural alerts: the model takes 33 skin-sensitisation protein-reactivity alerts "
                  "(`verticals/discovery/alerts.py`) as inputs, and every prediction names the ones a molecule "
                  "raises (`alerts`, e.g. `aldehyde [Schiff base former]`). An alert is evidence of a mechanism, "
                  "not a verdict.", ""]
    if card.get("published_comparison"):
        lines += ["## Comparison", "", card["published_comparison"], ""]
    lines += ["## Limits", "", "Trained on public literature data; predictions outside the applicability domain "
              "(in_domain = False) are extrapolations. Not a safety assessment.", ""]
    return "\n".join(lines)


def _zoo_item(name: str, *, data_dir: str, out_dir: str, seeds: list[int], model: str | None,
              epochs: int | None) -> dict[str, Any]:
    """One property of the zoo as a batch-job item: what the marker keeps to tell, next run, whether it is done."""
    card = train_property(PROPERTIES[name], Path(data_dir), Path(out_dir), seeds, model, epochs)
    return {"summary": card["summary"], "card": str(Path(out_dir) / name / "card.json"),
            "model_dir": card["model_dir"], "data_files": card["data_paths"],
            "data_fingerprint": card["data_fingerprint"]}


def _zoo_item_complete(result: dict[str, Any]) -> bool:
    """Its card and model are still there and its data files are the ones it was trained on."""
    from vai.core.artifacts import fingerprint_files

    return (Path(result["card"]).exists() and (Path(result["model_dir"]) / "config.json").exists()
            and fingerprint_files(result["data_files"]) == result["data_fingerprint"])


def run_zoo(data_dir: Path, out_dir: Path, only=None, seeds=(0, 1, 2), model=None, epochs=None, *,
            retrain: bool = False, store_run=None):
    """Train the zoo as a batch job: a property whose data is missing or whose training fails is reported and
    the others go on; a re-run skips the properties already trained with the same settings on the same data
    (`retrain=True` trains them all again). Returns the JobResult; `.results[name]["summary"]` per property."""
    from vai import __version__
    from vai.core.jobs import run_job

    names = only or list(PROPERTIES)
    unknown = [n for n in names if n not in PROPERTIES]
    if unknown:
        raise VaiError(f"unknown zoo properties {unknown}; choose from {', '.join(PROPERTIES)}")
    kwargs = {"data_dir": str(data_dir), "out_dir": str(out_dir), "seeds": [int(s) for s in seeds], "model": model,
              "epochs": epochs}
    return run_job(_zoo_item, names, out_dir=out_dir, fn_kwargs=kwargs, desc="zoo properties",
                   settings={**kwargs, "vai": __version__}, complete=_zoo_item_complete, redo=retrain,
                   store_run=store_run)


def default_zoo_dir() -> Path:
    from vai.core.settings import get_settings

    return get_settings().models_dir / "discovery" / "zoo"


def load_zoo(zoo_dir: str | Path | None = None) -> dict[str, dict]:
    """Trained zoo models: {property: {"model_dir": path, "card": card dict}}."""
    base = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    out = {}
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        if (d / "model" / "config.json").exists():
            card = read_json(d / "card.json") if (d / "card.json").exists() else {}
            out[d.name] = {"model_dir": str(d / "model"), "card": card}
    return out
