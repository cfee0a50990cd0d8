"""Whole-slide reading through OpenSlide: metadata, resolution (µm/px) and region reads at a target
resolution from the best pyramid level."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vai.core.errors import MissingDependencyError, VaiError
from vai.core.progress import get_logger

log = get_logger("vai.path")

# Objective power -> µm/px at level 0, the usual scanner convention (20x ~ 0.5 µm/px, 40x ~ 0.25 µm/px).
MPP_AT_10X = 1.0


def _openslide():
    try:
        import openslide
    except Exception as exc:  # noqa: BLE001 - ImportError or the shared library failing to load
        raise MissingDependencyError(f"OpenSlide is not usable ({exc}): pip install openslide-bin openslide-python") from None
    return openslide


def mpp_from_objective(power: float) -> float:
    return MPP_AT_10X * 10.0 / power


@dataclass
class SlideInfo:
    path: str
    vendor: str | None
    width: int
    height: int
    level_count: int
    level_dimensions: list[tuple[int, int]]
    level_downsamples: list[float]
    mpp_x: float | None
    mpp_y: float | None
    mpp_source: str  # "metadata", "objective", "user" or "missing"
    objective_power: float | None
    associated_images: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "vendor": self.vendor, "width": self.width, "height": self.height,
            "level_count": self.level_count, "level_dimensions": [list(d) for d in self.level_dimensions],
            "level_downsamples": self.level_downsamples, "mpp_x": self.mpp_x, "mpp_y": self.mpp_y,
            "mpp_source": self.mpp_source, "objective_power": self.objective_power,
            "associated_images": self.associated_images,
        }


class SlideReader:
    """An open whole-slide image. `mpp` overrides (or supplies) the level-0 resolution in µm/px.

    Errors (missing, not a slide, truncated, unreadable) are `VaiError`s naming the file."""

    def __init__(self, path: str | os.PathLike, mpp: float | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise VaiError(f"{self.path}: slide file not found")
        if self.path.is_dir():
            raise VaiError(f"{self.path}: is a folder, not a slide file")
        openslide = _openslide()
        try:
            self._slide = openslide.OpenSlide(str(self.path))
        except openslide.OpenSlideUnsupportedFormatError:
            if self.path.suffix.lower() in (".tif", ".tiff") and self.path.exists():
                raise VaiError(f"{self.path}: OpenSlide cannot read this TIFF: it is not a tiled (pyramidal) TIFF, or "
                               "it is truncated; convert plain TIFFs with e.g. `vips tiffsave --tile --pyramid`") from None
            if self.path.suffix.lower() in SLIDE_SUFFIXES and self.path.exists():
                # named like a slide OpenSlide reads, yet refused: most often a partial copy or download
                raise VaiError(f"{self.path}: cannot be read as a {self.path.suffix} slide ({self.path.stat().st_size:,} "
                               "bytes): the file is probably truncated or damaged; copy it again") from None
            raise VaiError(f"{self.path}: not a slide format OpenSlide can read (SVS, NDPI, MRXS, SCN, tiled TIFF, ...)") from None
        except Exception as exc:  # noqa: BLE001 - OpenSlideError, OSError on truncated files
            raise VaiError(f"{self.path}: unreadable slide ({type(exc).__name__}: {exc})") from None
        self._fast = None  # JpegTileReader, opened on the first region read
        self._user_mpp = float(mpp) if mpp else None
        self._warned_mpp = False  # the override warning is said once per reader
        if self._user_mpp is not None and not self._user_mpp > 0:
            raise VaiError(f"--slide-mpp must be a positive number of µm per pixel, got {mpp}")

    # -- metadata ----------------------------------------------------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        return self._slide.dimensions

    @property
    def level_count(self) -> int:
        return self._slide.level_count

    @property
    def level_dimensions(self):
        return self._slide.level_dimensions

    @property
    def level_downsamples(self):
        return self._slide.level_downsamples

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._slide.properties)

    def objective_power(self) -> float | None:
        value = self._slide.properties.get("openslide.objective-power")
        try:
            return float(value) if value not in (None, "") else None
        except ValueError:
            return None

    def _mpp_and_source(self) -> tuple[float | None, float | None, str]:
        if self._user_mpp is not None:
            # the user's value wins (scanner metadata is sometimes wrong), but say so when it disagrees
            mx, _, source = self._metadata_mpp()
            if mx is not None and abs(mx - self._user_mpp) > 0.01 * mx and not self._warned_mpp:
                log.warning("%s: using the given %.4g µm/px instead of the %.4g µm/px from its %s", self.path,
                            self._user_mpp, mx, "metadata" if source == "metadata" else "objective power")
                self._warned_mpp = True
            return self._user_mpp, self._user_mpp, "user"
        return self._metadata_mpp()

    def _metadata_mpp(self) -> tuple[float | None, float | None, str]:
        props = self._slide.properties
        try:
            mx = float(props.get("openslide.mpp-x", "nan"))
            my = float(props.get("openslide.mpp-y", "nan"))
        except ValueError:
            mx = my = math.nan
        if math.isfinite(mx) and mx > 0:
            return mx, (my if math.isfinite(my) and my > 0 else mx), "metadata"
        power = self.objective_power()
        if power and power > 0:
            m = mpp_from_objective(power)
            return m, m, "objective"
        return None, None, "missing"

    @property
    def mpp(self) -> float:
        """Level-0 µm/px (x); stops with a message asking for --mpp when the slide does not say."""
        mx, _, _ = self._mpp_and_source()
        if mx is None:
            raise VaiError(f"{self.path}: the slide has no resolution (mpp) or objective power in its metadata; "
                           "pass its resolution with --slide-mpp (µm per pixel at full resolution, e.g. 0.25 for 40x, 0.5 for 20x)")
        return mx

    def info(self) -> SlideInfo:
        mx, my, source = self._mpp_and_source()
        return SlideInfo(
            path=str(self.path), vendor=self._slide.properties.get("openslide.vendor"),
            width=self.dimensions[0], height=self.dimensions[1], level_count=self.level_count,
            level_dimensions=[tuple(map(int, d)) for d in self.level_dimensions],
            level_downsamples=[float(d) for d in self.level_downsamples],
            mpp_x=mx, mpp_y=my, mpp_source=source, objective_power=self.objective_power(),
            associated_images=sorted(self._slide.associated_images.keys()),
        )

    # -- pixels ------------------------------------------------------------------------------------
    def best_level_for_downsample(self, downsample: float) -> int:
        """The coarsest level whose downsample does not exceed `downsample` (read there, then shrink)."""
        best = 0
        for i, d in enumerate(self.level_downsamples):
            if d <= downsample * 1.001:
                best = i
        return best

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """RGB uint8 [h, w, 3]; transparent (outside-scan) pixels become white. JPEG-tiled TIFF levels go
        through the fast path in `jpeg_tiles` (checked against OpenSlide on each level's first read)."""
        fast = self._fast_reader()
        x, y, lv = int(location[0]), int(location[1]), int(level)
        if fast is not None and fast.eligible(lv, x, y):
            try:
                region = fast.read(lv, x, y, int(size[0]), int(size[1]))
            except Exception:  # noqa: BLE001 - a tile the fast path cannot decode: OpenSlide decides
                fast.validated[lv] = False
            else:
                if lv in fast.validated:
                    return region
                # First read at this level: check a window of it against OpenSlide (a small window keeps a
                # wide strip read from paying OpenSlide's full decode).
                win = (min(int(size[0]), 512), min(int(size[1]), 512))
                fast.validated[lv] = _agrees(region[:win[1], :win[0]], self._openslide_region((x, y), lv, win))
                if fast.validated[lv]:
                    return region
        return self._openslide_region(location, level, size)

    def serves_fast(self, level: int) -> bool:
        """Whether reads at `level` go through the fast JPEG path (unless its first-read check fails)."""
        fast = self._fast_reader()
        return fast is not None and int(level) in fast.levels

    @property
    def fast_levels(self) -> list[int]:
        """Levels read by the fast JPEG path (after validation)."""
        fast = self._fast_reader()
        return [] if fast is None else [lv for lv in fast.levels if fast.validated.get(lv)]

    def _fast_reader(self):
        if self._fast is None:
            from .jpeg_tiles import JpegTileReader, fastpath_enabled

            self._fast = False
            if fastpath_enabled():
                reader = JpegTileReader(self.path, self._slide.properties.get("openslide.vendor"),
                                        self.level_dimensions, self.level_downsamples)
                self._fast = reader if reader.levels else False
        return self._fast or None

    def _openslide_region(self, location, level, size) -> np.ndarray:
        try:
            img = self._slide.read_region((int(location[0]), int(location[1])), int(level), (int(size[0]), int(size[1])))
        except Exception as exc:  # noqa: BLE001 - a corrupt tile inside an otherwise readable slide
            raise VaiError(f"{self.path}: cannot read region at {location} level {level}: {exc}") from None
        return rgba_to_rgb(np.asarray(img))

    def thumbnail(self, max_size: int = 1024) -> tuple[np.ndarray, float]:
        """An RGB thumbnail and its downsample factor relative to level 0."""
        w, h = self.dimensions
        scale = max(w, h) / float(max_size)
        if scale <= 1:
            return self.read_region((0, 0), 0, (w, h)), 1.0
        try:
            img = self._slide.get_thumbnail((max(1, int(w / scale)), max(1, int(h / scale))))
        except Exception as exc:  # noqa: BLE001
            raise VaiError(f"{self.path}: cannot read a thumbnail: {exc}") from None
        arr = np.asarray(img.convert("RGB"))
        return arr, w / arr.shape[1]

    def close(self) -> None:
        if self._fast:
            self._fast.close()
        self._slide.close()

    def __enter__(self) -> "SlideReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _agrees(fast: np.ndarray, reference: np.ndarray) -> bool:
    """The fast path must reproduce OpenSlide: same shape, pixels within 2 levels (two libjpeg builds may
    round an IDCT differently), on average within 0.1."""
    if fast.shape != reference.shape:
        return False
    d = np.abs(fast.astype(np.int16) - reference.astype(np.int16))
    return d.size == 0 or (int(d.max()) <= 2 and float(d.mean()) <= 0.1)


def rgba_to_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 4:
        if arr[..., 3].min() == 255:  # fully opaque (the usual case): no blending needed
            return np.ascontiguousarray(arr[..., :3])
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        rgb = arr[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return rgb.round().astype(np.uint8)
    return arr[..., :3].copy()


SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm")


def slide_stem(path: str | os.PathLike) -> str:
    return Path(path).stem


def expand_slide_args(paths) -> list[Path]:
    """Slide files from CLI arguments: files as given, folders expanded to the slide files inside."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in SLIDE_SUFFIXES)
        else:
            out.append(p)
    return out
