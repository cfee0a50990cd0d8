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
