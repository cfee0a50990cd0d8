"""Rules from the path review: folds never split a patient, small or one-class label tables get a clear answer,
job-wide options are checked before any slide is touched, and an interrupted or moved embed folder resumes
correctly. SYNTHETIC slides and tables."""
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.path.genotype import BagSet, check_targets, make_folds

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    assert main(["path", "synth", "--out", str(out), "--slides", "3", "--size", "512", "--seed", "2"]) == 0
    return out


def _embed(slides, out, *extra):
    return main(["path", "embed", str(slides), "--out", str(out), "--mpp", "1.0", "--tile", "64", "--workers", "0",
                 *extra])


# -- folds ------------------------------------------------------------------------------------------------------

def test_a_patient_seen_at_two_sites_stays_in_one_fold():
    rows = pd.DataFrame({"slide": [f"s{i}" for i in range(24)],
                         "patient": [f"p{i // 2}" for i in range(24)],
                         "site": [f"site{(i // 2) % 8}" for i in range(24)],
                         "KRAS": [float(i % 3 == 0) for i in range(24)]})
    rows.loc[1, "site"] = "site7"  # p0's second slide was scanned at another site
    for seed in range(5):
        fold, by = make_folds(rows, 4, "KRAS", seed)
        assert by == "site"
        for _, idx in rows.groupby("patient").groups.items():
            assert len(set(fold[list(idx)])) == 1, (seed, rows.loc[idx, "patient"].iloc[0])
        # sites stay whole too
        for _, idx in rows.groupby("site").groups.items():
            assert len(set(fold[list(idx)])) == 1


def test_fewer_sites_than_folds_keeps_sites_apart_and_a_blank_site_says_so(caplog):
    rows = pd.DataFrame({"slide": [f"s{i}" for i in range(18)], "patient": [f"p{i}" for i in range(18)],
                         "site": [f"site{i % 3}" for i in range(18)], "KRAS": [float(i % 2) for i in range(18)]})
    with caplog.at_level("WARNING", logger="vai.path"):
        fold, by = make_folds(rows, 5, "KRAS")  # 3 sites, 5 folds asked: 3 site-preserving folds, not patient folds
    assert by == "site" and len(set(fold)) == 3 and "only 3 sites: using 3 folds instead of 5" in caplog.text
    for _, idx in rows.groupby("site").groups.items():
        assert len(set(fold[list(idx)])) == 1
    caplog.clear()
    rows.loc[4, "site"] = ""
    with caplog.at_level("WARNING", logger="vai.path"):
        _, by = make_folds(rows, 5, "KRAS")
    assert by == "patient" and "1 slide(s) have a blank site (e.g. s4)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vai.path"):
        _, by = make_folds(rows.assign(site="one"), 5, "KRAS")
    assert by == "patient" and "all slides come from one site" in caplog.text


def test_small_tables_get_folds_instead_of_a_library_error():
    for n, pos in ((4, 2), (3, 1), (6, 1)):
        rows = pd.DataFrame({"slide": [f"s{i}" for i in range(n)], "patient": [f"p{i}" for i in range(n)],
                             "KRAS": [1.0] * pos + [0.0] * (n - pos)})
        fold, by = make_folds(rows, 5, "KRAS")
        assert by == "patient" and fold.min() == 0 and len(set(fold)) == min(n, 5)


def test_one_class_target_is_refused_with_the_counts_and_the_fix(caplog):
    rows = pd.DataFrame({"slide": list("abcdef"), "patient": list("aabbcc"),
                         "KRAS": [1, 0, 0, 0, 1, np.nan], "TP53": [0, 0, 0, 0, np.nan, 0]}).astype({"KRAS": float})
    with pytest.raises(VaiError, match=r"TP53: 0 positive and 3 negative patients.*--targets KRAS"):
        check_targets(rows, ["KRAS", "TP53"], folds=2)
    counts = check_targets(rows, ["KRAS"], folds=5)  # learnable, but too few per class for 5 folds: a warning
    assert counts == {"KRAS": {"pos": 2, "neg": 1}}
    assert "only 2 positive / 1 negative patients for 5 folds" in caplog.text


