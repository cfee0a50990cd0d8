"""Evaluation metrics: image AUROC, pixel AUROC, AUPRO (per-region overlap up to 30 % FPR), and F1, recall
and false-positive rate at a threshold."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def image_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def pixel_auroc(masks: np.ndarray, maps: np.ndarray, max_pixels: int = 4_000_000, seed: int = 0) -> float:
    """AUROC over all pixels of all images (subsampled evenly when huge)."""
    y = np.asarray(masks).reshape(-1).astype(bool)
    s = np.asarray(maps).reshape(-1)
    if y.size > max_pixels:
        idx = np.random.default_rng(seed).choice(y.size, max_pixels, replace=False)
        y, s = y[idx], s[idx]
    return image_auroc(y, s)


def aupro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3, n_thresholds: int = 400) -> float:
    """Area under the per-region-overlap curve up to `fpr_limit` false-positive rate, divided by the limit
    (MVTec AD's AUPRO). Regions are the connected components of each mask; normal pixels are those outside
    every mask."""
    from skimage.measure import label

    masks = np.asarray(masks).astype(bool)
    maps = np.asarray(maps, dtype=np.float64)
    normal = np.sort(maps[~masks])
    if normal.size == 0 or not masks.any():
        return float("nan")
    regions = []
    for m, a in zip(masks, maps):
        lab = label(m, connectivity=2)
        for r in range(1, lab.max() + 1):
            regions.append(np.sort(a[lab == r]))
    # candidate thresholds: quantiles of normal and defect pixels (ties handled with `>=`), plus +inf
    allreg = np.concatenate(regions)
    grid = np.linspace(0.0, 1.0, n_thresholds)
    cands = np.unique(np.r_[np.quantile(normal, grid), np.quantile(allreg, grid), np.inf])
    fpr = 1.0 - np.searchsorted(normal, cands, side="left") / normal.size
    pro = np.mean([1.0 - np.searchsorted(r, cands, side="left") / r.size for r in regions], axis=0)
    order = np.lexsort((pro, fpr))  # by FPR, and up the vertical jumps at equal FPR
    fpr, pro = fpr[order], pro[order]
    pro_at_limit = float(np.interp(fpr_limit, fpr, pro))
    keep = fpr <= fpr_limit
    x, y = np.r_[fpr[keep], fpr_limit], np.r_[pro[keep], pro_at_limit]
    trapz = getattr(np, "trapezoid", None) or np.trapz
    return float(trapz(y, x) / fpr_limit)


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Confusion-based figures for `score > threshold`."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) > threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    tn = int((~pred & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return {"threshold": float(threshold), "f1": f1, "precision": precision, "recall": recall,
            "fpr": fp / (fp + tn) if fp + tn else float("nan"), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def plot_evaluation(labels: np.ndarray, scores: np.ndarray, threshold: float, out_dir: Path) -> dict[str, Path]:
    """ROC curve and score histograms with the threshold, as PNGs."""
    from sklearn.metrics import roc_curve

    from vai.core.plots import pyplot, save_figure

    plt = pyplot()

    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(labels).astype(int)
    paths = {}
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if y.min() != y.max():
        fpr, tpr, _ = roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"AUROC {image_auroc(y, scores):.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("recall")
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths["roc"] = out_dir / "roc.png"
    save_figure(fig, paths["roc"], dpi=100)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.histogram_bin_edges(scores, bins=30)
    ax.hist(np.asarray(scores)[y == 0], bins=bins, alpha=0.6, label="good")
    ax.hist(np.asarray(scores)[y == 1], bins=bins, alpha=0.6, label="defect")
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    ax.set_xlabel("anomaly score")
    ax.legend()
    fig.tight_layout()
    paths["histogram"] = out_dir / "score_histogram.png"
    save_figure(fig, paths["histogram"], dpi=100)
    return paths
