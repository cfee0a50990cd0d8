"""Tile embedding with a timm backbone (default `tf_efficientnet_lite0` with its offline ImageNet weights).

Tiles are read and decoded by DataLoader workers in parallel (each worker opens the slide itself), the
backbone runs batched (bf16 autocast on GPU), and features are streamed batch by batch into the slide's
HDF5 file beside its coordinates, so a slide with 100,000 tiles never holds its tiles (or all its
features) in memory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vai.core.errors import VaiError
from vai.core.io import atomic_path, remove_stale_temps
from vai.core.progress import Progress, get_logger

from .slide import SlideReader
from .tiling import TileGrid, Tiler, read_grid_h5, write_grid_h5

log = get_logger("vai.path")
PROGRESS_FROM_TILES = 2000  # slides with more tiles than this report progress within the slide
_BACKBONES: dict[tuple, Any] = {}
_FORWARDS: dict[tuple, Any] = {}   # (backbone, weights, device, batch size) -> vai.core.compile.BatchForward


def _torch():
    import torch

    return torch


class TileDataset:
    """Map-style dataset over one slide's tile grid: item i -> float tensor [3, tile, tile] (ImageNet-normalised)."""

    def __init__(self, slide_path: str | os.PathLike, grid: TileGrid, mpp: float | None = None, normalizer=None):
        self.slide_path = str(slide_path)
        self.grid = grid
        self.mpp = mpp
        self.normalizer = normalizer
        self._slide: SlideReader | None = None

    def __len__(self) -> int:
        return len(self.grid)

    def __getitem__(self, i: int):
        if self._slide is None:  # opened lazily: once per DataLoader worker
            self._slide = SlideReader(self.slide_path, mpp=self.mpp)
        x, y = self.grid.coords[i]
        rs = self.grid.read_size
        tile = Tiler._resize(self._slide.read_region((int(x), int(y)), self.grid.level, (rs, rs)), self.grid)
        return to_tensor(tile, self.normalizer)


def to_tensor(tile: np.ndarray, normalizer=None):
    torch = _torch()
    from vai.core.backbones import IMAGENET_MEAN, IMAGENET_STD

    if normalizer is not None:
        tile = normalizer.transform(tile)
    if not tile.flags.writeable or not tile.flags.c_contiguous:  # PIL hands out read-only views
        tile = np.array(tile)
    t = torch.from_numpy(tile).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (t - mean) / std


