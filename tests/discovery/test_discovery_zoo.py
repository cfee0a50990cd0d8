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


def test_benchmark_runs_a_multi_task_classification_set_and_writes_the_rows_both_tools_read(tmp_path, monkeypatch):
    """Rows that fail standardisation are left out of a written copy of the data, and the split indices are row
    numbers of that copy, so chemprop reads exactly the molecules we do."""
    import pandas as pd

    from vai.verticals.discovery import benchmark

    f = sample_frame()[["smiles", "logp_high", "heavy_atoms"]]
    f["small"] = (f["heavy_atoms"] < 12).astype(float)
    f.loc[f.index[::3], "small"] = np.nan
    f.loc[len(f)] = ["C1CC((", 1.0, 0, 1.0]  # unparsable
    (tmp_path / "data" / "discovery" / "assays").mkdir(parents=True)
    f.to_csv(tmp_path / "data" / "discovery" / "assays" / "two.csv.gz", index=False)
    from vai.verticals.discovery import splits

    # the embedded molecules are mostly acyclic (one scaffold holds 90 of 157): split them at random here
    monkeypatch.setattr(splits, "scaffold_split", lambda smi, sizes, seed: splits.random_split(len(smi), sizes, seed))
    monkeypatch.setitem(benchmark.DATASETS, "two_assays",
                        benchmark.BenchmarkSet(("assays/two.csv.gz",), "smiles", ["logp_high", "small"],
                                               "classification"))
    res = benchmark.run_benchmark(tmp_path / "data", tmp_path / "out", datasets=["two_assays"], seeds=[0, 1],
                                  model="gbm", gbm_members=1)
    written = pd.read_csv(tmp_path / "out" / "data_two_assays.csv")
    assert len(written) == len(f) - 1 and "C1CC((" not in set(written["smiles"])
    for s in json.loads((tmp_path / "out" / "splits_two_assays.json").read_text()):
        assert sorted(s["train"] + s["val"] + s["test"]) == list(range(len(written)))
    r = res["datasets"]["two_assays"]
    assert r["task"] == "classification" and r["metrics"]["roc_auc"]["mean"] > 0.8
    seed0 = r["per_seed"][0]
    assert seed0["roc_auc"] == pytest.approx(np.mean([seed0["per_target"][t]["roc_auc"] for t in ("logp_high", "small")]))
    assert "ROC-AUC (mean over targets)" in (tmp_path / "out" / "results.md").read_text()


def test_benchmark_keeps_a_published_split_and_the_solvent_as_second_molecule(tmp_path, monkeypatch):
    """A set given as train/val/test files (Deep4Chem's published split) is split as published for every seed,
    a row that fails standardisation is left out of the written copy, and the solvent is an input."""
    import pandas as pd

    from vai.verticals.discovery import benchmark

    f = sample_frame()[["smiles", "logp_crippen"]]
    f["solvent"] = np.where(np.arange(len(f)) % 2, "CCO", "O")
    f.loc[f.index[::2], "logp_crippen"] += 3.0  # the solvent matters: water rows are shifted
    base = tmp_path / "data" / "discovery" / "uv"
    base.mkdir(parents=True)
    parts = {"train": f.iloc[:110], "val": f.iloc[110:130], "test": f.iloc[130:]}
    parts["val"] = pd.concat([parts["val"], pd.DataFrame([{"smiles": "C1CC((", "logp_crippen": 1.0, "solvent": "O"}])])
    for k, part in parts.items():
        part.to_csv(base / f"{k}.csv", index=False)
    monkeypatch.setitem(benchmark.DATASETS, "pub", benchmark.BenchmarkSet(
        tuple(f"uv/{k}.csv" for k in parts), "smiles", ["logp_crippen"], "regression", solvent_col="solvent"))
    res = benchmark.run_benchmark(tmp_path / "data", tmp_path / "out", datasets=["pub"], seeds=[0, 1], model="gbm",
                                  gbm_members=1)
    written = pd.read_csv(tmp_path / "out" / "data_pub.csv")
    assert len(written) == len(f) and "C1CC((" not in set(written["smiles"])
    splits = json.loads((tmp_path / "out" / "splits_pub.json").read_text())
    assert splits[0] == splits[1] == {"train": list(range(110)), "val": list(range(110, 130)),
                                      "test": list(range(130, len(f)))}
    # half the rows are shifted by 3 log units by their solvent: without it as an input the RMSE is ~0.9
    assert res["datasets"]["pub"]["metrics"]["rmse"]["mean"] < 0.5


def test_the_zoo_sensitisation_model_takes_alerts_and_its_card_says_so(tmp_path):
    from vai.verticals.discovery.zoo import model_card_markdown

    f = sample_frame()[["smiles", "logp_high"]].rename(columns={"logp_high": "label"})
    (tmp_path / "data" / "discovery").mkdir(parents=True)
    f.to_csv(tmp_path / "data" / "discovery" / "sens.csv", index=False)
    spec = PropertySpec("sens", "synthetic sensitiser", ["sens.csv"], "smiles", "label", task="classification",
                        split="random", model_kwargs={**PROPERTIES["skin_sensitization"].model_kwargs,
                                                      "gbm_members": 1})
    card = train_property(spec, tmp_path / "data", tmp_path / "zoo", seeds=[0])
    assert card["model_options"]["alerts"] is True
    assert "options: alerts=True" in model_card_markdown(card) and "Structural alerts" in model_card_markdown(card)


def test_the_zoo_is_a_batch_job_that_reports_a_missing_data_set_and_resumes(tmp_path, monkeypatch, capsys):
    from vai.cli import main
    from vai.verticals.discovery import zoo

    data = tmp_path / "data" / "discovery"
    data.mkdir(parents=True)
    sample_frame()[["smiles", "logp_crippen"]].to_csv(data / "logp.csv", index=False)
    monkeypatch.setitem(zoo.PROPERTIES, "logp_synthetic", PropertySpec(
        "logp_synthetic", "synthetic logP", ["logp.csv"], "smiles", "logp_crippen", split="random",
        model_kwargs={"gbm_members": 1}))
    monkeypatch.setitem(zoo.PROPERTIES, "not_staged", PropertySpec(
        "not_staged", "a data set that is not there", ["absent.csv"], "smiles", "y"))
    cmd = ["discovery", "zoo", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "zoo"),
           "--only", "not_staged,logp_synthetic", "--seeds", "0"]
    assert main(cmd) == 1  # one property could not be trained; the other still was
    err = capsys.readouterr().err
    assert "error: not_staged:" in err and "absent.csv is missing" in err
    card = tmp_path / "zoo" / "logp_synthetic" / "card.json"
    first = card.stat().st_mtime_ns
    assert set(load_zoo(tmp_path / "zoo")) == {"logp_synthetic"}

    assert main(cmd) == 1
    assert "kept: logp_synthetic" in capsys.readouterr().err and card.stat().st_mtime_ns == first
    with open(data / "logp.csv", "a") as fh:  # new data: the property is trained again
        fh.write("CCCCCCCCO,2.5\n")
    assert main(cmd) == 1
    assert "kept" not in capsys.readouterr().err and card.stat().st_mtime_ns != first
    second = card.stat().st_mtime_ns
    assert main([*cmd, "--retrain"]) == 1 and card.stat().st_mtime_ns != second
