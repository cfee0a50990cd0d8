"""Slide reading, tissue detection and tiling on synthetic pyramidal TIFFs (and the real CMU slide)."""
import json

import numpy as np
import pytest

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.path import SlideReader, Tiler, TissueDetector, make_synthetic_slide, read_grid_h5
from vai.verticals.path.synth import write_pyramid_tiff


@pytest.fixture(scope="module")
def synth_slide(tmp_path_factory):
    return make_synthetic_slide(tmp_path_factory.mktemp("slide") / "s1.tiff", size=1024, mpp=0.5, morph_a=True, seed=3)


def test_synthetic_tiff_opens_in_openslide_with_levels_and_mpp(synth_slide):
    with SlideReader(synth_slide) as s:
        info = s.info()
    assert info.vendor == "generic-tiff"
    assert info.level_count == 3 and info.level_dimensions[0] == (1024, 1024)
    assert info.level_downsamples[1] == pytest.approx(2.0)
    assert info.mpp_x == pytest.approx(0.5) and info.mpp_source == "metadata"


def test_info_cli_prints_json(synth_slide, capsys):
    assert main(["path", "info", str(synth_slide)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["width"] == 1024 and out["mpp_x"] == pytest.approx(0.5) and out["level_count"] == 3


def test_bad_inputs_give_one_clear_error_naming_the_file(tmp_path, synth_slide, capsys):
    text = tmp_path / "notes.svs"
    text.write_text("not a slide")
    truncated = tmp_path / "cut.tiff"
    truncated.write_bytes(synth_slide.read_bytes()[:3000])
    for bad in (text, truncated, tmp_path / "missing.svs", tmp_path):
        rc = main(["path", "info", str(bad)])
        err = capsys.readouterr().err
        assert rc == 2, bad
        assert err.startswith("error: ") and str(bad) in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_missing_mpp_asks_for_slide_mpp_and_override_works(tmp_path):
    import tifffile

    img = np.full((512, 512, 3), 240, np.uint8)
    path = tmp_path / "nompp.tiff"
    tifffile.imwrite(path, img, tile=(256, 256), photometric="rgb", metadata=None)
    with SlideReader(path) as s:
        assert s.info().mpp_x is None and s.info().mpp_source == "missing"
        with pytest.raises(VaiError, match="--slide-mpp"):
            Tiler().grid(s)
    with SlideReader(path, mpp=0.25) as s:
        assert s.mpp == 0.25


def test_objective_power_gives_mpp():
    from vai.verticals.path.slide import mpp_from_objective

    assert mpp_from_objective(20) == pytest.approx(0.5)
    assert mpp_from_objective(40) == pytest.approx(0.25)


def test_tiling_picks_level_resizes_and_keeps_tissue_tiles(synth_slide, tmp_path):
    with SlideReader(synth_slide) as s:
        grid, mask = Tiler(target_mpp=1.0, tile_size=128, min_tissue=0.5).grid(s)
        # 1.0 µm/px from a 0.5 µm/px slide: read level 1 (downsample 2) at 128 px, no resize needed
        assert grid.level == 1 and grid.read_size == 128 and grid.size0 == 256
        assert 0 < len(grid) < 16 and (grid.coverage >= 0.5).all()
        tiles = list(Tiler(1.0, 128).iter_tiles(s, grid))
        single = list(Tiler(1.0, 128).iter_tiles(s, grid, rows=False))
    assert len(tiles) == len(grid)
    assert all(t.shape == (128, 128, 3) for _, t in tiles)
    by_idx = dict(tiles)
    for i, t in single:  # strip reads cut exactly the same pixels as tile-by-tile reads
        assert np.array_equal(by_idx[i], t)
    assert 0.3 < mask.fraction < 0.9


def test_tile_cli_writes_h5_and_mask_and_reports_blank_slides(tmp_path, synth_slide, capsys):
    blank = write_pyramid_tiff(tmp_path / "blank.tiff", np.full((512, 512, 3), 243, np.uint8), mpp=0.5)
    out = tmp_path / "tiles"
    rc = main(["path", "tile", str(synth_slide), str(blank), "--out", str(out), "--mpp", "0.5", "--tile", "128"])
    captured = capsys.readouterr()
    assert rc == 0
    summary = json.loads(captured.out)
    assert summary["no_tissue"] == ["blank"] and "no tissue" in captured.err
    grid = read_grid_h5(out / "s1.h5")
    assert grid.tile_size == 128 and grid.target_mpp == 0.5 and len(grid) > 10
    assert (out / "s1_mask.png").exists() and read_grid_h5(out / "blank.h5").coords.shape == (0, 2)
    from vai.core.store import Store

    runs = Store().runs(vertical="path")
    assert runs.iloc[0]["command"] == "tile" and runs.iloc[0]["status"] == "succeeded"


def test_tile_cli_skips_bad_slide_and_reports_it(tmp_path, synth_slide, capsys):
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"\x00" * 100)
    rc = main(["path", "tile", str(synth_slide), str(bad), "--out", str(tmp_path / "t"), "--tile", "128"])
    err = capsys.readouterr().err
    assert rc == 1 and "bad" in err
    assert (tmp_path / "t" / "s1.h5").exists()


def test_pen_marks_are_not_tissue():
    rgb = np.full((200, 200, 3), 240, np.uint8)
    rgb[20:80, 20:80] = (220, 140, 190)       # H&E-pink tissue
    rgb[120:130, 10:190] = (40, 160, 60)      # green pen stroke
    rgb[150:160, 10:190] = (30, 60, 170)      # blue pen stroke
    m = TissueDetector().detect_array(rgb)
    assert m.mask[50, 50] and not m.mask[125, 100] and not m.mask[155, 100]
    assert m.fraction == pytest.approx(3600 / 40000, rel=0.1)


@pytest.mark.data
def test_real_cmu_slide_info_and_tiling(shared_data_dir, tmp_path):
    path = shared_data_dir / "path" / "slides" / "CMU-1-Small-Region.svs"
    with SlideReader(path) as s:
        info = s.info()
        assert info.vendor == "aperio" and info.mpp_x == pytest.approx(0.499) and info.objective_power == 20
        assert (info.width, info.height) == (2220, 2967) and "label" in info.associated_images
        grid, mask = Tiler(0.5, 256, 0.5).grid(s)
        assert 0.2 < mask.fraction < 0.6
        assert 20 < len(grid) < 88  # 8 x 11 grid, only tissue tiles kept
        first = next(Tiler(0.5, 256).iter_tiles(s, grid))[1]
    assert first.shape == (256, 256, 3) and first.mean() < 235  # tissue, not glass


def _cmu_tiles(path, fast: bool, monkeypatch):
    monkeypatch.setenv("VAI_SLIDE_FASTPATH", "1" if fast else "0")
    with SlideReader(path) as s:
        tiler = Tiler(0.5, 256, 0.0)
        grid, _ = tiler.grid(s)
        strips = dict(tiler.iter_tiles(s, grid, rows=True))
        singles = dict(tiler.iter_tiles(s, grid, rows=False))
        edge = s.read_region((2100, 2850), 0, (256, 256))   # runs off the right and bottom of the scan
        return strips, singles, edge, s.fast_levels


@pytest.mark.data
def test_fast_jpeg_path_reproduces_openslide_on_the_real_svs(shared_data_dir, monkeypatch):
    path = shared_data_dir / "path" / "slides" / "CMU-1-Small-Region.svs"
    fast_strips, fast_singles, fast_edge, levels = _cmu_tiles(path, True, monkeypatch)
    ref_strips, ref_singles, ref_edge, ref_levels = _cmu_tiles(path, False, monkeypatch)
    assert levels == [0] and ref_levels == []          # the fast path really ran, and really was off
    assert sorted(fast_strips) == sorted(ref_strips) == sorted(fast_singles) and len(ref_strips) == 88
    for i in ref_strips:
        assert np.array_equal(fast_strips[i], ref_strips[i]) and np.array_equal(fast_singles[i], ref_singles[i])
    assert np.array_equal(fast_edge, ref_edge) and (fast_edge[-20:, -20:] == 255).all()  # outside: white


@pytest.mark.data
def test_fast_jpeg_path_turns_itself_off_when_it_disagrees_with_openslide(shared_data_dir, monkeypatch):
    from vai.verticals.path.jpeg_tiles import JpegTileReader

    path = shared_data_dir / "path" / "slides" / "CMU-1-Small-Region.svs"
    real_tile = JpegTileReader._tile
    monkeypatch.setattr(JpegTileReader, "_tile", lambda self, *a: real_tile(self, *a)[..., ::-1])  # BGR: wrong colours
    monkeypatch.setenv("VAI_SLIDE_FASTPATH", "1")
    with SlideReader(path) as s:
        first = s.read_region((512, 512), 0, (256, 256))
        second = s.read_region((768, 1024), 0, (256, 256))
        assert s.fast_levels == []
    monkeypatch.setenv("VAI_SLIDE_FASTPATH", "0")
    with SlideReader(path) as s:
        assert np.array_equal(first, s.read_region((512, 512), 0, (256, 256)))
        assert np.array_equal(second, s.read_region((768, 1024), 0, (256, 256)))
