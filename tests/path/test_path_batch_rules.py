"""Batch behaviour a user relies on: re-runs redo what changed (not just what is missing), predict gives every
slide a row, a bad slide never stops a batch verb. SYNTHETIC slides."""
import json

import h5py
import pandas as pd
import pytest

from vai.cli import main


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    assert main(["path", "synth", "--out", str(out), "--slides", "4", "--size", "512", "--seed", "1"]) == 0
    return out


pytestmark = pytest.mark.usefixtures("one_thread")


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_embed_after_tile_in_one_folder_and_reruns_that_change_options(slides, tmp_path, capsys):
    out = tmp_path / "feats"
    tile = ["path", "tile", str(slides), "--out", str(out), "--mpp", "1.0", "--tile", "64"]
    embed = ["path", "embed", str(slides), "--out", str(out), "--mpp", "1.0", "--tile", "64", "--workers", "0"]
    assert main(tile) == 0
    capsys.readouterr()
    assert main(embed) == 0  # tile's markers do not make embed skip: every slide gets its features
    assert _json(capsys)["done"] == 4
    with h5py.File(out / "synth_000.h5") as f:
        assert f["features"].shape[0] == f["coords"].shape[0] > 0
    assert main(tile) == 0 and _json(capsys)["resumed"] == 4  # and tile still knows its own work is done
    (out / "synth_002.h5").unlink()  # a deleted result is redone, not reported as done
    assert main(embed) == 0
    res = _json(capsys)
    assert res["done"] == 1 and res["resumed"] == 3
    assert main(embed[:-2] + ["--workers", "0", "--batch-size", "16"]) == 0  # a speed-only option: resumes
    assert _json(capsys)["resumed"] == 4
    bigger = ["path", "tile", str(slides), "--out", str(tmp_path / "t2"), "--mpp", "1.0", "--tile", "64"]
    assert main(bigger) == 0
    capsys.readouterr()
    bigger[-1] = "128"  # another tile size: redone, and the file says 128
    assert main(bigger) == 0 and _json(capsys)["done"] == 4
    with h5py.File(tmp_path / "t2" / "synth_000.h5") as f:
        assert int(f.attrs["tile_size"]) == 128


def test_predict_gives_every_slide_a_row_and_checks_the_feature_kind(slides, tmp_path, capsys):
    feats, model = tmp_path / "feats", tmp_path / "model"
    assert main(["path", "embed", str(slides), "--out", str(feats), "--mpp", "1.0", "--tile", "64",
                 "--workers", "0"]) == 0
    assert main(["path", "train", "--features", str(feats), "--labels", str(slides / "labels.csv"),
                 "--targets", "synth_a", "--out", str(model), "--folds", "2", "--epochs", "1", "--threads", "1"]) == 0
    config = json.loads((model / "config.json").read_text())
    assert config["tile_size"] == 64 and config["min_tissue"] == 0.5 and config["stain"] is None
    capsys.readouterr()

    bad = tmp_path / "notaslide.svs"
    bad.write_text("not a slide")
    out = tmp_path / "p.csv"
    rc = main(["path", "predict", str(slides / "synth_000.tiff"), str(bad), "--model", str(model),
               "--features", str(tmp_path / "new"), "--out", str(out)])
    err = capsys.readouterr().err
    frame = pd.read_csv(out, keep_default_na=False)
    assert rc == 1 and "notaslide" in err  # written, and the exit status says one slide failed
    assert frame["slide"].tolist() == ["synth_000", "notaslide"]
    assert frame["error"][0] == "" and frame["error"][1] != "" and frame["synth_a_prob"][1] == ""

    # features tiled at another resolution are refused per slide, with the fix
    other = tmp_path / "other"
    assert main(["path", "embed", str(slides / "synth_001.tiff"), "--out", str(other), "--mpp", "0.5",
                 "--tile", "64", "--workers", "0"]) == 0
    capsys.readouterr()
    rc = main(["path", "predict", "--model", str(model), "--features", str(other), "--out", str(tmp_path / "o.csv"),
               "--heatmaps", str(tmp_path / "heat")])
    frame = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert rc == 1 and "target_mpp 0.5" in frame["error"][0] and "--mpp 1.0" in frame["error"][0]

    # training refuses features of two tile resolutions in one folder
    import shutil

    shutil.copy(other / "synth_001.h5", feats / "synth_001.h5")
    rc = main(["path", "train", "--features", str(feats), "--labels", str(slides / "labels.csv"),
               "--targets", "synth_a", "--out", str(tmp_path / "m2"), "--folds", "2", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "tile resolutions" in err and "--mpp" in err


def test_heatmaps_of_a_moved_slide_do_not_stop_predictions(slides, tmp_path, capsys):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(slides, moved)
    feats, model = tmp_path / "feats", tmp_path / "model"
    assert main(["path", "embed", str(moved), "--out", str(feats), "--mpp", "1.0", "--tile", "64",
                 "--workers", "0"]) == 0
    assert main(["path", "train", "--features", str(feats), "--labels", str(slides / "labels.csv"),
                 "--targets", "synth_a", "--out", str(model), "--folds", "2", "--epochs", "1", "--threads", "1"]) == 0
    shutil.rmtree(moved)
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert main(["path", "predict", "--model", str(model), "--features", str(feats), "--out", str(out),
                 "--heatmaps", str(tmp_path / "heat")]) == 0
    assert len(pd.read_csv(out)) == 4


def test_tissue_skips_a_bad_slide_and_info_without_mpp_exits_nonzero(slides, tmp_path, capsys):
    import numpy as np
    import tifffile

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "broken.svs").write_text("nope")
    import shutil

    shutil.copy(slides / "synth_000.tiff", folder)
    rc = main(["path", "tissue", str(folder), "--out", str(tmp_path / "masks")])
    captured = capsys.readouterr()
    assert rc == 1 and "broken.svs" in captured.err
    assert (tmp_path / "masks" / "synth_000_mask.png").exists()
    assert "broken" in (tmp_path / "masks" / "job_errors.csv").read_text()

    nompp = tmp_path / "nompp.tiff"
    tifffile.imwrite(nompp, np.full((512, 512, 3), 240, np.uint8), tile=(256, 256), photometric="rgb", metadata=None)
    rc = main(["path", "info", str(nompp)])
    captured = capsys.readouterr()
    assert rc == 1 and json.loads(captured.out)["mpp_x"] is None and "--mpp" in captured.err
    assert main(["path", "info", str(nompp), "--mpp", "0.25"]) == 0
