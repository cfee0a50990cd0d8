"""Synthetic H&E-like slides for tests and the demo: pyramidal tiled TIFFs (OpenSlide reads them as
`generic-tiff`, with µm/px in the resolution tags), tissue islands on glass, and planted morphologies that
decide a synthetic "genotype":

- `synth_a` = 1 when the slide holds clusters of large, dense, dark (hyperchromatic) nuclei;
- `synth_b` = 1 when the slide holds gland-like rings of nuclei around pale lumens.

These labels are synthetic: a model that learns them shows the pipeline works, never that it predicts
any real genotype."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vai.core.io import atomic_path, atomic_write_table

TARGETS = ("synth_a", "synth_b")
EOSIN = np.array([232, 160, 196], np.float32)
NUCLEUS = np.array([110, 70, 150], np.float32)
DARK_NUCLEUS = np.array([45, 25, 85], np.float32)
GLASS = np.array([242, 242, 244], np.float32)


def _discs(shape, centers: np.ndarray, radius: float) -> np.ndarray:
    """Boolean image of discs of `radius` around integer `centers` [(row, col)]; the distance transform
    runs only over the centres' bounding box (plus the radius), which keeps small stamps cheap."""
    from scipy import ndimage

    out = np.zeros(shape, bool)
    if not len(centers):
        return out
    r = np.clip(centers[:, 0], 0, shape[0] - 1)
    c = np.clip(centers[:, 1], 0, shape[1] - 1)
    pad = int(np.ceil(radius)) + 1
    r0, r1 = max(0, r.min() - pad), min(shape[0], r.max() + pad + 1)
    c0, c1 = max(0, c.min() - pad), min(shape[1], c.max() + pad + 1)
    seeds = np.ones((r1 - r0, c1 - c0), bool)
    seeds[r - r0, c - c0] = False
    out[r0:r1, c0:c1] = ndimage.distance_transform_edt(seeds) <= radius
    return out


