import numpy as np
import pandas as pd
import pytest

from vai.verticals.discovery.models import PropertyPredictor
from vai.verticals.discovery.splits import make_split
from vai.verticals.discovery.workflows import train_table

from discovery_testlib import TINY_MPNN, sample_frame


@pytest.fixture(scope="module")
def frame():
    return sample_frame()


def test_gbm_learns_heavy_atom_count_within_its_training_range(frame, tmp_path):
    pred, metrics = train_table(frame, smiles_col="smiles", target_cols=["heavy_atoms"], out=tmp_path / "m",
                                model="gbm", split="random", seed=0)
    tr, va, te = make_split("random", frame["smiles"].tolist(), (0.8, 0.1, 0.1), seed=0)  # the split it used
    y = frame["heavy_atoms"].to_numpy()
    held = frame.iloc[[i for i in te if y[tr].min() <= y[i] <= y[tr].max()]]
    out = pred.predict(held, "smiles")
    # trees cannot extrapolate beyond the training range; inside it they are close to exact
    assert np.mean(np.abs(out["prediction"].to_numpy() - held["heavy_atoms"].to_numpy())) < 0.5


def test_mpnn_learns_heavy_atom_count_to_near_zero_error(frame):
    pred, metrics = train_table(frame, smiles_col="smiles", target_cols=["heavy_atoms"], out=None, model="mpnn",
                                split="random", seed=0, use_descriptors=False, epochs=30, hidden=64, patience=30,
                                batch_size=16, lr=3e-3)
    m = metrics["test"]["heavy_atoms"]
    assert m["mae"] < 0.5 and m["r2"] > 0.99, m


@pytest.mark.parametrize("kind", ["gbm", "mpnn", "ensemble", "gp"])
def test_round_trip_through_model_directory(frame, tmp_path, kind):
    kwargs = TINY_MPNN if kind in ("mpnn", "ensemble") else {}
    pred, metrics = train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp_path / "m",
                                model=kind, split="cluster" if kind == "gbm" else "random", seed=0,
                                sizes=(0.6, 0.2, 0.2), **kwargs)
    assert (tmp_path / "m" / "config.json").exists() and not list((tmp_path / "m").glob("*.pkl"))
    loaded = PropertyPredictor.load(tmp_path / "m")
    query = frame[["smiles"]].head(12).copy()
    query.loc[len(query)] = ["not a smiles"]
    a = pred.predict(query, "smiles")
    b = loaded.predict(query, "smiles")
    for col in ("prediction", "uncertainty", "interval_low", "interval_high"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-5, atol=1e-5)
    assert list(b.columns[:1]) == ["smiles"] and b.columns[-1] == "error"
    assert b["error"].iloc[-1] != "" and np.isnan(b["prediction"].iloc[-1]) and not b["in_domain"].iloc[-1]
    assert (b["interval_low"].iloc[:-1] <= b["prediction"].iloc[:-1]).all()
    assert (b["interval_high"].iloc[:-1] >= b["prediction"].iloc[:-1]).all()
    # a 4-epoch, 32-wide D-MPNN only has to beat the mean; the others must be good
    assert metrics["test"]["logp_crippen"]["r2"] > (0.5 if kind != "mpnn" else 0.0)


def test_binary_classification_and_prediction_sets(frame, tmp_path):
    pred, metrics = train_table(frame, smiles_col="smiles", target_cols=["logp_high"], out=tmp_path / "c",
                                task="classification", model="gbm", split="random", seed=0)
    assert pred.task == "binary"
    assert metrics["test"]["logp_high"]["roc_auc"] > 0.85
    out = PropertyPredictor.load(tmp_path / "c").predict(frame.head(5), "smiles")
    assert out["prob"].between(0, 1).all() and set(out["prediction"]) <= {0, 1}
    assert out["prediction_set"].str.match(r"^\{[01,]*\}$").all()


