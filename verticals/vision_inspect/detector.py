"""The few-shot defect detector: a PatchCore-style memory bank of good-image patch features.

fit:   good images (k >= 1) -> augmented views -> patch features -> greedy coreset -> memory bank;
       a threshold set without defect images (leave-one-out among the support images, or a quantile of
       spare good images), or F1-optimal when labelled defects are given.
score: every test patch's distance to its nearest bank patch (`vai.core.kernels.knn.nearest`: the fused
       Triton kernel on GPU, the tiled PyTorch reference on CPU); the image score is the largest patch
       distance, re-weighted by how dense the bank is around its nearest neighbour (PatchCore eq. 7);
       the pixel map is the patch-distance grid upsampled and Gaussian-smoothed.
       With bf16 precision on a native-bf16 CPU, scoring first scans all patches with one bf16 GEMM per tile
       (`min_distance_bf16`, ~5x the fp32 search on AMX, distances within ~0.4% median) and then computes
       each image's highest patches exactly in fp32: image scores (and so the threshold) are the exact ones,
       only the pixel map's other patches carry the bf16 rounding.

Thresholds without defects (documented in the README):
- k >= 2: leave-one-out. Each support image (up to `max_loo` of them) is scored against a bank built from
  the OTHER support images (all their augmented views); threshold = the `threshold_quantile` (default 0.99,
  i.e. about the maximum for few images) of those scores. The held-out bank is smaller than the final one,
  so these scores lean high: the threshold errs towards fewer false alarms.
- k = 1: leave-one-quadrant-out on the single image (each quadrant's patches against the other three).
- spare good images (`spare_good=`): their scores against the final bank, same quantile; used instead of
  the leave-one-out scores when given (unbiased, preferred when a few more good images exist).
- labelled defects (`defects=`): the F1-optimal threshold between good scores (spare or leave-one-out) and
  the defect scores.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vai.core.errors import VaiError
from vai.core.kernels.knn import Bf16ScanBank, min_distance_bf16, nearest, prepare_bf16_scan
from vai.core.progress import get_logger

from .data import BadImage, image_hw, load_batch
from .features import PatchFeatureExtractor, augment_views, check_augment

VERTICAL = "vision_inspect"
log = get_logger("vai.vision_inspect")


@dataclass
class ScoreResult:
    scores: np.ndarray            # [N] image anomaly scores
    maps: np.ndarray              # [N, H, W] smoothed pixel anomaly maps (raw distances, not normalised)
    paths: list[Path] = field(default_factory=list)
    bad: list[BadImage] = field(default_factory=list)
    images: np.ndarray | None = None  # [N, H, W, 3] uint8, the resized inputs (for overlays)
    peaks: list[tuple[int, int]] = field(default_factory=list)  # (x, y) of the worst patch, original pixels


def patch_peaks(patch_maps: np.ndarray, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Where each image is most anomalous: the centre of its highest-scoring patch, in the original image's pixels
    (x from the left, y from the top; `sizes` are the originals' (width, height)). Images are resized to the model
    resolution without cropping, so a patch's relative position is the same in the original."""
    n, h, w = patch_maps.shape
    flat = patch_maps.reshape(n, -1).argmax(1) if n else np.zeros(0, int)
    out = []
    for k, (width, height) in zip(flat, sizes):
        i, j = divmod(int(k), w)
        out.append((int((j + 0.5) / w * width), int((i + 0.5) / h * height)))
    return out


def original_sizes(paths) -> list[tuple[int, int]]:
    """(width, height) of image files, from their headers."""
    from PIL import Image

    sizes = []
    for p in paths:
        with Image.open(p) as im:
            sizes.append(im.size)
    return sizes


