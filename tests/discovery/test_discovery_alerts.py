"""Skin-sensitisation structural alerts: known sensitisers raise their mechanism's alert, inert molecules none,
and a model trained with alerts names them in its predictions, keeps them through save/load and draws them."""
import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from vai.core.errors import VaiError
from vai.verticals.discovery.alerts import ALERTS, _patterns, alert_matrix, alerts_for

KNOWN = {  # textbook sensitisers (Aptula & Roberts 2006; cosmetic allergens) -> the alert each must raise
    "O=CC=Cc1ccccc1": "alpha,beta-unsaturated aldehyde",           # cinnamaldehyde
    "CN1SC=CC1=O": "isothiazolinone",                               # methylisothiazolinone (preservative)
    "Clc1ccc(cc1[N+](=O)[O-])[N+](=O)[O-]": "halo-nitroarene (ortho/para)",  # DNCB
    "Nc1ccc(N)cc1": "para-phenylenediamine / para-aminophenol",     # PPD (hair dye)
    "Oc1ccc(O)cc1": "hydroquinone",
    "O=CCCCC=O": "aldehyde",                                        # glutaraldehyde
    "C=CC(=O)OCC": "acrylate / alpha,beta-unsaturated ester",       # ethyl acrylate
    "BrCc1ccccc1": "benzylic or allylic halide",
    "C=O": "formaldehyde",
    "CC1=CCC(CC1=O)C(C)=C": "alpha,beta-unsaturated ketone",        # carvone
    "CC(C)(OO)c1ccccc1": "hydroperoxide",                           # cumene hydroperoxide
    "CN(C)C(=S)SSC(=S)N(C)C": "disulfide",                          # thiram (rubber accelerator)
    "C1CO1": "epoxide",
}
INERT = ["CCO", "OCC(O)CO", "OC(=O)c1ccccc1", "c1ccccc1", "ClC(Cl)Cl", "ClCCl", "CC(=O)Nc1ccc(O)cc1",
         "CCCCCCCCCCCCCCCC(=O)O"]


def test_every_alert_parses_and_names_are_unique():
    assert len(_patterns()) == len(ALERTS) and len({a.name for a in ALERTS}) == len(ALERTS)


@pytest.mark.parametrize("smiles,alert", KNOWN.items())
def test_known_sensitisers_raise_their_alert(smiles, alert):
    assert alert in {a.name for a in alerts_for(Chem.MolFromSmiles(smiles))}


def test_inert_molecules_raise_none_and_bad_molecules_give_zero_rows():
    m = alert_matrix([Chem.MolFromSmiles(s) for s in INERT] + [None])
    assert m.shape == (len(INERT) + 1, len(ALERTS)) and m.sum() == 0


def _aldehyde_frame() -> pd.DataFrame:
    """Aldehydes (label 1) and the matching alcohols and alkanes (label 0) over chain lengths and branches."""
    rows = []
    for n in range(2, 14):
        for branch in ("", "C(C)"):
            chain = "C" * (n - 1) + branch
            rows += [{"smiles": chain + "C=O", "label": 1}, {"smiles": chain + "CO", "label": 0},
                     {"smiles": chain + "CC", "label": 0}, {"smiles": "c1ccccc1" + chain + "C=O", "label": 1},
                     {"smiles": "c1ccccc1" + chain + "CO", "label": 0}]
    return pd.DataFrame(rows).drop_duplicates("smiles").reset_index(drop=True)


def test_a_model_trained_with_alerts_names_them_keeps_them_and_draws_them(tmp_path, monkeypatch):
    from vai.verticals.discovery import PropertyPredictor
    from vai.verticals.discovery.workflows import train_table

    model, _ = train_table(_aldehyde_frame(), smiles_col="smiles", target_cols=["label"], task="classification",
                           out=tmp_path / "m", model="gbm", split="random", gbm_members=1, alerts=True)
    loaded = PropertyPredictor.load(tmp_path / "m")
    assert loaded.alerts
    pred = loaded.predict(pd.DataFrame({"smiles": ["CCCCCCC=O", "CCCCCCCO", "C1CC(("]}), "smiles")
    assert pred["alerts"].iloc[0] == "aldehyde [Schiff base former]" and pred["alerts"].iloc[1] == ""
    assert pred["prob"].iloc[0] > pred["prob"].iloc[1] and pred["error"].iloc[2] != ""
    assert loaded.explain("CCCCCCC=O")["alerts"] == "aldehyde [Schiff base former]"
    w = np.asarray(loaded.explain("CCCCCCC=O")["atom_weights"])
    assert w[-2:].sum() > 0 and abs(w[-2:]).sum() > abs(w[:3]).sum()  # the aldehyde C=O carries the evidence
    monkeypatch.setattr("vai.verticals.discovery.models._alert_names", lambda: ["another list"])
    with pytest.raises(VaiError, match="different list of structural alerts"):
        PropertyPredictor.load(tmp_path / "m")


def test_screening_with_models_alone_lists_every_molecule_with_its_alerts(tmp_path):
    from vai.verticals.discovery import screen_library
    from vai.verticals.discovery.workflows import train_table

    train_table(_aldehyde_frame(), smiles_col="smiles", target_cols=["label"], task="classification",
                out=tmp_path / "m", model="gbm", split="random", gbm_members=1, alerts=True)
    lib = tmp_path / "lib.csv"
    pd.DataFrame({"smiles": ["CCCCC=O", "CCCCCO", "not a smiles"]}).to_csv(lib, index=False)
    res = screen_library(lib, tmp_path / "out", models={"sens": str(tmp_path / "m")})
    ranked = pd.read_csv(res.ranked_path, keep_default_na=False)
    # models without constraints or a query: every molecule's predictions, in library order, bad rows kept
    assert ranked["smiles"].tolist() == ["CCCCC=O", "CCCCCO", "not a smiles"] and ranked["error"].iloc[2] != ""
    by = ranked.set_index("smiles")
    assert by.loc["CCCCC=O", "sens_alerts"] == "aldehyde [Schiff base former]" and by.loc["CCCCCO", "sens_alerts"] == ""