# -- options checked before the job --------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--device", "tpu"], "not one of auto, cpu, cuda"),
    (["--stain", "macenko", "--stain-target", "missing.png"], "missing.png: image not found"),
    (["--slide-mpp", "0"], "--slide-mpp must be a positive number"),
    (["--workers", "-1"], "--workers must be 0 or more"),
])
def test_job_wide_options_fail_once_before_any_slide(slides, tmp_path, capsys, extra, message):
    out = tmp_path / "feats"
    args = ["path", "embed", str(slides), "--out", str(out), "--mpp", "1.0", "--tile", "64"]
    if "--workers" not in extra:
        args += ["--workers", "0"]
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing started


def test_empty_gene_list_is_refused(tmp_path, capsys):
    assert main(["path", "labels-tcga", "TCGA-AA-3511-01Z-00-DX1", "--genes", " , ", "--out",
                 str(tmp_path / "l.csv"), "--mutations", str(tmp_path)]) == 2
    assert "--genes is empty" in capsys.readouterr().err


def test_truncated_svs_is_called_truncated(slides, tmp_path, capsys):
    cut = tmp_path / "cut.svs"
    cut.write_bytes((slides / "synth_000.tiff").read_bytes()[:2000])
    assert main(["path", "info", str(cut)]) == 2
    assert "probably truncated or damaged" in capsys.readouterr().err


# -- resume and interrupted work -----------------------------------------------------------------------------------