def test_multiclass(frame):
    y = pd.cut(frame["logp_crippen"], [-10, 1, 3, 20], labels=False)
    f = frame.assign(logp_class=y)
    pred, metrics = train_table(f, smiles_col="smiles", target_cols=["logp_class"], out=None,
                                task="classification", model="gbm", split="random", seed=0, gbm_members=1)
    assert pred.task == "multiclass" and pred.n_classes == 3
    assert metrics["test"]["logp_class"]["accuracy"] > 0.6
    out = pred.predict(f.head(4), "smiles")
    np.testing.assert_allclose(out[["prob_0", "prob_1", "prob_2"]].sum(axis=1), 1.0, atol=1e-6)


def test_balanced_multiclass_weights_every_class_alike_and_raises_the_rare_class(frame):
    """Class weighting for an imbalanced potency-style target: each class carries the same total weight, and
    the rare top class (a noisy top decile) gets more probability and at least as many hits once balanced."""
    rng = np.random.default_rng(0)
    heavy = frame["heavy_atoms"].to_numpy()
    y = np.where(frame["logp_crippen"] > frame["logp_crippen"].quantile(0.3), 1, 0)
    y = np.where((heavy >= np.quantile(heavy, 0.9)) & (rng.random(len(y)) > 0.3), 2, y)
    p = PropertyPredictor("gbm", "classification", targets=["potency"], balanced=True)
    p._resolve_task(y[:, None].astype(float))
    w = p._class_weights(y.astype(float))
    assert np.allclose([w[y == k].sum() for k in range(3)], len(y) / 3)
    f = frame.assign(potency=y)
    prob, hits = {}, {}
    for balanced in (False, True):
        model, metrics = train_table(f, smiles_col="smiles", target_cols=["potency"], task="classification",
                                     out=None, model="gbm", split="random", seed=0, gbm_members=1, balanced=balanced)
        assert {"macro_f1", "balanced_accuracy"} <= set(metrics["test"]["potency"])
        pred = model.predict(f, "smiles")
        prob[balanced] = pred["prob_2"].mean()
        hits[balanced] = int((pred["prediction"].to_numpy()[y == 2] == 2).sum())
    assert prob[True] > prob[False] and hits[True] >= hits[False]


@pytest.mark.parametrize("kind", ["gbm", "mpnn", "gp"])
def test_multitask_with_missing_labels(frame, kind):
    f = frame.copy()
    rng = np.random.default_rng(0)
    f.loc[rng.random(len(f)) < 0.3, "logp_crippen"] = np.nan
    f.loc[rng.random(len(f)) < 0.3, "heavy_atoms"] = np.nan
    kwargs = TINY_MPNN if kind == "mpnn" else {"gbm_members": 1} if kind == "gbm" else {}
    pred, metrics = train_table(f, smiles_col="smiles", target_cols=["logp_crippen", "heavy_atoms"], out=None,
                                model=kind, split="random", seed=0, **kwargs)
    out = pred.predict(f.head(3), "smiles")
    assert {"prediction_logp_crippen", "prediction_heavy_atoms", "interval_low_heavy_atoms"} <= set(out.columns)
    assert set(metrics["test"]) == {"logp_crippen", "heavy_atoms"}
    assert np.isfinite(out["prediction_heavy_atoms"]).all()


def test_conformal_coverage_on_held_out_data():
    """The calibration step alone, on many draws: 90% intervals cover about 90% of fresh points."""
    p = PropertyPredictor("gbm", targets=["y"], alpha=0.1)
    rng = np.random.default_rng(0)
    coverages = []
    for _ in range(20):
        sd_cal = rng.uniform(0.2, 2.0, 300)
        y_cal = rng.normal(0, sd_cal)
        p._calibrate({"mean": np.zeros((300, 1)), "std": sd_cal[:, None]}, y_cal[:, None])
        c = p.conformal["tasks"][0]
        sd = rng.uniform(0.2, 2.0, 2000)
        y = rng.normal(0, sd)
        coverages.append(np.mean(np.abs(y) <= c["q"] * (sd + c["beta"])))
    assert 0.88 <= np.mean(coverages) <= 0.93, np.mean(coverages)


def test_interval_coverage_end_to_end(frame):
    tr, va, te = make_split("random", frame["smiles"].tolist(), (0.5, 0.25, 0.25), seed=3)
    p = PropertyPredictor("gbm", targets=["logp_crippen"], alpha=0.1)
    m = p.fit(frame["smiles"].tolist(), frame["logp_crippen"].to_numpy(), train_idx=tr, val_idx=va, test_idx=te)
    assert m["test"]["logp_crippen"]["interval_coverage"] >= 0.75


