"""Tissue detection on a slide thumbnail: saturation threshold (Otsu, with a floor for blank slides),
pen-mark rejection by hue, hole filling and a minimum area."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np



@dataclass
class TissueMask:
    mask: np.ndarray        # bool [h, w] on the thumbnail grid
    downsample: float       # level-0 pixels per mask pixel
    thumbnail: np.ndarray   # RGB uint8 thumbnail the mask was computed on

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def empty(self) -> bool:
        return not bool(self.mask.any())

    def save_png(self, path: str | os.PathLike) -> Path:
        from vai.core.plots import save_image

        return save_image(path, self.mask.astype(bool))

    def coverage(self, x0: np.ndarray, y0: np.ndarray, size0: float) -> np.ndarray:
        """Fraction of tissue in each level-0 square [x0, x0+size0) x [y0, y0+size0), from an integral image."""
        m = self.mask.astype(np.float64)
        integral = np.zeros((m.shape[0] + 1, m.shape[1] + 1))
        integral[1:, 1:] = m.cumsum(0).cumsum(1)
        d = self.downsample
        h, w = m.shape
        c0 = np.clip(np.floor(x0 / d).astype(int), 0, w)
        r0 = np.clip(np.floor(y0 / d).astype(int), 0, h)
        c1 = np.clip(np.ceil((x0 + size0) / d).astype(int), 0, w)
        r1 = np.clip(np.ceil((y0 + size0) / d).astype(int), 0, h)
        area = np.maximum((c1 - c0) * (r1 - r0), 1)
        total = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
        return total / area


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue, saturation, value in [0, 1] as float32 (skimage's rgb2hsv in float64 is ~3x slower)."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(-1), x.min(-1)
    delta = mx - mn
    sat = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0.0).astype(np.float32)
    d = np.maximum(delta, 1e-6)
    hue = np.where(mx == r, ((g - b) / d) % 6.0, np.where(mx == g, (b - r) / d + 2.0, (r - g) / d + 4.0)) / 6.0
    hue = np.where(delta > 0, hue, 0.0).astype(np.float32)
    return hue, sat, mx


class TissueDetector:
    """Finds tissue on a thumbnail.

    - saturation > max(Otsu threshold, `min_saturation`): tissue is coloured, glass is grey/white;
    - pen marks (green/blue hue, or near-black) are removed, so ink outlines do not become tissue;
    - holes are filled and components smaller than `min_area_frac` of the thumbnail are dropped.
    """

    def __init__(self, thumbnail_size: int = 1024, min_saturation: float = 0.07, min_area_frac: float = 0.0005,
                 reject_pen: bool = True):
        self.thumbnail_size = thumbnail_size
        self.min_saturation = min_saturation
        self.min_area_frac = min_area_frac
        self.reject_pen = reject_pen

    def detect_array(self, rgb: np.ndarray, downsample: float = 1.0) -> TissueMask:
        from scipy import ndimage
        from skimage.filters import threshold_otsu

        hue, sat, val = _hsv(rgb[..., :3])
        try:
            otsu = float(threshold_otsu(sat)) if float(sat.max() - sat.min()) > 1e-6 else 1.0
        except ValueError:
            otsu = 1.0
        mask = sat > max(otsu, self.min_saturation)
        if self.reject_pen:
            # H&E is pink to purple (hue ~0.7-1.0 and ~0-0.1); green/blue ink and black marker are not.
            pen = ((hue > 0.15) & (hue < 0.67) & (sat > 0.2)) | (val < 0.15)
            mask &= ~pen
        mask = ndimage.binary_closing(mask, structure=np.ones((3, 3)), iterations=2)
        mask = ndimage.binary_fill_holes(mask)
        min_area = max(4, int(self.min_area_frac * mask.size))
        labels, n = ndimage.label(mask)
        if n:
            sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
            keep = np.zeros(n + 1, bool)
            keep[1:] = sizes >= min_area
            mask = keep[labels]
        return TissueMask(mask=mask.astype(bool), downsample=float(downsample), thumbnail=rgb[..., :3])

    def detect(self, slide) -> TissueMask:
        thumb, downsample = slide.thumbnail(self.thumbnail_size)
        return self.detect_array(thumb, downsample)
