"""Tiling at a target resolution: a grid over level 0, kept where the tissue mask covers enough of a tile,
read from the best pyramid level and resized to the tile size.

Per slide the coordinates go to `<out>/<stem>.h5` (dataset `coords` [N, 2] level-0 x, y; attributes:
slide path, level, read size at that level, level-0 extent, tile size, target and slide µm/px, tissue
fraction), beside a tissue-mask PNG `<stem>_mask.png`. The embedder later adds `features` to the file."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vai.core.errors import VaiError
from vai.core.io import atomic_path, remove_stale_temps

from .slide import SlideReader
from .tissue import TissueDetector, TissueMask


@dataclass
class TileGrid:
    coords: np.ndarray          # [N, 2] int64 level-0 (x, y) of each tile's top-left corner
    level: int                  # pyramid level read
    read_size: int              # tile side in pixels at that level
    size0: float                # tile side in level-0 pixels
    tile_size: int              # output side in pixels
    target_mpp: float
    slide_mpp: float
    tissue_fraction: float
    coverage: np.ndarray        # [N] tissue coverage of each kept tile
    min_tissue: float | None = None  # the tissue threshold the grid was cut with (None: a file from before it was kept)

    def __len__(self) -> int:
        return int(self.coords.shape[0])


class Tiler:
    def __init__(self, target_mpp: float = 0.5, tile_size: int = 256, min_tissue: float = 0.5,
                 detector: TissueDetector | None = None):
        if not target_mpp > 0:
            raise VaiError(f"--mpp must be positive, got {target_mpp}")
        if not 16 <= tile_size <= 4096:
            raise VaiError(f"--tile must be between 16 and 4096 pixels, got {tile_size}")
        if not 0 <= min_tissue <= 1:
            raise VaiError(f"--min-tissue must be a fraction in [0, 1], got {min_tissue}")
        self.target_mpp, self.tile_size, self.min_tissue = float(target_mpp), int(tile_size), float(min_tissue)
        self.snap = 0.01  # relative scale difference read without resizing
        self.detector = detector or TissueDetector()

    def grid(self, slide: SlideReader, mask: TissueMask | None = None) -> tuple[TileGrid, TissueMask]:
        mask = mask if mask is not None else self.detector.detect(slide)
        slide_mpp = slide.mpp
        downsample = self.target_mpp / slide_mpp          # level-0 pixels per output pixel
        size0 = self.tile_size * downsample                # tile side in level-0 pixels
        level = slide.best_level_for_downsample(downsample)
        read_size = int(round(size0 / slide.level_downsamples[level]))
        if abs(read_size - self.tile_size) <= self.snap * self.tile_size:
            # Within 1% of the target (e.g. a 0.499 µm/px scan tiled at 0.5): read the tile size as is. A
            # 0.2% scale error is far below scanner calibration error, and skipping the resize doubles speed.
            read_size = self.tile_size
            size0 = read_size * float(slide.level_downsamples[level])
        w, h = slide.dimensions
        nx, ny = int(w // size0), int(h // size0)
        xs = (np.arange(nx) * size0).round().astype(np.int64)
        ys = (np.arange(ny) * size0).round().astype(np.int64)
        gx, gy = np.meshgrid(xs, ys)
        gx, gy = gx.ravel(), gy.ravel()
        cov = mask.coverage(gx, gy, size0) if gx.size else np.zeros(0)
        keep = cov >= self.min_tissue if self.min_tissue > 0 else np.ones_like(cov, bool)
        if self.min_tissue > 0:
            keep &= cov > 0
        coords = np.stack([gx[keep], gy[keep]], axis=1).astype(np.int64) if gx.size else np.zeros((0, 2), np.int64)
        return TileGrid(coords=coords, level=level, read_size=max(1, read_size), size0=float(size0),
                        tile_size=self.tile_size, target_mpp=self.target_mpp, slide_mpp=float(slide_mpp),
                        tissue_fraction=mask.fraction, coverage=cov[keep], min_tissue=float(self.min_tissue)), mask

    def iter_tiles(self, slide: SlideReader, grid: TileGrid, rows: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """(index, RGB tile [tile, tile, 3]) for every tile in the grid. With `rows`, tiles sharing a row
        are cut out of one strip read (fewer, larger reads: far fewer decoder calls per tile). The fast JPEG
        path caches decoded tiles itself, so there strips would only add copies and decode the gaps between
        tissue tiles: it reads tile by tile."""
        coords = grid.coords
        ds = slide.level_downsamples[grid.level]
        if not rows or slide.serves_fast(grid.level):
            for i, (x, y) in enumerate(coords):
                yield i, self._resize(slide.read_region((x, y), grid.level, (grid.read_size, grid.read_size)), grid)
            return
        order = np.lexsort((coords[:, 0], coords[:, 1]))
        start = 0
        while start < len(order):
            y = coords[order[start], 1]
            end = start
            while end < len(order) and coords[order[end], 1] == y:
                end += 1
            idx = order[start:end]
            x0 = int(coords[idx[0], 0])
            x_last = int(coords[idx[-1], 0])
            width = int(round((x_last - x0) / ds)) + grid.read_size
            strip = slide.read_region((x0, int(y)), grid.level, (width, grid.read_size))
            for i in idx:
                off = int(round((coords[i, 0] - x0) / ds))
                yield int(i), self._resize(strip[:, off:off + grid.read_size], grid)
            start = end

    @staticmethod
    def _resize(tile: np.ndarray, grid: TileGrid) -> np.ndarray:
        if tile.shape[0] == grid.tile_size and tile.shape[1] == grid.tile_size:
            return tile
        from PIL import Image

        return np.asarray(Image.fromarray(tile).resize((grid.tile_size, grid.tile_size), Image.BILINEAR, reducing_gap=2.0))


def write_grid_h5(path: str | os.PathLike, grid: TileGrid, slide_path: str | os.PathLike) -> Path:
    import h5py

    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("coords", data=grid.coords, dtype="int64")
            f.create_dataset("coverage", data=grid.coverage.astype(np.float32))
            f.attrs.update({
                "slide_path": str(Path(slide_path).resolve()), "level": grid.level, "read_size": grid.read_size,
                "size0": grid.size0, "tile_size": grid.tile_size, "target_mpp": grid.target_mpp,
                "slide_mpp": grid.slide_mpp, "tissue_fraction": grid.tissue_fraction, "n_tiles": len(grid),
                **({"min_tissue": float(grid.min_tissue)} if grid.min_tissue is not None else {}),
            })
    return Path(path)


def read_grid_h5(path: str | os.PathLike) -> TileGrid:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            a = dict(f.attrs)
            return TileGrid(coords=f["coords"][:], level=int(a["level"]), read_size=int(a["read_size"]),
                            size0=float(a["size0"]), tile_size=int(a["tile_size"]), target_mpp=float(a["target_mpp"]),
                            slide_mpp=float(a["slide_mpp"]), tissue_fraction=float(a["tissue_fraction"]),
                            coverage=f["coverage"][:] if "coverage" in f else np.ones(len(f["coords"]), np.float32),
                            min_tissue=float(a["min_tissue"]) if "min_tissue" in a else None)
    except (OSError, KeyError) as exc:
        raise VaiError(f"{path}: not a tile/feature file written by `vai path tile|embed` ({exc})") from None


def _holds_features(h5: Path) -> bool:
    import h5py

    if not h5.exists():
        return False
    try:
        with h5py.File(h5, "r") as f:
            return "features" in f
    except OSError:  # unreadable: nothing worth keeping
        return False


def tile_slide(slide_path: str, *, out_dir: str, target_mpp: float = 0.5, tile_size: int = 256,
               min_tissue: float = 0.5, mpp: float | None = None) -> dict:
    """One slide of `vai path tile` (a top-level function for `run_job`)."""
    out = Path(out_dir)
    stem = Path(slide_path).stem
    h5 = out / f"{stem}.h5"
    if _holds_features(h5):  # tiling over an embedded slide would throw its features away
        raise VaiError(f"{h5} holds features from `vai path embed`; tiling would overwrite them: tile into another "
                       "--out folder (embed tiles the slides itself, or reuses tiles found in its own --out)")
    remove_stale_temps(h5)
    with SlideReader(slide_path, mpp=mpp) as slide:
        tiler = Tiler(target_mpp, tile_size, min_tissue)
        grid, mask = tiler.grid(slide)
        mask.save_png(out / f"{stem}_mask.png")
        write_grid_h5(out / f"{stem}.h5", grid, slide_path)
    return {"slide": stem, "tiles": len(grid), "tissue_fraction": round(mask.fraction, 4), "level": grid.level,
            "no_tissue": bool(mask.empty or len(grid) == 0), "h5": str(out / f"{stem}.h5")}
