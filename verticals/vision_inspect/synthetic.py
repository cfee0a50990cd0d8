"""Synthetic inspection data (for tests, the demo and the page): woven textures as good parts, with planted
scratches and spots (and their masks) as defects. Everything here is generated; results on it are
labelled synthetic."""
from __future__ import annotations

from pathlib import Path

import numpy as np

DEFECT_KINDS = ("scratch", "spot")


def make_texture(rng: np.random.Generator, size: int = 128, colour: bool = True) -> np.ndarray:
    """A good part: a woven grating with a random phase, mild low-frequency shading and sensor noise."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = 8.0
    px, py = rng.uniform(0, 2 * np.pi, 2)
    weave = np.sin(2 * np.pi * xx / period + px) * np.sin(2 * np.pi * yy / period + py)
    shade = gaussian_filter(rng.normal(size=(size, size)).astype(np.float32), sigma=size / 6)
    shade = shade / (np.abs(shade).max() + 1e-6)
    img = 0.55 + 0.18 * weave + 0.05 * shade + rng.normal(0, 0.02, (size, size))
    img = np.clip(img, 0, 1)
    if colour:
        tint = np.array([1.0, 0.85, 0.6], np.float32)
        rgb = img[..., None] * tint
    else:
        rgb = np.repeat(img[..., None], 3, -1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def plant_defect(img: np.ndarray, rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `img` with a scratch (a thin dark line) or a spot (a bright blob), and its bool mask."""
    from skimage.draw import ellipse, line_aa

    size = img.shape[0]
    out = img.astype(np.float32).copy()
    mask = np.zeros(img.shape[:2], bool)
    margin = size // 6
    if kind == "scratch":
        length = rng.uniform(0.3, 0.5) * size
        angle = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(margin + length / 2 * 0.3, size - margin - length / 2 * 0.3, 2)
        dy, dx = np.sin(angle) * length / 2, np.cos(angle) * length / 2
        r0, c0 = int(np.clip(cy - dy, 1, size - 2)), int(np.clip(cx - dx, 1, size - 2))
        r1, c1 = int(np.clip(cy + dy, 1, size - 2)), int(np.clip(cx + dx, 1, size - 2))
        for off in (-1, 0, 1):  # 3 px wide
            rr, cc, val = line_aa(r0 + off, c0, r1 + off, c1)
            keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            rr, cc, val = rr[keep], cc[keep], val[keep]
            out[rr, cc] = out[rr, cc] * (1 - 0.8 * val[:, None])
            mask[rr, cc] |= val > 0.3
    elif kind == "spot":
        r = rng.uniform(0.06, 0.1) * size
        cy, cx = rng.uniform(margin, size - margin, 2)
        rr, cc = ellipse(cy, cx, r, r * rng.uniform(0.6, 1.0), shape=mask.shape, rotation=rng.uniform(0, np.pi))
        out[rr, cc] = 0.6 * out[rr, cc] + 0.4 * 255
        mask[rr, cc] = True
    else:
        raise ValueError(f"unknown defect kind {kind!r}; one of {DEFECT_KINDS}")
    return np.clip(out, 0, 255).astype(np.uint8), mask


def make_set(n_good: int, n_defect: int, size: int = 128, seed: int = 0, colour: bool = True,
             kinds: tuple[str, ...] = DEFECT_KINDS):
    """Arrays: good [n_good, S, S, 3], defect [n_defect, S, S, 3], masks [n_defect, S, S], kinds [n_defect]."""
    rng = np.random.default_rng(seed)
    good = np.stack([make_texture(rng, size, colour) for _ in range(n_good)]) if n_good else np.zeros((0, size, size, 3), np.uint8)
    defects, masks, labels = [], [], []
    for i in range(n_defect):
        kind = kinds[i % len(kinds)]
        d, m = plant_defect(make_texture(rng, size, colour), rng, kind)
        defects.append(d)
        masks.append(m)
        labels.append(kind)
    if not n_defect:
        return good, np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), bool), []
    return good, np.stack(defects), np.stack(masks), labels


def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_dataset(root: str | Path, *, n_train: int = 4, n_test_good: int = 8, n_defect: int = 8, size: int = 128,
                  seed: int = 0, colour: bool = True) -> dict[str, Path]:
    """An anomalib-style folder tree:
        root/train/good/*.png   root/test/good/*.png   root/test/defect/<kind>/*.png   root/masks/<stem>.png
    Returns the folders."""
    root = Path(root)
    good, defect, masks, kinds = make_set(n_train + n_test_good, n_defect, size, seed, colour)
    for i in range(n_train):
        _write_png(root / "train" / "good" / f"train_{i:03d}.png", good[i])
    for i in range(n_test_good):
        _write_png(root / "test" / "good" / f"good_{i:03d}.png", good[n_train + i])
    for i, (img, m, kind) in enumerate(zip(defect, masks, kinds)):
        stem = f"{kind}_{i:03d}"
        _write_png(root / "test" / "defect" / kind / f"{stem}.png", img)
        _write_png(root / "masks" / f"{stem}.png", (m * 255).astype(np.uint8))
    return {"root": root, "train": root / "train" / "good", "test_good": root / "test" / "good",
            "test_defect": root / "test" / "defect", "masks": root / "masks"}
