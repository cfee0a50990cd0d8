"""Applicability domain of a genotype model: is a new slide like the slides it was trained on?

A MIL model returns a confident-looking probability for any bag of features, including a slide from another
scanner, stain protocol or organ, or one that is mostly pen, blur or background. Each slide is summarised by
its mean tile embedding; dimensions are standardised by the training slides' spread, and a slide's distance is
the RMS z-distance to its nearest training slide. The training slides' own leave-one-out nearest-neighbour
distances set the scale: `domain_distance` = distance / the largest of them (the 99th percentile with 100+
slides), so <= 1 is inside what training covered and > 1 lies beyond every (or 99% of) training slide."""
from __future__ import annotations

import io

import numpy as np

DOMAIN_FILE = "domain.npz"


def slide_mean(bags, name: str, chunk: int = 8192) -> np.ndarray | None:
    """Mean tile embedding of one slide, streamed (a 100,000-tile slide is never loaded whole); None if no tiles."""
    total, n = None, 0
    for part in bags.iter_chunks(name, chunk):
        part = np.asarray(part, dtype=np.float64)
        total = part.sum(0) if total is None else total + part.sum(0)
        n += len(part)
    return None if not n else (total / n).astype(np.float32)


class FeatureDomain:
    def __init__(self, center: np.ndarray, scale: np.ndarray, train_z: np.ndarray, radius: float):
        self.center, self.scale, self.train_z, self.radius = center, scale, train_z, float(radius)

    @classmethod
    def fit(cls, means: np.ndarray) -> "FeatureDomain | None":
        """From the training slides' mean embeddings [n, d]; None with fewer than 3 slides (no scale to learn)."""
        means = np.asarray(means, dtype=np.float64)
        if len(means) < 3:
            return None
        n, dim = means.shape
        center = means.mean(0)
        scale = _floored(means.std(0))
        z = (means - center) / scale
        # leave-one-out of the whole procedure, scale included: a slide's distance is measured with the spread of
        # the others, as a new slide's is. With the slide in its own scale, distances shrink enough that a quarter
        # of new slides from the same source fell beyond the radius with 16 training slides (measured on
        # Gaussian data); with this, about the 1 / (n + 1) expected
        s1, s2 = means.sum(0), (means * means).sum(0)
        loo_mean = (s1[None] - means) / (n - 1)
        loo_var = np.maximum((s2[None] - means * means) / (n - 1) - loo_mean ** 2, 0)
        w = 1.0 / _floored(np.sqrt(loo_var)) ** 2  # [n, d]: slide i's weights
        sq = ((w * means * means).sum(1)[:, None] - 2 * (w * means) @ means.T + w @ (means * means).T) / dim
        np.fill_diagonal(sq, np.inf)
        loo = np.sqrt(np.maximum(sq.min(1), 0))
        radius = float(np.quantile(loo, 0.99, method="higher")) if n >= 100 else float(loo.max())
        return cls(center, scale, z.astype(np.float32), max(radius, 1e-9))

    def distance(self, means: np.ndarray) -> np.ndarray:
        """`domain_distance` per slide: nearest-training-slide distance over the training radius."""
        z = (np.asarray(means, dtype=np.float64) - self.center) / self.scale
        return _rms_dist(z, self.train_z.astype(np.float64)).min(1) / self.radius

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, center=self.center, scale=self.scale, train_z=self.train_z, radius=np.array(self.radius))
        return buf.getvalue()

    @classmethod
    def from_file(cls, path) -> "FeatureDomain":
        with np.load(path) as f:
            return cls(f["center"], f["scale"], f["train_z"], float(f["radius"]))


def _floored(sd: np.ndarray) -> np.ndarray:
    # a dimension that never varied in training must not turn a tiny change into an infinite z (per row of a 2-D sd)
    return np.maximum(sd, np.maximum(1e-6, 0.05 * np.median(sd, axis=-1, keepdims=True)))


def _rms_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0) / a.shape[1])
