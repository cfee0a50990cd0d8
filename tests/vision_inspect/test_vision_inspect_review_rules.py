"""What a quality engineer's scheduled job and folders do to inspection: skipped images must fail the job's exit
status, --out must not replace an image, heatmaps written beside the images must not be scored next time, a
masks folder that matches nothing must stop evaluation, a model fitted on 8-bit images must not guess a 16-bit
image's scale, and the defect typer must call unflagged parts good. SYNTHETIC textures."""
import json
import logging
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.vision_inspect.synthetic import write_dataset

from vi_fixtures import SIZE, one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from vi_fixtures import isolated_env

    base = tmp_path_factory.mktemp("review")
    tree = write_dataset(base / "data", n_train=4, n_test_good=3, n_defect=4, size=SIZE, seed=3)
    with isolated_env(base):
        assert main(["inspect", "fit", "--good", str(tree["train"]), "--k", "3", "--image-size", str(SIZE),
                     "--precision", "fp32", "--out", str(base / "model")]) == 0
    return tree, base / "model"


def _score(model, images, out, *extra):
    return main(["inspect", "score", "--model", str(model), "--images", str(images), "--out", str(out), *extra])


def test_score_exit_status_reports_skipped_and_unscored_images(fitted, tmp_path, capsys):
    tree, model = fitted
    lot = tmp_path / "lot"
    lot.mkdir()
    shutil.copy(sorted(tree["test_good"].glob("*.png"))[0], lot / "a.png")
    assert _score(model, lot, tmp_path / "ok.csv") == 0
    (lot / "b.png").write_bytes(b"not a png")
    assert _score(model, lot, tmp_path / "s.csv") == 1  # one skipped: the job must not look clean
    assert len(pd.read_csv(tmp_path / "s.csv")) == 1 and "1 image(s) skipped" in capsys.readouterr().out
    (lot / "a.png").unlink()
    assert _score(model, lot, tmp_path / "none.csv") == 1
    assert "nothing was scored" in capsys.readouterr().out


def test_score_out_must_be_a_table_file(fitted, tmp_path, capsys):
    tree, model = fitted
    photo = tmp_path / "part.png"
    shutil.copy(sorted(tree["test_good"].glob("*.png"))[0], photo)
    before = photo.read_bytes()
    with pytest.raises(SystemExit) as exc:  # an image named as the output: refused while parsing the arguments
        _score(model, tree["test_good"], photo)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cannot write a .png file" in err and "part.csv" in err
    assert photo.read_bytes() == before
    from vai.verticals.vision_inspect import pipeline

    with pytest.raises(VaiError, match=r"part\.png: cannot write a \.png file"):  # the SDK's call, the same rule
        pipeline.score_images(model, tree["test_good"], photo)
    assert photo.read_bytes() == before
    # a workbook for the quality team: the same rows as the CSV
    assert _score(model, tree["test_good"], tmp_path / "scores.xlsx") == 0
    from vai.core.tables import read_user_table

    book = read_user_table(tmp_path / "scores.xlsx")
    assert list(book.columns[:4]) == ["path", "score", "threshold", "is_defect"] and book["is_defect"].dtype == bool
    assert len(book) == len(list(tree["test_good"].glob("*.png"))) and (tmp_path / "scores_histogram.png").exists()
    with pytest.raises(SystemExit) as exc:  # a folder: refused while parsing the arguments
        _score(model, tree["test_good"], tmp_path)
    assert exc.value.code == 2 and "is a folder" in capsys.readouterr().err


def test_heatmaps_written_inside_the_images_folder_are_not_scored_next_run(fitted, tmp_path):
    tree, model = fitted
    lot = tmp_path / "lot"
    shutil.copytree(tree["test_good"], lot)
    n = len(list(lot.glob("*.png")))
    for _ in range(2):
        assert _score(model, lot, tmp_path / "s.csv", "--heatmaps", str(lot / "heat")) == 0
        frame = pd.read_csv(tmp_path / "s.csv")
        assert len(frame) == n and not frame["path"].str.contains("/heat/").any()
    assert len(list((lot / "heat").glob("*_heatmap.png"))) == n and (lot / "heat" / "colour_scale.png").exists()
    # the score histogram, written beside a table kept in the lot's folder, is not a part either
    assert _score(model, lot, lot / "scores.csv") == 0 and (lot / "scores_histogram.png").exists()
    assert _score(model, lot, lot / "scores.csv") == 0 and len(pd.read_csv(lot / "scores.csv")) == n
    # a part photographed under the legend's name, in a folder of its own, is still a part
    (tmp_path / "other").mkdir()
    shutil.copy(sorted(lot.glob("*.png"))[0], tmp_path / "other" / "colour_scale.png")
    assert _score(model, tmp_path / "other", tmp_path / "o.csv") == 0 and len(pd.read_csv(tmp_path / "o.csv")) == 1


