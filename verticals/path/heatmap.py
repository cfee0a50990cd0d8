"""Attention heatmaps over the slide thumbnail and galleries of the most-attended tiles."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


ATTENTION_TICKS = {0.0: "least attended tile", 0.5: "median", 1.0: "most attended"}


def attention_overlay(thumbnail: np.ndarray, downsample: float, coords: np.ndarray, size0: float,
                      attention: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB uint8: the thumbnail with each tile's attention (rank-scaled to 0-1) painted in a colour map."""
    import matplotlib

    cmap = matplotlib.colormaps["jet"]
    h, w = thumbnail.shape[:2]
    heat = np.zeros((h, w), np.float32)
    cover = np.zeros((h, w), bool)
    if len(attention):
        # Ranks, not raw values: attention is peaked, and ranks show where the model looked at every level.
        ranks = np.argsort(np.argsort(attention)).astype(np.float32) / max(1, len(attention) - 1)
        s = max(1, int(round(size0 / downsample)))
        for (x, y), v in zip(coords, ranks):
            c, r = int(x / downsample), int(y / downsample)
            heat[r:r + s, c:c + s] = v
            cover[r:r + s, c:c + s] = True
    colour = (cmap(heat)[..., :3] * 255).astype(np.float32)
    out = thumbnail[..., :3].astype(np.float32).copy()
    out[cover] = (1 - alpha) * out[cover] + alpha * colour[cover]
    return out.clip(0, 255).astype(np.uint8)


def tile_gallery(tiles: list[np.ndarray], cols: int = 4, pad: int = 4) -> np.ndarray:
    if not tiles:
        return np.full((32, 32, 3), 255, np.uint8)
    t = tiles[0].shape[0]
    rows = int(np.ceil(len(tiles) / cols))
    canvas = np.full((rows * (t + pad) + pad, cols * (t + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[pad + r * (t + pad):pad + r * (t + pad) + t, pad + c * (t + pad):pad + c * (t + pad) + t] = tile[..., :3]
    return canvas


def heatmap_title(stem: str, target: str, n_tiles: int, prob: float | None = None,
                  out_of_domain: bool = False) -> str:
    """The overlay's title: slide, target, predicted probability and, for a slide unlike the training slides, a
    warning (the picture must not look more certain than the predictions table says)."""
    note = "" if prob is None else f": predicted probability {prob:.2f}"
    if out_of_domain:
        note += ", OUTSIDE the training slides' range (not backed by cross-validation)"
    return f"{stem}, {target}{note} ({n_tiles} tiles)"


def write_heatmaps(h5_path: str | os.PathLike, attention: np.ndarray, targets: list[str], out_dir: str | os.PathLike,
                   top_k: int = 8, thumbnail_size: int = 1024, probs=None,
                   out_of_domain: bool = False) -> dict[str, str]:
    """For each target: `<stem>_<target>_heatmap.png` (the overlay with the slide, target, predicted probability,
    an out-of-domain note, and the colour scale) and `<stem>_<target>_top_tiles.png`. Needs the slide (its path
    is stored in the feature file); returns {name: path}."""
    from vai.core.plots import image_with_colour_scale, save_image

    from .slide import SlideReader
    from .tiling import Tiler, read_grid_h5
    import h5py

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(h5_path).stem
    grid = read_grid_h5(h5_path)
    with h5py.File(h5_path, "r") as f:
        slide_path = str(f.attrs["slide_path"])
        mpp = float(f.attrs["slide_mpp"])
    written: dict[str, str] = {}
    with SlideReader(slide_path, mpp=mpp) as slide:
        thumb, ds = slide.thumbnail(thumbnail_size)
        for j, t in enumerate(targets):
            att = attention[j]
            written[f"{t}_heatmap"] = str(image_with_colour_scale(
                out / f"{stem}_{t}_heatmap.png", attention_overlay(thumb, ds, grid.coords, grid.size0, att),
                title=heatmap_title(stem, t, len(att), None if probs is None else float(probs[j]), out_of_domain),
                ticks=ATTENTION_TICKS,
                scale_label="attention rank within this slide (where the model looked; not a mutation map)"))
            top = np.argsort(-att)[:top_k]
            tiles = []
            for i in top:
                x, y = grid.coords[i]
                tiles.append(Tiler._resize(slide.read_region((int(x), int(y)), grid.level,
                                                             (grid.read_size, grid.read_size)), grid))
            written[f"{t}_top_tiles"] = str(save_image(out / f"{stem}_{t}_top_tiles.png", tile_gallery(tiles)))
    return written


def grid_overlay(thumbnail: np.ndarray, downsample: float, coords: np.ndarray, size0: float,
                 colour=(0, 160, 255)) -> np.ndarray:
    """The thumbnail with each kept tile outlined (for checking tiling settings by eye)."""
    out = thumbnail[..., :3].copy()
    s = max(1, int(round(size0 / downsample)))
    h, w = out.shape[:2]
    for x, y in coords:
        c, r = int(x / downsample), int(y / downsample)
        r1, c1 = min(h - 1, r + s - 1), min(w - 1, c + s - 1)
        out[r, c:c1 + 1] = colour
        out[r1, c:c1 + 1] = colour
        out[r:r1 + 1, c] = colour
        out[r:r1 + 1, c1] = colour
    return out
