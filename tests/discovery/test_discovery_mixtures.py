import numpy as np
import pandas as pd
import pytest

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.discovery.mixtures import MixtureModel, parse_mixtures, synthetic_mixtures


def test_parse_mixtures_renormalises_and_reports_bad_rows():
    f = pd.DataFrame({"smiles_1": ["CCO", "CCO", "C1CC(("], "frac_1": [2, 1, 1], "smiles_2": ["O", None, "O"],
                      "frac_2": [2, None, 1]})
    mixes, errors = parse_mixtures(f)
    assert mixes[0] == [("CCO", 0.5), ("O", 0.5)] and mixes[1] == [("CCO", 1.0)]
    assert errors[:2] == ["", ""] and "row 3" in errors[2]
    # a fraction whose ingredient is missing is an error, not silently renormalised away
    _, errors = parse_mixtures(pd.DataFrame({"smiles_1": ["CCO"], "frac_1": [0.8], "smiles_2": [""], "frac_2": [0.2]}))
    assert "frac_2 is 0.2 but smiles_2 is empty" in errors[0]
    with pytest.raises(VaiError, match="smiles_1/frac_1"):
        parse_mixtures(pd.DataFrame({"a": [1]}))


def test_mixture_model_beats_weighted_mean_on_non_ideal_synthetic_data(tmp_path):
    frame = synthetic_mixtures(n=300, seed=1)
    path = tmp_path / "mix.csv"
    frame.to_csv(path, index=False)
    rc = main(["discovery", "mixture", "train", "--data", str(path), "--target-col", "value", "--epochs", "40",
               "--out", str(tmp_path / "mix_model")])
    assert rc == 0
    metrics = MixtureModel.load(tmp_path / "mix_model").metrics
    assert metrics["baseline_rows"] == metrics["n_test"]
    assert metrics["test_rmse_model"] < metrics["test_rmse_weighted_mean_baseline"]
    rc = main(["discovery", "mixture", "predict", "--model", str(tmp_path / "mix_model"), "--data", str(path),
               "--out", str(tmp_path / "pred.csv")])
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert rc == 0 and len(pred) == len(frame) and np.isfinite(pred["prediction"]).all()
    european = tmp_path / "mix_eu.csv"  # the same table as a German or French spreadsheet exports it
    frame.to_csv(european, sep=";", decimal=",", index=False)
    rc = main(["discovery", "mixture", "predict", "--model", str(tmp_path / "mix_model"), "--data", str(european),
               "--out", str(tmp_path / "pred_eu.csv")])
    assert rc == 0
    # ... and gets its predictions back the same way (`;`, decimal commas), so they open in that spreadsheet
    assert (tmp_path / "pred_eu.csv").read_text().splitlines()[0].count(";") == len(pred.columns) - 1
    np.testing.assert_allclose(pd.read_csv(tmp_path / "pred_eu.csv", sep=";", decimal=",")["prediction"],
                               pred["prediction"], rtol=1e-6)
    # a pure component's baseline is its own value
    pure = pred[pred["smiles_2"].isna()]
    np.testing.assert_allclose(pure["baseline_weighted_mean"], pure["value"])
