"""The batch steps behind the CLI, the demo and the page, each recording a run in the store:
tile, embed, train, predict, synth, TCGA labels."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from vai.core.errors import VaiError
from vai.core.progress import get_logger

log = get_logger("vai.path")
VERTICAL = "path"


def _slides(paths) -> list[str]:
    from .slide import expand_slide_args

    slides = [str(p) for p in expand_slide_args(paths)]
    if not slides:
        raise VaiError("no slide files given (pass slide paths or folders holding .svs/.tiff/.ndpi/... files)")
    return slides


def _in(out_dir, recorded: str) -> Path:
    """A file an earlier run recorded, looked up in this run's output folder: the recorded path may be relative
    to another working directory, or the folder may have been moved or copied since."""
    return Path(out_dir) / Path(recorded).name


def _check_job_options(*, slide_mpp=None, workers=None, batch_size=None, device=None, stain=None,
                       stain_target=None, backbone=None, weights=None) -> None:
    """Options that are the same for every slide are checked once, before the job: a bad one would otherwise
    fail each slide in turn (after tiling it) with the same message."""
    if slide_mpp is not None and not slide_mpp > 0:
        raise VaiError(f"--slide-mpp must be a positive number of µm per pixel (e.g. 0.25 for 40x), got {slide_mpp}")
    if workers is not None and workers < 0:
        raise VaiError(f"--workers must be 0 or more, got {workers}")
    if batch_size is not None and batch_size < 1:
        raise VaiError(f"--batch-size must be at least 1, got {batch_size}")
    if device is not None:
        from vai.core.device import pick_accelerator

        pick_accelerator(device)
    if backbone is not None:
        from vai.core.backbones import check_backbone

        check_backbone(backbone, weights)
    if stain:
        if not stain_target:
            raise VaiError("--stain needs --stain-target PNG (the reference image to normalise towards)")
        from .stain import StainNormalizer

        StainNormalizer.from_target(stain, stain_target)  # a missing or unusable target image stops here


def tissue_slide(slide_path: str, *, out_dir: str) -> dict[str, Any]:
    """One slide of `vai path tissue`: its tissue mask PNG and tissue fraction."""
    from .slide import SlideReader
    from .tissue import TissueDetector

    stem = Path(slide_path).stem
    with SlideReader(slide_path) as s:
        mask = TissueDetector().detect(s)
    png = Path(out_dir) / f"{stem}_mask.png"
    mask.save_png(png)
    return {"tissue_fraction": round(mask.fraction, 4), "no_tissue": bool(mask.empty), "mask": str(png)}


def tissue_masks(slides, out_dir) -> dict[str, Any]:
    """Tissue masks for many slides as a batch job (a bad slide is skipped and reported, re-runs resume);
    `tissue.json` maps each slide to its tissue fraction."""
    from vai.core.io import atomic_write_json
    from vai.core.jobs import run_job
    from vai.core.store import Store

    slides = _slides(slides)
    with Store().run(VERTICAL, "tissue", {"slides": len(slides), "out": str(out_dir)}) as run:
        res = run_job(tissue_slide, slides, out_dir=out_dir, key=lambda p: Path(p).stem, desc="tissue",
                      fn_kwargs={"out_dir": str(out_dir)}, store_run=run, complete=lambda r: _in(out_dir, r["mask"]).exists())
        rows = {k: {f: v[f] for f in ("tissue_fraction", "no_tissue")} for k, v in sorted(res.results.items()) if v}
        atomic_write_json(Path(out_dir) / "tissue.json", rows)
        run.summary["slides"] = rows
        run.add_output("masks", out_dir)
        return {"run_id": run.run_id, **res.summary(), "slides": rows}


def tile_slides(slides, out_dir, *, target_mpp: float = 0.5, tile_size: int = 256, min_tissue: float = 0.5,
                slide_mpp: float | None = None, workers: int = 1, engine: str = "local") -> dict[str, Any]:
    from vai.core.jobs import run_job
    from vai.core.store import Store

    from .tiling import Tiler, tile_slide

    Tiler(target_mpp, tile_size, min_tissue)  # validate the options once, before any job starts
    if workers < 1:
        raise VaiError(f"--workers must be at least 1, got {workers}")
    _check_job_options(slide_mpp=slide_mpp)
    slides = _slides(slides)
    params = {"slides": len(slides), "out": str(out_dir), "target_mpp": target_mpp, "tile_size": tile_size,
              "min_tissue": min_tissue, "slide_mpp": slide_mpp}
    with Store().run(VERTICAL, "tile", params) as run:
        res = run_job(tile_slide, slides, out_dir=out_dir, key=lambda p: Path(p).stem, engine=engine, workers=workers,
                      fn_kwargs={"out_dir": str(out_dir), "target_mpp": target_mpp, "tile_size": tile_size,
                                 "min_tissue": min_tissue, "mpp": slide_mpp}, desc="tile", store_run=run,
                      complete=lambda r: _in(out_dir, r["h5"]).exists())
        no_tissue = sorted(k for k, v in res.results.items() if v and v.get("no_tissue"))
        run.summary.update({"tiles": sum(v["tiles"] for v in res.results.values() if v), "no_tissue": no_tissue})
        run.add_output("tiles", out_dir)
        return {"run_id": run.run_id, **res.summary(), "tiles": run.summary["tiles"], "no_tissue": no_tissue,
                "results": res.results}


def embed_slides(slides, out_dir, *, backbone: str = "tf_efficientnet_lite0", weights: str | None = None,
                 batch_size: int = 64, num_workers: int | None = None, engine: str = "local", target_mpp: float = 0.5,
                 tile_size: int = 256, min_tissue: float = 0.5, slide_mpp: float | None = None,
                 device: str | None = None, stain: str | None = None, stain_target: str | None = None,
                 address: str | None = None, compile: bool | None = None) -> dict[str, Any]:
    from vai.core.jobs import run_job
    from vai.core.store import Store

    from .embed import embed_slide_job, has_features
    from .tiling import Tiler

    Tiler(target_mpp, tile_size, min_tissue)
    _check_job_options(slide_mpp=slide_mpp, workers=num_workers, batch_size=batch_size, device=device, stain=stain,
                       stain_target=stain_target, backbone=backbone, weights=weights)
    # absolute paths: the resume markers' settings must not change with the working directory
    weights = str(Path(weights).resolve()) if weights else None
    stain_target = str(Path(stain_target).resolve()) if stain_target else None
    slides = _slides(slides)
    params = {"slides": len(slides), "out": str(out_dir), "backbone": backbone, "batch_size": batch_size,
              "engine": engine, "target_mpp": target_mpp, "tile_size": tile_size, "stain": stain}
    with Store().run(VERTICAL, "embed", params) as run:
        # One process holds the model (workers=1); DataLoader workers decode tiles in parallel inside it.
        res = run_job(embed_slide_job, slides, out_dir=out_dir, key=lambda p: Path(p).stem, engine=engine,
                      workers=1, address=address, desc="embed", store_run=run,
                      fn_kwargs={"out_dir": str(out_dir), "backbone": backbone, "weights": weights,
                                 "batch_size": batch_size, "num_workers": num_workers, "target_mpp": target_mpp,
                                 "tile_size": tile_size, "min_tissue": min_tissue, "mpp": slide_mpp,
                                 "device": device, "stain": stain, "stain_target": stain_target,
                                 "compile": compile, "job_slides": len(slides)},
                      # what the features depend on; batch size, workers and compilation only change speed
                      settings={"backbone": backbone, "weights": str(weights) if weights else None,
                                "target_mpp": target_mpp, "tile_size": tile_size, "min_tissue": min_tissue,
                                "mpp": slide_mpp, "device": device, "stain": stain, "stain_target": stain_target},
                      complete=lambda r: r.get("no_tissue") or has_features(_in(out_dir, r["h5"]), backbone))
        run.summary["tiles"] = sum(v["tiles"] for v in res.results.values() if v)
        run.add_output("features", out_dir)
        return {"run_id": run.run_id, **res.summary(), "tiles": run.summary["tiles"], "results": res.results}


def train_model(features_dir, labels_csv, targets: list[str], out_model, *, kind: str = "abmil", folds: int = 5,
                max_epochs: int = 30, patience: int = 6, lr: float = 2e-4, max_tiles: int | None = 4096,
                control: int = 0, seed: int | None = None, threads: int | None = None, n_boot: int = 1000,
                progress: bool = False) -> dict[str, Any]:
    from vai.core.settings import get_settings
    from vai.core.store import Store

    from .genotype import BagSet, GenotypeModel, TrainConfig
    from .labels import read_slide_table
    from .models import MODEL_KINDS

    if kind not in MODEL_KINDS:
        raise VaiError(f"--model must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
    if folds < 2:
        raise VaiError(f"--folds must be at least 2, got {folds}")
    targets = [t.strip() for t in targets if t.strip()]
    if not targets:
        raise VaiError("--targets is empty: name at least one label column, e.g. --targets KRAS,TP53")
    labels = read_slide_table(labels_csv, targets)
    bags = BagSet.from_dir(features_dir)
    seed = get_settings().seed if seed is None else seed
    cfg = TrainConfig(kind=kind, max_epochs=max_epochs, patience=patience, lr=lr, max_tiles=max_tiles, seed=seed,
                      threads=threads, progress=progress)
    params = {"features": str(features_dir), "labels": str(labels_csv), "targets": targets, "model": kind,
              "folds": folds, "max_epochs": max_epochs, "control": control, "seed": seed}
    with Store().run(VERTICAL, "train", params) as run:
        model, report = GenotypeModel.train(bags, labels, targets, folds=folds, cfg=cfg, control=control, n_boot=n_boot)
        model.save(out_model)
        run.add_output("model", out_model)
        run.write_table("cv_predictions", model.cv_predictions)
        summary = {t: {"auroc": m["patient"].get("auroc"), "auroc_ci": m["patient"].get("auroc_ci"),
                       "fold_auroc_mean": m.get("fold_auroc_mean"),
                       "auprc": m["patient"].get("auprc"), "n": m["patient"]["n"], "n_pos": m["patient"]["n_pos"]}
                   for t, m in report["cv"]["targets"].items()}
        run.summary.update({"cv_patient_level": summary, "folds": report["cv"]["folds"],
                            "grouped_by": report["cv"]["grouped_by"]})
        if "shuffled_label_control" in report:
            run.summary["shuffled_control_mean_auroc"] = report["shuffled_label_control"]["mean_auroc"]
        return {"run_id": run.run_id, "model": str(out_model), "report": report, "summary": summary}


def predict_features(model_dir, features_dir, out_csv, *, heatmaps_dir=None, slides=None, work_dir=None,
                     batch_size: int = 64, num_workers: int | None = None, slide_mpp: float | None = None,
                     device: str | None = None, names_limit: int | None = None,
                     labels_csv=None) -> dict[str, Any]:
    """Predict every slide in `features_dir`; with `slides`, embed them first (into `work_dir`) with the
    model's backbone and tiling."""
    from vai.core.io import atomic_write_table, check_table_output
    from vai.core.store import Store

    from .genotype import BagSet, GenotypeModel

    check_table_output(out_csv)
    model = GenotypeModel.load(model_dir)
    params = {"model": str(model_dir), "features": str(features_dir) if features_dir else None,
              "slides": len(slides or []), "out": str(out_csv), "heatmaps": str(heatmaps_dir) if heatmaps_dir else None}
    with Store().run(VERTICAL, "predict", params) as run:
        names = None
        if slides:
            features_dir = Path(work_dir or features_dir or Path(out_csv).with_suffix("").as_posix() + "_features")
            c = model.config
            # the training features' recipe: backbone and its weights, tiling, stain normalisation
            stain_target = c.get("stain_target")
            if c.get("stain") and not (stain_target and Path(stain_target).exists()):
                raise VaiError(f"{model_dir}: the model was trained on {c['stain']}-normalised features, but its "
                               f"stain target {stain_target!r} is not there to normalise new slides the same way; "
                               "embed them yourself (`vai path embed --stain ... --stain-target PNG`) and pass --features")
            emb = embed_slides(slides, features_dir, backbone=c.get("backbone") or "tf_efficientnet_lite0",
                               weights=c.get("weights") or None,
                               batch_size=batch_size, num_workers=num_workers, target_mpp=float(c.get("target_mpp") or 0.5),
                               tile_size=int(c.get("tile_size") or 256),
                               min_tissue=float(c["min_tissue"]) if c.get("min_tissue") is not None else 0.5,
                               slide_mpp=slide_mpp, device=device, stain=c.get("stain") or None,
                               stain_target=stain_target if c.get("stain") else None)
            names = [Path(s).stem for s in _slides(slides)]
            if emb["failed"]:
                run.status = "partial"
                run.summary["embed_errors"] = emb["errors"]
        if features_dir is None:
            raise VaiError("give --features DIR (from `vai path embed`) or slide files to embed first")
        try:
            bags = BagSet.from_dir(features_dir, cache=False)
        except VaiError:
            if not names:
                raise
            bags = BagSet({}, cache=False)  # every slide failed to embed: each gets a row saying why
        frame = model.predict(bags, heatmaps_dir=heatmaps_dir, names=names, heatmaps_limit=names_limit,
                              errors=emb["errors"] if slides else None)
        if (frame["error"] != "").any():
            run.status = "partial"
        atomic_write_table(out_csv, frame, like=labels_csv)
        run.add_output("predictions", out_csv)
        patients = None
        if labels_csv:  # patient-level predictions: mean probability over each patient's slides
            table = _patients_of(labels_csv)
            merged = frame.merge(table, on="slide", how="left")
            merged["patient"] = merged["patient"].fillna(merged["slide"])
            cols = [f"{t}_prob" for t in model.targets]
            # a patient is as far from the training range as its farthest slide
            extra = {"domain_distance": "max"} if "domain_distance" in merged.columns else {}
            patients = merged.groupby("patient", as_index=False).agg(
                {**{c: "mean" for c in cols}, **extra, "slide": "count"}).rename(columns={"slide": "n_slides"})
            pat_csv = Path(out_csv).with_name(Path(out_csv).stem + "_patients" + (Path(out_csv).suffix or ".csv"))
            atomic_write_table(pat_csv, patients, like=labels_csv)
            run.add_output("patient_predictions", pat_csv)
        run.write_table("predictions", frame)
        if heatmaps_dir:
            run.add_output("heatmaps", heatmaps_dir)
        run.summary.update({"slides": len(frame), "targets": model.targets})
        if "in_domain" in frame.columns:
            run.summary["out_of_domain"] = int((frame["in_domain"] == False).sum())  # noqa: E712 - None is neither
        return {"run_id": run.run_id, "predictions": frame, "out": str(out_csv), "patients": patients}


