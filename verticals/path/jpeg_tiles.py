"""A fast read path for TIFF-based slides whose pyramid levels are JPEG tiles (Aperio SVS, generic tiled TIFF).

OpenSlide's `read_region` decodes through libjpeg into premultiplied ARGB and composites with cairo: on the
CMU-1-Small-Region.svs it delivers ~25 MP/s per core. Decoding the same JPEG tiles with Pillow (libjpeg-turbo)
straight into RGB, and cutting regions out of a small cache of decoded tiles, gives ~140 MP/s: enough for
1,000+ 256-px tiles/s per core. OpenSlide stays the authority: for each level, the first region read this way
is compared with OpenSlide's own read of it, and any difference turns the fast path off for that level (e.g.
an unusual JPEG colour convention), so results never depend on which path ran. `VAI_SLIDE_FASTPATH=0` turns it
off entirely.
"""
from __future__ import annotations

import io
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

# OpenSlide vendors whose levels are plain TIFF pages (no overlaps, no vendor-specific tile placement).
_VENDORS = {"aperio", "generic-tiff"}
_JPEG, _RGB, _YCBCR, _CONTIG = 7, 2, 6, 1


def fastpath_enabled() -> bool:
    return os.environ.get("VAI_SLIDE_FASTPATH", "1").lower() not in ("0", "false", "no", "off")


class JpegTileReader:
    """Regions of JPEG-tiled TIFF levels. `read` returns RGB uint8 or None when a level is not eligible."""

    def __init__(self, path: str | os.PathLike, vendor: str | None, level_dimensions, level_downsamples,
                 cache_bytes: int | None = None):
        self._tif = None
        self._pages: dict[int, object] = {}
        self._ds = [float(d) for d in level_downsamples]
        self.validated: dict[int, bool] = {}   # level -> agrees with OpenSlide (True) / disabled (False)
        self._cache: OrderedDict = OrderedDict()
        self._cache_used = 0
        mb = int(os.environ.get("VAI_SLIDE_TILE_CACHE_MB", 128))
        self._cache_max = int(cache_bytes) if cache_bytes is not None else mb << 20
        if vendor not in _VENDORS or Path(path).suffix.lower() not in (".svs", ".tif", ".tiff"):
            return
        try:
            import tifffile

            self._tif = tifffile.TiffFile(str(path))
            pages = list(self._tif.pages)
        except Exception:  # noqa: BLE001 - any parse problem: OpenSlide alone reads this slide
            self.close()
            return
        for level, (w, h) in enumerate(level_dimensions):
            for page in pages:
                try:
                    ok = (page.is_tiled and int(page.compression) == _JPEG and page.imagewidth == w
                          and page.imagelength == h and page.samplesperpixel == 3 and page.bitspersample == 8
                          and int(page.planarconfig) == _CONTIG and int(page.photometric) in (_RGB, _YCBCR)
                          and page.imagedepth == 1)
                except (AttributeError, TypeError, ValueError):
                    ok = False
                if ok:
                    self._pages[level] = page
                    break

    @property
    def levels(self) -> list[int]:
        return sorted(lv for lv in self._pages if self.validated.get(lv, True))

    def eligible(self, level: int, x: int, y: int) -> bool:
        if level not in self._pages or self.validated.get(level) is False:
            return False
        if level == 0:
            return True
        # OpenSlide maps a level-0 location to x / downsample at the level; only exact mappings are taken.
        ds = self._ds[level]
        return abs(x / ds - round(x / ds)) < 1e-9 and abs(y / ds - round(y / ds)) < 1e-9

    def read(self, level: int, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """RGB [h, w, 3] of the level-`level` region whose top-left level-0 corner is (x0, y0)."""
        page = self._pages[level]
        ds = self._ds[level]
        lx, ly = (int(round(x0 / ds)), int(round(y0 / ds))) if level else (int(x0), int(y0))
        out = np.full((h, w, 3), 255, np.uint8)   # outside the scan: white, as OpenSlide's transparent pixels
        tw, th = page.tilewidth, page.tilelength
        W, H = page.imagewidth, page.imagelength
        xa, ya, xb, yb = max(lx, 0), max(ly, 0), min(lx + w, W), min(ly + h, H)
        if xa >= xb or ya >= yb:
            return out
        for ty in range(ya // th, (yb - 1) // th + 1):
            for tx in range(xa // tw, (xb - 1) // tw + 1):
                tile = self._tile(level, page, ty, tx)
                if tile is None:
                    continue  # a missing (sparse) tile reads as white
                sx0, sy0 = max(xa, tx * tw), max(ya, ty * th)
                sx1, sy1 = min(xb, (tx + 1) * tw), min(yb, (ty + 1) * th)
                out[sy0 - ly:sy1 - ly, sx0 - lx:sx1 - lx] = tile[sy0 - ty * th:sy1 - ty * th, sx0 - tx * tw:sx1 - tx * tw]
        return out

    def _tile(self, level: int, page, ty: int, tx: int) -> np.ndarray | None:
        key = (level, ty, tx)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        from PIL import Image

        nx = -(-page.imagewidth // page.tilewidth)
        i = ty * nx + tx
        offset, count = int(page.dataoffsets[i]), int(page.databytecounts[i])
        if offset == 0 or count == 0:
            return None
        fh = self._tif.filehandle
        fh.seek(offset)
        data = fh.read(count)
        tables = page.jpegtables
        if tables is not None and len(tables) > 4 and data[:2] == b"\xff\xd8":
            data = bytes(tables[:-2]) + data[2:]   # abbreviated stream: splice in the shared tables
        im = Image.open(io.BytesIO(data))
        if int(page.photometric) == _RGB:
            # The JPEG holds R, G, B components (no YCbCr): ask libjpeg for the raw components, no colour transform.
            im.draft("YCbCr", im.size)
        arr = np.asarray(im)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < page.tilelength or arr.shape[1] < page.tilewidth:
            raise ValueError(f"JPEG tile {i} decodes to {arr.shape}, expected {page.tilelength}x{page.tilewidth}x3")
        self._cache[key] = arr
        self._cache_used += arr.nbytes
        while self._cache_used > self._cache_max and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_used -= old.nbytes
        return arr

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None
        self._pages.clear()
        self._cache.clear()
        self._cache_used = 0