def f1_optimal_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 for `score > threshold` (labels 1 = defect)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    cands = np.unique(scores)
    best_t, best_f1 = float(cands[0]), -1.0
    pos = labels.sum()
    # thresholds between consecutive unique scores so that `>` splits them
    mids = np.concatenate([[cands[0] - 1e-6], (cands[:-1] + cands[1:]) / 2])
    for t in mids:
        pred = scores > t
        tp = (pred & labels).sum()
        fp = (pred & ~labels).sum()
        f1 = 2 * tp / max(2 * tp + fp + (pos - tp), 1)
        if f1 > best_f1:
            best_t, best_f1 = float(t), float(f1)
    return best_t, best_f1


def _as_images(images, size, deep_max: float | None = None) -> tuple[np.ndarray, list[Path], list[BadImage]]:
    """Paths (list/glob/folder) or a uint8 array [N, H, W, 3] -> resized uint8 array, paths, bad items."""
    if isinstance(images, np.ndarray):
        arr = images
        if arr.ndim == 3:  # grayscale batch
            arr = np.repeat(arr[..., None], 3, -1)
        if arr.dtype != np.uint8:
            raise VaiError("image arrays must be uint8 [N, H, W, 3] (or [N, H, W] grayscale)")
        from .data import resize_rgb

        arr = np.stack([resize_rgb(a, size) for a in arr]) if len(arr) else arr
        return arr, [Path(f"<array {i}>") for i in range(len(arr))], []
    if isinstance(images, (str, Path)):
        from .data import list_images

        images = list_images(images)
    return load_batch(list(images), size, deep_max)