def test_applicability_domain(frame, tmp_path):
    pred, _ = train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=None, model="gbm",
                          split="random", seed=0, gbm_members=1)
    q = pd.DataFrame({"smiles": [frame["smiles"][0], "FC(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)F"]})
    out = pred.predict(q, "smiles")
    assert out["max_similarity"][0] == pytest.approx(1.0)
    assert out["in_domain"].tolist() == [True, False]


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_explanations_point_at_the_responsible_atoms(frame, tmp_path, fmt):
    """Target = number of chlorine atoms plus noise-free logP-free offset: the GBM's atom weights must
    put the chlorines on top."""
    from rdkit import Chem

    f = frame.copy()
    f["n_cl"] = [sum(a.GetSymbol() == "Cl" for a in Chem.MolFromSmiles(s).GetAtoms()) for s in f["smiles"]]
    pred, _ = train_table(f, smiles_col="smiles", target_cols=["n_cl"], out=None, model="gbm", split="random",
                          seed=0, use_descriptors=False, gbm_members=1)
    smi = "Oc1cc(Cl)ccc1Oc1ccc(Cl)cc1Cl"
    res = pred.explain(smi, tmp_path / f"x.{fmt}")
    w = np.asarray(res["atom_weights"])
    mol = Chem.MolFromSmiles(smi)
    cl = [a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "Cl"]
    assert len(w) == mol.GetNumAtoms()
    assert set(np.argsort(-w)[:3]) == set(cl), w
    data = (tmp_path / f"x.{fmt}").read_bytes()
    assert data[:4] == b"\x89PNG" if fmt == "png" else b"<svg" in data[:200]


def test_gp_explanation_by_occlusion_finds_the_chlorine_and_saves_with_the_model(frame, tmp_path):
    """The same chlorine-count target for the Gaussian process (fingerprint occlusion, not trees or gradients), on
    molecules it was not trained on: a GP reproduces a noise-free training label whatever is occluded."""
    from rdkit import Chem

    from vai.verticals.discovery import PropertyPredictor

    f = frame.copy()
    f["n_cl"] = [sum(a.GetSymbol() == "Cl" for a in Chem.MolFromSmiles(s).GetAtoms()) for s in f["smiles"]]
    pred, _ = train_table(f, smiles_col="smiles", target_cols=["n_cl"], out=tmp_path / "gp", model="gp",
                          split="random", seed=0, use_descriptors=False)
    for smi in ("OCCc1ccc(Cl)cc1", "CC(=O)Nc1ccc(Cl)cc1", "CCOC(=O)c1ccc(Cl)cc1", "OC(=O)CCl"):
        assert smi not in set(f["smiles"])
        w = np.asarray(pred.explain(smi, tmp_path / "gp.png")["atom_weights"])
        cl = next(a.GetIdx() for a in Chem.MolFromSmiles(smi).GetAtoms() if a.GetSymbol() == "Cl")
        assert int(np.argmax(w)) == cl and w[cl] > 0.2, (smi, w)
    np.testing.assert_allclose(PropertyPredictor.load(tmp_path / "gp").explain(smi)["atom_weights"], w, rtol=1e-6)


def test_mpnn_explanation_has_one_weight_per_atom(frame, tmp_path):
    pred, _ = train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=None, model="mpnn",
                          split="random", seed=0, **TINY_MPNN)
    res = pred.explain("OCCOc1ccccc1", tmp_path / "m.svg")
    assert len(res["atom_weights"]) == 10 and np.all(np.isfinite(res["atom_weights"]))



def test_binary_prediction_sets_contain_the_likely_label(frame):
    pred, metrics = train_table(frame, smiles_col="smiles", target_cols=["logp_high"], out=None,
                                task="classification", model="gbm", split="random", seed=0, gbm_members=1)
    out = pred.predict(frame, "smiles")
    sure1, sure0 = out[out["prob"] > 0.9], out[out["prob"] < 0.1]
    assert len(sure1) and len(sure0)
    # a confident prediction never puts the unlikely label in its conformal set (sets may be empty: LAC)
    assert not any("0" in s.strip("{}").split(",") for s in sure1["prediction_set"])
    assert not any("1" in s.strip("{}").split(",") for s in sure0["prediction_set"])
    assert metrics["test"]["logp_high"]["set_coverage"] >= 0.8


