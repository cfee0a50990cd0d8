"""`run_demo` end to end on its embedded synthetic data."""
from vai.core.store import Store
from vai.verticals.vision_inspect.demo import run_demo

from vi_fixtures import one_torch_thread  # noqa: F401


def test_demo_runs_and_records(tmp_path):
    summary = run_demo(tmp_path / "demo")
    assert summary["images_scored"] == 20
    assert summary["synthetic_image_auroc"] >= 0.9 and summary["synthetic_pixel_auroc"] >= 0.85
    assert 0.0 <= summary["synthetic_typing_accuracy"] <= 1.0
    assert (tmp_path / "demo" / "heatmaps").is_dir()
    commands = set(Store().runs(vertical="vision_inspect")["command"])
    assert {"fit", "score", "evaluate", "types-fit", "types-predict"} <= commands