def test_a_masks_folder_matching_no_defect_stops_evaluation_and_a_partial_one_is_warned(fitted, tmp_path, capsys,
                                                                                       caplog):
    tree, model = fitted
    wrong = tmp_path / "masks"
    wrong.mkdir()
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(wrong / "other_name.png")
    cmd = ["inspect", "evaluate", "--model", str(model), "--good", str(tree["test_good"]),
           "--defect", str(tree["test_defect"]), "--out", str(tmp_path / "e")]
    assert main([*cmd, "--masks", str(wrong)]) == 2
    assert "none of the 4 defect images has a mask" in capsys.readouterr().err
    some = tmp_path / "some"
    shutil.copytree(tree["masks"], some)
    sorted(some.glob("*.png"))[0].unlink()
    with caplog.at_level(logging.WARNING, logger="vai.vision_inspect"):
        assert main([*cmd, "--masks", str(some)]) == 0
    result = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert result["masks_found"] == 3 and result["masks_missing"] == 1
    assert "1 of 4 defect images have no mask" in caplog.text


def test_a_model_fitted_on_8bit_images_refuses_16bit_ones(fitted, tmp_path, capsys):
    """Scaling a 16-bit file by its own brightest pixel would let one hot pixel change the part's score."""
    tree, model = fitted
    assert json.loads((model / "config.json").read_text())["deep_max"] == 255.0
    lot = tmp_path / "lot"
    lot.mkdir()
    src = sorted(tree["test_good"].glob("*.png"))[0]
    shutil.copy(src, lot / "a.png")
    with Image.open(src) as im:
        grey = np.asarray(im.convert("L")).astype(np.uint16) * 16  # a 12-bit camera's file
    Image.fromarray(grey).save(lot / "b16.tiff")
    assert _score(model, lot, tmp_path / "s.csv") == 1
    assert pd.read_csv(tmp_path / "s.csv")["path"].str.endswith("a.png").all()


def test_typer_calls_unflagged_parts_good_and_reserves_its_outcome_names(fitted, tmp_path, caplog):
    from vai.core.errors import VaiError
    from vai.verticals.vision_inspect.defect_types import GOOD, DefectTyper, examples_from_folder
    from vai.verticals.vision_inspect.detector import FewShotDetector

    tree, model = fitted
    det = FewShotDetector.load(model)
    root = tmp_path / "types"
    shutil.copytree(tree["test_defect"], root, dirs_exist_ok=True)
    shutil.copytree(tree["test_good"], root / "good")  # an anomalib test/ folder
    with caplog.at_level(logging.WARNING, logger="vai.vision_inspect"):
        examples = examples_from_folder(root)
    assert GOOD not in examples and "not a defect type" in caplog.text
    typer = DefectTyper(det).fit(examples)
    preds = typer.predict(tree["test_good"])
    assert all(p.type == GOOD for p in preds if not p.is_defect)
    assert all(p.type != GOOD for p in preds if p.is_defect)
    assert any(p.type == GOOD for p in preds)
    with pytest.raises(VaiError, match="typer's own outcomes"):
        DefectTyper(det).fit({"Unknown": list(examples.values())[0]})
    one = list(examples.values())[0][:1]
    with pytest.raises(VaiError, match="at least two example images"):
        DefectTyper(det).fit({"scratch": one})


def test_unknown_margin_scales_the_radius_with_one_example_per_type(fitted):
    from vai.verticals.vision_inspect.defect_types import DefectTyper
    from vai.verticals.vision_inspect.detector import FewShotDetector

    tree, model = fitted
    det = FewShotDetector.load(model)
    examples = {d.name: sorted(d.glob("*.png"))[:1] for d in sorted(tree["test_defect"].iterdir())}
    assert len(examples) == 2
    r1 = DefectTyper(det, unknown_margin=1.0).fit(examples).radius
    r2 = DefectTyper(det, unknown_margin=2.0).fit(examples).radius
    assert r2 == pytest.approx(2 * r1) and r1 > 0


def test_unlike_support_warning_needs_a_real_gap_not_a_tiny_mad(caplog):
    from vai.verticals.vision_inspect.detector import FewShotDetector

    fake = SimpleNamespace(support_paths=[f"g{i}.png" for i in range(5)], threshold_info={})
    held = list(range(5))
    # four near-equal scores: the MAD is 0.01, so a 5% higher image used to be named
    FewShotDetector._warn_unlike_support(fake, np.array([10.0, 10.01, 10.02, 10.0, 10.5]), held)
    assert fake.threshold_info["unlike_support"] == []
    FewShotDetector._warn_unlike_support(fake, np.array([10.0, 10.01, 10.02, 10.0, 20.0]), held)
    assert [u["path"] for u in fake.threshold_info["unlike_support"]] == ["g4.png"]