def test_gp_is_accurate_uncertain_away_from_its_data_and_regression_only(frame, tmp_path):
    from vai.core.errors import VaiError

    pred, metrics = train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp_path / "gp",
                                model="gp", split="random", seed=0)
    assert metrics["test"]["logp_crippen"]["r2"] > 0.8, metrics["test"]
    assert pred.gps[0].hyperparameters()  # fitted by marginal likelihood, reported
    near = pred.predict(frame.head(10), "smiles")
    far = pred.predict(pd.DataFrame({"smiles": ["FC(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)S(=O)(=O)O",
                                                 "[Si](C)(C)(C)O[Si](C)(C)O[Si](C)(C)O[Si](C)(C)C"]}), "smiles")
    # the GP's own predictive SD is the uncertainty: larger for molecules unlike any it was trained on
    assert far["uncertainty"].min() > near["uncertainty"].median()
    with pytest.raises(VaiError, match="regression"):
        train_table(frame, smiles_col="smiles", target_cols=["logp_high"], out=None, task="classification",
                    model="gp", split="random", seed=0)
    mol = frame["smiles"].iloc[0]
    assert np.all(np.isfinite(pred.atom_weights(mol))) and len(pred.atom_weights(mol)) > 1  # by occlusion


def test_a_base_model_carries_a_small_data_set_and_travels_inside_the_model(frame, tmp_path):
    """Transfer (SYNTHETIC): a base model trained on other molecules for logP; a new assay that is a linear
    function of logP, with 20 training molecules. Starting from the base, the model only learns the offset."""
    from vai.verticals.discovery import PropertyPredictor

    f = frame.sample(frac=1, random_state=0).reset_index(drop=True)
    public, inhouse = f.iloc[:80].reset_index(drop=True), f.iloc[80:].reset_index(drop=True)
    train_table(public, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp_path / "base", model="gbm",
                split="random", seed=0, gbm_members=1)
    inhouse["assay"] = 0.9 * inhouse["logp_crippen"] - 1.5
    idx = {"train": list(range(20)), "val": list(range(20, 30)), "test": list(range(30, len(inhouse)))}
    rmse = {}
    for base in (None, tmp_path / "base"):
        pred, m = train_table(inhouse, smiles_col="smiles", target_cols=["assay"], out=tmp_path / "new", model="gbm",
                              split_indices=idx, seed=0, gbm_members=1, base_model=base)
        rmse[base is not None] = m["test"]["assay"]["rmse"]
    assert rmse[True] < 0.6 * rmse[False], rmse
    assert m["transfer"]["val_rmse"] < m["transfer"]["val_rmse_base_alone"]  # the base alone is off by the offset
    assert m["test"]["assay"]["interval_coverage"] >= 0.8
    (tmp_path / "base" / "config.json").unlink()  # the saved model does not depend on the original base folder
    loaded = PropertyPredictor.load(tmp_path / "new")
    q = pd.DataFrame({"smiles": ["CCCCCCCCO", "c1ccccc1O"]})
    np.testing.assert_allclose(loaded.predict(q, "smiles")["prediction"], pred.predict(q, "smiles")["prediction"])
    w = loaded.explain("CCCCCCCCO")["atom_weights"]
    assert len(w) == 9 and np.allclose(w, pred.explain("CCCCCCCCO")["atom_weights"])
    # the applicability domain is the base's too: molecules only the public set had are not out of domain
    public_only = public["smiles"].tolist()
    alone = train_table(inhouse, smiles_col="smiles", target_cols=["assay"], out=None, model="gbm",
                        split_indices=idx, seed=0, gbm_members=1)[0]
    assert loaded.in_domain(public_only).mean() > alone.in_domain(public_only).mean()
    assert loaded.in_domain(public_only).mean() >= loaded.base.in_domain(public_only).mean()


