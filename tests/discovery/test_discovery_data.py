"""Integration on the real data (skipped without ../shared/data): the smallest zoo property and benchmark set."""
import json

import pytest

from vai.verticals.discovery.benchmark import run_benchmark
from vai.verticals.discovery.models import PropertyPredictor
from vai.verticals.discovery.zoo import PROPERTIES, load_zoo, train_property

pytestmark = pytest.mark.data


def test_zoo_property_with_model_card(shared_data_dir, tmp_path):
    if not (shared_data_dir / "discovery").is_dir():
        pytest.skip("no discovery data")
    card = train_property(PROPERTIES["skin_permeability_logkp"], shared_data_dir, tmp_path, seeds=(0, 1))
    assert card["data"]["used"] == 147 and len(card["per_seed"]) == 2
    assert card["metrics_mean_sd"]["rmse"]["mean"] < 1.2  # the target's SD is about 1.0 log units
    text = (tmp_path / "skin_permeability_logkp" / "MODEL_CARD.md").read_text()
    assert "mean +- SD over seeds" in text and "Cheruvu" in text
    zoo = load_zoo(tmp_path)
    model = PropertyPredictor.load(zoo["skin_permeability_logkp"]["model_dir"])
    out = model.predict_smiles(["OCCOc1ccccc1"])
    assert -6 < out["prediction"][0] < 0


def test_benchmark_writes_shared_split_files(shared_data_dir, tmp_path):
    if not (shared_data_dir / "discovery").is_dir():
        pytest.skip("no discovery data")
    res = run_benchmark(shared_data_dir, tmp_path, datasets=["cheruvu_logkp"], seeds=[0, 1], model="gbm",
                        gbm_members=1)
    splits = json.loads((tmp_path / "splits_cheruvu_logkp.json").read_text())
    assert len(splits) == 2
    for s in splits:
        idx = s["train"] + s["val"] + s["test"]
        assert len(idx) == len(set(idx)) == 147
    assert res["datasets"]["cheruvu_logkp"]["metrics"]["rmse"]["mean"] > 0
    assert (tmp_path / "results.md").read_text().count("cheruvu_logkp") == 1
