"""Rules found in acceptance review: damaged model files are named, a bad similarity query fails before
screening, input columns are never overwritten, and mixture tables with stray ingredient columns are refused."""
import json

import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.verticals.discovery.chem import standardize_frame
from vai.verticals.discovery.mixtures import mixture_columns, parse_mixtures


def test_input_columns_named_like_outputs_are_kept_not_overwritten():
    frame = pd.DataFrame({"smiles": ["CCO", "c1ccccc1"], "error": ["prev note", ""], "prediction": ["old", "old"]})
    out = standardize_frame(frame, "smiles")
    assert out["input_error"].tolist() == ["prev note", ""] and out["input_prediction"].tolist() == ["old", "old"]
    assert out["error"].tolist() == ["", ""]


def test_mixture_table_with_a_stray_ingredient_column_is_refused():
    frame = pd.DataFrame({"SMILES_A": ["CCO"], "w_A": [0.5], "smiles_2": ["O"], "frac_2": [0.5]})
    with pytest.raises(VaiError, match="SMILES_A, w_A look like ingredients"):
        mixture_columns(frame)
    ok = pd.DataFrame({"smiles_1": ["CCO", "CCO"], "frac_1": [-0.2, "abc"], "smiles_2": ["O", "O"],
                       "frac_2": [0.5, 0.5], "value": [1.0, 2.0]})
    _, errors = parse_mixtures(ok)
    assert "negative fraction in frac_1 (-0.2)" in errors[0] and "no valid fraction in frac_1 ('abc')" in errors[1]


def test_damaged_model_files_are_named(tmp_path, capfd):
    from vai.verticals.discovery.models import PropertyPredictor
    from vai.verticals.discovery.sample_data import sample_molecules

    frame = sample_molecules()
    smiles = frame["smiles"].tolist()[:60]
    y = [len(s) for s in smiles]
    p = PropertyPredictor("gbm", gbm_members=1)
    p.fit(smiles, y, train_idx=list(range(40)), val_idx=list(range(40, 50)))
    p.save(tmp_path / "m")
    (tmp_path / "m" / "train_smiles.json").write_text(json.dumps({}))
    with pytest.raises(VaiError, match="train_smiles.json: expected the list of training SMILES"):
        PropertyPredictor.load(tmp_path / "m")
    (tmp_path / "m" / "train_smiles.json").write_text(json.dumps(smiles[:40]))
    (tmp_path / "m" / "gbm_0_task0.txt").write_text("garbage")
    capfd.readouterr()
    with pytest.raises(VaiError, match="gbm_0_task0.txt: not a readable LightGBM model"):
        PropertyPredictor.load(tmp_path / "m")
    assert "[LightGBM]" not in capfd.readouterr().err  # our message only, not the library's raw line too


def test_fraction_sums_far_from_one_are_reported_and_percent_tables_understood(caplog):
    from vai.verticals.discovery.mixtures import off_sum_rows, warn_off_sums

    frame = pd.DataFrame({"smiles_1": ["CCO"] * 4, "frac_1": [0.5, 0.333, 0.3, 1.2],
                          "smiles_2": ["O"] * 4, "frac_2": [0.5, 0.667, 0.3, 0.5]})
    totals: list = []
    mixes, _ = parse_mixtures(frame, totals)
    assert mixes[2] == [("CCO", 0.5), ("O", 0.5)]  # still renormalised
    off, scale = off_sum_rows(totals)
    assert scale == 1 and off == [(3, 0.6), (4, 1.7)]
    assert warn_off_sums(totals) == 2
    assert "row 3 sums to 0.6" in caplog.text and "water q.s." in caplog.text
    percent = [100.0, 99.5, 100.4, 60.0]  # a table in percent: only the 60% recipe is off
    assert off_sum_rows(percent) == ([(4, 60.0)], 100.0)


def test_an_unparsable_similarity_query_fails_before_screening(tmp_path):
    from vai.verticals.discovery.screen import screen_library

    lib = tmp_path / "lib.csv"
    lib.write_text("smiles\nCCO\nc1ccccc1\n")
    with pytest.raises(VaiError, match="--similar-to 'xyz': RDKit cannot parse"):
        screen_library(lib, similar_to=["xyz"], out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "ranked.csv").exists()


def test_text_class_labels_get_a_classification_message(tmp_path):
    from vai.verticals.discovery.workflows import train_table

    frame = pd.DataFrame({"smiles": ["CCO", "CCC", "CCCC", "c1ccccc1"] * 5, "label": ["yes", "no", "yes", "no"] * 5})
    with pytest.raises(VaiError, match=r"classification labels in 'label' must be class numbers.*'no', 'yes'"):
        train_table(frame, smiles_col="smiles", target_cols=["label"], out=None, task="classification")