def _patients_of(labels_csv):
    """`slide` -> `patient` from a slide table (targets not needed)."""
    from vai.core.tables import read_user_table

    p = Path(labels_csv)
    df = read_user_table(p, "labels file", dtype=str, keep_default_na=False)
    if "slide" not in df.columns:
        raise VaiError(f"{p}: no 'slide' column")
    if "patient" not in df.columns:
        df["patient"] = df["slide"]
    df["patient"] = df["patient"].where(df["patient"].str.strip() != "", df["slide"])
    return df[["slide", "patient"]]


def synth_slides(out_dir, n_slides: int, *, size: int = 1024, mpp: float = 0.5, seed: int = 0,
                 slides_per_patient: int = 1, n_sites: int = 4) -> dict[str, Any]:
    from vai.core.store import Store

    from .synth import make_synthetic_dataset

    if n_slides < 1:
        raise VaiError(f"--slides must be at least 1, got {n_slides}")
    if size < 256:
        raise VaiError(f"--size must be at least 256 pixels, got {size}")
    params = {"out": str(out_dir), "slides": n_slides, "size": size, "mpp": mpp, "seed": seed}
    with Store().run(VERTICAL, "synth", params) as run:
        labels = make_synthetic_dataset(out_dir, n_slides, size=size, mpp=mpp, seed=seed,
                                        slides_per_patient=slides_per_patient, n_sites=n_sites)
        run.add_output("slides", out_dir)
        run.add_output("labels", Path(out_dir) / "labels.csv")
        run.summary.update({"slides": n_slides, "synthetic": True,
                            "positives": {t: int((labels[t] == 1).sum()) for t in ("synth_a", "synth_b")}})
        return {"run_id": run.run_id, "labels": str(Path(out_dir) / "labels.csv"), "slides": n_slides}


