"""What a line camera's folder does to batch scoring: files overwritten in place, two images with one name,
unreadable images among the k drawn, a mistyped masks folder. SYNTHETIC textures."""
import json
import os
import shutil

import pandas as pd
import pytest

from vai.cli import main
from vai.verticals.vision_inspect.synthetic import write_dataset

from vi_fixtures import SIZE, one_torch_thread  # noqa: F401


@pytest.fixture
def tree(tmp_path):
    return write_dataset(tmp_path / "data", n_train=4, n_test_good=3, n_defect=3, size=SIZE, seed=7)


def _fit(tree, out, *extra):
    assert main(["inspect", "fit", "--good", str(tree["train"]), "--image-size", str(SIZE), "--precision", "fp32",
                 "--out", str(out), *extra]) == 0


def test_rescoring_a_folder_whose_files_were_overwritten_gives_new_scores(tree, tmp_path, capsys):
    model = tmp_path / "model"
    _fit(tree, model, "--k", "2")
    cam = tmp_path / "latest"
    cam.mkdir()
    goods = sorted(tree["test_good"].glob("*.png"))
    defects = sorted(tree["test_defect"].rglob("*.png"))
    for i, g in enumerate(goods):
        shutil.copy(g, cam / f"cam_{i}.png")
    out = tmp_path / "s.csv"
    cmd = ["inspect", "score", "--model", str(model), "--images", str(cam), "--out", str(out)]
    assert main(cmd) == 0
    before = pd.read_csv(out)["score"].tolist()
    assert len(defects) == len(goods)
    for i, d in enumerate(defects):  # the camera writes new parts over the same names
        shutil.copy(d, cam / f"cam_{i}.png")
        os.utime(cam / f"cam_{i}.png", ns=(10**18 + i, 10**18 + i))
    assert main(cmd) == 0
    after = pd.read_csv(out)["score"].tolist()
    assert min(after) > max(before)  # the defects' scores, not the old good ones


def test_heatmaps_of_images_with_the_same_name_in_two_folders_are_both_kept(tree, tmp_path):
    model = tmp_path / "model"
    _fit(tree, model, "--k", "2")
    images = tmp_path / "test"
    for sub, src in (("good", tree["test_good"]), ("crack", tree["test_defect"])):
        (images / sub).mkdir(parents=True)
        shutil.copy(sorted(src.rglob("*.png"))[0], images / sub / "000.png")
    heat = tmp_path / "heat"
    assert main(["inspect", "score", "--model", str(model), "--images", str(images), "--out", str(tmp_path / "s.csv"),
                 "--heatmaps", str(heat)]) == 0
    assert (heat / "good" / "000.png_heatmap.png").exists() and (heat / "crack" / "000.png_heatmap.png").exists()


