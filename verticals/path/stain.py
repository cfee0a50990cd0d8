"""Stain normalisation: Macenko (stain vectors from optical density) and Reinhard (LAB mean/std matching).

Conventions follow the StainTools family (which tiatoolbox's golden images were made with), so results
agree with them: OD = -ln(max(I, 1) / 255); tissue = LAB lightness / 100 < 0.8; Macenko's H&E vectors from
the 1st/99th angular percentiles in the plane of the two main OD eigenvectors; concentrations by least
squares, scaled to the target's 99th percentile. Reinhard works on 8-bit LAB (L*2.55, a+128, b+128
rounded to uint8 as OpenCV stores it), which is why it matches OpenCV-based references closely."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vai.core.errors import VaiError

METHODS = ("macenko", "reinhard")


# Two published conventions. "staintools" (tiatoolbox, StainTools): light intensity 255, every tissue pixel
# estimates the stain vectors, the whole image is Reinhard-normalised. "histolab" (HistomicsTK-style):
# background intensity 240, OD rows with any channel below beta=0.15 left out of the vector estimate,
# Reinhard statistics and changes on tissue only (glass is kept as is).
CONVENTIONS = {
    "staintools": {"background": 255.0, "beta": 0.0, "mask_background": False},
    "histolab": {"background": 240.0, "beta": 0.15, "mask_background": True},
}


def rgb_to_od(rgb: np.ndarray, background: float = 255.0) -> np.ndarray:
    return -np.log(np.maximum(rgb.astype(np.float64), 1.0) / background)


def od_to_rgb(od: np.ndarray, background: float = 255.0) -> np.ndarray:
    return np.clip(background * np.exp(-od), 0, 255)


def _lab8(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 -> LAB quantised the OpenCV 8-bit way, returned as float (L in 0-100, a, b in -128..127)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb[..., :3])
    q = np.stack([lab[..., 0] * 255.0 / 100.0, lab[..., 1] + 128.0, lab[..., 2] + 128.0], -1)
    q = np.clip(np.round(q), 0, 255)
    return np.stack([q[..., 0] / 2.55, q[..., 1] - 128.0, q[..., 2] - 128.0], -1)


def _lab8_to_rgb(lab: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb

    q = np.stack([lab[..., 0] * 2.55, lab[..., 1] + 128.0, lab[..., 2] + 128.0], -1)
    q = np.clip(q, 0, 255).astype(np.uint8).astype(np.float64)  # OpenCV truncates to uint8 before converting back
    lab = np.stack([q[..., 0] * 100.0 / 255.0, q[..., 1] - 128.0, q[..., 2] - 128.0], -1)
    return np.clip(np.round(lab2rgb(lab) * 255.0), 0, 255).astype(np.uint8)


def tissue_pixels(rgb: np.ndarray, luminosity_threshold: float = 0.8) -> np.ndarray:
    mask = _lab8(rgb)[..., 0] / 100.0 < luminosity_threshold
    if not mask.any():
        raise VaiError("stain normalisation: the image has no tissue (every pixel is near-white)")
    return mask


def macenko_stain_matrix(rgb: np.ndarray, luminosity_threshold: float = 0.8, percentile: float = 99,
                         background: float = 255.0, beta: float = 0.0) -> np.ndarray:
    """2x3 matrix: haematoxylin row first, each row a unit OD vector."""
    od = rgb_to_od(rgb[..., :3], background).reshape(-1, 3)[tissue_pixels(rgb, luminosity_threshold).ravel()]
    if beta > 0:
        od = od[~np.any(od < beta, axis=1)]
    if len(od) < 3:
        raise VaiError("stain normalisation: too few tissue pixels to estimate stain vectors")
    _, vecs = np.linalg.eigh(np.cov(od, rowvar=False))
    basis = vecs[:, [2, 1]]
    basis[:, 0] *= np.sign(basis[0, 0]) or 1.0
    basis[:, 1] *= np.sign(basis[0, 1]) or 1.0
    proj = od @ basis
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, 100 - percentile), np.percentile(phi, percentile)
    v1 = basis @ np.array([np.cos(lo), np.sin(lo)])
    v2 = basis @ np.array([np.cos(hi), np.sin(hi)])
    he = np.array([v1, v2]) if v1[0] > v2[0] else np.array([v2, v1])
    return he / np.linalg.norm(he, axis=1, keepdims=True)


def concentrations(rgb: np.ndarray, stain_matrix: np.ndarray, background: float = 255.0) -> np.ndarray:
    od = rgb_to_od(rgb[..., :3], background).reshape(-1, 3)
    return np.linalg.lstsq(stain_matrix.T, od.T, rcond=None)[0].T


class StainNormalizer:
    """`StainNormalizer("macenko").fit(target_rgb)`, then `.transform(rgb) -> rgb` (uint8 in, uint8 out)."""

    def __init__(self, method: str = "macenko", convention: str = "staintools"):
        method = method.lower()
        if method not in METHODS:
            raise VaiError(f"stain method must be one of {', '.join(METHODS)}, got {method!r}")
        if convention not in CONVENTIONS:
            raise VaiError(f"stain convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        self.method = method
        self.convention = convention
        self._c = CONVENTIONS[convention]
        self.fitted = False

    @classmethod
    def from_target(cls, method: str, target: str | os.PathLike | None, convention: str = "staintools") -> "StainNormalizer":
        if not target:
            raise VaiError("stain normalisation needs a target image: pass --stain-target PNG")
        return cls(method, convention).fit(read_rgb(target))

    def fit(self, target: np.ndarray) -> "StainNormalizer":
        target = np.asarray(target)[..., :3]
        bg = self._c["background"]
        if self.method == "macenko":
            self.stain_matrix = macenko_stain_matrix(target, background=bg, beta=self._c["beta"])
            self.max_c = np.percentile(concentrations(target, self.stain_matrix, bg), 99, axis=0)[None]
        else:
            lab = _lab8(target)
            if self._c["mask_background"]:
                lab = lab[tissue_pixels(target)]
            lab = lab.reshape(-1, 3)
            self.mean, self.std = lab.mean(0), lab.std(0)
        self.fitted = True
        return self

    def transform(self, rgb: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise VaiError("stain normaliser used before fit(target)")
        rgb = np.asarray(rgb)[..., :3]
        bg = self._c["background"]
        if self.method == "macenko":
            sm = macenko_stain_matrix(rgb, background=bg, beta=self._c["beta"])
            c = concentrations(rgb, sm, bg)
            c *= self.max_c / np.maximum(np.percentile(c, 99, axis=0)[None], 1e-8)
            out = bg * np.exp(-(c @ self.stain_matrix))
            return np.clip(out, 0, 255).reshape(rgb.shape).astype(np.uint8)
        lab = _lab8(rgb)
        tissue = tissue_pixels(rgb) if self._c["mask_background"] else np.ones(rgb.shape[:2], bool)
        m, s = lab[tissue].mean(0), lab[tissue].std(0)
        norm = (lab - m) * (self.std / np.maximum(s, 1e-8)) + self.mean
        out = _lab8_to_rgb(norm)
        out[~tissue] = rgb[~tissue]
        return out


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise VaiError(f"{p}: image not found")
    try:
        return np.asarray(Image.open(p).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise VaiError(f"{p}: not a readable image ({exc})") from None
