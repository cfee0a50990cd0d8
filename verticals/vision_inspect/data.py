"""Image discovery and loading: folders (anomalib-style `good/`, `defect/`, any sub-folders), globs, masks.

Images are read with Pillow, converted to RGB (grayscale is replicated), and resized to the model resolution:
square (`224`) or height x width (`(224, 448)`, for elongated parts that a square would squash). An unreadable
image never stops a job: it is reported and skipped."""
from __future__ import annotations

import glob
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vai.core.errors import VaiError
from vai.core.progress import get_logger

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# Folders that hold masks, not images to score, when a whole tree is given.
MASK_DIR_NAMES = {"masks", "mask", "ground_truth", "gt"}
log = get_logger("vai.vision_inspect")


@dataclass
class BadImage:
    path: str
    error: str


def list_images(spec: str | Path | list, *, exclude_mask_dirs: bool = True) -> list[Path]:
    """Sorted image files from a folder (recursive), a glob, a single file, or a list of those."""
    if isinstance(spec, (list, tuple)):
        out: list[Path] = []
        for s in spec:
            out.extend(list_images(s, exclude_mask_dirs=exclude_mask_dirs))
        return sorted(set(out))
    text = str(spec)
    p = Path(text).expanduser()
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        if exclude_mask_dirs:
            files = [f for f in files if not (set(x.lower() for x in f.relative_to(p).parts[:-1]) & MASK_DIR_NAMES)]
    elif p.is_file():
        files = [p]
    elif any(ch in text for ch in "*?["):
        files = [Path(f) for f in glob.glob(str(p), recursive=True)
                 if Path(f).is_file() and Path(f).suffix.lower() in IMAGE_SUFFIXES]
    else:
        raise VaiError(f"{text}: no such folder, file or glob pattern; pass a folder of images or a glob like 'dir/*.png'")
    files = sorted(set(files))
    own = [f for f in files if is_heatmap_output(f) or is_histogram_output(f)]
    if own and not p.is_file():  # a single file named on purpose is read as given
        # heatmaps written into the images' own folder last run are not parts to score (or fit on), nor is the
        # colour-scale legend written beside them, nor the score histogram written beside a scores table
        legends = {f.parent / COLOUR_SCALE_FILE for f in own if is_heatmap_output(f)}
        skip = set(own) | legends
        files = [f for f in files if f not in skip]
        log.warning("%s: skipped %d heatmap overlays or score histograms written by an earlier run (e.g. %s); "
                    "write outputs outside the images folder", text, len(own), own[0])
    if not files:
        raise VaiError(f"{text}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


COLOUR_SCALE_FILE = "colour_scale.png"  # the legend `score --heatmaps` writes into the heatmaps folder


def is_histogram_output(path: Path) -> bool:
    """Whether `path` is the histogram `score` writes beside its table: `<table stem>_histogram.png`."""
    name = path.name
    if not name.endswith("_histogram.png"):
        return False
    stem = name[:-len("_histogram.png")]
    return any((path.parent / f"{stem}{ext}").exists() for ext in (".csv", ".parquet"))


def is_heatmap_output(path: Path) -> bool:
    """Whether `path` is a heatmap overlay this vertical wrote: `<image name with its extension>_heatmap.png`."""
    name = path.name.lower()
    return name.endswith("_heatmap.png") and Path(name[:-len("_heatmap.png")]).suffix in IMAGE_SUFFIXES


def draw_k(paths: list[Path], k: int | None, seed: int = 0, usable=None,
           rejected: dict | None = None) -> list[Path]:
    """k images drawn with the seed from the sorted list (all of them when k is None). With `usable(path)`
    (raising VaiError for an unreadable image), a drawn image that cannot be used is replaced by another draw
    from the rest with the same generator, so the model gets the k images asked for; `rejected` collects
    path -> error. When every image reads, the draw is the plain seeded sample."""
    paths = sorted(paths)
    if k is None:
        return paths
    if k < 1:
        raise VaiError(f"--k must be at least 1, got {k}")
    if k > len(paths):
        raise VaiError(f"--k {k} asks for more images than the {len(paths)} found")
    rng = random.Random(seed)
    chosen = rng.sample(paths, k)
    if usable is None:
        return sorted(chosen)
    rejected = {} if rejected is None else rejected
    kept: set[Path] = set()
    while chosen:
        for p in chosen:
            try:
                usable(p)
                kept.add(p)
            except VaiError as exc:
                rejected[p] = str(exc)
        need = k - len(kept)
        if need <= 0:
            break
        rest = [p for p in paths if p not in rejected and p not in kept]
        if need > len(rest):
            raise VaiError(f"--k {k}: only {len(kept) + len(rest)} of the {len(paths)} images can be read "
                           f"(unreadable: {', '.join(str(p) for p in list(rejected)[:3])}...)")
        chosen = rng.sample(rest, need)
    return sorted(kept)


_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
# A model's deep_max when its good images were 8-bit: deep images have no scale it was fitted on.
EIGHT_BIT_FULL_SCALE = 255.0


def container_max(peak: float) -> float:
    """The full-scale value of a deep image whose brightest pixel is `peak`: the smallest 2^k - 1 (k = 8, 10,
    12, 14, 16) holding it, i.e. the sensor's bit depth (12-bit cameras store 0..4095 in 16-bit files); float
    images in [0, 1] are full scale at 1."""
    if peak <= 1.0:
        return 1.0
    for bits in (8, 10, 12, 14, 16):
        if peak <= 2 ** bits - 1:
            return float(2 ** bits - 1)
    return float(peak)


def read_image(path: str | Path, deep_max: float | None = None) -> np.ndarray:
    """An image as uint8 RGB [H, W, 3]; VaiError naming the file when it cannot be decoded.

    16-bit and float images are scaled by a fixed full-scale value, never stretched per image (a min-max
    stretch brightens a dark part and dims one with a bright defect, so the same part would score differently
    in each file): `deep_max` (a model's, set from its good images) or else the image's bit depth
    (`container_max`). A `deep_max` of 255 (`EIGHT_BIT_FULL_SCALE`: a model fitted on 8-bit images) refuses
    deep images instead of guessing their scale per file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _DEEP_MODES:
                if deep_max is not None and deep_max <= EIGHT_BIT_FULL_SCALE:
                    raise VaiError(f"{path}: a {im.mode} (16-bit or float) image, but the model was fitted on 8-bit "
                                   "images and has no fixed scale for it (scaling each file by its own brightest "
                                   "pixel would change scores); refit on images from this camera, or convert "
                                   "them to 8-bit the way the good images were")
                arr = np.asarray(im, dtype=np.float64)
                full = float(deep_max) if deep_max else container_max(float(arr.max(initial=0.0)))
                arr = np.clip(np.rint(arr / full * 255.0), 0, 255).astype(np.uint8)
                return np.stack([arr] * 3, -1)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise VaiError(f"{path}: cannot read image ({type(exc).__name__}: {exc}); fix or remove the file") from None


def deep_full_scale(paths) -> float | None:
    """One full-scale value for a set of 16-bit/float images (the bit depth holding the brightest of them), so
    every image of a model is scaled alike; None when none is deep (8-bit images need no scaling)."""
    from PIL import Image

    peak = None
    for p in paths:
        try:
            with Image.open(p) as im:
                if im.mode not in _DEEP_MODES:
                    continue
                im.load()
                m = float(np.asarray(im, dtype=np.float64).max(initial=0.0))
        except (OSError, ValueError, SyntaxError):
            continue  # unreadable: reported when the images are loaded
        peak = m if peak is None else max(peak, m)
    return None if peak is None else container_max(peak)


ImageSize = int | tuple[int, int]


def image_hw(size) -> tuple[int, int]:
    """A model resolution as (height, width): an int is square; a pair (or list, as saved in JSON) is (H, W)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def parse_image_size(text: str) -> ImageSize:
    """`224` (square) or `224x448` (height x width), as the CLI takes it."""
    try:
        parts = [int(v) for v in str(text).lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise VaiError(f"image size {text!r}: give one number (square, e.g. 224) or HEIGHTxWIDTH (e.g. 224x448)")


def aspect_size(paths: list[Path], short_side: int, multiple: int = 32) -> tuple[int, int]:
    """(H, W) with `short_side` on the shorter side and the images' median aspect ratio (from their headers,
    no decoding), the long side rounded to a multiple of 32 (the backbone's stride)."""
    from PIL import Image

    ratios = []
    for p in paths:
        try:
            with Image.open(p) as im:
                ratios.append(im.height / im.width)
        except (OSError, ValueError):
            continue  # unreadable: reported when the images are loaded
    if not ratios:
        return short_side, short_side
    r = float(np.median(ratios))
    long_side = max(short_side, int(round(short_side * max(r, 1 / r) / multiple)) * multiple)
    return (long_side, short_side) if r > 1 else (short_side, long_side)


def resize_rgb(img: np.ndarray, size: ImageSize) -> np.ndarray:
    from PIL import Image

    h, w = image_hw(size)
    if img.shape[0] == h and img.shape[1] == w:
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def load_batch(paths: list[Path], size: ImageSize, deep_max: float | None = None, sizes: list | None = None
               ) -> tuple[np.ndarray, list[Path], list[BadImage]]:
    """Readable images resized to the model resolution (uint8 [N, H, W, 3]), their paths, and the bad ones.
    `deep_max`: the full-scale value for 16-bit images (see `read_image`). `sizes`: a list that receives each
    readable image's original (width, height), so nothing has to open the files again."""
    imgs, ok, bad = [], [], []
    for p in paths:
        try:
            full = read_image(p, deep_max)
            imgs.append(resize_rgb(full, size))
            ok.append(Path(p))
            if sizes is not None:
                sizes.append((int(full.shape[1]), int(full.shape[0])))
        except VaiError as exc:
            bad.append(BadImage(str(p), str(exc)))
    arr = np.stack(imgs) if imgs else np.zeros((0, *image_hw(size), 3), np.uint8)
    return arr, ok, bad


def find_mask(image: Path, masks_dir: Path | None) -> Path | None:
    """The mask with the image's stem (also `<stem>_mask`), searched recursively under masks_dir."""
    if masks_dir is None:
        return None
    for stem in (image.stem, image.stem + "_mask"):
        for suf in IMAGE_SUFFIXES:
            cand = masks_dir / f"{stem}{suf}"
            if cand.exists():
                return cand
    hits = [m for m in masks_dir.rglob(f"{image.stem}*") if m.suffix.lower() in IMAGE_SUFFIXES
            and m.stem in (image.stem, image.stem + "_mask")]
    # Prefer a mask in a sub-folder named like the image's parent (anomalib: ground_truth/<type>/<stem>_mask.png)
    hits.sort(key=lambda m: (m.parent.name != image.parent.name, str(m)))
    return hits[0] if hits else None


def read_mask(path: Path, size: ImageSize) -> np.ndarray:
    """A binary mask (bool [H, W] at the model resolution); nearest-neighbour resize keeps it binary."""
    from PIL import Image

    h, w = image_hw(size)
    try:
        with Image.open(path) as im:
            m = im.convert("L").resize((w, h), Image.NEAREST)
    except (OSError, ValueError) as exc:
        raise VaiError(f"{path}: cannot read mask ({exc})") from None
    return np.asarray(m) > 127
