"""The Streamlit page, headless: renders empty, then fits and scores the generated sample set."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

import vai.apps

from vi_fixtures import one_torch_thread  # noqa: F401

PAGE = Path(vai.apps.__file__).parent / "pages" / "3_Vision_Inspection.py"


def test_page_fits_scores_and_moves_the_threshold():
    at = AppTest.from_file(str(PAGE), default_timeout=180).run()
    assert not at.exception
    assert "Vision inspection" in at.title[0].value
    assert any("No vision-inspection runs" in i.value for i in at.info)
    at.checkbox[0].check()
    at.select_slider[0].set_value(96)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == 12
    # the planted defects rank above the good samples
    top = table.sort_values("score", ascending=False)["image"].head(6)
    assert sum(not name.startswith("good") for name in top) >= 5
    assert len(at.image) == 1 + 12  # the colour scale, then one heatmap per image
    flagged_before = at.metric[1].value
    at.slider[0].set_value(at.slider[0].max).run()
    assert not at.exception
    assert at.metric[1].value == "0" and flagged_before != "0"
    runs = at.dataframe[1].value
    assert list(runs["command"]) == ["page-score"]


def _png(array) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_are_read_as_the_cli_reads_them_and_bad_ones_are_named():
    import numpy as np

    from vai.verticals.vision_inspect.synthetic import make_set

    good, defect, _, _ = make_set(5, 1, size=96, seed=3)
    deep = (good[4, :, :, 0].astype(np.uint16) * 257)  # a 16-bit camera frame: no fixed scale in an 8-bit model
    at = AppTest.from_file(str(PAGE), default_timeout=180).run()
    at.select_slider[0].set_value(96)
    at.file_uploader(key="good_upload").set_value([(f"g{i}.png", _png(good[i]), "image/png") for i in range(3)])
    at.file_uploader(key="inspect_upload").set_value([
        ("ok.png", _png(good[3]), "image/png"), ("scratch.png", _png(defect[0]), "image/png"),
        ("broken.png", b"\x89PNG not really", "image/png"), ("deep16.png", _png(deep), "image/png")])
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert sorted(table["image"]) == ["ok.png", "scratch.png"]
    assert table.set_index("image")["score"]["scratch.png"] > table.set_index("image")["score"]["ok.png"]
    warned = [w.value for w in at.warning]
    assert any(w.startswith("skipped broken.png: cannot read image") for w in warned), warned
    assert any(w.startswith("skipped deep16.png: a I;16") and "8-bit" in w for w in warned), warned
    assert not any("vai-inspect-" in w for w in warned)  # the user's names, not the page's temporary files
    at.file_uploader(key="inspect_upload").set_value([("broken.png", b"junk", "image/png")])
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.value.startswith("None of the images to inspect could be read: broken.png") for e in at.error)