def tcga_label_table(slides, genes: list[str], out_csv, mutations_dir=None) -> dict[str, Any]:
    from vai.core.io import atomic_write_table, check_table_output
    from vai.core.settings import get_settings
    from vai.core.store import Store

    from .labels import tcga_labels
    from .slide import SLIDE_SUFFIXES

    check_table_output(out_csv)
    genes = [g.strip() for g in genes if g and g.strip()]
    if not genes:
        raise VaiError("--genes is empty: name at least one gene, e.g. --genes KRAS,TP53")
    names: list[str] = []
    for s in slides:
        p = Path(s)
        if p.is_dir():
            names += sorted(q.stem for q in p.iterdir() if q.suffix.lower() in SLIDE_SUFFIXES + (".h5",))
        else:
            names.append(p.stem if p.suffix else p.name)
    names = list(dict.fromkeys(names))  # a slide and its features (x.svs, x.h5) are one slide
    if not names:
        raise VaiError("no slides given: pass TCGA slide files, folders or barcodes")
    folder = Path(mutations_dir) if mutations_dir else get_settings().require_data_dir("path/labels/tcga_mutations")
    with Store().run(VERTICAL, "labels-tcga", {"slides": len(names), "genes": genes, "mutations": str(folder)}) as run:
        df = tcga_labels(names, genes, folder, sites_csv=folder / "tcga-institution-sites.csv")
        atomic_write_table(out_csv, df)
        run.add_output("labels", out_csv)
        run.summary.update({g: {"pos": int((df[g] == 1).sum()), "neg": int((df[g] == 0).sum()),
                                "missing": int(df[g].isna().sum())} for g in genes})
        return {"run_id": run.run_id, "labels": df}