def test_k_unreadable_images_are_replaced_by_other_draws_and_masks_folder_must_exist(tree, tmp_path, capsys):
    good = tmp_path / "good"
    shutil.copytree(tree["train"], good)
    for i in range(3):
        (good / f"aaa_broken_{i}.png").write_bytes(b"not an image")
    model = tmp_path / "model"
    assert main(["inspect", "fit", "--good", str(good), "--k", "4", "--seed", "1", "--image-size", str(SIZE),
                 "--precision", "fp32", "--out", str(model)]) == 0
    summary = json.loads(capsys.readouterr().out)
    support = json.loads((model / "support.json").read_text())["paths"]
    assert summary["n_support"] == 4 and len(support) == 4 and not any("broken" in p for p in support)
    # evaluating with a mistyped masks folder stops with the folder's name instead of silently skipping pixels
    rc = main(["inspect", "evaluate", "--model", str(model), "--good", str(tree["test_good"]),
               "--defect", str(tree["test_defect"]), "--masks", str(tmp_path / "nomasks"), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 2 and "nomasks" in err and "masks folder not found" in err


def test_k_draw_is_unchanged_when_every_image_reads(tmp_path):
    from pathlib import Path

    from vai.verticals.vision_inspect.data import draw_k

    paths = [Path(f"/x/{i:03d}.png") for i in range(20)]
    assert draw_k(paths, 5, seed=3, usable=lambda p: None) == draw_k(paths, 5, seed=3)


def test_images_sharing_a_stem_in_one_folder_get_their_own_heatmap_names():
    from vai.verticals.vision_inspect.pipeline import heatmap_names

    names = heatmap_names(["lot/cell.bmp", "lot/cell.tiff", "lot/other.png", "lot/sub/cell.png"])
    assert names == {"lot/cell.bmp": "cell.bmp_heatmap.png", "lot/cell.tiff": "cell.tiff_heatmap.png",
                     "lot/other.png": "other.png_heatmap.png", "lot/sub/cell.png": "sub/cell.png_heatmap.png"}
    assert len(set(names.values())) == 4
    # a.bmp sharing its stem with a.png used to take a.bmp_heatmap.png, the name of a.bmp.png's heatmap
    tricky = heatmap_names(["lot/a.bmp", "lot/a.png", "lot/a.bmp.png"])
    assert len(set(tricky.values())) == 3


def test_an_image_keeps_its_heatmap_name_when_other_images_join_the_folder():
    """Stable names: re-scoring a camera folder after cell.tiff (or a new sub-folder) arrives must not rename
    cell.bmp's heatmap and leave the old one behind."""
    from vai.verticals.vision_inspect.pipeline import heatmap_names

    alone = heatmap_names(["/lot/good/cell.bmp"], "/lot")
    joined = heatmap_names(["/lot/good/cell.bmp", "/lot/good/cell.tiff", "/lot/crack/cell.bmp"], "/lot")
    assert alone["/lot/good/cell.bmp"] == joined["/lot/good/cell.bmp"] == "good/cell.bmp_heatmap.png"
    assert len(set(joined.values())) == 3


def test_score_csv_rows_point_at_their_own_heatmaps(tree, tmp_path):
    """cell.bmp and cell.tiff in one folder, x.png in two sub-folders: four heatmaps, and each CSV row's
    `heatmap` column is the file drawn from that row's image."""
    import numpy as np
    from PIL import Image

    model = tmp_path / "model"
    _fit(tree, model, "--k", "2")
    images = tmp_path / "lot"
    (images / "a").mkdir(parents=True)
    (images / "b").mkdir()
    good = sorted(tree["test_good"].glob("*.png"))[0]
    defect = sorted(tree["test_defect"].rglob("*.png"))[0]
    with Image.open(good) as g, Image.open(defect) as d:
        g.convert("RGB").save(images / "a" / "cell.bmp")
        d.convert("RGB").save(images / "a" / "cell.tiff")
        g.convert("RGB").save(images / "a" / "x.png")
        d.convert("RGB").save(images / "b" / "x.png")
    heat, out = tmp_path / "heat", tmp_path / "s.csv"
    assert main(["inspect", "score", "--model", str(model), "--images", str(images), "--out", str(out),
                 "--heatmaps", str(heat)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 4 and frame["heatmap"].nunique() == 4
    expected = {"a/cell.bmp": "a/cell.bmp_heatmap.png", "a/cell.tiff": "a/cell.tiff_heatmap.png",
                "a/x.png": "a/x.png_heatmap.png", "b/x.png": "b/x.png_heatmap.png"}
    for path, hm in zip(frame["path"], frame["heatmap"]):
        rel = os.path.relpath(path, images)
        assert os.path.relpath(hm, heat) == expected[rel]
        assert os.path.exists(hm)
    assert sorted(str(p.relative_to(heat)) for p in heat.rglob("*.png")) == sorted([*expected.values(),
                                                                                   "colour_scale.png"])
    # the overlay is of the row's own image: the good and the defect copies of x.png differ
    with Image.open(heat / "a" / "x.png_heatmap.png") as ha, Image.open(heat / "b" / "x.png_heatmap.png") as hb:
        assert not np.array_equal(np.asarray(ha), np.asarray(hb))
