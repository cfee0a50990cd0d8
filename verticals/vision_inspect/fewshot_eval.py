"""The few-shot evaluation protocol on ELPV solar cells (`<data dir>/vision/elpv_mono_subset`), shared by the
benchmark (`benchmarks/vision_elpv.py`) and the data integration test.

A fixed held-out test set of good images (drawn with seed 12345 from the sorted good list) plus every defect
image (or a fixed subsample); for each seed, a permutation of the REMAINING good images gives nested support
sets (the first k). Image AUROC over the held-out test set only: mean +- SD and the worst seed per k.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def load_elpv(root: Path) -> tuple[list[Path], list[Path]]:
    import csv

    good, defect = [], []
    with open(root / "labels.csv") as fh:
        for row in csv.DictReader(fh):
            p = root / row["path"]
            (defect if float(row["defect_probability"]) >= 0.5 else good).append(p)
    return sorted(good), sorted(defect)


def split(good: list[Path], n_test_good: int) -> tuple[list[Path], list[Path]]:
    rng = np.random.default_rng(12345)
    idx = rng.permutation(len(good))
    test = sorted(good[i] for i in idx[:n_test_good])
    pool = sorted(good[i] for i in idx[n_test_good:])
    return test, pool


def run(ks: list[int], seeds: int, size: int, n_test_good: int, n_test_defect: int | None, pretrained: bool,
        augment: str = "flip", data_dir: Path | None = None, log=print) -> dict:
    import torch

    from vai.core.settings import get_settings
    from vai.verticals.vision_inspect.data import load_batch
    from vai.verticals.vision_inspect.detector import FewShotDetector
    from vai.verticals.vision_inspect.metrics import image_auroc

    root = Path(data_dir) if data_dir else get_settings().require_data_dir("vision/elpv_mono_subset")
    good, defect = load_elpv(root)
    test_good, pool = split(good, n_test_good)
    if n_test_defect:
        defect = [defect[i] for i in sorted(np.random.default_rng(54321).permutation(len(defect))[:n_test_defect])]
    test_paths = test_good + defect
    labels = np.r_[np.zeros(len(test_good)), np.ones(len(defect))]
    t0 = time.monotonic()
    test_imgs, ok, bad = load_batch(test_paths, size)
    if bad:
        from vai.core.errors import VaiError

        raise VaiError(f"unreadable ELPV images: {[b.error for b in bad[:3]]}")
    probe = FewShotDetector(image_size=size, pretrained=pretrained, augment=augment)
    t_feat = time.monotonic()
    test_feats = probe.extractor(test_imgs)
    feat_s = time.monotonic() - t_feat
    log(f"test features: {len(test_imgs)} images at {size}px in {feat_s:.1f}s")
    per_k: dict[int, list[float]] = {k: [] for k in ks}
    fit_s: dict[int, list[float]] = {k: [] for k in ks}
    bank: dict[int, int] = {}
    score_s = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(pool))
        for k in ks:
            support = [pool[i] for i in order[:k]]
            det = FewShotDetector(image_size=size, pretrained=pretrained, augment=augment, seed=seed)
            t = time.monotonic()
            det.fit(support)
            fit_s[k].append(time.monotonic() - t)
            bank[k] = int(det.bank.shape[0])
            t = time.monotonic()
            scores = np.concatenate([det.score_features(test_feats[i:i + 32], exact=True)[0]
                                     for i in range(0, len(test_feats), 32)])
            score_s.append((time.monotonic() - t) / len(test_feats))
            per_k[k].append(image_auroc(labels, scores))
            log(f"seed {seed} k={k:>2}: AUROC {per_k[k][-1]:.3f} (bank {bank[k]}, fit {fit_s[k][-1]:.1f}s)")
    result = {
        "backbone": "tf_efficientnet_lite0" + ("" if pretrained else " (random weights)"),
        "image_size": size, "augment": augment, "seeds": seeds, "n_test_good": len(test_good),
        "n_test_defect": len(defect), "n_support_pool": len(pool), "torch_threads": torch.get_num_threads(),
        "per_k": {k: {"auroc_mean": float(np.mean(v)), "auroc_sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                      "auroc_worst": float(np.min(v)), "aurocs": [round(float(x), 4) for x in v],
                      "bank_size": bank[k], "fit_s_mean": float(np.mean(fit_s[k]))} for k, v in per_k.items()},
        "feature_s_per_image": feat_s / len(test_imgs),
        "knn_score_s_per_image_mean": float(np.mean(score_s)),
        "seconds": time.monotonic() - t0,
    }
    return result
