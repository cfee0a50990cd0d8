"""Image discovery, loading, bad files, k-shot draws and mask lookup."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vai.core.errors import VaiError
from vai.verticals.vision_inspect.data import draw_k, find_mask, list_images, load_batch, read_image, read_mask


def _png(path: Path, arr) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def test_folder_glob_and_mask_folders(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("good/a.png", "good/b.jpg", "defect/scratch/c.png", "masks/c.png", "notes.txt"):
        p = tmp_path / name
        if name.endswith(".txt"):
            p.write_text("x")
        else:
            _png(p, rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["defect/scratch/c.png", "good/a.png", "good/b.jpg"]  # masks/ and .txt left out
    assert [p.name for p in list_images(str(tmp_path / "good" / "*.png"))] == ["a.png"]
    with pytest.raises(VaiError, match="no such folder"):
        list_images(tmp_path / "missing")
    with pytest.raises(VaiError, match="no images found"):
        list_images(str(tmp_path / "*.bmp"))
    assert find_mask(tmp_path / "defect/scratch/c.png", tmp_path / "masks") == tmp_path / "masks/c.png"
    assert find_mask(tmp_path / "good/a.png", tmp_path / "masks") is None


def test_grayscale_16bit_odd_sizes_and_bad_files_are_reported(tmp_path):
    gray = _png(tmp_path / "gray.png", np.full((50, 70), 100, np.uint8))
    deep = tmp_path / "deep.png"
    Image.fromarray(np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 30).save(deep)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    assert read_image(gray).shape == (50, 70, 3)
    # 16-bit is scaled by its bit depth (max 47970 -> full scale 65535), not stretched to 0..255
    assert read_image(deep).dtype == np.uint8 and read_image(deep).max() == round(47970 / 65535 * 255)
    with pytest.raises(VaiError, match="broken.png"):
        read_image(bad)
    arr, ok, skipped = load_batch([gray, bad, deep], 64)
    assert arr.shape == (2, 64, 64, 3) and [p.name for p in ok] == ["gray.png", "deep.png"]
    assert len(skipped) == 1 and "broken.png" in skipped[0].error


def test_k_shot_draw_is_seeded_and_checked():
    paths = [Path(f"img{i:02d}.png") for i in range(20)]
    a, b, c = draw_k(paths, 5, seed=1), draw_k(list(reversed(paths)), 5, seed=1), draw_k(paths, 5, seed=2)
    assert a == b and a != c and len(set(a)) == 5
    assert draw_k(paths, None) == sorted(paths)
    with pytest.raises(VaiError, match="more images"):
        draw_k(paths, 21)


def test_masks_are_binary_after_resize(tmp_path):
    m = np.zeros((40, 40), np.uint8)
    m[10:20, 10:30] = 255
    out = read_mask(_png(tmp_path / "m.png", m), 20)
    assert out.dtype == bool and out.sum() == 5 * 10


def test_deep_copies_of_an_image_read_like_the_8bit_original(tmp_path):
    from vai.verticals.vision_inspect.data import deep_full_scale

    rng = np.random.default_rng(0)
    u8 = rng.integers(90, 160, (40, 40)).astype(np.uint8)  # a dim part: no pixel near white
    _png(tmp_path / "u8.png", u8)
    Image.fromarray(u8.astype(np.uint16) * 257).save(tmp_path / "u16.png")  # the same picture, 16-bit
    u12 = np.rint(u8 / 255 * 4095).astype(np.uint16)  # a 12-bit camera's file
    Image.fromarray(u12).save(tmp_path / "u12.tiff")
    base = read_image(tmp_path / "u8.png")
    assert np.array_equal(read_image(tmp_path / "u16.png"), base)  # a per-image stretch would give 0..255
    assert np.abs(read_image(tmp_path / "u12.tiff").astype(int) - base).max() <= 1
    # one full scale for a set: a dark 12-bit image is not brightened to fill 10 bits
    dark = np.full((20, 20), 600, np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark.tiff")
    assert deep_full_scale([tmp_path / "dark.tiff"]) == 1023
    full = deep_full_scale([tmp_path / "dark.tiff", tmp_path / "u12.tiff", tmp_path / "u8.png"])
    assert full == 4095
    assert read_image(tmp_path / "dark.tiff", full)[0, 0, 0] == round(600 / 4095 * 255)
    assert deep_full_scale([tmp_path / "u8.png"]) is None


def test_load_batch_reports_the_original_sizes_it_read(tmp_path):
    from PIL import Image

    from vai.verticals.vision_inspect.data import load_batch

    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    Image.new("RGB", (120, 40)).save(wide)
    Image.new("L", (30, 90)).save(tall)
    (tmp_path / "bad.png").write_bytes(b"no")
    sizes = []
    arr, ok, bad = load_batch([wide, tmp_path / "bad.png", tall], 32, sizes=sizes)
    assert arr.shape == (2, 32, 32, 3) and ok == [wide, tall] and len(bad) == 1
    assert sizes == [(120, 40), (30, 90)]  # (width, height), one per readable image, in order
