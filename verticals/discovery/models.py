"""`PropertyPredictor`: gradient-boosted trees (LightGBM on Morgan counts + RDKit descriptors), a D-MPNN,
or an ensemble of both; regression, binary or multiclass classification, multi-task with missing labels.
For regression also a Gaussian process (`gp.py`: MinMax kernel on Morgan counts + RBF on descriptors), the
small-data choice: its own predictive SD is the uncertainty.

Uncertainty: the spread of the ensemble members, split-conformal intervals calibrated on the validation
split (normalised by the spread, so intervals widen where members disagree), and an applicability domain
from the nearest-neighbour Tanimoto similarity to the training molecules.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger

from . import features as F
from .chem import to_mols

log = get_logger("vai.discovery")
VERTICAL = "discovery"
KIND = "property_model"
MODELS = ("gbm", "mpnn", "ensemble", "gp")


def _limit_torch_threads() -> None:
    """On CPU, one intra-op thread: on a shared or small machine, OpenMP threads that wait on each other
    make small graph batches several times slower (measured: 2 threads 4x slower than 1 under load)."""
    import os

    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(int(os.environ.get("VAI_TORCH_THREADS", "1")))


def _lgb():
    import lightgbm as lgb

    return lgb


@dataclass
class Featurized:
    """Everything the members need for a list of (valid) molecules."""
    mols: list
    tabular: np.ndarray | None = None      # GBM input
    descriptors: np.ndarray | None = None  # raw descriptors (MPNN extra input after scaling)
    graphs: list | None = None
    solvent: np.ndarray | None = None      # solvent features (second input), raw
    solvent_smiles: list | None = None     # the solvents themselves (a base model that takes a solvent needs them)
    base_offset: np.ndarray | None = None  # a base model's predictions for these molecules (transfer), once


def lightgbm_text_problem(text: str) -> str | None:
    """Why a LightGBM model text cannot be a whole model, or None. Checked before LightGBM parses it: LightGBM
    4.x parses the trees in parallel at the byte offsets of its `tree_sizes=` header, and a truncated or shifted
    file (an interrupted copy, a full disk) aborts the whole process there ("terminate called without an active
    exception") instead of raising; without that header a truncated file silently loads its first trees only."""
    data = text.encode()
    start = data.find(b"\nTree=") + 1
    end = data.find(b"\nend of trees\n")
    if not data.startswith(b"tree\n"):
        return "no LightGBM model header"
    if end < 0:
        return "no 'end of trees' line: the file is truncated"
    if start == 0:  # no trees: nothing is parsed in parallel
        return None
    header = data[:start].decode(errors="replace").splitlines()
    sizes_line = next((line for line in header if line.startswith("tree_sizes=")), None)
    if sizes_line is None:
        return None
    try:
        sizes = [int(x) for x in sizes_line[len("tree_sizes="):].split()]
    except ValueError:
        return "an unreadable tree_sizes line"
    offset = start
    for i, size in enumerate(sizes):
        if not data.startswith(b"Tree=", offset):
            return f"tree {i} is not where tree_sizes puts it: the file is truncated or edited"
        offset += size
    if not data.startswith(b"end of trees", offset):
        return "the trees do not end where tree_sizes says: the file is truncated or edited"
    return None


def _solvent_features(solvents: Sequence[str]) -> np.ndarray:
    """Morgan counts (256 bits) + descriptors per solvent; computed once per distinct solvent."""
    uniq = sorted(set(solvents))
    mols = to_mols(uniq)
    bad = [s for s, m in zip(uniq, mols) if m is None]
    if bad:
        raise VaiError(f"solvent SMILES {bad[0]!r} cannot be parsed by RDKit")
    feats = np.hstack([F.morgan_counts(mols, 2, 256), F.descriptors(mols)])
    index = {s: i for i, s in enumerate(uniq)}
    return feats[[index[s] for s in solvents]]


BASE_DIR = "base_model"  # inside a model directory: the model it was trained on top of (transfer)


class PropertyPredictor:
    """fit / predict / explain / save / load. `targets` names the predicted columns."""

    def __init__(self, model: str = "gbm", task: str = "regression", *, targets: Sequence[str] = ("target",),
                 gbm_members: int = 3, mpnn_members: int = 1, epochs: int = 60, patience: int = 15,
                 use_descriptors: bool = True, hidden: int = 300, depth: int = 3, dropout: float = 0.0,
                 batch_size: int = 50, lr: float = 1e-3, alpha: float = 0.1, seed: int = 0,
                 solvent: bool = False, progress: bool = False, n_jobs: int = 1, balanced: bool = False,
                 alerts: bool = False, keep_salts: bool = False, base_model: str | Path | None = None,
                 base_target: str | None = None):
        if model not in MODELS:
            raise VaiError(f"model {model!r} is not one of: {', '.join(MODELS)}")
        if task not in ("regression", "classification", "binary", "multiclass"):
            raise VaiError(f"task {task!r} is not regression or classification")
        self.model, self.task = model, task
        self.targets = list(targets)
        self.gbm_members = gbm_members if model in ("gbm", "ensemble") else 0
        self.mpnn_members = mpnn_members if model in ("mpnn", "ensemble") else 0
        self.gp_members = 1 if model == "gp" else 0
        self.epochs, self.patience, self.use_descriptors = epochs, patience, use_descriptors
        self.hidden, self.depth, self.dropout, self.batch_size, self.lr = hidden, depth, dropout, batch_size, lr
        self.alpha, self.seed, self.solvent, self.progress, self.n_jobs = alpha, seed, solvent, progress, n_jobs
        self.balanced = balanced  # GBM: weight classes inversely to their frequency (binary and multiclass)
        self.alerts = alerts      # skin-sensitisation structural alerts (alerts.py) as GBM inputs and an output column
        self.keep_salts = keep_salts  # an organic salt keeps its counter-ions (solubility); see chem.Standardizer
        self.n_classes = 2
        self.gbms: list[list[Any]] = []   # [member][task] lightgbm Booster
        self.mpnns: list[Any] = []
        self.gps: list[Any] = []          # [task] TanimotoGP (model "gp")
        self.desc_scaler: F.DescriptorScaler | None = None
        self.solv_scaler: F.DescriptorScaler | None = None
        self.conformal: dict[str, Any] = {}
        self.domain_threshold: float = 0.0
        self.train_smiles: list[str] = []
        self._train_fps = None
        self.target_std: float | None = None       # the first target's training SD (kept for old model dirs)
        self.target_stds: list[float] | None = None  # each target's training SD (regression)
        self.metrics: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.base: PropertyPredictor | None = None  # transfer: this model learns the base model's error
        self.base_dir: Path | None = None
        self.base_target: str | None = None
        if base_model is not None:
            self.use_base(base_model, base_target)

    def use_base(self, model_dir: str | Path, target: str | None = None) -> None:
        """Start from another model's predictions (a model trained on a large public set) and learn only its error
        on this data: with tens of in-house molecules, the correction is much easier to learn than the property.
        Regression: predictions are base + correction; intervals, metrics and explanations are of the sum. A binary
        classifier base: GBM members boost from the base's log-odds, so probabilities are of the corrected sum."""
        base = PropertyPredictor.load(model_dir)
        if base.task == "regression" and self.task != "regression":
            raise VaiError(f"--base-model {model_dir}: a regression base transfers to a regression model (this model: "
                           f"{self.task})")
        if base.task == "binary":
            # a classifier learns a correction to the base's log-odds: LightGBM's init_score does that exactly
            if self.task not in ("classification", "binary"):
                raise VaiError(f"--base-model {model_dir}: a classifier base transfers to a classifier (--task "
                               f"classification; this model: {self.task})")
            if self.mpnn_members or self.gp_members:
                raise VaiError(f"--base-model {model_dir}: on a classifier base, train --model gbm (the correction "
                               "to the base's log-odds is learned by gradient boosting)")
        elif base.task != "regression":
            raise VaiError(f"--base-model {model_dir}: a {base.task} base model is not a starting point yet; transfer "
                           "takes a regression or a binary classifier base")
        if len(self.targets) != 1:
            raise VaiError("--base-model: train one target at a time on a base model")
        if base.solvent and not self.solvent:
            raise VaiError(f"--base-model {model_dir}: the base model takes the solvent as a second input (as UV "
                           "lambda-max does); train with the solvent too (--solvent-col)")
        if target is None and len(base.targets) > 1:
            raise VaiError(f"--base-model {model_dir} predicts {', '.join(base.targets)}: name the one to start from "
                           "(--base-target)")
        base.target_index(target)  # a clear error for a name the base does not predict
        self.base, self.base_dir = base, Path(model_dir)
        self.base_target = target or base.targets[0]

    def _offset(self, feat: Featurized) -> np.ndarray | None:
        """The base model's prediction for each molecule (None without a base model)."""
        if self.base is None:
            return None
        if feat.base_offset is not None:
            return feat.base_offset
        from rdkit import Chem

        smiles = [Chem.MolToSmiles(m) for m in feat.mols]
        solvents = feat.solvent_smiles if self.base.solvent else None  # the same solvent the measurement was in
        return self.base._predict_feat(self.base.featurize(smiles, solvents))["mean"][
            :, self.base.target_index(self.base_target)]

    # -- features -----------------------------------------------------------------------------------
    def featurize(self, smiles: Sequence[str], solvents: Sequence[str] | None = None, full: bool = False) -> Featurized:
        """Features for valid SMILES; `full` computes both GBM and graph inputs (to reuse across models)."""
        mols = to_mols(list(smiles))
        if any(m is None for m in mols):
            bad = next(s for s, m in zip(smiles, mols) if m is None)
            raise VaiError(f"SMILES {bad!r} cannot be parsed; standardise the input first (rows with errors are skipped)")
        feat = Featurized(mols=mols)
        need_desc = self.use_descriptors
        if need_desc:
            feat.descriptors = F.descriptors(mols)
        if self.gbm_members or self.gp_members or full:
            fp = F.morgan_counts(mols)
            feat.tabular = np.hstack([fp, feat.descriptors]) if need_desc else fp
            if self.alerts:  # after the descriptors, before the solvent (explain.py finds them there)
                from .alerts import alert_matrix

                feat.tabular = np.hstack([feat.tabular, alert_matrix(mols)])
        if self.mpnn_members or full:
            feat.graphs = [F.mol_graph(m) for m in mols]
        if self.solvent:
            if solvents is None:
                raise VaiError("this model takes the solvent as a second input: pass the solvent SMILES column (--solvent-col)")
            feat.solvent = _solvent_features(list(solvents))
            feat.solvent_smiles = list(solvents)
            if feat.tabular is not None:
                feat.tabular = np.hstack([feat.tabular, feat.solvent])
        return feat

    def _extra(self, feat: Featurized) -> np.ndarray | None:
        parts = []
        if self.use_descriptors and self.desc_scaler is not None:
            parts.append(self.desc_scaler.transform(feat.descriptors))
        if self.solvent and self.solv_scaler is not None:
            parts.append(self.solv_scaler.transform(feat.solvent))
        return np.hstack(parts).astype(np.float32) if parts else None

    # -- training -----------------------------------------------------------------------------------
    def _resolve_task(self, y: np.ndarray) -> None:
        for t, name in enumerate(self.targets):  # a target with nothing to learn would report perfect metrics
            vals = np.unique(y[~np.isnan(y[:, t]), t])
            if len(vals) >= 2:
                continue
            seen = ", ".join(f"{v:g}" for v in vals) or "no labels"
            if self.task == "regression":
                raise VaiError(f"target {name!r} is constant ({seen} on every labelled row): there is nothing to "
                               "learn; check the column")
            raise VaiError(f"target {name!r} has only one class ({seen}) among its labelled rows: a classifier "
                           "needs examples of at least two classes")
        if self.task == "classification":
            vals = np.unique(y[~np.isnan(y)])
            if not np.all(vals == np.round(vals)):
                raise VaiError("classification targets must be integer class labels (0/1 or 0..K-1)")
            if len(vals) <= 2 and set(vals.tolist()) <= {0.0, 1.0}:
                self.task = "binary"
            else:
                if y.shape[1] != 1:
                    raise VaiError("multiclass classification takes one target column")
                self.task = "multiclass"
        if self.task == "multiclass":
            self.n_classes = int(np.nanmax(y)) + 1

    def fit(self, smiles: Sequence[str], y, *, train_idx, val_idx, test_idx=None, solvents=None,
            features: Featurized | None = None) -> dict[str, Any]:
        """Train on `train_idx`, early-stop and calibrate on `val_idx`, report metrics on `test_idx`."""
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if y.shape[1] != len(self.targets):
            raise VaiError(f"got {y.shape[1]} target columns for targets {self.targets}")
        self._resolve_task(y)
        if self.base is not None and self.base.task == "binary" and self.task != "binary":
            raise VaiError(f"the base model is a binary classifier; these labels are {self.task} (0/1 labels only)")
        if self.gp_members and self.task != "regression":
            raise VaiError("model 'gp' is for regression; for classification use gbm, mpnn or ensemble")
        if len(train_idx) < 5 or len(val_idx) < 2:
            raise VaiError(f"too few molecules to train: {len(train_idx)} train / {len(val_idx)} validation; "
                           "need at least 5 and 2 (use more data)")
        smiles = list(smiles)
        if self.task == "regression":
            self.target_stds = [float(np.nanstd(y[train_idx, t])) for t in range(y.shape[1])]
            self.target_std = self.target_stds[0]
        t0 = time.perf_counter()
        feat = features if features is not None else self.featurize(smiles, solvents)
        self.timings["featurize_s"] = time.perf_counter() - t0
        if self.use_descriptors:
            self.desc_scaler = F.DescriptorScaler().fit(feat.descriptors[train_idx])
        if self.solvent:
            self.solv_scaler = F.DescriptorScaler().fit(feat.solvent[train_idx])
        offset = self._offset(feat)
        if offset is not None:  # kept with the features: validation and test need it again (a copy: the caller's
            feat = replace(feat, base_offset=offset)  # features may serve other models)
        # with a base model, the learners fit its error (regression) or a correction to its log-odds (binary)
        y_fit = y if offset is None or self.task != "regression" else y - offset[:, None]
        t0 = time.perf_counter()
        self._fit_gbms(feat, y_fit, train_idx, val_idx)
        self.timings["gbm_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._fit_mpnns(feat, y_fit, train_idx, val_idx)
        self.timings["mpnn_s"] = time.perf_counter() - t0
        if self.gp_members:
            t0 = time.perf_counter()
            self._fit_gps(feat, y_fit, train_idx)
            self.timings["gp_s"] = time.perf_counter() - t0
        self.train_smiles = [smiles[i] for i in train_idx]
        self._train_fps = None
        val_sol = [solvents[i] for i in val_idx] if solvents is not None else None
        val_pred = self._predict_feat(self._subset(feat, val_idx))
        self._calibrate(val_pred, y[val_idx])
        val_sim = self.max_similarity([smiles[i] for i in val_idx])
        # in domain: at least as similar to training as 95% of the validation molecules are
        self.domain_threshold = float(np.quantile(val_sim, 0.05)) if len(val_sim) else 0.0
        del val_sol
        metrics: dict[str, Any] = {"task": self.task, "n_train": int(len(train_idx)), "n_val": int(len(val_idx))}
        if offset is not None:
            metrics["transfer"] = self._transfer_check(offset[val_idx], val_pred["mean"][:, 0], y[val_idx, 0])
        if test_idx is not None and len(test_idx):
            test_pred = self.predict_smiles([smiles[i] for i in test_idx],
                                            [solvents[i] for i in test_idx] if solvents is not None else None,
                                            features=self._subset(feat, test_idx))
            metrics["test"] = evaluate(test_pred, y[test_idx], self.task, self.targets)
            metrics["n_test"] = int(len(test_idx))
        metrics["timings_s"] = {k: round(v, 2) for k, v in self.timings.items()}
        self.metrics = metrics
        return metrics

    def _transfer_check(self, base_val: np.ndarray, val: np.ndarray, y_val: np.ndarray) -> dict[str, Any]:
        """Validation RMSE (a classifier: Brier score) of the base model alone and with the learned correction: a
        correction that does not help on validation is said (the base model may already fit this data as well as
        a few molecules allow)."""
        ok = ~np.isnan(y_val)
        if self.task == "binary":
            brier_base = float(np.mean((base_val[ok] - y_val[ok]) ** 2)) if ok.any() else float("nan")
            brier = float(np.mean((val[ok] - y_val[ok]) ** 2)) if ok.any() else float("nan")
            if brier > brier_base:
                log.warning("the correction learned on top of the base classifier does not lower the validation Brier "
                            "score (%.3f with it, %.3f for the base alone, %d molecules): compare on more data "
                            "before relying on it", brier, brier_base, int(ok.sum()))
            return {"base_target": self.base_target, "val_brier_base_alone": brier_base, "val_brier": brier,
                    "n_val": int(ok.sum())}
        rmse_base = float(np.sqrt(np.mean((base_val[ok] - y_val[ok]) ** 2))) if ok.any() else float("nan")
        rmse = float(np.sqrt(np.mean((val[ok] - y_val[ok]) ** 2))) if ok.any() else float("nan")
        if rmse > rmse_base:
            log.warning("the correction learned on top of the base model does not lower the validation error (RMSE "
                        "%.3f with it, %.3f for the base model alone, %d molecules): the base model may already "
                        "fit this data as well as these molecules can teach; compare on more data before relying "
                        "on the correction", rmse, rmse_base, int(ok.sum()))
        return {"base_target": self.base_target, "val_rmse_base_alone": rmse_base, "val_rmse": rmse,
                "n_val": int(ok.sum())}

    @staticmethod
    def _subset(feat: Featurized, idx) -> Featurized:
        idx = np.asarray(idx)
        return Featurized(mols=[feat.mols[i] for i in idx],
                          tabular=None if feat.tabular is None else feat.tabular[idx],
                          descriptors=None if feat.descriptors is None else feat.descriptors[idx],
                          graphs=None if feat.graphs is None else [feat.graphs[i] for i in idx],
                          solvent=None if feat.solvent is None else feat.solvent[idx],
                          solvent_smiles=None if feat.solvent_smiles is None else [feat.solvent_smiles[i] for i in idx],
                          base_offset=None if feat.base_offset is None else feat.base_offset[idx])

    def _gbm_params(self, member: int) -> dict[str, Any]:
        params = {"learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 5, "feature_fraction": 0.3,
                  "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "verbose": -1,
                  "seed": self.seed * 1000 + member, "num_threads": self.n_jobs, "deterministic": True,
                  "force_row_wise": True}
        if self.task == "regression":
            params["objective"] = "regression"
        elif self.task == "binary":
            params["objective"] = "binary"
            params["is_unbalance"] = bool(self.balanced)
        else:
            params.update(objective="multiclass", num_class=self.n_classes)
        return params

    def _fit_gbms(self, feat, y, train_idx, val_idx) -> None:
        lgb = _lgb()
        self.gbms = []
        init = self._logit_offset(feat)  # a classifier base's log-odds: boosting starts from them
        for m in range(self.gbm_members):
            per_task = []
            for t in range(y.shape[1]):
                tr = [i for i in train_idx if not np.isnan(y[i, t])]
                va = [i for i in val_idx if not np.isnan(y[i, t])]
                w_tr, w_va = self._class_weights(y[tr, t]), self._class_weights(y[va, t], like=y[tr, t])
                dtrain = lgb.Dataset(feat.tabular[tr], y[tr, t], weight=w_tr, free_raw_data=True,
                                     init_score=None if init is None else init[tr])
                valid = [lgb.Dataset(feat.tabular[va], y[va, t], weight=w_va, reference=dtrain,
                                     init_score=None if init is None else init[va])] if va else []
                callbacks = [lgb.early_stopping(50, verbose=False)] if va else []
                booster = lgb.train(self._gbm_params(m), dtrain, num_boost_round=1500, valid_sets=valid,
                                    callbacks=callbacks)
                per_task.append(booster)
            self.gbms.append(per_task)

    def _class_weights(self, labels: np.ndarray, like: np.ndarray | None = None) -> np.ndarray | None:
        """Multiclass with `balanced`: each row weighted n / (K * n_class) by the training class counts (`like`),
        so rare classes (e.g. the strong sensitisers) count as much as common ones; binary models use
        LightGBM's `is_unbalance` instead."""
        if not (self.balanced and self.task == "multiclass") or not len(labels):
            return None
        ref = labels if like is None else like
        counts = np.bincount(ref.astype(int), minlength=self.n_classes).astype(float)
        w = len(ref) / (self.n_classes * np.maximum(counts, 1.0))
        return w[labels.astype(int)]

    def _gp_input(self, feat: Featurized) -> np.ndarray:
        extra = self._extra(feat)
        fp = feat.tabular[:, :F.FP_SIZE]
        return fp if extra is None else np.hstack([fp, extra])

    def _fit_gps(self, feat, y, train_idx) -> None:
        """One GP per target on the training molecules only (the validation split calibrates the intervals)."""
        from .gp import TanimotoGP

        X = self._gp_input(feat)
        self.gps = []
        for t in range(y.shape[1]):
            tr = np.array([i for i in train_idx if not np.isnan(y[i, t])])
            self.gps.append(TanimotoGP(F.FP_SIZE, seed=self.seed).fit(X[tr], y[tr, t]))

    def _new_mpnn(self, extra_dim: int, y_mean=None, y_std=None):
        from .mpnn import DMPNN

        return DMPNN(n_tasks=len(self.targets), task=self.task, n_classes=self.n_classes, extra_dim=extra_dim,
                     hidden=self.hidden, depth=self.depth, dropout=self.dropout, ffn_hidden=self.hidden,
                     lr=self.lr, y_mean=y_mean, y_std=y_std)

    def _fit_mpnns(self, feat, y, train_idx, val_idx) -> None:
        if not self.mpnn_members:
            self.mpnns = []
            return
        import torch

        from vai.core.training import fit

        from .mpnn import make_loader

        _limit_torch_threads()
        extra = self._extra(feat)
        y_mean = y_std = None
        if self.task == "regression":
            y_mean = np.nan_to_num(np.nanmean(y[train_idx], axis=0)).tolist()
            y_std = np.nan_to_num(np.nanstd(y[train_idx], axis=0), nan=1.0)
            y_std = np.where(y_std > 1e-8, y_std, 1.0).tolist()
        self.mpnns = []
        graphs = feat.graphs
        for m in range(self.mpnn_members):
            seed = self.seed * 1000 + m
            torch.manual_seed(seed)
            module = self._new_mpnn(0 if extra is None else extra.shape[1], y_mean, y_std)
            take = lambda idx: ([graphs[i] for i in idx], None if extra is None else extra[idx], y[idx])  # noqa: E731
            tr_loader = make_loader(*take(train_idx), batch_size=self.batch_size, shuffle=True, seed=seed)
            va_loader = make_loader(*take(val_idx), batch_size=256)
            fit(module, tr_loader, va_loader, max_epochs=self.epochs, patience=self.patience, seed=seed,
                progress=self.progress, checkpoints=False)
            module.cpu().eval()  # Lightning leaves it on the GPU when there is one; prediction here runs on CPU
            self.mpnns.append(module)

    # -- prediction ---------------------------------------------------------------------------------
    def _member_outputs(self, feat: Featurized) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per member: [n, T] (regression, binary) or [n, K] (multiclass) predictions."""
        gbm_out, mpnn_out = [], []
        init = self._logit_offset(feat) if self.gbms else None
        for per_task in self.gbms:
            if init is not None:  # on a classifier base: the trees hold a correction to the base's log-odds
                cols = [1.0 / (1.0 + np.exp(-(np.asarray(b.predict(feat.tabular, raw_score=True)) + init)))
                        for b in per_task]
            else:
                cols = [np.asarray(b.predict(feat.tabular)) for b in per_task]
            gbm_out.append(cols[0] if self.task == "multiclass" else np.stack(cols, axis=1))
        if self.mpnns:
            import torch

            from .mpnn import make_loader

            _limit_torch_threads()
            extra = self._extra(feat)
            loader = make_loader(feat.graphs, extra, None, batch_size=256)
            for module in self.mpnns:
                parts = []
                with torch.inference_mode():
                    for batch in loader:
                        parts.append(module.transform_output(module(batch)).numpy())
                mpnn_out.append(np.concatenate(parts) if parts else np.zeros((0, len(self.targets))))
        return gbm_out, mpnn_out

    def fingerprints(self, smiles: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Each molecule as the vector this model reads it by, for other tools (clustering, a downstream model):
        with D-MPNN members their learned molecule vectors side by side (`mpnn<i>_<k>`), then the scaled RDKit
        descriptors the networks also read (`desc_<name>`), as chemprop's `fingerprint` gives the encoder's output
        with its extra descriptors; otherwise the input features, Morgan counts (`morgan_<bit>`) and the scaled
        descriptors. Solvent inputs are left out (a property of the pair, not the molecule). Returns
        (matrix [n, d], column names)."""
        mols = to_mols(list(smiles))
        if any(m is None for m in mols):
            bad = next(s for s, m in zip(smiles, mols) if m is None)
            raise VaiError(f"SMILES {bad!r} cannot be parsed; standardise the input first")
        if self.mpnns:
            import torch

            from .mpnn import make_loader

            _limit_torch_threads()
            loader = make_loader([F.mol_graph(m) for m in mols], None, None, batch_size=256)
            blocks, names = [], []
            for i, module in enumerate(self.mpnns):
                with torch.inference_mode():
                    parts = [module.encode(batch).float().numpy() for batch in loader]
                block = np.concatenate(parts) if parts else np.zeros((0, module.W_o.out_features), np.float32)
                blocks.append(block)
                names += [f"mpnn{i}_{k}" for k in range(block.shape[1])]
        else:
            blocks, names = [F.morgan_counts(mols).astype(np.float32)], [f"morgan_{b}" for b in range(F.FP_SIZE)]
        if self.use_descriptors and self.desc_scaler is not None:
            blocks.append(self.desc_scaler.transform(F.descriptors(mols)).astype(np.float32))
            names += [f"desc_{d}" for d in F.descriptor_names()]
        return np.hstack(blocks), names

    def _predict_feat(self, feat: Featurized) -> dict[str, np.ndarray]:
        pred = self._predict_learners(feat)
        offset = self._offset(feat) if self.task == "regression" else None  # a classifier's is inside its members
        if offset is not None:
            pred["mean"] = pred["mean"] + offset[:, None]
        return pred

    def _logit_offset(self, feat: Featurized) -> np.ndarray | None:
        """On a binary classifier base: its log-odds for each molecule (None otherwise)."""
        if self.base is None or self.base.task != "binary":
            return None
        # from at most 98% sure: a base that says 0.9999 leaves the trees no gradient (the hessian p(1-p) vanishes)
        # to correct it with, and a small in-house set is exactly where the base may be confidently wrong
        p = np.clip(self._offset(feat), 0.02, 0.98)
        return np.log(p / (1 - p))

    def _predict_learners(self, feat: Featurized) -> dict[str, np.ndarray]:
        if self.gps:
            X = self._gp_input(feat)
            mean_sd = [gp.predict(X) for gp in self.gps]
            return {"mean": np.stack([m for m, _ in mean_sd], 1), "std": np.stack([sd for _, sd in mean_sd], 1)}
        gbm_out, mpnn_out = self._member_outputs(feat)
        members = gbm_out + mpnn_out
        # each model family counts equally in the ensemble mean, whatever its number of members
        family_means = [np.mean(f, axis=0) for f in (gbm_out, mpnn_out) if f]
        mean = np.mean(family_means, axis=0)
        spread = np.std(members, axis=0) if len(members) > 1 else np.zeros_like(mean)
        return {"mean": mean, "std": spread}

    def _calibrate(self, pred: dict[str, np.ndarray], y: np.ndarray) -> None:
        """Split conformal on the validation split: per task, the (1-alpha) quantile of the normalised
        residual |y - mean| / (std + beta); for classification, of 1 - p(true class) (LAC sets)."""
        conf: dict[str, Any] = {"alpha": self.alpha, "tasks": []}
        for t in range(len(self.targets)):
            if self.task == "multiclass":
                ok = ~np.isnan(y[:, 0])
                p_true = pred["mean"][ok, y[ok, 0].astype(int)]
                scores = 1.0 - p_true
                beta = 0.0
            elif self.task == "binary":
                ok = ~np.isnan(y[:, t])
                p = pred["mean"][ok, t]
                scores = np.where(y[ok, t] == 1, 1 - p, p)
                beta = 0.0
            else:
                ok = ~np.isnan(y[:, t])
                resid = np.abs(y[ok, t] - pred["mean"][ok, t])
                sd = pred["std"][ok, t]
                beta = float(np.median(sd)) if np.median(sd) > 1e-9 else 1.0
                scores = resid / (sd + beta)
            n = len(scores)
            if n == 0:
                q = float("inf")
            else:
                level = min(1.0, math.ceil((n + 1) * (1 - self.alpha)) / n)
                q = float(np.quantile(scores, level, method="higher"))
            conf["tasks"].append({"q": q, "beta": beta, "n_cal": int(n)})
            if self.task == "multiclass":
                break
        self.conformal = conf

    def max_similarity(self, smiles: Sequence[str]) -> np.ndarray:
        """Nearest-neighbour Tanimoto similarity (Morgan r=2, 2048 bits) of each molecule to the training set."""
        from rdkit import DataStructs

        if self._train_fps is None:
            self._train_fps = [f for f in F.morgan_bitvects(to_mols(self.train_smiles)) if f is not None]
        out = np.zeros(len(smiles), dtype=np.float32)
        for i, fp in enumerate(F.morgan_bitvects(to_mols(list(smiles)))):
            if fp is not None and self._train_fps:
                out[i] = max(DataStructs.BulkTanimotoSimilarity(fp, self._train_fps))
        return out

    def predict_smiles(self, smiles: Sequence[str], solvents: Sequence[str] | None = None,
                       domain: bool = True, features: Featurized | None = None) -> pd.DataFrame:
        """Predictions for valid standardised SMILES: one row each."""
        if not self.gbms and not self.mpnns and not self.gps:
            raise VaiError("this predictor is not trained: call fit() or load a model directory")
        smiles = list(smiles)
        if not smiles:
            return pd.DataFrame()
        feat = features if features is not None else self.featurize(smiles, solvents)
        pred = self._predict_feat(feat)
        out: dict[str, Any] = {}
        multi = len(self.targets) > 1
        for t, name in enumerate(self.targets):
            sfx = f"_{name}" if multi else ""
            c = self.conformal["tasks"][min(t, len(self.conformal["tasks"]) - 1)] if self.conformal else None
            if self.task == "regression":
                mu, sd = pred["mean"][:, t], pred["std"][:, t]
                out["prediction" + sfx] = mu
                out["uncertainty" + sfx] = sd
                half = c["q"] * (sd + c["beta"]) if c else np.full_like(mu, np.nan)
                out["interval_low" + sfx] = mu - half
                out["interval_high" + sfx] = mu + half
            elif self.task == "binary":
                p = pred["mean"][:, t]
                out["prob" + sfx] = p
                out["prediction" + sfx] = (p >= 0.5).astype(int)
                out["uncertainty" + sfx] = pred["std"][:, t]
                out["interval_low" + sfx] = np.nan
                out["interval_high" + sfx] = np.nan
                if c:
                    # label 0 has nonconformity p (= 1 - p(0)), label 1 has 1 - p
                    out["prediction_set" + sfx] = [_label_set([pi <= c["q"], 1 - pi <= c["q"]]) for pi in p]
            else:
                P = pred["mean"]
                for k in range(P.shape[1]):
                    out[f"prob_{k}"] = P[:, k]
                out["prediction"] = P.argmax(axis=1)
                out["prob"] = P.max(axis=1)
                out["uncertainty"] = pred["std"].max(axis=1) if pred["std"].ndim == 2 else 0.0
                out["interval_low"] = np.nan
                out["interval_high"] = np.nan
                if c:
                    out["prediction_set"] = [_label_set([1 - pk <= c["q"] for pk in row]) for row in P]
                break
        frame = pd.DataFrame(out)
        if self.alerts:
            from .alerts import describe

            frame["alerts"] = [describe(m) for m in feat.mols]
        if domain:
            sim = self.max_similarity(smiles)
            frame["max_similarity"] = sim
            frame["in_domain"] = self.in_domain(smiles, sim)
        return frame

    def in_domain(self, smiles: Sequence[str], sim: np.ndarray | None = None) -> np.ndarray:
        """Within the applicability domain: as similar to the training molecules as 95% of the validation ones.
        On top of a base model, the base's domain counts too: where the base model knows the chemistry its
        prediction carries the answer, and the correction learned on a few molecules stays small elsewhere."""
        sim = self.max_similarity(smiles) if sim is None else sim
        inside = sim >= self.domain_threshold
        if self.base is not None:
            inside = inside | self.base.in_domain(smiles)
        return inside

    def standardizer(self):
        """The standardisation the model was trained with (counter-ions kept or not)."""
        from .chem import Standardizer

        return Standardizer(keep_salts=self.keep_salts)

    def predict(self, frame: pd.DataFrame, smiles_col: str = "smiles_std", solvent_col: str | None = None) -> pd.DataFrame:
        """All columns of `frame` plus the prediction columns; rows with an `error` get NaN predictions.

        `smiles_col` may be the raw input column or `smiles_std`. The input is standardised here, with the
        model's own rules, unless it already was (an `error` column) by the same rules: a model that keeps
        salts re-standardises a raw `smiles_col`, since `smiles_std` made by default rules has lost them."""
        from .chem import standardize_frame

        out = frame.reset_index(drop=True).copy()
        if "error" not in out.columns or (self.keep_salts and smiles_col != "smiles_std"):
            prior = out.pop("error").fillna("").astype(str) if "error" in out.columns else None
            out = standardize_frame(out.drop(columns=["smiles_std"], errors="ignore"), smiles_col,
                                    keep_salts=self.keep_salts)
            if prior is not None:  # a reading error (e.g. an SDF record) stays the row's error
                out["error"] = [p or e for p, e in zip(prior, out["error"])]
            smiles_col = "smiles_std"
        elif "smiles_std" in out.columns:
            smiles_col = "smiles_std"
        errors = out["error"].fillna("").astype(str).tolist()
        solvents = None
        if self.solvent:
            solvent_col = solvent_col or "solvent"
            if solvent_col not in out.columns:
                raise VaiError(f"this model needs the solvent SMILES column; {solvent_col!r} is not in the input "
                               "(pass --solvent-col)")
            solv_mol = to_mols([str(s) if isinstance(s, str) else "" for s in out[solvent_col]])
            for i, m in enumerate(solv_mol):
                if m is None and not errors[i]:
                    errors[i] = f"solvent {out[solvent_col][i]!r} cannot be parsed"
        ok = [i for i, e in enumerate(errors) if not e]
        if self.solvent:
            solvents = [str(out[solvent_col][i]) for i in ok]
        pred = self.predict_smiles([out[smiles_col][i] for i in ok], solvents)
        if len(pred):
            pred.index = ok
            pred = pred.reindex(range(len(out)))
            for col in pred.columns:
                out[col] = pred[col].to_numpy()
        if "in_domain" in out.columns:
            out["in_domain"] = out["in_domain"].map(lambda v: bool(v) if v == v else False)
        out["error"] = errors
        cols = [c for c in out.columns if c != "error"] + ["error"]
        return out[cols]

    # -- explanations ---------------------------------------------------------------------------------
    def atom_weights(self, smiles: str, solvent: str | None = None, task_index: int = 0) -> np.ndarray:
        """Per-atom contributions to the prediction (target units; for classifiers, log-odds / probability):
        GBM: LightGBM's exact tree SHAP values of the Morgan bits, each spread over the atoms of its
        environment; D-MPNN: gradient x input on the atom features; GP: fingerprint occlusion (the mean's change
        centred on the atom are removed). Ensembles average the families. With a base model: the base model's
        weights plus this model's correction's (the same SMILES, so the same atom order)."""
        feat = self.featurize([smiles], [solvent] if solvent else None)
        if self.base is not None:
            base = self.base.atom_weights(smiles, solvent if self.base.solvent else None,
                                          self.base.target_index(self.base_target))
            return base + self._learner_atom_weights(feat, task_index)
        return self._learner_atom_weights(feat, task_index)

    def _learner_atom_weights(self, feat: Featurized, task_index: int) -> np.ndarray:
        from .explain import gbm_atom_weights, gp_atom_weights, mpnn_atom_weights

        if self.gps:
            return gp_atom_weights(self, feat, self.gps[min(task_index, len(self.gps) - 1)])
        parts = []
        if self.gbms:
            parts.append(np.mean([gbm_atom_weights(self, feat, per_task[min(task_index, len(per_task) - 1)])
                                  for per_task in self.gbms], axis=0))
        if self.mpnns:
            parts.append(np.mean([mpnn_atom_weights(self, feat, m, task_index) for m in self.mpnns], axis=0))
        return np.mean(parts, axis=0)

    def target_index(self, target: str | None) -> int:
        """Position of `target` among the model's targets (None: the first); a clear error for any other name.
        A multiclass model has one target whose classes share the index 0."""
        if target is None:
            return 0
        if target not in self.targets:
            raise VaiError(f"target {target!r}: this model predicts {', '.join(self.targets)}; name one of them")
        return 0 if self.task == "multiclass" else self.targets.index(target)

    def explain(self, smiles: str, out_path: str | Path | None = None, solvent: str | None = None,
                task_index: int | None = None, size: int = 400, target: str | None = None) -> dict[str, Any]:
        """Atom contributions to one molecule's prediction of `target` (by name; or `task_index`), drawn on the
        molecule at `out_path` (PNG or SVG) when given."""
        from .explain import draw_atom_weights

        if task_index is None:
            task_index = self.target_index(target)
        elif target is not None and self.target_index(target) != task_index:
            raise VaiError(f"explain: target {target!r} and task_index {task_index} disagree; give one of them")
        weights = self.atom_weights(smiles, solvent, task_index)
        result = {"smiles": smiles, "target": self.targets[min(task_index, len(self.targets) - 1)],
                  "atom_weights": [float(w) for w in weights]}
        if self.alerts:
            from .alerts import describe

            result["alerts"] = describe(to_mols([smiles])[0])
        if out_path is not None:
            result["image"] = str(draw_atom_weights(smiles, weights, out_path, size=size))
        return result

    # -- persistence ----------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"vertical": VERTICAL, "kind": KIND, "model": self.model, "task": self.task, "targets": self.targets,
                "n_classes": self.n_classes, "gbm_members": len(self.gbms), "mpnn_members": len(self.mpnns),
                "epochs": self.epochs, "use_descriptors": self.use_descriptors, "hidden": self.hidden,
                "depth": self.depth, "dropout": self.dropout, "batch_size": self.batch_size, "lr": self.lr,
                "alpha": self.alpha, "seed": self.seed, "solvent": self.solvent, "balanced": self.balanced,
                "descriptor_names": F.descriptor_names() if self.use_descriptors else [],
                "alerts": self.alerts, "alert_names": _alert_names() if self.alerts else [],
                "keep_salts": self.keep_salts,
                "base_model": BASE_DIR if self.base is not None else None, "base_target": self.base_target,
                "desc_scaler": self.desc_scaler.to_json() if self.desc_scaler else None,
                "solv_scaler": self.solv_scaler.to_json() if self.solv_scaler else None,
                "conformal": self.conformal, "domain_threshold": self.domain_threshold,
                "target_std": self.target_std, "target_stds": self.target_stds,
                "mpnn_extra_dim": (self._extra_dim() if self.mpnns else 0),
                "gp_theta": [gp.theta for gp in self.gps]}

    def target_sd(self, t: int = 0) -> float | None:
        """Training SD of target `t` (regression; None before fit)."""
        return self.target_stds[t] if self.target_stds else self.target_std

    def _extra_dim(self) -> int:
        d = 0
        if self.use_descriptors and self.desc_scaler is not None:
            d += len(self.desc_scaler.mean)
        if self.solvent and self.solv_scaler is not None:
            d += len(self.solv_scaler.mean)
        return d

    def save(self, path: str | Path, data_fingerprint: str | None = None, extra_files: dict | None = None) -> Path:
        from vai.core.artifacts import save_model_dir

        weights = {}
        for i, m in enumerate(self.mpnns):
            for k, v in m.state_dict().items():
                weights[f"mpnn{i}.{k}"] = v
        if self.gps:
            import torch

            for t, gp in enumerate(self.gps):  # a GP is its training set + hyperparameters
                weights[f"gp{t}.X"] = torch.from_numpy(np.ascontiguousarray(gp.X_train))
                weights[f"gp{t}.y"] = torch.from_numpy(np.ascontiguousarray(gp.y_train))
        files = {f"gbm_{i}_task{t}.txt": b.model_to_string() for i, per in enumerate(self.gbms) for t, b in enumerate(per)}
        if self.base_dir is not None:  # the base model travels inside: the model directory stays self-contained
            for f in sorted(self.base_dir.rglob("*")):
                if f.is_file():
                    files[f"{BASE_DIR}/{f.relative_to(self.base_dir).as_posix()}"] = f.read_bytes()
        files.update(extra_files or {})
        return save_model_dir(path, config=self.config(), weights=weights or None, metrics=self.metrics,
                              data_fingerprint=data_fingerprint, files=files,
                              json_files={"train_smiles.json": self.train_smiles})

    @classmethod
    def load(cls, path: str | Path) -> "PropertyPredictor":
        from vai.core.artifacts import load_model_dir
        from vai.core.io import read_json

        md = load_model_dir(path, vertical=VERTICAL, kind=KIND)
        c = md.config
        if c.get("use_descriptors") and c.get("descriptor_names") != F.descriptor_names():
            raise VaiError(f"{path}: trained with a different RDKit descriptor list (RDKit version change); re-train")
        if c.get("alerts") and c.get("alert_names") != _alert_names():
            raise VaiError(f"{path}: trained with a different list of structural alerts (vai version change); re-train")
        self = cls(model=c["model"], task=c["task"], targets=c["targets"], gbm_members=c["gbm_members"],
                   mpnn_members=c["mpnn_members"], epochs=c["epochs"], use_descriptors=c["use_descriptors"],
                   hidden=c["hidden"], depth=c["depth"], dropout=c["dropout"], batch_size=c["batch_size"],
                   lr=c["lr"], alpha=c["alpha"], seed=c["seed"], solvent=c["solvent"], balanced=c.get("balanced", False),
                   alerts=c.get("alerts", False), keep_salts=c.get("keep_salts", False))
        self.n_classes = c["n_classes"]
        if c.get("desc_scaler"):
            self.desc_scaler = F.DescriptorScaler(**c["desc_scaler"])
        if c.get("solv_scaler"):
            self.solv_scaler = F.DescriptorScaler(**c["solv_scaler"])
        self.conformal, self.domain_threshold = c["conformal"], c["domain_threshold"]
        self.target_std, self.target_stds = c.get("target_std"), c.get("target_stds")
        lgb = _lgb()
        def booster(name: str):
            f = md.file(name)
            from vai.core.io import muted_native_stderr

            text = f.read_text(errors="replace")
            problem = lightgbm_text_problem(text)
            if problem:  # refused before LightGBM, which aborts the process on some of these (see the function)
                raise VaiError(f"{f}: not a readable LightGBM model ({problem}); the model directory is damaged: "
                               "restore it or re-train")
            try:
                with muted_native_stderr():  # the library's own "[Fatal]" line would come before our message
                    return lgb.Booster(model_str=text)
            except lgb.basic.LightGBMError as exc:
                raise VaiError(f"{f}: not a readable LightGBM model ({str(exc).strip()}); the model directory is "
                               "damaged: restore it or re-train") from None

        self.gbms = [[booster(f"gbm_{i}_task{t}.txt") for t in range(1 if self.task == "multiclass" else len(self.targets))]
                     for i in range(c["gbm_members"])]
        self.mpnns = []
        if c["mpnn_members"]:
            weights = md.weights()
            for i in range(c["mpnn_members"]):
                module = self._new_mpnn(c["mpnn_extra_dim"])
                prefix = f"mpnn{i}."
                module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
                module.eval()
                self.mpnns.append(module)
        if c.get("gp_theta"):
            from .gp import TanimotoGP

            weights = md.weights()
            self.gps = [TanimotoGP(F.FP_SIZE, seed=self.seed).fit(weights[f"gp{t}.X"].numpy(), weights[f"gp{t}.y"].numpy(),
                                                                  theta=theta)
                        for t, theta in enumerate(c["gp_theta"])]
        self.train_smiles = read_json(md.file("train_smiles.json"))
        # the applicability domain is measured against these: a damaged file would make every molecule
        # silently out of domain
        if not (isinstance(self.train_smiles, list) and self.train_smiles
                and all(isinstance(x, str) for x in self.train_smiles)):
            raise VaiError(f"{md.file('train_smiles.json')}: expected the list of training SMILES; the model "
                           "directory is damaged: restore it or re-train")
        if c.get("base_model"):
            self.base_dir = Path(md.path) / c["base_model"]
            self.base = PropertyPredictor.load(self.base_dir)
            self.base_target = c.get("base_target") or self.base.targets[0]
        self.metrics = md.metrics
        return self


def _alert_names() -> list[str]:
    from .alerts import ALERTS

    return [a.name for a in ALERTS]


def _label_set(flags) -> str:
    return "{" + ",".join(str(k) for k, f in enumerate(flags) if f) + "}"


def evaluate(pred: pd.DataFrame, y: np.ndarray, task: str, targets: Sequence[str]) -> dict[str, Any]:
    """Held-out metrics per target, including conformal coverage and the in/out-of-domain error split."""
    from sklearn import metrics as skm

    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    multi = len(targets) > 1
    res: dict[str, Any] = {}
    for t, name in enumerate(targets):
        sfx = f"_{name}" if multi else ""
        ok = ~np.isnan(y[:, t])
        yt = y[ok, t]
        m: dict[str, Any] = {"n": int(ok.sum())}
        dom = pred["in_domain"].to_numpy()[ok] if "in_domain" in pred else None
        if task == "regression":
            p = pred["prediction" + sfx].to_numpy()[ok]
            m["rmse"] = float(np.sqrt(np.mean((p - yt) ** 2)))
            m["mae"] = float(np.mean(np.abs(p - yt)))
            m["r2"] = float(skm.r2_score(yt, p)) if len(yt) > 1 else float("nan")
            lo, hi = pred["interval_low" + sfx].to_numpy()[ok], pred["interval_high" + sfx].to_numpy()[ok]
            m["interval_coverage"] = float(np.mean((yt >= lo) & (yt <= hi)))
            m["interval_mean_width"] = float(np.mean(hi - lo))
            if dom is not None:
                for flag, key in ((True, "rmse_in_domain"), (False, "rmse_out_of_domain")):
                    sel = dom == flag
                    m[key] = float(np.sqrt(np.mean((p[sel] - yt[sel]) ** 2))) if sel.any() else None
                m["fraction_in_domain"] = float(np.mean(dom))
        elif task == "binary":
            p = pred["prob" + sfx].to_numpy()[ok]
            m["accuracy"] = float(np.mean((p >= 0.5) == (yt == 1)))
            m["balanced_accuracy"] = float(skm.balanced_accuracy_score(yt, p >= 0.5))
            if len(np.unique(yt)) == 2:
                m["roc_auc"] = float(skm.roc_auc_score(yt, p))
                m["pr_auc"] = float(skm.average_precision_score(yt, p))
            if "prediction_set" + sfx in pred:
                sets = pred["prediction_set" + sfx].to_numpy()[ok]
                m["set_coverage"] = float(np.mean([str(int(v)) in s.strip("{}").split(",") for v, s in zip(yt, sets)]))
        else:
            P = np.stack([pred[f"prob_{k}"].to_numpy() for k in range(sum(c.startswith("prob_") for c in pred))], 1)[ok]
            m["accuracy"] = float(np.mean(P.argmax(1) == yt))
            m["balanced_accuracy"] = float(skm.balanced_accuracy_score(yt, P.argmax(1)))
            m["macro_f1"] = float(skm.f1_score(yt, P.argmax(1), average="macro"))
            if len(np.unique(yt)) == P.shape[1]:  # one-vs-rest ROC-AUC, macro mean (needs every class in test)
                m["roc_auc"] = float(skm.roc_auc_score(yt, P, multi_class="ovr", average="macro"))
            sets = pred["prediction_set"].to_numpy()[ok]
            m["set_coverage"] = float(np.mean([str(int(v)) in s.strip("{}").split(",") for v, s in zip(yt, sets)]))
        res[name] = m
    return res
