"""Shared figure writing: atomic PNGs, images with their colour scale."""

import numpy as np
from PIL import Image

from vai.core.plots import colour_scale, image_with_colour_scale, pyplot, save_figure, save_image


def test_image_keeps_its_resolution_with_a_title_and_scale_around_it(tmp_path):
    rgb = np.zeros((300, 640, 3), np.uint8)
    rgb[:, 320:] = (255, 0, 0)
    out = image_with_colour_scale(tmp_path / "h.png", rgb, title="slide 1, KRAS: 0.83",
                                  ticks={0.0: "low", 0.5: "median", 1.0: "high"}, scale_label="rank")
    with Image.open(out) as im:
        w, h = im.size
        arr = np.asarray(im.convert("RGB"))
    assert w == 640 and h > 300  # not shrunk; strips above and below
    # the image itself is there pixel for pixel: a band of pure red on the right half
    assert (np.abs(arr[:, 330:630].astype(int) - (255, 0, 0)).sum(-1) == 0).any(axis=1).sum() >= 290
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_legend_mask_and_figure_files(tmp_path):
    with Image.open(colour_scale(tmp_path / "scale.png", title="t", ticks={0.0: "2.5", 0.8: "thr", 1.0: "9"},
                                 scale_label="score")) as im:
        assert im.size[0] > im.size[1] > 50
    mask = np.zeros((10, 12), bool)
    mask[2:4, 3:5] = True
    with Image.open(save_image(tmp_path / "m.png", mask)) as im:
        got = np.asarray(im)
    assert got.shape == (10, 12) and got.max() == 255 and (got == 255).sum() == 4
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "f.png").stat().st_size > 1000
    assert not plt.get_fignums()  # closed: a long batch job does not pile figures up
