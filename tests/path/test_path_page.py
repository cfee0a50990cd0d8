"""The pathology page, headless with Streamlit's AppTest."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

import vai.apps

PAGE = Path(vai.apps.__file__).parent / "pages" / "1_Pathology.py"


def _untrained_model(path):
    from vai.verticals.path.genotype import GenotypeModel
    from vai.verticals.path.models import MILModule

    config = {"vertical": "path", "kind": "genotype_mil", "model": "abmil", "targets": ["synth_a"], "in_dim": 1280,
              "model_kwargs": {}, "backbone": "tf_efficientnet_lite0", "tile_size": 64, "target_mpp": 1.0}
    GenotypeModel(MILModule(1280, 1), ["synth_a"], config).save(path)
    return path


def test_page_shows_slide_mask_grid_and_predicts(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.title[0].value.startswith("Pathology")
    assert any("vai demo" in i.value for i in at.info)  # empty store says how to make runs
    at.selectbox[0].select("synthetic demo slide (generated)").run()
    assert not at.exception
    assert len(at.image) >= 3  # thumbnail, mask, tile grid
    assert any("tiles at" in m.value for m in at.markdown)

    model = _untrained_model(tmp_path / "model")
    at.text_input[0].input(str(model)).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    frame = at.dataframe[-1].value
    assert "synth_a_prob" in frame.columns and 0 <= frame["synth_a_prob"].iloc[0] <= 1
    assert len(at.image) >= 5  # + heatmap and top tiles


def test_page_reports_a_bad_model_dir_as_an_error(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    at.selectbox[0].select("synthetic demo slide (generated)").run()
    at.text_input[0].input(str(tmp_path / "no_model")).run()
    at.button[0].click().run()
    assert not at.exception
    assert any("not a model directory" in e.value for e in at.error)


def test_an_uploaded_slide_without_resolution_asks_for_it_on_the_page(tmp_path, monkeypatch):
    import io
    import tempfile

    import numpy as np
    import tifffile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    img = np.full((512, 512, 3), 235, np.uint8)
    img[128:384, 128:384] = (150, 60, 140)  # a block of "tissue"
    buf = io.BytesIO()
    tifffile.imwrite(buf, img, tile=(256, 256), photometric="rgb", metadata=None)  # no resolution tags
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    at.file_uploader(key="slide_upload").set_value(("scan.tiff", buf.getvalue(), "image/tiff")).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("scan.tiff: the slide has no resolution") and "above" in errors[0]
    assert "--slide-mpp" not in errors[0]  # no CLI flag to pass on a page
    at.number_input(key="slide_mpp").set_value(0.5).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("0.5 µm/px (user)" in m.value and "tiles at" in m.value for m in at.markdown)