def test_embed_resumes_from_another_working_directory_and_after_a_move(slides, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _embed(slides, "feats") == 0  # a relative --out
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert _embed(slides, work / "feats") == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == 3
    import shutil

    shutil.copytree(work / "feats", tmp_path / "copied")  # a copied folder still knows its work is done
    assert _embed(slides, tmp_path / "copied") == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == 3


def test_truncated_features_and_leftover_temporaries_are_redone(slides, tmp_path, capsys):
    out = tmp_path / "feats"
    assert _embed(slides, out) == 0
    capsys.readouterr()
    good = out / "synth_000.h5"
    with h5py.File(good) as f:
        n = f["features"].shape[0]
    # an interrupted write leaves a dot-file holding a full-size features array (zeros past the cut)
    stale = out / ".synth_001.h5.x1y2.h5"
    import shutil

    shutil.copy(good, stale)
    assert ".synth_001.h5.x1y2" not in BagSet.from_dir(out).names  # never read as a slide
    (out / "synth_001.h5").write_bytes(good.read_bytes()[:1500])  # a truncated copy
    assert _embed(slides, out) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["done"] == 1 and res["resumed"] == 2 and res["failed"] == 0
    with h5py.File(out / "synth_001.h5") as f:
        assert f["features"].shape[0] == f["coords"].shape[0] > 0
    assert not stale.exists()
    assert n > 0


def test_tile_into_an_embed_folder_keeps_the_features(slides, tmp_path, capsys):
    out = tmp_path / "feats"
    assert _embed(slides, out) == 0
    capsys.readouterr()
    rc = main(["path", "tile", str(slides), "--out", str(out), "--mpp", "1.0", "--tile", "128"])
    assert rc == 1
    assert "holds features from `vai path embed`" in capsys.readouterr().err
    with h5py.File(out / "synth_000.h5") as f:
        assert "features" in f and int(f.attrs["tile_size"]) == 64


def test_a_slide_without_tissue_gets_a_reason_in_predict(tmp_path):
    from vai.verticals.path.genotype import GenotypeModel
    from vai.verticals.path.models import MILModule

    blank = tmp_path / "blank.h5"
    with h5py.File(blank, "w") as f:
        f.create_dataset("coords", data=np.zeros((0, 2), np.int64))
        f.create_dataset("features", data=np.zeros((0, 8), np.float32))
    model = GenotypeModel(MILModule(8, 1), ["KRAS"], {"in_dim": 8})
    frame = model.predict(BagSet({"blank": blank}))
    assert np.isnan(frame["KRAS_prob"][0]) and "no tissue found" in frame["error"][0]


def test_training_does_not_depend_on_the_global_random_state(tmp_path):
    """The same seed gives the same model whatever ran before (initial weights were once drawn unseeded)."""
    import torch

    from vai.verticals.path.genotype import TrainConfig, fit_one

    rng = np.random.default_rng(0)
    files, names = {}, []
    for i in range(6):
        p = tmp_path / f"s{i}.h5"
        with h5py.File(p, "w") as f:
            f.create_dataset("coords", data=np.zeros((20, 2), np.int64))
            f.create_dataset("features", data=rng.normal(size=(20, 8)).astype(np.float32))
        files[f"s{i}"] = p
        names.append(f"s{i}")
    bags = BagSet(files)
    y = np.array([[0.0], [1.0]] * 3)
    weights = []
    for other in (11, 22):
        torch.manual_seed(other)  # whatever the caller did before
        module, _ = fit_one(bags, names, y, TrainConfig(max_epochs=2, seed=3), 8, 1)
        weights.append(torch.cat([p.detach().flatten() for p in module.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_domain_distance_flags_slides_unlike_the_training_slides(tmp_path, caplog, monkeypatch):
    from vai.verticals.path.domain import FeatureDomain, slide_mean
    from vai.verticals.path.genotype import GenotypeModel
    from vai.verticals.path.models import MILModule

    rng = np.random.default_rng(0)
    # the leave-one-out radius: new slides from the training source fall beyond it about 1 / (n + 1) of the time
    dom = FeatureDomain.fit(rng.normal(size=(50, 32)))
    assert (dom.distance(rng.normal(size=(2000, 32))) > 1).mean() < 0.06
    assert (dom.distance(rng.normal(size=(50, 32)) + 2.0) > 1).all()  # shifted by 2 sd in every dimension
    assert FeatureDomain.fit(rng.normal(size=(2, 32))) is None  # too few slides to learn a spread

    files = {}
    for i in range(12):  # training slides: tiles around one centre; the last one from elsewhere
        shift = 4.0 if i == 11 else 0.0
        p = tmp_path / f"s{i}.h5"
        with h5py.File(p, "w") as f:
            f.create_dataset("coords", data=np.zeros((30, 2), np.int64))
            f.create_dataset("features", data=(rng.normal(size=(30, 8)) + rng.normal(size=8) * 0.3 + shift).astype(np.float32))
        files[f"s{i}"] = p
    bags = BagSet(files)
    dom = FeatureDomain.fit(np.stack([slide_mean(bags, f"s{i}") for i in range(10)]))
    config = {"vertical": "path", "kind": "genotype_mil", "model": "abmil", "targets": ["KRAS"], "in_dim": 8,
              "domain": {"file": "domain.npz"}}
    model = GenotypeModel(MILModule(8, 1), ["KRAS"], config, domain=dom)
    with caplog.at_level("WARNING", logger="vai.path"):
        frame = model.predict(bags).set_index("slide")
    assert frame.loc[[f"s{i}" for i in range(10)], "in_domain"].all()  # the training slides themselves
    assert not frame.loc["s11", "in_domain"] and frame.loc["s11", "domain_distance"] > 3
    assert "lie outside the training slides' feature range" in caplog.text
    model.save(tmp_path / "m")
    again = GenotypeModel.load(tmp_path / "m").predict(bags).set_index("slide")
    np.testing.assert_allclose(again["domain_distance"], frame["domain_distance"])

    # the heatmap of the far slide says so in its title; the training slides' do not
    import vai.verticals.path.heatmap as heatmap

    flagged = {}
    monkeypatch.setattr(heatmap, "write_heatmaps",
                        lambda h5, att, targets, out, probs=None, out_of_domain=False:
                        flagged.__setitem__(Path(h5).stem, out_of_domain) or {})
    model.predict(bags, heatmaps_dir=tmp_path / "maps")
    assert flagged["s11"] and not any(flagged[f"s{i}"] for i in range(10))
    title = heatmap.heatmap_title("s11", "KRAS", 30, 0.734, out_of_domain=True)
    assert "0.73" in title and "OUTSIDE the training slides' range" in title and "30 tiles" in title
    assert "OUTSIDE" not in heatmap.heatmap_title("s1", "KRAS", 30, 0.2)
