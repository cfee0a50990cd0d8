"""Evaluation: AUROC / AUPRC with bootstrap 95% CIs at patient level, ROC plots."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def bootstrap_ci(y: np.ndarray, p: np.ndarray, metric, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% CI by resampling cases; resamples with one class only are skipped."""
    rng = np.random.default_rng(seed)
    vals = []
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yy = y[idx]
        if yy.min() == yy.max():
            continue
        vals.append(metric(yy, p[idx]))
    if not vals:
        return float("nan"), float("nan")
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def binary_metrics(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    ok = ~np.isnan(y) & ~np.isnan(p)
    y, p = y[ok].astype(int), p[ok]
    out = {"n": int(len(y)), "n_pos": int(y.sum())}
    if len(y) == 0 or y.min() == y.max():
        out.update({"auroc": None, "auroc_ci": None, "auprc": None, "auprc_ci": None,
                    "note": "only one class present: AUROC undefined"})
        return out
    out["auroc"] = float(roc_auc_score(y, p))
    out["auroc_ci"] = list(bootstrap_ci(y, p, roc_auc_score, n_boot, seed)) if n_boot else None
    out["auprc"] = float(average_precision_score(y, p))
    out["auprc_ci"] = list(bootstrap_ci(y, p, average_precision_score, n_boot, seed)) if n_boot else None
    out["prevalence"] = float(y.mean())
    return out


def patient_level(frame, targets: list[str]):
    """Mean probability per patient; the patient's label is the max over its slides' labels (NaN if none)."""
    agg = {f"{t}_prob": "mean" for t in targets}
    agg.update({t: "max" for t in targets})
    if "fold" in frame.columns:
        agg["fold"] = "first"
    return frame.groupby("patient", as_index=False).agg(agg)


def fold_aurocs(pat, target: str) -> dict[int, float | None]:
    """Patient-level AUROC inside each fold. Unlike the pooled AUROC, it is unbiased under shuffled labels:
    pooling mixes models whose baselines differ by fold (a fold whose training set had more positives predicts
    higher everywhere while holding fewer positives), which pushes a null pooled AUROC below 0.5 on small sets."""
    from sklearn.metrics import roc_auc_score

    out: dict[int, float | None] = {}
    for k, g in pat.groupby("fold"):
        y = g[target].to_numpy(float)
        p = g[f"{target}_prob"].to_numpy(float)
        ok = ~np.isnan(y)
        out[int(k)] = float(roc_auc_score(y[ok].astype(int), p[ok])) if ok.sum() > 1 and 0 < y[ok].sum() < ok.sum() else None
    return out


def evaluate_predictions(frame, targets: list[str], n_boot: int = 1000, seed: int = 0) -> dict:
    """Slide- and patient-level metrics per target from out-of-fold predictions (`<t>_prob`, `<t>`, `patient`, `fold`)."""
    pat = patient_level(frame, targets)
    result: dict = {}
    for t in targets:
        entry = {
            "patient": binary_metrics(pat[t].to_numpy(float), pat[f"{t}_prob"].to_numpy(float), n_boot, seed),
            "slide": binary_metrics(frame[t].to_numpy(float), frame[f"{t}_prob"].to_numpy(float), n_boot, seed),
        }
        if "fold" in frame.columns:
            entry["positives_per_fold"] = {int(k): int(v) for k, v in
                                           pat.groupby("fold")[t].apply(lambda s: int((s == 1).sum())).items()}
            entry["fold_auroc"] = fold_aurocs(pat, t)
            vals = [v for v in entry["fold_auroc"].values() if v is not None]
            entry["fold_auroc_mean"] = float(np.mean(vals)) if vals else None
        result[t] = entry
    return result


def roc_plot(frame, targets: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """ROC curves (patient level) for every target with an AUROC, one PNG."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from vai.core.plots import pyplot, save_figure

    plt = pyplot()

    pat = patient_level(frame, targets)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    for t in targets:
        y = pat[t].to_numpy(float)
        p = pat[f"{t}_prob"].to_numpy(float)
        ok = ~np.isnan(y)
        if ok.sum() < 2 or y[ok].min() == y[ok].max():
            continue
        fpr, tpr, _ = roc_curve(y[ok].astype(int), p[ok])
        ax.plot(fpr, tpr, label=f"{t} (AUROC {roc_auc_score(y[ok].astype(int), p[ok]):.2f})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "cross-validated ROC (patient level)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
