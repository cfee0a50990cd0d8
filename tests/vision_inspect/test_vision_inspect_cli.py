"""`vai inspect fit|score|evaluate|types` end to end on a synthetic folder tree, with the store."""
import json
from pathlib import Path

import pandas as pd
import pytest

from vai.cli import main
from vai.verticals.vision_inspect.synthetic import write_dataset

from vi_fixtures import SIZE, one_torch_thread  # noqa: F401


@pytest.fixture
def tree(tmp_path):
    f = write_dataset(tmp_path / "data", n_train=3, n_test_good=4, n_defect=6, size=SIZE, seed=5)
    (f["test_good"] / "broken.png").write_bytes(b"\x89PNG but not really")
    return f


def test_cli_fit_score_evaluate_types(tree, tmp_path, capsys):
    from vai.core.store import Store

    model = tmp_path / "model"
    assert main(["inspect", "fit", "--good", str(tree["train"]), "--k", "2", "--seed", "1",
                 "--image-size", str(SIZE), "--precision", "fp32", "--out", str(model)]) == 0
    assert json.loads((model / "config.json").read_text())["precision"] == "fp32"  # scoring will use it too
    support = json.loads((model / "support.json").read_text())
    assert len(support["paths"]) == 2 and (model / "weights.safetensors").exists()

    scores, heat = tmp_path / "scores.csv", tmp_path / "heat"
    assert main(["inspect", "score", "--model", str(model), "--images", str(tree["root"] / "test"),
                 "--out", str(scores), "--heatmaps", str(heat), "--chunk-size", "4"]) == 1  # broken.png skipped
    frame = pd.read_csv(scores)
    assert list(frame.columns) == ["path", "score", "threshold", "is_defect", "peak_x", "peak_y", "heatmap"]
    assert len(frame) == 10 and not frame["path"].str.contains("broken").any()
    defect_rows = frame["path"].str.contains("/defect/")
    assert frame.loc[defect_rows, "score"].min() > frame.loc[~defect_rows, "score"].median()
    # the peak is where the planted defect is: inside its mask, give or take one patch (SIZE / 16 px)
    import numpy as np
    from PIL import Image
    from scipy.ndimage import binary_dilation

    hits = 0
    for row in frame[defect_rows].itertuples():
        mask = np.asarray(Image.open(tree["masks"] / (Path(row.path).stem + ".png"))) > 0
        hits += bool(binary_dilation(mask, iterations=SIZE // 16)[row.peak_y, row.peak_x])
    assert hits >= 5, hits
    assert len(list(heat.rglob("*_heatmap.png"))) == 10  # in good/ and defect/, as the images are
    assert all(Path(h).exists() for h in frame["heatmap"])

    runs = Store().runs(vertical="vision_inspect")
    score_run = runs[runs["command"] == "score"].iloc[0]
    assert score_run["status"] == "partial"  # the broken image was skipped and reported
    assert any("broken.png" in k for k in score_run["summary"]["errors"])
    assert score_run["summary"]["job"]["total"] == 3

    # a second run resumes every chunk from its markers
    assert main(["inspect", "score", "--model", str(model), "--images", str(tree["root"] / "test"),
                 "--out", str(scores), "--chunk-size", "4"]) == 1
    # heatmaps were not asked for this time: different chunk keys, so only compare the scores
    again = Store().runs(vertical="vision_inspect").iloc[0]
    assert again["summary"]["images"] == 10

    ev = tmp_path / "eval"
    assert main(["inspect", "evaluate", "--model", str(model), "--good", str(tree["test_good"]),
                 "--defect", str(tree["test_defect"]), "--masks", str(tree["masks"]), "--out", str(ev)]) == 0
    result = json.loads((ev / "evaluation.json").read_text())
    assert result["image_auroc"] >= 0.9 and result["pixel_auroc"] >= 0.85 and result["masks_found"] == 6
    assert {"f1", "recall", "fpr"} <= set(result["at_saved_threshold"])
    assert (ev / "roc.png").exists() and (ev / "score_histogram.png").exists()

    typer, types_csv = tmp_path / "typer", tmp_path / "types.csv"
    assert main(["inspect", "types", "fit", "--model", str(model), "--defects", str(tree["test_defect"]),
                 "--out", str(typer)]) == 0
    assert main(["inspect", "types", "predict", "--typer", str(typer), "--images", str(tree["test_defect"]),
                 "--out", str(types_csv)]) == 0
    types = pd.read_csv(types_csv)
    truth = types["path"].map(lambda p: p.split("/")[-2])
    assert (types["nearest_type"] == truth).mean() >= 0.8  # its own training examples: a sanity check
    assert set(Store().runs(vertical="vision_inspect")["command"]) == {"fit", "score", "evaluate", "types-fit",
                                                                       "types-predict"}


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["inspect", "fit", "--good", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope" in err and len(err.splitlines()) == 1
    assert main(["inspect", "score", "--model", str(tmp_path), "--images", str(tmp_path), "--out", "x.csv"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_resume_reuses_finished_chunks(tree, tmp_path):
    from vai.verticals.vision_inspect.pipeline import fit_model, score_images

    model = tmp_path / "m"
    fit_model(tree["train"], model, k=1, image_size=SIZE)
    out = tmp_path / "s.csv"
    first, _ = score_images(model, tree["test_good"], out, chunk_size=2)
    job = json.loads((tmp_path / "s.job" / "job.json").read_text())
    assert job["done"] == 3 and job["resumed"] == 0
    second, _ = score_images(model, tree["test_good"], out, chunk_size=2)
    job = json.loads((tmp_path / "s.job" / "job.json").read_text())
    assert job["done"] == 0 and job["resumed"] == 3
    pd.testing.assert_frame_equal(first, second)
