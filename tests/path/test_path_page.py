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