def render_synthetic_tissue(size: int, rng: np.random.Generator, morph_a: bool, morph_b: bool,
                            mpp: float = 0.5) -> np.ndarray:
    """An RGB uint8 [size, size, 3] H&E-like image. Structure sizes are in µm, so `mpp` scales them."""
    from scipy import ndimage

    px = 0.5 / mpp  # pixels per "0.5 µm pixel"
    # Tissue: smooth random field thresholded to ~55% cover, kept away from the edges a little.
    low = ndimage.gaussian_filter(rng.standard_normal((size // 16 + 1, size // 16 + 1)), 2.0)
    field = ndimage.zoom(low, size / low.shape[0], order=1)[:size, :size]
    tissue = field > np.quantile(field, 0.45)
    img = np.empty((size, size, 3), np.float32)
    img[:] = GLASS
    img[tissue] = EOSIN
    # Texture so that tiles are not flat colour.
    img += rng.normal(0, 6, (size, size, 1)).astype(np.float32)
    tissue_idx = np.argwhere(tissue)
    if len(tissue_idx) == 0:
        return np.clip(img, 0, 255).astype(np.uint8)
    n_nuclei = int(len(tissue_idx) / (220 * px * px))
    nuclei = tissue_idx[rng.integers(0, len(tissue_idx), n_nuclei)]
    img[_discs((size, size), nuclei, 4 * px)] = NUCLEUS
    n_regions = max(3, size // 300)
    if morph_a:  # clusters of big dark nuclei
        centers = tissue_idx[rng.integers(0, len(tissue_idx), n_regions)]
        for cy, cx in centers:
            rad = 70 * px
            pts = np.stack([cy + rng.uniform(-rad, rad, 120), cx + rng.uniform(-rad, rad, 120)], 1).astype(int)
            keep = ((pts[:, 0] - cy) ** 2 + (pts[:, 1] - cx) ** 2 <= rad ** 2)
            img[_discs((size, size), pts[keep], 9 * px) & tissue] = DARK_NUCLEUS
    if morph_b:  # glands: a pale lumen ringed by nuclei
        centers = tissue_idx[rng.integers(0, len(tissue_idx), n_regions * 3)]
        for cy, cx in centers:
            r_lumen = rng.uniform(18, 30) * px
            lumen = _discs((size, size), np.array([[cy, cx]]), r_lumen)
            img[lumen] = np.array([250, 235, 245], np.float32)
            ang = np.linspace(0, 2 * np.pi, 22, endpoint=False)
            ring = np.stack([cy + (r_lumen + 6 * px) * np.sin(ang), cx + (r_lumen + 6 * px) * np.cos(ang)], 1).astype(int)
            img[_discs((size, size), ring, 5 * px)] = NUCLEUS * 0.8
    return np.clip(img, 0, 255).astype(np.uint8)


def write_pyramid_tiff(path: str | os.PathLike, rgb: np.ndarray, mpp: float, tile: int = 256,
                       min_level_size: int = 256) -> Path:
    """A tiled, pyramidal RGB TIFF (deflate), each level a full-resolution IFD, µm/px in the resolution tags."""
    import tifffile
    from PIL import Image

    levels = [rgb]
    while min(levels[-1].shape[:2]) // 2 >= min_level_size:
        prev = levels[-1]
        levels.append(np.asarray(Image.fromarray(prev).reduce(2)))
    with atomic_path(path, suffix=".tiff") as tmp:
        with tifffile.TiffWriter(tmp) as tw:
            for i, arr in enumerate(levels):
                res = 1e4 / (mpp * 2 ** i)  # pixels per centimetre
                t = tile if min(arr.shape[:2]) >= tile else 16 * max(1, min(arr.shape[:2]) // 16)
                tw.write(arr, tile=(t, t), photometric="rgb", compression="zlib", resolution=(res, res),
                         resolutionunit="CENTIMETER", subfiletype=0 if i == 0 else 1, metadata=None)
    return Path(path)


def make_synthetic_slide(path: str | os.PathLike, *, size: int = 1024, mpp: float = 0.5, morph_a: bool = False,
                         morph_b: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_pyramid_tiff(path, render_synthetic_tissue(size, rng, morph_a, morph_b, mpp=mpp), mpp)


def make_synthetic_dataset(out_dir: str | os.PathLike, n_slides: int = 24, *, size: int = 1024, mpp: float = 0.5,
                           seed: int = 0, slides_per_patient: int = 2, n_sites: int = 4,
                           missing_frac: float = 0.1):
    """Write `n_slides` slides and `labels.csv` (slide, patient, site, synth_a, synth_b; blanks = missing).

    Each patient's slides share the patient's synthetic genotype; about half the patients carry each
    morphology, independently, so the two targets are uncorrelated."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_patients = max(1, int(np.ceil(n_slides / slides_per_patient)))
    # Balanced genotypes per patient (shuffled), so even small sets have both classes.
    a = rng.permutation(np.arange(n_patients) % 2)
    b = rng.permutation((np.arange(n_patients) // 2) % 2 if n_patients >= 4 else np.arange(n_patients) % 2)
    rows = []
    for i in range(n_slides):
        p = i // slides_per_patient
        name = f"synth_{i:03d}"
        make_synthetic_slide(out / f"{name}.tiff", size=size, mpp=mpp, morph_a=bool(a[p]), morph_b=bool(b[p]),
                             seed=int(rng.integers(0, 2**31)))
        rows.append({"slide": name, "patient": f"P{p:03d}", "site": f"S{p % n_sites}",
                     "synth_a": int(a[p]), "synth_b": int(b[p])})
    labels = pd.DataFrame(rows)
    if missing_frac > 0 and len(labels) > 4:
        miss = rng.random(len(labels)) < missing_frac
        labels["synth_b"] = labels["synth_b"].astype("Int64")
        labels.loc[miss, "synth_b"] = pd.NA
    atomic_write_table(out / "labels.csv", labels)
    return labels
