"""`vai demo` for pathology on generated slides."""
import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    import torch

    from vai.core.store import Store
    from vai.verticals.path.demo import run_demo

    before = torch.get_num_threads()
    try:
        summary = run_demo(tmp_path)
    finally:
        torch.set_num_threads(before)
    assert summary["slides"] == 12 and summary["tiles"] > 100
    assert "synthetic" in summary["note"]
    assert set(summary["synthetic_cv_auroc"]) == {"synth_a", "synth_b"}
    preds = pd.read_csv(summary["predictions"])
    assert len(preds) == 12 and {"synth_a_prob", "synth_b_prob"} <= set(preds.columns)
    assert list((tmp_path / "heatmaps").glob("*_heatmap.png"))
    runs = Store().runs(vertical="path")
    assert set(summary["runs"]) <= set(runs["run_id"]) and (runs["status"] == "succeeded").all()
