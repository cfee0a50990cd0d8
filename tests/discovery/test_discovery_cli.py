import json

import numpy as np
import pandas as pd
import pytest

from vai.cli import main
from vai.core.store import Store

from discovery_testlib import sample_frame


@pytest.fixture
def data_csv(tmp_path):
    f = sample_frame()[["name", "smiles", "logp_crippen", "logp_high"]].rename(columns={"smiles": "Structure"})
    f.loc[len(f)] = ["bad", "C1CC((", 1.0, 0]
    p = tmp_path / "train.csv"
    f.to_csv(p, index=False)
    return p


def test_train_predict_explain_via_cli(tmp_path, data_csv, capsys):
    model = tmp_path / "model"
    rc = main(["discovery", "train", "--data", str(data_csv), "--smiles-col", "Structure", "--target-col",
               "logp_crippen", "--model", "gbm", "--split", "random", "--seed", "1", "--gbm-members", "2",
               "--out", str(model)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"]["bad_molecules"] == 1 and out["test"]["logp_crippen"]["r2"] > 0.5
    preds = tmp_path / "preds.csv"
    rc = main(["discovery", "predict", "--model", str(model), "--data", str(data_csv), "--smiles-col", "Structure",
               "--out", str(preds)])
    assert rc == 0
    p = pd.read_csv(preds, keep_default_na=False)
    for col in ("name", "Structure", "logp_crippen", "prediction", "uncertainty", "interval_low", "interval_high",
                "in_domain", "error"):
        assert col in p.columns
    assert len(p) == len(pd.read_csv(data_csv)) and p["error"].iloc[-1] != "" and p["error"].iloc[0] == ""
    # as an SD file: one record per row, in order, predictions as tags; the unreadable row an empty record
    sdf = tmp_path / "preds.sdf"
    assert main(["discovery", "predict", "--model", str(model), "--data", str(data_csv), "--smiles-col", "Structure",
                 "--out", str(sdf)]) == 0
    from rdkit import Chem

    records = list(Chem.SDMolSupplier(str(sdf)))
    assert len(records) == len(p) and records[-1].GetNumAtoms() == 0 and records[-1].GetProp("error") != ""
    first = records[0]
    assert first.GetNumAtoms() > 0 and first.GetProp("_Name") == str(p["name"].iloc[0])
    assert float(first.GetProp("prediction")) == pytest.approx(float(p["prediction"].iloc[0]))
    assert not first.HasProp("error")  # blank values are left out
    back = pd.read_csv(tmp_path / "preds.csv")  # and read back by our own reader, predictions beside the structures
    from vai.verticals.discovery.chem import read_table

    again, col = read_table(sdf)
    assert len(again) == len(back) and again["prediction"].iloc[0] == pytest.approx(back["prediction"].iloc[0])
    # gzipped (`.sdf.gz`, as compound vendors ship libraries): the same records, compressed
    assert main(["discovery", "predict", "--model", str(model), "--data", str(data_csv), "--smiles-col", "Structure",
                 "--out", str(tmp_path / "preds.sdf.gz")]) == 0
    with open(tmp_path / "preds.sdf.gz", "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # gzip's magic number
    packed, _ = read_table(tmp_path / "preds.sdf.gz")
    assert packed.drop(columns="sdf_record").equals(again.drop(columns="sdf_record"))
    rc = main(["discovery", "explain", "--model", str(model), "--smiles", "OCCOc1ccccc1", "C1CC((", "--format", "svg",
               "--out", str(tmp_path / "explain")])
    assert rc == 0 and (tmp_path / "explain" / "mol_0000.svg").exists()
    runs = Store().runs(vertical="discovery")
    assert set(runs["command"]) == {"train", "predict", "explain"}
    assert (runs.loc[runs["command"] == "predict", "status"] == "partial").all()  # the bad row, in both runs


def test_classification_via_cli(tmp_path, data_csv):
    rc = main(["discovery", "train", "--data", str(data_csv), "--target-col", "logp_high", "--smiles-col", "Structure",
               "--task", "classification", "--split", "random", "--gbm-members", "1", "--out", str(tmp_path / "c")])
    assert rc == 0
    rc = main(["discovery", "predict", "--model", str(tmp_path / "c"), "--data", str(data_csv), "--out",
               str(tmp_path / "p.csv"), "--smiles-col", "Structure"])
    p = pd.read_csv(tmp_path / "p.csv")
    assert rc == 0 and "prob" in p.columns


def test_multi_task_explain_names_its_target(tmp_path, data_csv, capsys):
    model = tmp_path / "two"
    assert main(["discovery", "train", "--data", str(data_csv), "--smiles-col", "Structure", "--target-col",
                 "logp_crippen,logp_high", "--split", "random", "--gbm-members", "1", "--out", str(model)]) == 0
    weights = {}
    for target in ("logp_crippen", "logp_high"):
        assert main(["discovery", "explain", "--model", str(model), "--smiles", "CCCCCCCCc1ccc(O)cc1", "--target",
                     target, "--out", str(tmp_path / target)]) == 0
        row = pd.read_csv(tmp_path / target / "explanations.csv").iloc[0]
        assert row["target"] == target
        weights[target] = json.loads(row["atom_weights"])
    assert weights["logp_crippen"] != weights["logp_high"]  # each target's own trees
    capsys.readouterr()
    assert main(["discovery", "explain", "--model", str(model), "--smiles", "CCO", "--target", "logS",
                 "--out", str(tmp_path / "x")]) == 2
    assert "predicts logp_crippen, logp_high; name one of them" in capsys.readouterr().err


def test_user_errors_print_one_line(tmp_path, data_csv, capsys):
    rc = main(["discovery", "train", "--data", str(tmp_path / "missing.csv"), "--target-col", "y", "--out", "x"])
    assert rc == 2 and "missing.csv: file not found" in capsys.readouterr().err
    rc = main(["discovery", "train", "--data", str(data_csv), "--target-col", "nope", "--smiles-col", "Structure",
               "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == 2 and "no target column 'nope'" in err and "Traceback" not in err
    rc = main(["discovery", "predict", "--model", str(tmp_path), "--data", str(data_csv), "--out", "p.csv"])
    assert rc == 2


def test_screen_via_cli(tmp_path, data_csv, capsys):
    model = tmp_path / "m"
    assert main(["discovery", "train", "--data", str(data_csv), "--smiles-col", "Structure", "--target-col",
                 "logp_crippen", "--split", "random", "--gbm-members", "1", "--out", str(model)]) == 0
    rc = main(["discovery", "screen", "--library", str(data_csv), "--smiles-col", "Structure", "--model",
               f"logp={model}", "--constraint", "logp>3", "--out", str(tmp_path / "screen")])
    assert rc == 0
    ranked = pd.read_csv(tmp_path / "screen" / "ranked.csv")
    assert len(ranked) and (ranked["logp"] > 3).all() and "pareto" in ranked
    from rdkit import Chem

    hits = list(Chem.SDMolSupplier(str(tmp_path / "screen" / "ranked.sdf")))  # the same hits, with structures
    assert [Chem.MolToSmiles(m) for m in hits] == ranked["smiles_std"].tolist()
    assert [float(m.GetProp("logp")) for m in hits] == pytest.approx(ranked["logp"].tolist())
    # a re-run that finds nothing leaves no stale hits behind
    assert main(["discovery", "screen", "--library", str(data_csv), "--smiles-col", "Structure", "--model",
                 f"logp={model}", "--constraint", "logp>1000", "--out", str(tmp_path / "screen")]) == 0
    assert not (tmp_path / "screen" / "ranked.sdf").exists() and not (tmp_path / "screen" / "ranked.xlsx").exists()
    # a library from a European-locale spreadsheet: `;` and decimal commas in, the same out; and a workbook
    euro = tmp_path / "library.csv"
    pd.read_csv(data_csv).to_csv(euro, sep=";", decimal=",", index=False, encoding="utf-8-sig")
    assert main(["discovery", "screen", "--library", str(euro), "--smiles-col", "Structure", "--model",
                 f"logp={model}", "--constraint", "logp>3", "--out", str(tmp_path / "euro")]) == 0
    text = (tmp_path / "euro" / "ranked.csv").read_bytes()
    assert text.startswith(b"\xef\xbb\xbf") and b";" in text.splitlines()[0]
    again = pd.read_csv(tmp_path / "euro" / "ranked.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert again["logp"].tolist() == pytest.approx(ranked["logp"].tolist())
    book = pd.read_excel(tmp_path / "euro" / "ranked.xlsx")
    assert book["smiles_std"].tolist() == ranked["smiles_std"].tolist()
    assert book["logp"].tolist() == pytest.approx(ranked["logp"].tolist())


def test_demo_runs_end_to_end(tmp_path):
    from vai.verticals.discovery.demo import run_demo

    summary = run_demo(tmp_path / "demo")
    assert summary["rows_with_error"] == 1 and summary["screened"] == summary["molecules"]
    assert summary["synthetic_test_r2"] > 0.7
    assert len(Store().runs(vertical="discovery")) >= 5

def test_sdk_explain_takes_the_target_by_name(tmp_path, data_csv):
    from vai.core.errors import VaiError
    from vai.verticals.discovery import PropertyPredictor

    model = tmp_path / "two"
    assert main(["discovery", "train", "--data", str(data_csv), "--smiles-col", "Structure", "--target-col",
                 "logp_crippen,logp_high", "--split", "random", "--gbm-members", "1", "--out", str(model)]) == 0
    p = PropertyPredictor.load(model)
    by_name = p.explain("CCCCCCCCc1ccc(O)cc1", target="logp_high")
    assert by_name["target"] == "logp_high"
    assert by_name["atom_weights"] == p.explain("CCCCCCCCc1ccc(O)cc1", task_index=1)["atom_weights"]
    assert by_name["atom_weights"] != p.explain("CCCCCCCCc1ccc(O)cc1")["atom_weights"]  # default: the first target
    with pytest.raises(VaiError, match="predicts logp_crippen, logp_high"):
        p.explain("CCO", target="logS")
    with pytest.raises(VaiError, match="disagree"):
        p.explain("CCO", target="logp_high", task_index=0)


def test_targets_with_nothing_to_learn_are_refused(tmp_path, capsys):
    f = sample_frame()
    one = tmp_path / "one.csv"
    f.assign(label=0)[["smiles", "label"]].to_csv(one, index=False)
    rc = main(["discovery", "train", "--data", str(one), "--target-col", "label", "--task", "classification", "--split", "random",
               "--model", "gbm", "--gbm-members", "1", "--out", str(tmp_path / "m1")])
    assert rc == 2 and "only one class" in capsys.readouterr().err
    const = tmp_path / "const.csv"
    f.assign(y=1.5)[["smiles", "y"]].to_csv(const, index=False)
    rc = main(["discovery", "train", "--data", str(const), "--target-col", "y", "--model", "gbm", "--split", "random",
               "--gbm-members", "1", "--out", str(tmp_path / "m2")])
    assert rc == 2 and "constant" in capsys.readouterr().err


def test_explain_counts_what_it_explained_and_fails_when_nothing_was(tmp_path, data_csv, capsys):
    model = tmp_path / "model"
    assert main(["discovery", "train", "--data", str(data_csv), "--smiles-col", "Structure", "--target-col",
                 "logp_crippen", "--model", "gbm", "--split", "random", "--gbm-members", "1", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["discovery", "explain", "--model", str(model), "--smiles", "CCO", "C1CC((",
                 "--out", str(tmp_path / "e1")]) == 0
    assert "explained 1 of 2" in capsys.readouterr().out
    assert main(["discovery", "explain", "--model", str(model), "--smiles", "XYZ", "--out", str(tmp_path / "e2")]) == 1


def test_a_target_pasted_twice_is_refused_naming_it(tmp_path, capsys):
    p = tmp_path / "twice.csv"
    p.write_text("smiles,logS,logS,note,note\n" + "".join(f"{'C' * (i + 1)}O,{i},{-i},a,b\n" for i in range(12)))
    rc = main(["discovery", "train", "--data", str(p), "--smiles-col", "smiles", "--target-col", "logS",
               "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == 2 and "'logS' appear more than once" in err and "note" not in err
    assert not (tmp_path / "m").exists()


def test_train_and_predict_straight_from_an_excel_workbook(tmp_path, capsys):
    f = sample_frame()[["name", "smiles", "logp_crippen"]]
    book = tmp_path / "ingredients.xlsx"
    f.to_excel(book, index=False, sheet_name="measured")
    model = tmp_path / "m"
    assert main(["discovery", "train", "--data", str(book), "--target-col", "logp_crippen", "--split", "random",
                 "--gbm-members", "1", "--out", str(model)]) == 0
    assert json.loads(capsys.readouterr().out)["test"]["logp_crippen"]["r2"] > 0.5
    preds = tmp_path / "p.csv"
    assert main(["discovery", "predict", "--model", str(model), "--data", str(book), "--out", str(preds)]) == 0
    p = pd.read_csv(preds, keep_default_na=False)
    assert p["name"].tolist() == f["name"].tolist() and (p["error"] == "").all()
    # and back into a workbook, with the same rows and numbers
    book_out = tmp_path / "p.xlsx"
    assert main(["discovery", "predict", "--model", str(model), "--data", str(book), "--out", str(book_out)]) == 0
    from vai.core.tables import read_user_table

    again = read_user_table(book_out)
    assert again["name"].tolist() == f["name"].tolist()
    np.testing.assert_allclose(again["prediction"], p["prediction"], rtol=1e-6)


def test_train_on_top_of_a_base_model_via_cli(tmp_path, data_csv, capsys):
    common = ["--data", str(data_csv), "--smiles-col", "Structure", "--split", "random", "--gbm-members", "1"]
    assert main(["discovery", "train", *common, "--target-col", "logp_crippen", "--out", str(tmp_path / "base")]) == 0
    assert main(["discovery", "train", *common, "--target-col", "logp_crippen", "--base-model", str(tmp_path / "base"),
                 "--out", str(tmp_path / "m")]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["base_model"] == "base_model" and (tmp_path / "m" / "base_model" / "config.json").is_file()
    capsys.readouterr()
    assert main(["discovery", "train", *common, "--target-col", "logp_crippen", "--base-model", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "m2")]) == 2
    assert "nope" in capsys.readouterr().err
