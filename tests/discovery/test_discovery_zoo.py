"""The zoo's multi-task path (Tox21-style: several binary assays, untested pairs blank) on embedded molecules."""
import json

import numpy as np
import pytest

from vai.verticals.discovery.zoo import PROPERTIES, PropertySpec, load_zoo, train_property

from discovery_testlib import sample_frame


def test_a_multi_task_zoo_property_reports_each_target_and_their_mean(tmp_path):
    f = sample_frame()
    f["small"] = (f["heavy_atoms"] < 12).astype(float)
    f.loc[f.index[::3], "small"] = np.nan
    f.loc[f.index[1::4], "logp_high"] = np.nan
    (tmp_path / "data" / "discovery").mkdir(parents=True)
    f.to_csv(tmp_path / "data" / "discovery" / "assays.csv.gz", index=False)
    spec = PropertySpec("two_assays", "two synthetic assays", ["assays.csv.gz"], "smiles", ["logp_high", "small"],
                        task="classification", split="random", model_kwargs={"gbm_members": 1})
    card = train_property(spec, tmp_path / "data", tmp_path / "zoo", seeds=(0, 1))
    assert card["targets"] == ["logp_high", "small"] and card["task"] == "binary"
    per = card["metrics_per_target_mean_sd"]
    assert set(per) == {"logp_high", "small"}
    for seed in card["per_seed"]:  # the headline is the mean over the targets, seed by seed
        assert seed["test"]["n_targets"] == 2
    saved = json.loads((tmp_path / "zoo" / "two_assays" / "model" / "metrics.json").read_text())
    aucs = [saved["test"][t]["roc_auc"] for t in ("logp_high", "small")]
    assert card["per_seed"][0]["test"]["roc_auc"] == pytest.approx(np.mean(aucs))
    assert card["metrics_mean_sd"]["roc_auc"]["mean"] > 0.8  # both synthetic targets follow from the structure
    md = (tmp_path / "zoo" / "two_assays" / "MODEL_CARD.md").read_text()
    assert "mean over the targets" in md and "| small |" in md and "| logp_high |" in md
    assert "pr_auc" in card["summary"]
    assert load_zoo(tmp_path / "zoo")["two_assays"]["card"]["targets"] == ["logp_high", "small"]


def test_tox21_is_a_twelve_assay_classification_property():
    spec = PROPERTIES["toxicity_tox21"]
    assert len(spec.targets) == 12 and spec.task == "classification" and spec.split == "scaffold"
    assert PROPERTIES["solubility_esol"].targets == ["logSolubility"]
