import numpy as np
import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.verticals.discovery.screen import Constraint, parse_constraint, pareto_mask, screen_library
from vai.verticals.discovery.workflows import train_table

from discovery_testlib import sample_frame


def test_parse_constraints():
    assert parse_constraint("logS>-3") == Constraint("logS", ">", low=-3.0)
    assert parse_constraint("logkp < -2.5") == Constraint("logkp", "<", high=-2.5)
    assert parse_constraint("lambda_max=290:320") == Constraint("lambda_max", "range", 290.0, 320.0)
    assert parse_constraint("lambda_max in 290..320") == Constraint("lambda_max", "range", 290.0, 320.0)
    for bad in ("logS", "logS>abc", "x=5:1"):
        with pytest.raises(VaiError):
            parse_constraint(bad)
    c = parse_constraint("x=1:2")
    assert c.passes(np.array([0.5, 1.5, 2.5])).tolist() == [False, True, False]
    d = parse_constraint("x>0").desirability(np.array([-5.0, 0.0, 5.0]), 1.0)
    assert d[0] < 0.01 and d[1] == pytest.approx(0.5) and d[2] > 0.99


def test_pareto_mask():
    obj = np.array([[1, 1], [2, 0], [0, 2], [0.5, 0.5], [2, 0]])
    assert pareto_mask(obj).tolist() == [True, True, True, False, True]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("screen_models")
    f = sample_frame()
    train_table(f, smiles_col="smiles", target_cols=["logp_crippen"], out=d / "logp", model="gbm", split="random",
                gbm_members=2)
    train_table(f, smiles_col="smiles", target_cols=["heavy_atoms"], out=d / "size", model="gbm", split="random",
                gbm_members=2)
    return {"logp": str(d / "logp"), "size": str(d / "size")}


def test_screen_applies_every_constraint_and_flags_pareto(tmp_path, models):
    lib = sample_frame()[["name", "smiles"]]
    lib.loc[len(lib)] = ["broken", "C1CC(("]
    path = tmp_path / "lib.csv"
    lib.to_csv(path, index=False)
    res = screen_library(path, tmp_path / "out", models=models, constraints=["logp=1:4", "size<12"], chunk_size=40,
                         similar_to=["OCCOc1ccccc1"])
    assert res.rows == len(lib) and res.valid == len(lib) - 1
    ranked = pd.read_csv(res.ranked_path)
    assert len(ranked) == res.passing > 0
    assert ranked["logp"].between(1, 4).all() and (ranked["size"] < 12).all()
    assert ranked["desirability"].is_monotonic_decreasing
    # the global Pareto flags equal a direct computation over all passing rows
    obj = np.stack([-np.abs(ranked["logp"] - 2.5), -ranked["size"]], axis=1)
    assert ranked["pareto"].tolist() == pareto_mask(obj).tolist()
    from PIL import Image

    with Image.open(tmp_path / "out" / "ranked.png") as im:  # the two properties against each other, drawn
        assert im.size[0] > 300
    # every scored row that passes is in the ranking, and no failing one is
    scored = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "out" / "scored").glob("*.parquet")))
    expected = scored[scored["logp"].between(1, 4) & (scored["size"] < 12)]
    assert set(expected["row"]) == set(ranked["row"])
    assert scored.loc[scored["name"] == "broken", "error"].iloc[0] != ""
    # resumable: a second run skips the finished chunks
    again = screen_library(path, tmp_path / "out", models=models, constraints=["logp=1:4", "size<12"], chunk_size=40)
    assert again.passing == res.passing


def test_similarity_search_finds_the_query_first(tmp_path):
    lib = sample_frame()[["name", "smiles"]]
    path = tmp_path / "lib.smi"
    path.write_text("\n".join(f"{s} {n}" for n, s in zip(lib["name"], lib["smiles"])) + "\n")
    res = screen_library(path, tmp_path / "out", similar_to=["OCCOc1ccccc1"], top=5, chunk_size=50)
    ranked = pd.read_csv(res.ranked_path)
    assert len(ranked) == 5 and ranked["name"].iloc[0] == "phenoxyethanol"
    assert ranked["similarity"].iloc[0] == pytest.approx(1.0) and ranked["similarity"].is_monotonic_decreasing


def test_screen_rejects_unknown_constraint(tmp_path, models):
    path = tmp_path / "lib.csv"
    sample_frame(5).to_csv(path, index=False)
    with pytest.raises(VaiError, match="no model gives 'logS'"):
        screen_library(path, tmp_path / "o", models=models, constraints=["logS>-3"])


