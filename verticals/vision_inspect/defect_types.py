"""Defect typing: with a few labelled defect images per type, name the type of a new defect, or "unknown".

Each defect image is described by its most anomalous patches' residuals (patch feature minus its nearest
good patch in the memory bank: what differs from normal, with the part's texture removed), averaged and
L2-normalised; the detector's own features, so no extra model. A new defect takes the type of its nearest
labelled example (`vai.core.kernels.knn.nearest`), unless that example is farther than the unknown radius:
`unknown_margin` (default 1.3) times the median leave-one-out nearest-same-type distance among the labelled
examples (the median, not the maximum, so one odd example does not open the radius to everything); with one
example per type, `unknown_margin` times half the closest distance between two types. An image the detector
does not flag (score at or below its threshold) is typed `good`, not given a defect type or `unknown`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vai.core.errors import VaiError
from vai.core.kernels.knn import nearest
from vai.core.progress import get_logger

from .data import BadImage, list_images
from .detector import VERTICAL, FewShotDetector, _as_images

log = get_logger("vai.vision_inspect")
UNKNOWN = "unknown"
GOOD = "good"  # the detector does not flag the image
RESERVED_TYPES = (UNKNOWN, GOOD)


@dataclass
class TypePrediction:
    path: str
    type: str
    nearest_type: str
    distance: float
    score: float
    is_defect: bool


class DefectTyper:
    def __init__(self, detector: FewShotDetector, *, top_patches: int = 8, unknown_margin: float = 1.3):
        detector._require_fitted()
        self.detector = detector
        self.top_patches = int(top_patches)
        self.unknown_margin = float(unknown_margin)
        self.descriptors: torch.Tensor | None = None
        self.labels: list[str] = []
        self.radius: float | None = None

    def describe(self, imgs: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Descriptors [N, D] of resized uint8 images, and their anomaly scores."""
        det = self.detector
        descs, scores = [], []
        for i in range(0, len(imgs), det.batch_size):
            feats = det.extractor(imgs[i:i + det.batch_size])
            n, h, w, d = feats.shape
            flat = feats.reshape(n, h * w, d)
            s, _ = det.score_features(flat, exact=True)
            dist, idx = nearest(flat.reshape(-1, d), det.bank, k=1)
            residual = (flat.reshape(-1, d) - det.bank[idx[:, 0]]).reshape(n, h * w, d)
            top = torch.topk(dist[:, 0].reshape(n, h * w), min(self.top_patches, h * w), dim=1).indices
            desc = torch.gather(residual, 1, top[..., None].expand(-1, -1, d)).mean(1)
            descs.append(torch.nn.functional.normalize(desc, dim=1))
            scores.append(s)
        if not descs:
            return torch.zeros(0, 0), np.zeros(0)
        return torch.cat(descs), np.concatenate(scores)

    def fit(self, examples: dict[str, object]) -> "DefectTyper":
        """`examples`: type name -> images (paths, folder/glob or uint8 array). At least 1 image per type."""
        if not examples:
            raise VaiError("defect typing needs labelled examples: at least one type with one image")
        reserved = [k for k in examples if str(k).lower() in RESERVED_TYPES]
        if reserved:
            raise VaiError(f"defect type {reserved[0]!r}: {' and '.join(RESERVED_TYPES)} are the typer's own "
                           "outcomes, not defect types; rename that type (or leave good images out)")
        descs, labels = [], []
        self.bad: list[BadImage] = []
        for name, imgs in examples.items():
            arr, _, bad = _as_images(imgs, self.detector.image_size, self.detector.config.get("deep_max"))
            self.bad += bad
            if len(arr) == 0:
                raise VaiError(f"defect type {name!r}: no readable images")
            d, _ = self.describe(arr)
            descs.append(d)
            labels += [name] * len(arr)
        if len(labels) < 2:
            raise VaiError(f"defect typing from one image (type {labels[0]!r}) has no distance to set the unknown "
                           "radius from: give at least two example images (of one type, or one each of two types)")
        self.descriptors = torch.cat(descs)
        self.labels = labels
        self.radius = self._loo_radius()
        return self

    def _loo_radius(self) -> float:
        """`unknown_margin` x the median distance from a labelled example to its nearest other example of
        the same type."""
        lab = np.asarray(self.labels)
        dists = []
        for name in np.unique(lab):
            idx = np.flatnonzero(lab == name)
            if len(idx) < 2:
                continue
            x = self.descriptors[torch.from_numpy(idx)]
            d, _ = nearest(x, x, k=2)  # the first neighbour is the example itself
            dists += d[:, 1].tolist()
        if not dists:  # one example per type: half the closest distance between types sets the scale
            d, _ = nearest(self.descriptors, self.descriptors, k=2)
            return float(d[:, 1].min() / 2 * self.unknown_margin)
        return float(np.median(dists) * self.unknown_margin)

    def predict(self, images) -> list[TypePrediction]:
        if self.descriptors is None:
            raise VaiError("the typer is not fitted: call fit({type: images}) or load a saved typer")
        arr, paths, bad = _as_images(images, self.detector.image_size, self.detector.config.get("deep_max"))
        self.predict_bad = bad
        if len(arr) == 0:
            return []
        desc, scores = self.describe(arr)
        d, i = nearest(desc, self.descriptors, k=1)
        out = []
        for p, dist, idx, s in zip(paths, d[:, 0].tolist(), i[:, 0].tolist(), scores):
            near = self.labels[idx]
            flagged = bool(s > self.detector.threshold)
            kind = (near if dist <= self.radius else UNKNOWN) if flagged else GOOD
            out.append(TypePrediction(str(p), kind, near, float(dist), float(s), flagged))
        return out

    # -- persistence: self-contained (the detector's bank and settings travel with the typer) ----------
    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        from vai.core.artifacts import save_model_dir

        det = self.detector
        names = sorted(set(self.labels))
        config = {"vertical": VERTICAL, "kind": "typer", "types": names, "radius": self.radius,
                  "top_patches": self.top_patches, "unknown_margin": self.unknown_margin,
                  "detector": {**det.config, "grid": list(det.grid), "threshold": det.threshold,
                               "pixel_scale": list(det.pixel_scale)}}
        weights = {"memory_bank": det.bank.float(), "descriptors": self.descriptors.float(),
                   "labels": torch.tensor([names.index(x) for x in self.labels], dtype=torch.int64)}
        return save_model_dir(path, config=config, weights=weights, metrics=metrics or {})

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "DefectTyper":
        from vai.core.artifacts import load_model_dir

        md = load_model_dir(path, vertical=VERTICAL, kind="typer")
        c = md.config
        w = md.weights()
        det = FewShotDetector.from_config(c["detector"], w["memory_bank"], device=device)
        typer = cls(det, top_patches=c["top_patches"], unknown_margin=c["unknown_margin"])
        typer.descriptors = w["descriptors"].to(det.device)
        typer.labels = [c["types"][i] for i in w["labels"].tolist()]
        typer.radius = float(c["radius"])
        return typer


def examples_from_folder(root: str | Path) -> dict[str, list[Path]]:
    """`root/<type>/*.png` -> {type: [paths]} (each sub-folder is one defect type)."""
    root = Path(root)
    if not root.is_dir():
        raise VaiError(f"{root}: not a folder; defect examples go in one sub-folder per type (root/<type>/*.png)")
    out = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if sub.name.lower() == GOOD:  # an anomalib test/ folder holds good/ beside the defect types
            log.warning("%s: good images are not a defect type; skipped (the typer calls unflagged images good)", sub)
            continue
        try:
            out[sub.name] = list_images(sub)
        except VaiError:
            continue
    if not out:
        raise VaiError(f"{root}: no sub-folders with images; put each defect type's images in root/<type>/")
    return out
