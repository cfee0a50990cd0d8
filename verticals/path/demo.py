"""`vai demo` for pathology: synthetic slides -> tiles -> embeddings -> cross-validated ABMIL -> predictions
and attention heatmaps, on generated slides (no download, no shared data). Metrics are on a SYNTHETIC
genotype (a planted morphology), never a real one."""
from __future__ import annotations

import time
from pathlib import Path


def run_demo(out_dir: Path, n_slides: int = 12, size: int = 768) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small bags: one thread is fastest on a shared CPU
    try:
        return _run(Path(out_dir), n_slides, size)
    finally:
        torch.set_num_threads(threads)  # do not slow down the demos that run after this one


def _run(out: Path, n_slides: int, size: int) -> dict:
    from .pipeline import embed_slides, predict_features, synth_slides, train_model

    t0 = time.monotonic()
    slides = out / "slides"
    synth_slides(slides, n_slides, size=size, seed=7, n_sites=3)
    emb = embed_slides([slides], out / "features", target_mpp=1.0, tile_size=64, num_workers=0, batch_size=64)
    tr = train_model(out / "features", slides / "labels.csv", ["synth_a", "synth_b"], out / "model", folds=3,
                     max_epochs=16, patience=4, lr=1e-3, seed=0, threads=1, n_boot=200)
    pred = predict_features(out / "model", out / "features", out / "predictions.csv", heatmaps_dir=out / "heatmaps",
                            names_limit=2)
    return {
        "slides": n_slides, "tiles": emb["tiles"],
        "synthetic_cv_auroc": {t: (round(v["auroc"], 3) if v["auroc"] is not None else None)
                               for t, v in tr["summary"].items()},
        "note": "synthetic genotype (planted morphology): shows the pipeline learns, not a clinical result",
        "predictions": str(out / "predictions.csv"), "heatmaps": str(out / "heatmaps"),
        "runs": [emb["run_id"], tr["run_id"], pred["run_id"]], "seconds": round(time.monotonic() - t0, 1),
    }