def test_screen_gives_each_target_of_a_multi_task_model_its_own_column(tmp_path):
    """A two-target model (missing labels in both) adds `name.TARGET` columns equal to its own predictions, a
    constraint can name either target, and naming the model alone says which names exist."""
    from vai.verticals.discovery.models import PropertyPredictor

    f = sample_frame()
    f.loc[f.index[::4], "logp_crippen"] = np.nan
    f.loc[f.index[1::5], "heavy_atoms"] = np.nan
    train_table(f, smiles_col="smiles", target_cols=["logp_crippen", "heavy_atoms"], out=tmp_path / "both",
                model="gbm", split="random", gbm_members=1)
    lib = tmp_path / "lib.csv"
    sample_frame()[["name", "smiles"]].to_csv(lib, index=False)
    models = {"both": str(tmp_path / "both")}
    res = screen_library(lib, tmp_path / "out", models=models, chunk_size=40,
                         constraints=["both.logp_crippen=1:4", "both.heavy_atoms<12"])
    ranked = pd.read_csv(res.ranked_path)
    assert 0 < res.passing == len(ranked) < res.valid
    assert ranked["both.logp_crippen"].between(1, 4).all() and (ranked["both.heavy_atoms"] < 12).all()
    assert {"both.logp_crippen_interval_low", "both.heavy_atoms_interval_high", "both_in_domain"} <= set(ranked)
    direct = PropertyPredictor.load(tmp_path / "both").predict_smiles(ranked["smiles_std"].tolist(), domain=False)
    np.testing.assert_allclose(ranked["both.logp_crippen"], direct["prediction_logp_crippen"], rtol=1e-6)
    np.testing.assert_allclose(ranked["both.heavy_atoms"], direct["prediction_heavy_atoms"], rtol=1e-6)
    with pytest.raises(VaiError, match="predicts several targets: name one, e.g. 'both.logp_crippen'"):
        screen_library(lib, tmp_path / "o2", models=models, constraints=["both>1"])


def test_default_workers_parallel_only_for_large_libraries(tmp_path, monkeypatch):
    """`workers=None`: in-process below PARALLEL_FROM_ROWS molecules (worker start-up would cost more than it
    saves), one process per usable CPU (at most one per chunk) from there on."""
    import vai.core.jobs as jobs
    from vai.verticals.discovery import screen

    lib = sample_frame()[["name", "smiles"]]
    path = tmp_path / "lib.csv"
    lib.to_csv(path, index=False)
    seen = []
    real = jobs.run_job
    monkeypatch.setattr(jobs, "run_job", lambda *a, **kw: (seen.append(kw["workers"]), real(*a, **{**kw, "workers": 1}))[1])
    monkeypatch.setattr(screen, "usable_cpus", lambda: 3)
    screen_library(path, tmp_path / "small", similar_to=["CCO"], chunk_size=20)
    monkeypatch.setattr(screen, "PARALLEL_FROM_ROWS", len(lib))
    screen_library(path, tmp_path / "large", similar_to=["CCO"], chunk_size=20)
    screen_library(path, tmp_path / "one_chunk", similar_to=["CCO"], chunk_size=10 * len(lib))
    screen_library(path, tmp_path / "explicit", similar_to=["CCO"], chunk_size=20, workers=1)
    assert seen == [1, min(3, -(-len(lib) // 20)), 1, 1]


def test_screen_reads_smi_libraries_like_predict_does(tmp_path, models):
    """`#` is a triple bond inside a SMILES, not a comment; names may hold spaces."""
    lib = tmp_path / "lib.smi"
    lib.write_text("# in-house solvents\nCC#N acetonitrile\nCCO ethyl alcohol\nCCCCO n butyl alcohol here\n"
                   "N#Cc1ccccc1 benzonitrile\nC1CC(( broken\n")
    res = screen_library(lib, tmp_path / "out", models=models)
    ranked = pd.read_csv(res.ranked_path, keep_default_na=False)
    assert res.rows == 5 and res.valid == 4 and not res.failed_chunks
    assert {"CC#N", "N#Cc1ccccc1", "CCCCO"} <= set(ranked["smiles_std"])
    assert "n butyl alcohol here" in set(ranked["name"])


def test_semicolon_separated_tables_are_read(tmp_path):
    from vai.verticals.discovery.chem import iter_chunks, read_table

    p = tmp_path / "semi.csv"
    p.write_text("smiles;logS\nCCO;1,2\nc1ccccc1;-1,6\n")
    frame, col = read_table(p)
    assert col == "smiles" and frame["smiles"].tolist() == ["CCO", "c1ccccc1"]
    assert frame["logS"].tolist() == pytest.approx([1.2, -1.6])  # decimal commas are numbers, not text
    chunk, col = next(iter_chunks(p))
    assert col == "smiles" and len(chunk) == 2 and chunk["logS"].dtype.kind == "f"


def test_gzipped_smi_and_csv_libraries_stream_like_plain_ones(tmp_path):
    import gzip

    from vai.verticals.discovery.chem import iter_chunks, read_table

    smi = tmp_path / "lib.smi.gz"
    smi.write_bytes(gzip.compress(b"CCO ethanol\nc1ccccc1 benzene\nCC#N acetonitrile\n"))
    chunks = list(iter_chunks(smi, chunk_size=2))
    assert [len(c) for c, _ in chunks] == [2, 1] and chunks[0][1] == "smiles"
    assert chunks[1][0]["smiles"].tolist() == ["CC#N"]  # `#` is a triple bond, not a comment, inside a SMILES
    assert read_table(smi)[0]["name"].tolist() == ["ethanol", "benzene", "acetonitrile"]
    csv_gz = tmp_path / "lib.csv.gz"
    csv_gz.write_bytes(gzip.compress("SMILES;pKa\nCCO;15,9\n".encode()))
    chunk, col = next(iter_chunks(csv_gz))
    assert col == "SMILES" and chunk["pKa"].tolist() == pytest.approx([15.9])
