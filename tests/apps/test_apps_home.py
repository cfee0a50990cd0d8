"""The hub's home page, run headless with Streamlit's AppTest."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import vai.apps

APPS_DIR = Path(vai.apps.__file__).parent
HOME = APPS_DIR / "Home.py"


def test_home_with_empty_store_says_how_to_make_runs():
    at = AppTest.from_file(str(HOME), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value.startswith("vai")
    assert any("vai demo" in i.value for i in at.info)


def test_home_says_which_verticals_are_not_installed(monkeypatch):
    from vai.core import extras

    at = AppTest.from_file(str(HOME), default_timeout=60).run()
    assert not at.warning  # this environment has every extra
    monkeypatch.setitem(extras.EXTRA_MODULES, "master_score", ("no_such_encoder_module",))
    at = AppTest.from_file(str(HOME), default_timeout=60).run()
    assert [w.value for w in at.warning] == [
        "Not installed here (needs no_such_encoder_module): `pip install 'vai-platform[master_score]'`"]


def test_home_lists_runs_and_shows_details():
    from vai.core.store import Store

    store = Store()
    with store.run("discovery", "train", {"model": "gbm"}) as run:
        run.summary["rmse"] = 0.71
    with store.run("scheduling", "solve", {"instance": "x.json"}) as run:
        run.summary["status"] = "OPTIMAL"
        run.add_output("gantt", _png(run.dir / "gantt.png"))
    at = AppTest.from_file(str(HOME), default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["vertical"]) == {"discovery", "scheduling"}
    at.selectbox[0].select("scheduling").run()
    assert not at.exception
    assert list(at.dataframe[0].value["vertical"]) == ["scheduling"]
    assert "OPTIMAL" in at.json[0].value  # the selected run's summary
    assert len(at.image) == 1  # the PNG output shown inline


def _png(path):
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)
    return path


@pytest.mark.parametrize("page", sorted(p.name for p in (APPS_DIR / "pages").glob("*.py")) or ["<none>"])
def test_every_page_renders_without_exception(page):
    if page == "<none>":
        pytest.skip("no vertical pages yet")
    at = AppTest.from_file(str(APPS_DIR / "pages" / page), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title or at.header, f"{page} shows no title"


def test_a_folder_output_shows_its_legend_first_and_a_few_pictures():
    from vai.core.store import Store

    store = Store()
    with store.run("vision_inspect", "score", {"images": "lot"}) as run:
        heat = run.dir / "heat"
        for i in range(9):
            _png(heat / "good" / f"{i:03d}.png_heatmap.png")
        _png(heat / "colour_scale.png")
        run.add_output("heatmaps", heat)
    at = AppTest.from_file(str(HOME), default_timeout=60).run()
    assert not at.exception
    assert len(at.image) == 7 and at.image[0].captions == ["colour_scale.png"]
    assert any("and 3 more" in c.value for c in at.caption)