def test_a_base_model_that_takes_a_solvent_transfers_with_the_solvent(frame, tmp_path):
    """Transfer with a second input (SYNTHETIC, as UV lambda-max in its solvent): the base model learned a property
    that the solvent shifts; an in-house assay in the same solvents starts from it, and the base gets each row's
    solvent, so its prediction carries the shift and the correction stays small."""
    from vai.core.errors import VaiError
    from vai.verticals.discovery import PropertyPredictor

    f = frame.sample(frac=1, random_state=1).reset_index(drop=True)
    f["solvent"] = np.where(np.arange(len(f)) % 2, "CCO", "O")
    f["shifted"] = f["logp_crippen"] + np.where(f["solvent"] == "O", 3.0, 0.0)
    public, inhouse = f.iloc[:80].reset_index(drop=True), f.iloc[80:].reset_index(drop=True)
    train_table(public, smiles_col="smiles", target_cols=["shifted"], out=tmp_path / "base", model="gbm",
                split="random", seed=0, gbm_members=1, solvent_col="solvent")
    with pytest.raises(VaiError, match="takes the solvent as a second input.*--solvent-col"):
        PropertyPredictor("gbm", base_model=tmp_path / "base")  # the in-house model must take the solvent too
    inhouse["assay"] = 0.9 * inhouse["shifted"] - 1.5
    idx = {"train": list(range(20)), "val": list(range(20, 30)), "test": list(range(30, len(inhouse)))}
    rmse = {}
    for base in (None, tmp_path / "base"):
        pred, m = train_table(inhouse, smiles_col="smiles", target_cols=["assay"], out=tmp_path / "new", model="gbm",
                              split_indices=idx, seed=0, gbm_members=1, base_model=base, solvent_col="solvent")
        rmse[base is not None] = m["test"]["assay"]["rmse"]
    assert rmse[True] < 0.6 * rmse[False], rmse
    loaded = PropertyPredictor.load(tmp_path / "new")
    q = pd.DataFrame({"smiles": ["CCCCCCCCO", "CCCCCCCCO"], "solvent": ["O", "CCO"]})
    out = loaded.predict(q, "smiles", solvent_col="solvent")["prediction"].to_numpy()
    assert out[0] - out[1] == pytest.approx(0.9 * 3.0, abs=1.0)  # the solvent's shift, carried by the base
    w = loaded.explain("CCCCCCCCO", solvent="O")["atom_weights"]
    assert len(w) == 9 and np.all(np.isfinite(w))


def test_a_classifier_base_gives_a_small_classification_set_its_log_odds_to_correct(frame, tmp_path):
    """Transfer for a classifier (SYNTHETIC, as an in-house sensitisation assay on top of the public HuSSPred model):
    the base says whether logP > 2.5; the in-house assay cuts at 1.5, with 20 training molecules. Boosting starts
    from the base's log-odds and learns the shift."""
    from vai.core.errors import VaiError
    from vai.verticals.discovery import PropertyPredictor

    f = frame.sample(frac=1, random_state=0).reset_index(drop=True)
    public, inhouse = f.iloc[:80].reset_index(drop=True), f.iloc[80:].reset_index(drop=True)
    train_table(public, smiles_col="smiles", target_cols=["logp_high"], out=tmp_path / "base", task="classification",
                model="gbm", split="random", seed=0, gbm_members=1)
    inhouse["assay"] = (inhouse["logp_crippen"] > 1.5).astype(int)
    idx = {"train": list(range(20)), "val": list(range(20, 30)), "test": list(range(30, len(inhouse)))}
    balanced = {}
    for base in (None, tmp_path / "base"):
        pred, m = train_table(inhouse, smiles_col="smiles", target_cols=["assay"], out=tmp_path / "new",
                              task="classification", model="gbm", split_indices=idx, seed=0, gbm_members=1,
                              base_model=base)
        balanced[base is not None] = m["test"]["assay"]["balanced_accuracy"]
    assert balanced[True] > balanced[False] + 0.1, balanced
    assert m["transfer"]["val_brier"] < m["transfer"]["val_brier_base_alone"]  # the learned shift helps
    loaded = PropertyPredictor.load(tmp_path / "new")
    q = pd.DataFrame({"smiles": ["CCCCCCCCO", "OCC(O)CO"]})
    np.testing.assert_allclose(loaded.predict(q, "smiles")["prob"], pred.predict(q, "smiles")["prob"])
    assert np.all(np.isfinite(loaded.explain("CCCCCCCCO")["atom_weights"]))
    with pytest.raises(VaiError, match="a classifier base transfers to a classifier"):
        PropertyPredictor("gbm", base_model=tmp_path / "base")
    with pytest.raises(VaiError, match="train --model gbm"):
        PropertyPredictor("ensemble", task="classification", base_model=tmp_path / "base")
    three = inhouse.assign(assay=np.arange(len(inhouse)) % 3)
    with pytest.raises(VaiError, match="binary classifier; these labels are multiclass"):
        train_table(three, smiles_col="smiles", target_cols=["assay"], out=None, task="classification", model="gbm",
                    split_indices=idx, seed=0, gbm_members=1, base_model=tmp_path / "base")


