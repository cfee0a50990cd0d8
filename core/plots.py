"""Figures every vertical writes: matplotlib without a screen, saved atomically, and images with a colour scale.

A heatmap without its scale says "red is bad" and nothing more; the scale says what red is (an anomaly score,
an attention rank), so each heatmap folder and figure carries one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg back end (batch jobs and servers have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a figure as PNG through a temporary file (a reader never sees half an image) and close it."""
    from .io import atomic_path

    plt = pyplot()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)


def save_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """An image array (uint8 RGB, or a grey or boolean mask) as PNG, through a temporary file."""
    from PIL import Image

    from .io import atomic_path

    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)


def _scale_bar(ax, cmap: str, ticks: Mapping[float, str], label: str) -> None:
    ax.imshow(np.linspace(0, 1, 256)[None, :], aspect="auto", cmap=cmap, extent=(0, 1, 0, 1))
    ax.set_yticks([])
    ax.set_xticks(list(ticks))
    labels = ax.set_xticklabels(list(ticks.values()), fontsize=8)
    for pos, text in zip(ticks, labels):  # the end labels run inwards, so they are not cut off at the edge
        text.set_ha("left" if pos <= 0.02 else "right" if pos >= 0.98 else "center")
    ax.set_xlim(0, 1)
    ax.set_xlabel(label, fontsize=8)


def image_with_colour_scale(path: str | os.PathLike, rgb: np.ndarray, *, title: str, ticks: Mapping[float, str],
                            scale_label: str, cmap: str = "jet", max_width_px: int = 1200) -> Path:
    """The image (a heatmap overlay, uint8 RGB) at its own resolution up to `max_width_px`, a title above and the
    colour scale below; `ticks` maps positions in [0, 1] of the colour map to their labels."""
    plt = pyplot()
    h, w = rgb.shape[:2]
    dpi = 100
    width = min(max(w, 480), max_width_px) / dpi
    img_h = width * h / w
    total = img_h + 0.4 + 0.95  # inches: title strip, image, colour-scale strip
    fig = plt.figure(figsize=(width, total), dpi=dpi)
    ax = fig.add_axes((0, 0.95 / total, 1, img_h / total))
    ax.imshow(rgb, interpolation="nearest" if w >= width * dpi else "antialiased")
    ax.set_axis_off()
    fig.text(0.5, 1 - 0.2 / total, title, ha="center", va="center", fontsize=9)
    _scale_bar(fig.add_axes((0.1, 0.55 / total, 0.8, 0.14 / total)), cmap, ticks, scale_label)
    return save_figure(fig, path, dpi=dpi)


def colour_scale(path: str | os.PathLike, *, title: str, ticks: Mapping[float, str], scale_label: str,
                 cmap: str = "jet") -> Path:
    """A legend on its own: one colour scale shared by a folder of heatmaps."""
    plt = pyplot()
    fig = plt.figure(figsize=(7.5, 1.3), dpi=100)
    fig.text(0.5, 0.85, title, ha="center", va="center", fontsize=9)
    _scale_bar(fig.add_axes((0.06, 0.45, 0.88, 0.2)), cmap, ticks, scale_label)
    return save_figure(fig, path, dpi=100)
