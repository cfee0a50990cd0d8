"""Real data: few-shot detection on ELPV solar cells (k = 1, 5, 10 over 3 seeds), held-out images only.
Kept short (96 px, a fixed subsample of the test set); the full protocol is benchmarks/vision_elpv.py."""
import numpy as np
import pytest

from vai.verticals.vision_inspect.fewshot_eval import load_elpv, run, split

from vi_fixtures import one_torch_thread  # noqa: F401


@pytest.mark.data
def test_elpv_few_shot_auroc_on_held_out_cells(shared_data_dir):
    root = shared_data_dir / "vision" / "elpv_mono_subset"
    if not (root / "labels.csv").exists():
        pytest.skip(f"{root} is absent")
    good, defect = load_elpv(root)
    assert (len(good), len(defect)) == (400, 313)
    test_good, pool = split(good, 30)
    assert not set(test_good) & set(pool) and len(pool) == 370  # support never overlaps the test set
    res = run([1, 5, 10], seeds=3, size=96, n_test_good=30, n_test_defect=40, pretrained=True, data_dir=root,
              log=lambda *_: None)
    means = {k: v["auroc_mean"] for k, v in res["per_k"].items()}
    assert all(len(v["aurocs"]) == 3 for v in res["per_k"].values())
    assert means[1] >= 0.65 and means[10] >= 0.75, means
    assert np.mean([means[5], means[10]]) >= means[1] - 0.05, means
