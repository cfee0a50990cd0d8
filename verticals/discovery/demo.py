"""`vai demo` for discovery: train -> predict (with bad rows) -> explain -> screen, on embedded molecules.

Targets are SYNTHETIC (RDKit Crippen logP and a logP>2.5 class computed from the structures), so the
headline metrics show the pipeline works end to end, not real-world accuracy (see `vai discovery zoo`).
"""
from __future__ import annotations

import time
from pathlib import Path


def run_demo(out_dir: Path) -> dict:
    from vai.core.io import atomic_write_table
    from vai.core.store import Store

    from .models import PropertyPredictor
    from .sample_data import synthetic_logp_frame
    from .screen import screen_library
    from .workflows import train_table

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = synthetic_logp_frame()
    data_csv = out / "sample_molecules.csv"
    atomic_write_table(data_csv, frame)
    store = Store()
    summary: dict = {"molecules": len(frame), "labels": "synthetic (RDKit Crippen logP)"}
    # GBM keeps the demo well under a minute on 2 busy cores; the D-MPNN and ensembles are in the tests and zoo
    with store.run("discovery", "train", {"demo": True, "model": "gbm", "target": "logp_crippen"}) as run:
        predictor, metrics = train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"],
                                         out=out / "model_logp", model="gbm", split="random", seed=0)
        run.add_output("model", out / "model_logp")
        run.summary["test"] = metrics["test"]
    test = metrics["test"]["logp_crippen"]
    summary.update({"synthetic_test_rmse": round(test["rmse"], 3), "synthetic_test_r2": round(test["r2"], 3),
                    "synthetic_interval_coverage": round(test["interval_coverage"], 3)})
    with store.run("discovery", "train", {"demo": True, "model": "gbm", "target": "logp_high"}) as run:
        _, cmetrics = train_table(frame, smiles_col="smiles", target_cols=["logp_high"], out=out / "model_logp_high",
                                  task="classification", model="gbm", split="random", seed=0)
        run.add_output("model", out / "model_logp_high")
        run.summary["test"] = cmetrics["test"]
    summary["synthetic_classifier_test_auc"] = round(cmetrics["test"]["logp_high"].get("roc_auc", float("nan")), 3)

    queries = frame[["name", "smiles"]].head(8).copy()
    queries.loc[len(queries)] = ["broken", "C1CC(("]
    with store.run("discovery", "predict", {"demo": True}) as run:
        pred = PropertyPredictor.load(out / "model_logp").predict(queries, smiles_col="smiles")
        run.write_table("predictions", pred)
        run.summary["rows"] = len(pred)
        run.summary["errors"] = int((pred["error"] != "").sum())
        run.status = "partial" if run.summary["errors"] else run.status
    summary["predicted_rows"] = len(pred)
    summary["rows_with_error"] = int((pred["error"] != "").sum())

    with store.run("discovery", "explain", {"demo": True}) as run:
        img = predictor.explain(frame["smiles"][0], out / "explain_avobenzone.png")["image"]
        run.add_output("image", img)
    summary["explanation"] = img

    with store.run("discovery", "screen", {"demo": True}) as run:
        res = screen_library(data_csv, out / "screen", models={"logp": str(out / "model_logp"),
                                                               "lipophilic": str(out / "model_logp_high")},
                             constraints=["logp=1:4", "lipophilic<0.5"], similar_to=["OCCOc1ccccc1"],
                             chunk_size=50, store_run=run)
        run.add_output("ranked", res.ranked_path)
        run.summary.update(res.summary())
    summary.update({"screened": res.rows, "passing": res.passing, "ranked": str(res.ranked_path)})
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary
