"""Non-square model resolutions for elongated parts: HxW sizes through fit, score, maps, masks, persistence and
the CLI's --keep-aspect, on synthetic elongated textures (3:1) with planted defects."""
import json

import numpy as np
import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.verticals.vision_inspect import metrics as M
from vai.verticals.vision_inspect.data import aspect_size, image_hw, parse_image_size
from vai.verticals.vision_inspect.detector import FewShotDetector
from vai.verticals.vision_inspect.synthetic import DEFECT_KINDS, make_texture, plant_defect

from vi_fixtures import one_torch_thread  # noqa: F401

H, W = 64, 192


def _elongated(n_good: int, n_defect: int, seed: int, scale: int = 1):
    """Good strips [n, H, W, 3] and strips with a defect planted in a random H x H window, with their masks."""
    rng = np.random.default_rng(seed)
    h, w = H * scale, W * scale
    good = np.stack([make_texture(rng, w)[:h] for _ in range(n_good)])
    defects, masks = [], []
    for i in range(n_defect):
        img = make_texture(rng, w)[:h].copy()
        mask = np.zeros((h, w), bool)
        x0 = int(rng.integers(0, w - h))
        img[:, x0:x0 + h], mask[:, x0:x0 + h] = plant_defect(np.ascontiguousarray(img[:, x0:x0 + h]), rng,
                                                            DEFECT_KINDS[i % 2])
        defects.append(img)
        masks.append(mask)
    return good, np.stack(defects), np.stack(masks)


def _png(path, arr):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def test_image_sizes_parse_and_follow_the_aspect(tmp_path):
    assert parse_image_size("224") == 224 and parse_image_size("64x192") == (64, 192)
    assert image_hw(96) == (96, 96) and image_hw([64, 192]) == (64, 192)  # a saved config's list
    with pytest.raises(VaiError, match="HEIGHTxWIDTH"):
        parse_image_size("wide")
    wide = [_png(tmp_path / f"w{i}.png", np.zeros((100, 300 + i, 3), np.uint8)) for i in range(3)]
    tall = [_png(tmp_path / f"t{i}.png", np.zeros((310, 100, 3), np.uint8)) for i in range(2)]
    assert aspect_size(wide, 64) == (64, 192)
    assert aspect_size(tall, 64) == (192, 64)  # 3.1:1, the long side on the backbone's stride of 32
    assert aspect_size([_png(tmp_path / "sq.png", np.zeros((50, 50, 3), np.uint8))], 64) == (64, 64)


def test_non_square_detector_finds_defects_and_round_trips(tmp_path):
    good, defect, masks = _elongated(10, 8, seed=1)
    det = FewShotDetector(image_size=(H, W), seed=0, augment="flip").fit(good[:4])
    assert det.image_size == (H, W) and det.grid[1] == 3 * det.grid[0]
    g, d = det.score(good[4:]), det.score(defect)
    assert g.maps.shape == (6, H, W) and d.maps.shape == (8, H, W)
    labels = np.r_[np.zeros(len(g.scores)), np.ones(len(d.scores))]
    assert M.image_auroc(labels, np.r_[g.scores, d.scores]) >= 0.9
    # the peak lands on the defect, not elsewhere along the strip: within one patch stride (8 px) of it (the masks
    # of 3-px scratches at 64 px are thinner than the features' resolution)
    near = [np.hypot(*(np.argwhere(m) - np.unravel_index(a.argmax(), a.shape)).T).min() <= 8
            for a, m in zip(d.maps, masks)]
    assert np.mean(near) >= 0.75
    assert M.pixel_auroc(np.concatenate([masks, np.zeros_like(g.maps, bool)]), np.concatenate([d.maps, g.maps])) >= 0.85

    det.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["image_size"] == [H, W]
    back = FewShotDetector.load(tmp_path / "m")
    assert back.image_size == (H, W)
    np.testing.assert_allclose(back.score(defect).scores, d.scores, rtol=1e-5)
    # a 90-degree turn of a strip is another shape: refused with the reason, not a stacking error
    with pytest.raises(VaiError, match="square"):
        FewShotDetector(image_size=(H, W), augment="rot")


def test_cli_keep_aspect_fits_scores_and_evaluates_strips(tmp_path, capsys):
    from vai.cli import main

    good, defect, masks = _elongated(7, 4, seed=2, scale=2)  # files at 128 x 384, the model at 64 x 192
    train = [_png(tmp_path / "train" / f"g{i}.png", good[i]) for i in range(3)]
    for i in range(3, 7):
        _png(tmp_path / "test_good" / f"g{i}.png", good[i])
    for i in range(4):
        _png(tmp_path / "defect" / f"d{i}.png", defect[i])
        _png(tmp_path / "masks" / f"d{i}.png", (masks[i] * 255).astype(np.uint8))
    model = tmp_path / "model"
    assert main(["inspect", "fit", "--good", str(train[0].parent), "--image-size", "64", "--keep-aspect",
                 "--precision", "fp32", "--out", str(model)]) == 0
    assert json.loads(capsys.readouterr().out)["image_size"] == "64x192"
    assert json.loads((model / "config.json").read_text())["image_size"] == [H, W]

    heat = tmp_path / "heat"
    assert main(["inspect", "score", "--model", str(model), "--images", str(tmp_path / "defect"),
                 "--out", str(tmp_path / "s.csv"), "--heatmaps", str(heat)]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 4
    from PIL import Image

    with Image.open(next(heat.glob("*_heatmap.png"))) as im:
        assert im.size == (384, 128)  # overlaid on the part as it is, not squashed

    ev = tmp_path / "eval"
    assert main(["inspect", "evaluate", "--model", str(model), "--good", str(tmp_path / "test_good"),
                 "--defect", str(tmp_path / "defect"), "--masks", str(tmp_path / "masks"), "--out", str(ev)]) == 0
    result = json.loads((ev / "evaluation.json").read_text())
    assert result["masks_found"] == 4 and result["image_auroc"] >= 0.9 and result["pixel_auroc"] >= 0.85

    assert main(["inspect", "fit", "--good", str(train[0].parent), "--image-size", "64x192", "--keep-aspect",
                 "--out", str(tmp_path / "m2")]) == 2
    assert "shorter side" in capsys.readouterr().err