class TileEmbedder:
    """Backbone + batching. `embed_tiles(uint8 [N, H, W, 3]) -> float32 [N, D]`; `embed_slide(...)` streams
    one slide's tiles into its HDF5 file."""

    def __init__(self, backbone: str = "tf_efficientnet_lite0", weights: str | os.PathLike | None = None,
                 batch_size: int = 64, num_workers: int | None = None, device: str | None = None,
                 precision: str | None = None, normalizer=None, compile: bool | None = None, job_slides: int = 1):
        """`compile`: torch.compile the backbone (True / False / None = when `vai.core.compile` says it pays:
        on a GPU, or on CPU for a job of thousands of tiles, estimated as this slide's tiles x `job_slides`)."""
        from vai.core.device import device_info

        if batch_size < 1:
            raise VaiError(f"--batch-size must be at least 1, got {batch_size}")
        self.backbone_name = backbone
        self.weights = str(weights) if weights else None
        self.batch_size = int(batch_size)
        self.num_workers = default_workers() if num_workers is None else int(num_workers)
        self.info = device_info(device, precision)
        self.normalizer = normalizer
        self.compile = compile
        self.job_slides = max(1, int(job_slides))
        self._model = None
        self._eager_forward = None

    @property
    def model(self):
        if self._model is None:
            key = (self.backbone_name, self.weights, str(self.info.device))
            if key not in _BACKBONES:
                from vai.core.backbones import create_backbone

                m = create_backbone(self.backbone_name, weights=self.weights, inference=True, num_classes=0)
                _BACKBONES[key] = m.to(self.info.device)
            self._model = _BACKBONES[key]
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.num_features)

    def _batch_forward(self, n_items: int | None):
        """One forward per process and backbone, compiled once a job is long enough (kept for later slides)."""
        from vai.core.compile import BatchForward

        key = (self.backbone_name, self.weights, str(self.info.device), self.batch_size)
        if key not in _FORWARDS:
            _FORWARDS[key] = BatchForward(self.model, self.batch_size, enabled=False)
        if self.compile is False:  # this embedder wants eager even if the process already compiled the backbone
            if self._eager_forward is None:
                self._eager_forward = BatchForward(self.model, self.batch_size, enabled=False)
            return self._eager_forward
        _FORWARDS[key] = _FORWARDS[key].upgraded(self.compile, n_items)
        return _FORWARDS[key]

    def _forward(self, batch, n_items: int | None = None):
        torch = _torch()
        from vai.core.device import autocast

        fwd = self._batch_forward(n_items)
        with torch.inference_mode(), autocast(self.info):
            out = fwd(batch.to(self.info.device, non_blocking=True))
        return out.float().cpu().numpy()

    def embed_tiles(self, tiles: np.ndarray) -> np.ndarray:
        torch = _torch()
        feats = []
        for i in range(0, len(tiles), self.batch_size):
            batch = torch.stack([to_tensor(t, self.normalizer) for t in tiles[i:i + self.batch_size]])
            feats.append(self._forward(batch, n_items=len(tiles)))
        return np.concatenate(feats) if feats else np.zeros((0, self.dim), np.float32)

    def embed_slide(self, slide_path: str | os.PathLike, grid: TileGrid, out_h5: str | os.PathLike,
                    mpp: float | None = None, progress: bool = False, attrs: dict[str, Any] | None = None) -> int:
        """Write coords + features [N, D] to `out_h5` atomically, one batch at a time. Returns N. `attrs`:
        more about how the features were made (stain, minimum tissue), stored with them."""
        import h5py
        torch = _torch()

        ds = TileDataset(slide_path, grid, mpp=mpp, normalizer=self.normalizer)
        workers = min(self.num_workers, max(0, len(ds) // self.batch_size))
        loader = torch.utils.data.DataLoader(
            ds, batch_size=self.batch_size, shuffle=False, num_workers=workers,
            pin_memory=self.info.accelerator == "cuda", persistent_workers=False,
            prefetch_factor=4 if workers else None)
        dim = self.dim
        tmp_grid = grid
        with atomic_path(out_h5, suffix=".h5") as tmp:
            write_grid_h5(tmp, tmp_grid, slide_path)
            with h5py.File(tmp, "a") as f:
                dset = f.create_dataset("features", shape=(len(ds), dim), dtype="float32",
                                        chunks=(max(1, min(len(ds), 256)), dim) if len(ds) else None)
                # the precision too: bf16 and fp32 features differ by ~2%, a MIL model should not mix them
                f.attrs.update({"backbone": self.backbone_name, "feature_dim": dim, "precision": self.info.precision,
                                # how the features were made, so `predict SLIDE` can embed new slides the same way
                                "weights": self.weights or "", **(attrs or {})})
                pos = 0
                # a large slide gets its own counter (bar on a terminal, log lines with ETA otherwise)
                bar = Progress(len(ds), f"embed {Path(slide_path).stem} (tiles)", log_every_s=15) \
                    if progress or len(ds) >= PROGRESS_FROM_TILES else None
                for batch in loader:
                    feats = self._forward(batch, n_items=len(ds) * self.job_slides)
                    dset[pos:pos + len(feats)] = feats
                    pos += len(feats)
                    if bar is not None:
                        bar.update(len(feats))
                if bar is not None:
                    bar.close()
        return len(ds)


def default_workers() -> int:
    from vai.core.device import usable_cpus

    # The affinity mask, not os.cpu_count(): in a container or under a scheduler the machine's count overstates it.
    n = usable_cpus()
    return max(0, min(4, n - 1))


def has_features(h5_path: str | os.PathLike, backbone: str | None = None) -> bool:
    """Whether `h5_path` holds a feature for every tile (made with `backbone`, when given)."""
    import h5py

    try:
        with h5py.File(h5_path, "r") as f:
            ok = "features" in f and f["features"].shape[0] == f["coords"].shape[0]
            return ok and (backbone is None or str(f.attrs.get("backbone", "")) == backbone)
    except (OSError, KeyError):
        return False


def embed_slide_job(slide_path: str, *, out_dir: str, backbone: str = "tf_efficientnet_lite0", weights: str | None = None,
                    batch_size: int = 64, num_workers: int | None = None, target_mpp: float = 0.5, tile_size: int = 256,
                    min_tissue: float = 0.5, mpp: float | None = None, device: str | None = None,
                    stain: str | None = None, stain_target: str | None = None, compile: bool | None = None,
                    job_slides: int = 1) -> dict:
    """One slide of `vai path embed`: tile it unless `<out>/<stem>.h5` already has a matching grid, then embed."""
    out = Path(out_dir)
    stem = Path(slide_path).stem
    h5 = out / f"{stem}.h5"
    remove_stale_temps(h5)
    grid = None
    if h5.exists():
        try:
            g = read_grid_h5(h5)
        except VaiError as exc:  # a truncated or foreign file from an earlier run: tile the slide again
            log.warning("%s: re-tiling (%s)", stem, exc)
            g = None
        # a grid from `vai path tile` is reused only if it was made with these tiling options
        if g is not None and g.tile_size == tile_size and abs(g.target_mpp - target_mpp) < 1e-9 \
                and (g.min_tissue is None or abs(g.min_tissue - min_tissue) < 1e-9) \
                and (mpp is None or abs(g.slide_mpp - mpp) < 1e-9):
            grid = g
    info: dict[str, Any] = {"slide": stem}
    if grid is None:
        with SlideReader(slide_path, mpp=mpp) as slide:
            grid, mask = Tiler(target_mpp, tile_size, min_tissue).grid(slide)
            mask.save_png(out / f"{stem}_mask.png")
            info["tissue_fraction"] = round(mask.fraction, 4)
    normalizer = None
    if stain:
        from .stain import StainNormalizer

        normalizer = StainNormalizer.from_target(stain, stain_target)
    embedder = TileEmbedder(backbone, weights=weights, batch_size=batch_size, num_workers=num_workers,
                            device=device, normalizer=normalizer, compile=compile, job_slides=job_slides)
    n = embedder.embed_slide(slide_path, grid, h5, mpp=mpp, attrs={
        "stain": stain or "", "stain_target": str(Path(stain_target).resolve()) if stain_target else "",
        "min_tissue": float(min_tissue)})
    info.update({"tiles": n, "feature_dim": embedder.dim, "h5": str(h5), "no_tissue": n == 0})
    return info
