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


def test_a_truncated_lightgbm_model_is_refused_instead_of_aborting_the_process(tmp_path):
    """LightGBM 4 parses the trees of a model text in parallel at its tree_sizes offsets; a file cut short (an
    interrupted copy) killed the process there ("terminate called without an active exception", no message of
    ours, the raw lines muted). Checked in a child process, which the abort would kill, not this one."""
    import subprocess
    import sys

    from vai.verticals.discovery.models import PropertyPredictor, lightgbm_text_problem
    from vai.verticals.discovery.sample_data import sample_molecules

    smiles = sample_molecules()["smiles"].tolist()[:60]
    p = PropertyPredictor("gbm", gbm_members=1)
    p.fit(smiles, [len(s) for s in smiles], train_idx=list(range(40)), val_idx=list(range(40, 50)))
    p.save(tmp_path / "m")
    model_file = tmp_path / "m" / "gbm_0_task0.txt"
    text = model_file.read_text()
    assert lightgbm_text_problem(text) is None and "tree_sizes=" in text  # a whole model passes
    assert lightgbm_text_problem(text.replace("\n", "\r\n")) is not None  # shifted offsets (CRLF copy)
    assert text.count("\nTree=") >= 4
    cut = text.index("\nTree=", text.index("\nTree=") + 1) + 60  # inside the trees (the header is long: features)
    model_file.write_text(text[:cut])
    data = tmp_path / "in.csv"
    pd.DataFrame({"smiles": smiles[:3]}).to_csv(data, index=False)
    code = ("import sys; from vai.cli import main; sys.exit(main(['discovery', 'predict', '--model', sys.argv[1], "
            "'--data', sys.argv[2], '--out', sys.argv[3]]))")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m"), str(data), str(tmp_path / "out.csv")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])  # our error, not SIGABRT (-6)
    assert "gbm_0_task0.txt: not a readable LightGBM model" in res.stderr and "truncated" in res.stderr
    assert "[LightGBM]" not in res.stderr and "terminate called" not in res.stderr


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


def test_a_percent_row_in_a_table_of_fractions_is_named_as_percent_not_as_a_missing_ingredient(caplog):
    from vai.verticals.discovery.mixtures import warn_off_sums

    totals = [1.0, 0.999, 100.0, 0.6, 60.0, 1.01]
    assert warn_off_sums(totals) == 3  # rows 3, 4 and 5 are off the table's scale and counted
    text = caplog.text
    assert "1 formulation row(s) look like percentages in a table of fractions: divided by 100 (row 3 sums to 100)" \
        in text
    assert "2 formulation row(s) whose fractions do not add up to 1 (row 4 sums to 0.6, row 5 sums to 60 " \
        "(percentages?))" in text and "water q.s." in text
    caplog.clear()
    assert warn_off_sums([100.0, 99.9, 1.0, 100.2]) == 1  # a table in percent with one row in fractions
    assert "look like fractions in a table in percent: multiplied by 100 (row 3 sums to 1)" in caplog.text
    assert "water q.s." not in caplog.text


def test_mixture_fit_counts_off_sum_rows_in_its_metrics(caplog):
    from vai.verticals.discovery.mixtures import MixtureModel, synthetic_mixtures

    frame = synthetic_mixtures(n=40, seed=2)
    fracs = [c for c in frame.columns if c.startswith("frac_")]
    frame.loc[2, fracs] = frame.loc[2, fracs] * 0.6  # a recipe missing 40% (its balance ingredient)
    frame.loc[4, fracs] = frame.loc[4, fracs] * 100  # one recipe typed in percent
    metrics = MixtureModel(epochs=1).fit(frame, "value")
    assert metrics["fraction_sum_off_rows"] == 2 and metrics["skipped_rows"] == 0
    assert "row 3 sums to 0.6" in caplog.text and "divided by 100 (row 5 sums to 100)" in caplog.text


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