def test_a_base_model_must_match_the_task_and_name_its_target(frame, tmp_path):
    from vai.core.errors import VaiError
    from vai.verticals.discovery import PropertyPredictor

    train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp_path / "reg", model="gbm",
                split="random", seed=0, gbm_members=1)
    with pytest.raises(VaiError, match="a regression base transfers to a regression model"):
        PropertyPredictor("gbm", task="classification", base_model=tmp_path / "reg")
    train_table(frame, smiles_col="smiles", target_cols=["logp_crippen", "heavy_atoms"], out=tmp_path / "two",
                model="gbm", split="random", seed=0, gbm_members=1)
    with pytest.raises(VaiError, match="--base-target"):
        PropertyPredictor("gbm", base_model=tmp_path / "two")
    with pytest.raises(VaiError, match="'logS'"):
        PropertyPredictor("gbm", base_model=tmp_path / "two", base_target="logS")
    assert PropertyPredictor("gbm", base_model=tmp_path / "two", base_target="heavy_atoms").base_target == "heavy_atoms"


def test_fingerprints_are_the_learned_vectors_or_the_input_features(frame, tmp_path):
    from vai.cli import main
    from vai.verticals.discovery.workflows import fingerprint_file

    mp, _ = train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp_path / "mpnn", model="mpnn",
                        split="random", seed=0, use_descriptors=False, **TINY_MPNN)
    data = tmp_path / "q.csv"
    pd.DataFrame({"Structure": ["CCO", "C1CC((", "c1ccccc1O", "CCO"]}).to_csv(data, index=False)
    out = tmp_path / "fp.parquet"
    assert main(["discovery", "fingerprint", "--model", str(tmp_path / "mpnn"), "--data", str(data),
                 "--out", str(out)]) == 0
    fp = pd.read_parquet(out)
    learned = [c for c in fp.columns if c.startswith("mpnn0_")]
    assert list(fp.columns[:3]) == ["Structure", "smiles_std", "error"] and len(learned) == TINY_MPNN["hidden"]
    assert fp["error"].iloc[1] != "" and fp[learned].iloc[1].isna().all()
    np.testing.assert_allclose(fp[learned].iloc[0], fp[learned].iloc[3])  # the same molecule, the same vector
    assert not np.allclose(fp[learned].iloc[0], fp[learned].iloc[2])
    # the vector is what the network reads: its FFN maps it to the model's prediction (no descriptors here)
    import torch

    module = mp.mpnns[0]
    with torch.inference_mode():
        z = torch.tensor(fp[learned].iloc[[0, 2]].to_numpy(np.float32))
        y = module.transform_output(module.ffn(z)).numpy()[:, 0]
    np.testing.assert_allclose(y, mp.predict_smiles(["CCO", "Oc1ccccc1"], domain=False)["prediction"], rtol=1e-4)
    train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp_path / "gbm", model="gbm",
                split="random", seed=0, gbm_members=1)
    tab = fingerprint_file(tmp_path / "gbm", data, None)
    assert "morgan_0" in tab.columns and any(c.startswith("desc_") for c in tab.columns)
    assert tab.loc[0, [c for c in tab.columns if c.startswith("morgan_")]].sum() > 0
