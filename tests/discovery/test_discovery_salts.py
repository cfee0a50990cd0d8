"""Counter-ions kept for properties of the salt itself (solubility): sodium and zinc salts of one acid stay two
substances through training, saving, prediction from a file, the screen and the page's path."""
import pandas as pd
import pytest

from vai.verticals.discovery.chem import Standardizer

ACIDS = ["CCCCCCCC(=O)O", "CCCCCCCCCC(=O)O", "CCCCCCCCCCCC(=O)O", "OC(=O)c1ccccc1", "OC(=O)c1ccc(C)cc1",
         "OC(=O)c1ccc(Cl)cc1", "OC(=O)CCc1ccccc1", "OC(=O)C=Cc1ccccc1", "OC(=O)c1ccccc1O", "CC(C)CC(=O)O",
         "OC(=O)C1CCCCC1", "CCCCCC(=O)O", "OC(=O)c1cccc(C)c1", "OC(=O)c1ccc(O)cc1", "OC(=O)Cc1ccccc1",
         "OC(=O)c1ccc(CC)cc1", "OC(=O)c1ccc(N)cc1", "OC(=O)c1ccc2ccccc2c1", "CCCCCCCCCCCCCC(=O)O",
         "OC(=O)CCCCc1ccccc1"]


def _salt(acid: str, metal: str) -> str:
    anion = acid.replace("C(=O)O", "C(=O)[O-]", 1) if acid.endswith("C(=O)O") else acid.replace("OC(=O)", "[O-]C(=O)", 1)
    return f"{anion}.[Na+]" if metal == "Na" else f"{anion}.{anion}.[Zn+2]"


def _salt_frame() -> pd.DataFrame:
    """Sodium salts soluble (logS 0), zinc salts insoluble (logS -4), minus chain length: the counter-ion decides."""
    rows = []
    for acid in ACIDS:
        n = acid.count("C") + acid.count("c")
        rows += [{"smiles": _salt(acid, "Na"), "logS": 0.0 - 0.1 * n}, {"smiles": _salt(acid, "Zn"), "logS": -4.0 - 0.1 * n}]
    return pd.DataFrame(rows)


def test_keep_salts_keeps_counter_ions_and_drops_water():
    keep, parent = Standardizer(keep_salts=True), Standardizer()
    na, zn = _salt("CCCCCCCC(=O)O", "Na"), _salt("CCCCCCCC(=O)O", "Zn")
    assert parent(na)[0] == parent(zn)[0] == "CCCCCCCC(=O)O"
    assert keep(na)[0] != keep(zn)[0] and "[Na+]" in keep(na)[0] and "[Zn+2]" in keep(zn)[0]
    assert keep(na + ".O.O")[0] == keep(na)[0] and keep("CCO")[0] == "CCO"


def test_a_model_that_keeps_salts_tells_the_sodium_salt_from_the_zinc_salt(tmp_path, capsys):
    from vai.cli import main
    from vai.verticals.discovery import PropertyPredictor, screen_library
    from vai.verticals.discovery.workflows import train_table

    frame = _salt_frame()
    train_table(frame, smiles_col="smiles", target_cols=["logS"], out=tmp_path / "salts", model="gbm",
                split="random", gbm_members=1, keep_salts=True)
    train_table(frame, smiles_col="smiles", target_cols=["logS"], out=tmp_path / "parent", model="gbm",
                split="random", gbm_members=1)
    new = pd.DataFrame({"smiles": [_salt("CCCCCCCCC(=O)O", "Na"), _salt("CCCCCCCCC(=O)O", "Zn"), "C1CC(("]})
    data = tmp_path / "new.csv"
    new.to_csv(data, index=False)
    # the CLI's predict: from the file's raw SMILES column
    assert main(["discovery", "predict", "--model", str(tmp_path / "salts"), "--data", str(data), "--smiles-col",
                 "smiles", "--out", str(tmp_path / "p.csv")]) == 0
    p = pd.read_csv(tmp_path / "p.csv")
    assert p["prediction"].iloc[0] - p["prediction"].iloc[1] > 2.0 and isinstance(p["error"].iloc[2], str)
    assert "[Zn+2]" in p["smiles_std"].iloc[1]
    loaded = PropertyPredictor.load(tmp_path / "parent")  # default rules: both salts are nonanoic acid
    q = loaded.predict(new, "smiles")
    assert q["prediction"].iloc[0] == pytest.approx(q["prediction"].iloc[1])
    # the screen: one chunk, both models, each by its own rules
    res = screen_library(data, tmp_path / "screen", models={"salt": str(tmp_path / "salts"), "parent": str(tmp_path / "parent")})
    r = pd.read_csv(res.ranked_path)
    assert r["salt"].iloc[0] - r["salt"].iloc[1] > 2.0 and r["parent"].iloc[0] == pytest.approx(r["parent"].iloc[1])
    # a frame standardised by default rules (as the page makes it) still predicts by the model's rules from input
    std = Standardizer()
    page_rows = pd.DataFrame([{"input": s, **dict(zip(("smiles_std", "error"), std(s)))} for s in new["smiles"]])
    page = PropertyPredictor.load(tmp_path / "salts").predict(page_rows, "input")
    assert page["prediction"].iloc[0] - page["prediction"].iloc[1] > 2.0


def test_train_cli_keep_salts_is_recorded_in_the_model(tmp_path):
    from vai.cli import main
    from vai.verticals.discovery import PropertyPredictor

    data = tmp_path / "salts.csv"
    _salt_frame().to_csv(data, index=False)
    assert main(["discovery", "train", "--data", str(data), "--smiles-col", "smiles", "--target-col", "logS",
                 "--split", "random", "--gbm-members", "1", "--keep-salts", "--out", str(tmp_path / "m")]) == 0
    model = PropertyPredictor.load(tmp_path / "m")
    assert model.keep_salts and any("[Zn+2]" in s for s in model.train_smiles)