class FewShotDetector:
    """PatchCore-style few-shot anomaly detector. `fit(good)`, `score(images)`, `heatmap(image)`."""

    def __init__(self, backbone: str = "tf_efficientnet_lite0", *, pretrained: bool = True,
                 image_size: int | tuple[int, int] = 224,
                 augment: str = "flip", coreset_ratio: float = 0.1, coreset_min_bank: int = 4096,
                 max_bank: int = 16384, n_reweight: int = 9, threshold_quantile: float = 0.99, max_loo: int = 16,
                 device: str | None = None, seed: int = 0, batch_size: int = 16, weights: str | None = None,
                 precision: str | None = None, deep_max: float | None = None):
        """`deep_max`: full-scale value of 16-bit images (e.g. 4095 for a 12-bit camera); None = set by `fit`
        from the good images' bit depth (255 when they are 8-bit: then deep images are refused when scoring),
        and kept with the model so every scored image is scaled alike."""
        hw = image_hw(image_size)
        if min(hw) < 32:
            raise VaiError(f"image_size {image_size} is too small: the backbone needs at least 32 px a side")
        check_augment(augment, hw)  # before any image is read
        # square sizes stay an int (as saved before); HxW is saved as [H, W]
        size_cfg = hw[0] if hw[0] == hw[1] else [hw[0], hw[1]]
        self.config = dict(backbone=backbone, pretrained=bool(pretrained), image_size=size_cfg, augment=augment,
                           coreset_ratio=float(coreset_ratio), coreset_min_bank=int(coreset_min_bank),
                           max_bank=int(max_bank), n_reweight=int(n_reweight),
                           threshold_quantile=float(threshold_quantile), max_loo=int(max_loo), seed=int(seed),
                           weights=str(weights) if weights else None,
                           deep_max=float(deep_max) if deep_max else None)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # Backbone precision is fixed when the detector is made and saved with it: the threshold is only valid
        # for scores computed the same way. auto = bf16 on GPUs and native-bf16 CPUs (2x on an AMX CPU).
        from vai.core.device import inference_precision

        self.config["precision"] = inference_precision(self.device, precision)
        self.batch_size = batch_size
        self.bank: torch.Tensor | None = None
        self.threshold: float | None = None
        self.threshold_info: dict = {}
        self.pixel_scale: tuple[float, float] | None = None
        self.support_paths: list[str] = []
        self._extractor: PatchFeatureExtractor | None = None
        self._scan: tuple[torch.Tensor, Bf16ScanBank] | None = None  # (the bank it was made from, scan bank)

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def image_size(self) -> int | tuple[int, int]:
        """The model resolution: an int when square, else (height, width)."""
        s = self.config["image_size"]
        return s if isinstance(s, int) else tuple(s)

    @property
    def image_hw(self) -> tuple[int, int]:
        return image_hw(self.config["image_size"])

    @property
    def extractor(self) -> PatchFeatureExtractor:
        if self._extractor is None:
            self._extractor = PatchFeatureExtractor(self.config["backbone"], pretrained=self.config["pretrained"],
                                                    device=self.device, init_seed=self.config["seed"],
                                                    batch_size=self.batch_size, weights=self.config["weights"],
                                                    precision=self.config["precision"])
        return self._extractor

    def _bank_scan(self) -> Bf16ScanBank | None:
        """The bf16 scan of the bank (bf16 precision on a CPU with native bf16 only: emulated bf16 GEMMs are
        slower than the fp32 search), made once per bank."""
        from vai.core.device import cpu_has_fast_bf16

        if self.config["precision"] != "bf16" or self.device.type != "cpu" or self.bank is None \
                or not cpu_has_fast_bf16():
            return None
        if self._scan is None or self._scan[0] is not self.bank:
            self._scan = (self.bank, prepare_bf16_scan(self.bank))
        return self._scan[1]

    def _require_fitted(self) -> None:
        if self.bank is None:
            raise VaiError("the detector is not fitted: call fit(good_images) or load a saved model")

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, good, *, spare_good=None, defects=None) -> "FewShotDetector":
        """Build the memory bank from good images (paths, a folder/glob, or a uint8 array) and set the
        threshold (see the module docstring). Returns self."""
        t0 = time.monotonic()
        if not self.config["deep_max"] and not isinstance(good, np.ndarray):
            from .data import deep_full_scale, list_images

            listed = list_images(good) if isinstance(good, (str, Path)) else list(good)
            good = listed
            self.config["deep_max"] = deep_full_scale(listed)
        imgs, paths, bad = _as_images(good, self.image_size, self.config["deep_max"])
        if not self.config["deep_max"]:  # fitted on 8-bit images: deep ones scored later have no fixed scale
            from .data import EIGHT_BIT_FULL_SCALE

            self.config["deep_max"] = EIGHT_BIT_FULL_SCALE
        for b in bad:
            log.warning("skipping unreadable support image %s", b.error)
        if len(imgs) == 0:
            raise VaiError("no readable good images to fit on")
        self.support_paths = [str(p) for p in paths]
        self.fit_bad = bad
        n = len(imgs)
        views = augment_views(imgs, self.config["augment"])
        n_views = len(views) // n
        feats = self.extractor(views)  # [n_views * n, h, w, D], view-major
        _, h, w, d = feats.shape
        self.grid = (h, w)
        flat = feats.reshape(n_views, n, h * w, d)
        all_rows = flat.reshape(-1, d)
        self.bank = self._subsample(all_rows)
        self.threshold_info = {"n_support": n, "n_views": n_views, "patches": int(all_rows.shape[0]),
                               "bank_size": int(self.bank.shape[0]), "feature_dim": int(d)}
        # thresholds without defects
        loo_scores, loo_patch, held = self._leave_one_out(flat)
        good_scores, method = loo_scores, "leave_one_out" if n >= 2 else "leave_one_quadrant_out"
        if held and spare_good is None and defects is None:
            self._warn_unlike_support(loo_scores, held)
        if spare_good is not None:
            spare = self.score(spare_good)
            if len(spare.scores):
                good_scores, method = spare.scores, "spare_good_quantile"
                loo_patch = np.concatenate([loo_patch, spare.maps.reshape(-1)])
        q = self.config["threshold_quantile"]
        self.threshold = float(np.quantile(good_scores, q))
        info = {"method": method, "quantile": q, "good_scores": [float(s) for s in good_scores]}
        if defects is not None:
            dres = self.score(defects)
            if len(dres.scores):
                labels = np.r_[np.zeros(len(good_scores)), np.ones(len(dres.scores))]
                t, f1 = f1_optimal_threshold(labels, np.r_[good_scores, dres.scores])
                self.threshold = t
                info.update(method="f1_optimal", f1_at_threshold=f1, n_defect=int(len(dres.scores)))
        self.threshold_info.update(info)
        # a model-level scale for single-image heatmaps: (typical good-patch level, the image threshold)
        self.pixel_scale = (float(np.median(loo_patch)), float(max(self.threshold, np.median(loo_patch) + 1e-6)))
        self.threshold_info["fit_seconds"] = round(time.monotonic() - t0, 3)
        log.info("fitted on %d good images (%d views): bank %d x %d, threshold %.4f (%s)", n, n_views,
                 self.bank.shape[0], d, self.threshold, self.threshold_info["method"])
        return self

    def _subsample(self, rows: torch.Tensor) -> torch.Tensor:
        from .coreset import greedy_coreset

        n = rows.shape[0]
        cfg = self.config
        if n <= cfg["coreset_min_bank"]:
            return rows.contiguous()
        target = int(min(max(cfg["coreset_ratio"] * n, cfg["coreset_min_bank"]), cfg["max_bank"], n))
        if target > n // 2 and n <= cfg["max_bank"]:
            return rows.contiguous()  # a coreset this close to the full bank saves little and costs a fit
        idx = greedy_coreset(rows, target, seed=cfg["seed"])
        return rows[idx.to(rows.device)].contiguous()

    def _leave_one_out(self, flat: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Scores of held-out support images (or quadrants) against banks without them, their patch distances,
        and which support image each score belongs to (empty for the quadrants of a single image)."""
        n_views, n, p, d = flat.shape
        h, w = self.grid
        gen = np.random.default_rng(self.config["seed"])
        cap = self.config["max_bank"]
        scores, patch, held = [], [], []
        if n >= 2:
            held = sorted(gen.choice(n, size=min(n, self.config["max_loo"]), replace=False).tolist())
            for i in held:
                others = torch.cat([flat[:, :i], flat[:, i + 1:]], 1).reshape(-1, d)
                if others.shape[0] > cap:  # a random subsample keeps each fold cheap
                    others = others[torch.from_numpy(gen.choice(others.shape[0], cap, replace=False)).to(others.device)]
                s, pm = self._score_feats(flat[0, i:i + 1], others)
                scores.append(s[0])
                patch.append(pm.reshape(-1))
        else:
            grid = flat[0, 0].reshape(h, w, d)
            rr, cc = np.meshgrid(np.arange(h) < h // 2, np.arange(w) < w // 2, indexing="ij")
            for qmask in (rr & cc, rr & ~cc, ~rr & cc, ~rr & ~cc):
                qm = torch.from_numpy(qmask).to(grid.device)
                s, pm = self._score_feats(grid[qm][None], grid[~qm])
                scores.append(s[0])
                patch.append(pm.reshape(-1))
        return np.asarray(scores, dtype=np.float64), np.concatenate(patch), held

    def _warn_unlike_support(self, loo_scores: np.ndarray, held: list[int]) -> None:
        """Name support images whose leave-one-out score is far above the others' (median + 3.5 robust SDs,
        the SD at least 10% of the median, from 5 held-out images up): an image unlike the rest (another exposure or cell type, or a defect) sets
        the quantile threshold on its own. Only reported: on ELPV, dropping such scores from the threshold
        traded recall for false alarms (seed 2, k=8: recall 0.37 -> 0.83, FPR 0.01 -> 0.34), no clear gain."""
        if len(loo_scores) < 5:
            return
        med = float(np.median(loo_scores))
        # floor at 10% of the median: with 5-8 near-equal scores the MAD is ~0 and a score a few % above would
        # be named; an image that sets the threshold alone scored ~2x the median on ELPV (73.0 vs 35.5)
        spread = max(1.4826 * float(np.median(np.abs(loo_scores - med))), 0.1 * abs(med))
        unlike = [(self.support_paths[i], float(s)) for i, s in zip(held, loo_scores)
                  if spread > 0 and s > med + 3.5 * spread]
        self.threshold_info["unlike_support"] = [{"path": p, "loo_score": s} for p, s in unlike]
        for path, score in unlike:
            log.warning("support image %s scores %.1f in leave-one-out, far above the others (median %.1f): it "
                        "looks unlike the rest of the support set (another exposure or type, or a defect) and sets "
                        "the threshold nearly on its own. Check it, add more good images like it, or set the "
                        "threshold from spare good images (--spare-good, spare_good=).", path, score, med)

    # -- scoring -----------------------------------------------------------------------------------
    def _score_feats(self, q: torch.Tensor, bank: torch.Tensor,
                     scan: Bf16ScanBank | None = None) -> tuple[np.ndarray, np.ndarray]:
        """q [n, P, D] (or [n, h, w, D]) -> image scores [n] and patch distances [n, P].

        With `scan` (the bf16 scan of `bank`), all patches get approximate distances and each image's
        `_n_exact(P)` highest are recomputed exactly, so the image score is exact unless its true maximum lies
        outside that shortlist (the bf16 error would have to reorder a patch past 15 others)."""
        n = q.shape[0]
        q = q.reshape(n, -1, q.shape[-1])
        rows = torch.arange(n, device=q.device)
        if scan is None:
            dist, idx = nearest(q.reshape(-1, q.shape[-1]), bank, k=1)
            dist = dist[:, 0].reshape(n, -1)
            idx = idx[:, 0].reshape(n, -1)
            best, where = dist.max(1)
            star_idx = idx[rows, where]
        else:
            dist = min_distance_bf16(q.reshape(-1, q.shape[-1]), scan).reshape(n, -1)
            top = dist.topk(_n_exact(dist.shape[1]), dim=1).indices                # [n, m] shortlist
            d_top, i_top = nearest(q[rows[:, None], top].reshape(-1, q.shape[-1]), bank, k=1)
            d_top, i_top = d_top[:, 0].reshape(top.shape), i_top[:, 0].reshape(top.shape)
            dist = dist.scatter(1, top, d_top)
            best, pos = d_top.max(1)
            where, star_idx = top[rows, pos], i_top[rows, pos]
        test_patch = q[rows, where]                                 # [n, D]
        star = bank[star_idx]                                       # [n, D] its nearest bank patch
        b = min(self.config["n_reweight"], bank.shape[0])
        if b > 1:
            _, nb = nearest(star, bank, k=b)                        # the bank's neighbourhood of m*
            dn = torch.linalg.vector_norm(test_patch[:, None, :] - bank[nb], dim=-1)  # [n, b]
            weight = 1.0 - torch.softmax(dn, dim=1)[:, 0]
            scores = weight * best
        else:
            scores = best
        return scores.cpu().numpy().astype(np.float64), dist.cpu().numpy()

    def _smooth(self, patch_maps: np.ndarray) -> np.ndarray:
        """Bilinear upsampling then a Gaussian (sigma 4 px at 256 px, scipy's `gaussian_filter` with its default
        'reflect' edges), both linear and separable: one (S x h) matrix per axis, maps = B_h @ grid @ B_w^T.
        Equal to `F.interpolate` + `gaussian_filter` to ~3e-7, ~6x faster than filtering image by image."""
        H, W = self.image_hw
        h, w = self.grid
        if len(patch_maps) == 0:
            return np.zeros((0, H, W), np.float32)
        sigma = 4.0 * min(H, W) / 256.0  # the same blur in pixels along both axes of a non-square image
        b_h, b_w = _upsample_blur_matrix(h, H, sigma), _upsample_blur_matrix(w, W, sigma)
        t = torch.from_numpy(np.ascontiguousarray(patch_maps.reshape(-1, h, w), dtype=np.float32))
        return (b_h @ t @ b_w.T).numpy()

    @property
    def uses_bank_scan(self) -> bool:
        """Whether scoring scans the bank in bf16 (then re-ranks each image's top patches exactly in fp32)."""
        return self._bank_scan() is not None

    def score_features(self, feats: torch.Tensor, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Patch features from `extractor` [N, h, w, C] (or [N, P, C]) -> image scores [N] and patch distances
        [N, h * w], by the search `score` uses (the bf16 bank scan with exact top patches where it applies, else
        the fp32 search). `exact=True` always searches the whole bank in fp32: every patch distance exact and the
        same on every CPU (benchmarks and the defect typer use it)."""
        self._require_fitted()
        return self._score_feats(feats, self.bank, None if exact else self._bank_scan())

    def score_patches(self, imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resized uint8 images [N, H, W, 3] -> image scores [N] and raw patch-distance grids [N, h, w]."""
        self._require_fitted()
        scores, maps = [], []
        h, w = self.grid
        for i in range(0, len(imgs), self.batch_size):
            feats = self.extractor(imgs[i:i + self.batch_size])
            s, pm = self.score_features(feats)
            scores.append(s)
            maps.append(pm.reshape(-1, h, w))
        if not scores:
            return np.zeros(0), np.zeros((0, h, w), np.float32)
        return np.concatenate(scores), np.concatenate(maps).astype(np.float32)

    def smooth(self, patch_maps: np.ndarray) -> np.ndarray:
        """Patch grids [N, h, w] -> pixel maps [N, H, W]: bilinear upsampling, then a Gaussian (sigma 4 px at 256)."""
        return self._smooth(patch_maps).astype(np.float32)

    def score_array(self, imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resized uint8 images [N, H, W, 3] -> image scores [N] and smoothed maps [N, H, W]."""
        scores, patch = self.score_patches(imgs)
        return scores, self.smooth(patch)

    def score(self, images, *, keep_images: bool = False) -> ScoreResult:
        """Score images (paths, folder/glob, or uint8 array); unreadable files are reported in `.bad`."""
        imgs, paths, bad = _as_images(images, self.image_size, self.config.get("deep_max"))
        for b in bad:
            log.warning("skipping unreadable image: %s", b.error)
        scores, patch = self.score_patches(imgs)
        sizes = ([(images.shape[2], images.shape[1])] * len(imgs) if isinstance(images, np.ndarray)
                 else original_sizes(paths))
        return ScoreResult(scores=scores, maps=self.smooth(patch), paths=paths, bad=bad,
                           images=imgs if keep_images else None, peaks=patch_peaks(patch, sizes))

    def heatmap(self, image, *, scale: tuple[float, float] | None = None) -> np.ndarray:
        """One image's anomaly map in [0, 1] at the model resolution, on the model's fixed scale (or `scale`,
        (value at 0, value at 1)): comparable across images, unlike a per-image min-max. The fixed scale puts
        the typical good patch at 0 and the image threshold at 0.5, so a defect above the threshold is still
        graded (where it is worst) instead of one saturated blob."""
        if isinstance(image, np.ndarray):
            arr = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image
            res = self.score(arr[None])
        else:
            res = self.score([image])
        if not len(res.scores):
            raise VaiError(f"{image}: image could not be read")
        if scale is None:
            good_level, threshold = self.pixel_scale
            scale = (good_level, good_level + 2.0 * (threshold - good_level))
        return normalise_maps(res.maps, scale)[0]

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path, *, metrics: dict | None = None) -> Path:
        from vai.core.artifacts import fingerprint_files, save_model_dir

        self._require_fitted()
        real = [p for p in self.support_paths if Path(p).exists()]
        config = {"vertical": VERTICAL, "kind": "detector", **self.config, "grid": list(self.grid),
                  "threshold": self.threshold, "threshold_method": self.threshold_info.get("method"),
                  "pixel_scale": list(self.pixel_scale), "n_support": len(self.support_paths),
                  "bank_size": int(self.bank.shape[0]), "feature_dim": int(self.bank.shape[1])}
        return save_model_dir(path, config=config, weights={"memory_bank": self.bank.float()},
                              metrics=metrics or {}, data_fingerprint=fingerprint_files(real) if real else None,
                              json_files={"support.json": {"paths": self.support_paths,
                                                           "threshold": self.threshold_info}})

    _CONFIG_KEYS = ("backbone", "pretrained", "image_size", "augment", "coreset_ratio", "coreset_min_bank",
                    "max_bank", "n_reweight", "threshold_quantile", "max_loo", "seed", "weights", "deep_max")

    @classmethod
    def from_config(cls, c: dict, bank: torch.Tensor, device: str | None = None) -> "FewShotDetector":
        """A fitted detector from its saved config (a model directory's, or the one inside a typer) and memory
        bank. Models saved before the precision setting scored in fp32."""
        det = cls(**{k: c[k] for k in cls._CONFIG_KEYS if k in c}, precision=c.get("precision", "fp32"), device=device)
        det.bank = bank.to(det.device)
        det.grid, det.threshold, det.pixel_scale = tuple(c["grid"]), float(c["threshold"]), tuple(c["pixel_scale"])
        return det

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "FewShotDetector":
        from vai.core.artifacts import load_model_dir

        md = load_model_dir(path, vertical=VERTICAL, kind="detector")
        det = cls.from_config(md.config, md.weights()["memory_bank"], device=device)
        support = md.path / "support.json"
        if support.exists():
            from vai.core.io import read_json

            s = read_json(support)
            det.support_paths = s.get("paths", [])
            det.threshold_info = s.get("threshold", {})
        det.model_dir = md
        return det

    def set_threshold(self, value: float, method: str) -> None:
        self.threshold = float(value)
        self.threshold_info["method"] = method


@functools.lru_cache(maxsize=8)
def _upsample_blur_matrix(n_in: int, n_out: int, sigma: float) -> torch.Tensor:
    """[n_out, n_in]: bilinear upsampling (align_corners=False) followed by a Gaussian of `sigma` output pixels
    (scipy's `gaussian_filter1d` defaults: 4-sigma truncation, 'reflect' edges), as one linear map along one axis."""
    up = F.interpolate(torch.eye(n_in, dtype=torch.float64)[:, None, :], size=n_out, mode="linear",
                       align_corners=False)[:, 0, :].T                          # [n_out, n_in]
    from scipy.ndimage import gaussian_filter1d

    # the filter is linear: applied to the identity's columns it yields its own matrix (edges and truncation included)
    blur = gaussian_filter1d(np.eye(n_out), sigma, axis=0)
    return (torch.from_numpy(blur) @ up).float()


def _n_exact(n_patches: int) -> int:
    """How many of an image's highest bf16-scanned patches are recomputed exactly: 16, or 1/16 of them."""
    return min(n_patches, max(16, n_patches // 16))


def dataset_scale(maps: np.ndarray, threshold: float | None = None) -> tuple[float, float]:
    """One normalisation range for a whole scored set (not per image): 1st to 99.9th percentile of all pixel
    values, the top raised to at least the image threshold so that a set of good parts does not glow."""
    if maps.size == 0:
        return 0.0, 1.0
    sample = maps.reshape(-1)
    if sample.size > 2_000_000:
        sample = np.random.default_rng(0).choice(sample, 2_000_000, replace=False)
    lo, hi = np.percentile(sample, [1.0, 99.9])
    if threshold is not None:
        hi = max(hi, threshold)
    return float(lo), float(max(hi, lo + 1e-6))


def normalise_maps(maps: np.ndarray, scale: Sequence[float]) -> np.ndarray:
    lo, hi = scale
    return np.clip((maps - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)


def overlay(image: np.ndarray, heat01: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An RGB uint8 overlay of a [0, 1] heatmap (jet colours) on the image, at the image's size."""
    import matplotlib

    from PIL import Image

    h, w = image.shape[:2]
    if heat01.shape != (h, w):
        heat01 = np.asarray(Image.fromarray((heat01 * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)) / 255.0
    colours = matplotlib.colormaps["jet"](heat01)[..., :3] * 255
    out = (1 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(out, 0, 255).astype(np.uint8)


