"""The batch jobs behind the CLI, the page and the demo; each records a run in the results store."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from vai.core.errors import VaiError
from vai.core.io import check_table_output
from vai.core.plots import save_image
from vai.core.progress import Progress, get_logger

from .data import COLOUR_SCALE_FILE, aspect_size, draw_k, find_mask, list_images, load_batch, read_image, read_mask
from .detector import (VERTICAL, FewShotDetector, dataset_scale, normalise_maps, overlay,
                       patch_peaks)

log = get_logger("vai.vision_inspect")
SCORE_COLUMNS = ["path", "score", "threshold", "is_defect", "peak_x", "peak_y"]


def _store():
    from vai.core.store import Store

    return Store()


# -- fit -------------------------------------------------------------------------------------------
def fit_model(good, out: str | Path, *, k: int | None = None, seed: int = 0, backbone: str = "tf_efficientnet_lite0",
              pretrained: bool = True, image_size: int | tuple[int, int] = 224, keep_aspect: bool = False,
              augment: str = "flip", coreset_ratio: float = 0.1, spare_good=None, defects=None,
              device: str | None = None, weights: str | None = None,
              precision: str | None = None) -> tuple[FewShotDetector, dict]:
    """Fit on good images (a folder/glob or paths; with `k`, k of them drawn with the seed from the sorted
    list) and save the model directory. Returns the detector and a summary. `keep_aspect`: `image_size` (an
    int) is the shorter side and the other follows the support images' median aspect ratio, so elongated
    parts are not squashed into a square."""
    paths = list_images(good) if isinstance(good, (str, Path)) else [Path(p) for p in good]
    unreadable: dict = {}
    support = draw_k(paths, k, seed, usable=read_image if k is not None else None, rejected=unreadable)
    for p, err in unreadable.items():
        log.warning("%s; drew another good image in its place", err)
    if keep_aspect:
        if not isinstance(image_size, int):
            raise VaiError("keep_aspect takes one number, the shorter side (e.g. 224), not HEIGHTxWIDTH")
        image_size = aspect_size(support, image_size)
        log.info("model resolution %dx%d (height x width) from the support images' aspect ratio", *image_size)
    params = {"good": str(good), "k": k, "seed": seed, "backbone": backbone, "pretrained": pretrained,
              "image_size": image_size, "keep_aspect": keep_aspect, "augment": augment, "out": str(out)}
    with _store().run(VERTICAL, "fit", params) as run:
        det = FewShotDetector(backbone, pretrained=pretrained, image_size=image_size, augment=augment,
                              coreset_ratio=coreset_ratio, seed=seed, device=device, weights=weights,
                              precision=precision)
        det.fit(support, spare_good=spare_good, defects=defects)
        info = det.threshold_info
        summary = {"n_support": info["n_support"], "bad_images": len(det.fit_bad) + len(unreadable),
                   "bank_size": info["bank_size"],
                   "threshold": det.threshold, "threshold_method": info["method"], "fit_seconds": info["fit_seconds"],
                   "precision": det.config["precision"], "image_size": "x".join(map(str, det.image_hw))}
        if info.get("unlike_support"):  # support images that set the threshold on their own (see the log warning)
            summary["unlike_support"] = [u["path"] for u in info["unlike_support"]]
        det.save(out, metrics={"support_scores_note": "leave-one-out/spare scores of good images, not a test result",
                               "good_scores": info.get("good_scores", [])})
        run.summary.update(summary)
        run.add_output("model", out)
        if det.fit_bad or unreadable:
            run.status = "partial"
            run.summary["errors"] = {**{str(p): e for p, e in unreadable.items()},
                                     **{b.path: b.error for b in det.fit_bad[:20]}}
    return det, summary


# -- score (a resumable per-chunk batch job) -------------------------------------------------------
_DETECTORS: dict[tuple[str, float], FewShotDetector] = {}


def _cached_detector(model: str) -> FewShotDetector:
    key = (str(Path(model).resolve()), (Path(model) / "config.json").stat().st_mtime)
    if key not in _DETECTORS:
        _DETECTORS.clear()
        _DETECTORS[key] = FewShotDetector.load(model)
    return _DETECTORS[key]


def score_chunk(item: dict, *, model: str, maps_dir: str | None, compile: bool | None = False,
                job_images: int | None = None) -> dict:
    """One chunk of images: scores (and raw patch grids saved as .npy when heatmaps are wanted).
    `compile`/`job_images`: `vai.core.compile`'s rule for compiling the backbone (True, False, None = when it pays
    for a job of `job_images` images on this worker)."""
    det = _cached_detector(model)
    det.extractor.use_compile(compile, n_items=job_images)
    sizes: list = []
    imgs, ok, bad = load_batch([Path(p) for p in item["paths"]], det.image_size, det.config.get("deep_max"), sizes)
    scores, patch = det.score_patches(imgs)
    peaks = patch_peaks(patch, sizes)
    out = {"rows": [{"path": str(p), "score": float(s), "peak_x": x, "peak_y": y}
                    for p, s, (x, y) in zip(ok, scores, peaks)],
           "bad": [{"path": b.path, "error": b.error} for b in bad]}
    if maps_dir:
        from vai.core.io import atomic_path

        target = Path(maps_dir) / f"{item['key']}.npy"
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, patch.astype(np.float32))
        out["maps"] = str(target)
    return out


def score_images(model: str | Path, images, out_csv: str | Path, *, heatmaps: str | Path | None = None,
                 chunk_size: int = 32, workers: int = 1, engine: str = "local", compile: bool | None = None):
    """Score many images in chunks with progress and resume (`vai.core.jobs.run_job`); write the CSV
    (`path, score, threshold, is_defect`) and, with `heatmaps`, overlay PNGs normalised over the whole set and a
    `heatmap` column with each row's PNG (see `heatmap_names`)."""
    import pandas as pd

    from vai.core.io import atomic_write_table
    from vai.core.jobs import run_job

    model = str(model)
    out_csv = check_table_output(out_csv)
    det = FewShotDetector.load(model)
    paths = list_images(images) if isinstance(images, (str, Path)) else [Path(p) for p in images]
    job_dir = out_csv.with_name(out_csv.stem + ".job")
    model_id = hashlib.sha1((Path(model) / "config.json").read_bytes()).hexdigest()[:10]
    chunks = []
    for i in range(0, len(paths), chunk_size):
        part = [str(p) for p in paths[i:i + chunk_size]]
        # size and modification time too: a camera that overwrites latest/*.png must get new scores on a re-run
        h = hashlib.sha1(("\n".join(f"{p}|{_file_stamp(p)}" for p in part) + model_id
                          + str(bool(heatmaps))).encode()).hexdigest()[:10]
        chunks.append({"key": f"chunk{i // chunk_size:05d}-{h}", "paths": part})
    params = {"model": model, "images": str(images) if isinstance(images, (str, Path)) else f"{len(paths)} paths",
              "out": str(out_csv), "heatmaps": str(heatmaps) if heatmaps else None, "chunk_size": chunk_size}
    with _store().run(VERTICAL, "score", params) as run:
        t0 = time.monotonic()
        res = run_job(score_chunk, chunks, out_dir=job_dir, key=lambda c: c["key"], engine=engine, workers=workers,
                      fn_kwargs={"model": model, "maps_dir": str(job_dir / "maps") if heatmaps else None,
                                 "compile": compile, "job_images": len(paths) // max(1, workers)},
                      # not speed knobs; "peak": chunks scored before rows had a peak location are scored again
                      settings={"model": model, "model_id": model_id, "maps": bool(heatmaps), "peak": True},
                      desc="score chunks", store_run=run)
        rows, bad, map_files = [], [], []
        for c in chunks:
            r = res.results.get(c["key"])
            if r is None:
                bad += [{"path": p, "error": res.failed.get(c["key"], "chunk failed")} for p in c["paths"]]
                continue
            rows += r["rows"]
            bad += r["bad"]
            if r.get("maps"):
                map_files.append((r["rows"], r["maps"]))
        frame = pd.DataFrame(rows, columns=["path", "score", "peak_x", "peak_y"])
        frame["threshold"] = det.threshold
        frame["is_defect"] = frame["score"] > det.threshold
        frame = frame[SCORE_COLUMNS]
        names = None
        if heatmaps:  # each row names its own heatmap file
            names = heatmap_names(frame["path"].tolist(), _images_root(images))
            frame["heatmap"] = [str(Path(heatmaps) / names[p]) for p in frame["path"]]
        atomic_write_table(out_csv, frame)
        run.add_output("scores", out_csv)
        if len(frame):
            run.add_output("histogram", score_histogram(frame["score"].to_numpy(), det.threshold,
                                                        out_csv.with_name(out_csv.stem + "_histogram.png")))
        run.write_table("scores", frame)
        seconds = time.monotonic() - t0
        run.summary.update({"images": len(frame), "bad_images": len(bad), "defects": int(frame["is_defect"].sum()),
                            "threshold": det.threshold, "seconds": round(seconds, 2),
                            "images_per_s": round(len(frame) / max(seconds, 1e-9), 2)})
        if bad:
            run.status = "partial"
            run.summary["errors"] = {b["path"]: b["error"] for b in bad[:20]}
            for b in bad:
                log.warning("skipped %s", b["error"])
        if heatmaps and map_files:
            scale = write_heatmaps(det, map_files, Path(heatmaps), names)
            run.add_output("heatmaps", heatmaps)
            run.summary["heatmap_scale"] = list(scale)
    return frame, bad


def score_histogram(scores: np.ndarray, threshold: float, path: Path) -> Path:
    """The batch at a glance: its scores with the saved threshold, and how many are above it."""
    from vai.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    flagged = int((scores > threshold).sum())
    ax.hist(scores, bins=min(40, max(10, len(scores) // 5)), color="steelblue")
    ax.axvline(threshold, color="crimson", ls="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("images")
    ax.set_title(f"{len(scores)} images, {flagged} above the threshold", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _file_stamp(path: str) -> str:
    try:
        st = os.stat(path)
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"


def _images_root(images) -> str | None:
    """The folder that `--images` names (a folder, a file's folder, a glob's fixed leading folders), or None
    for a list of paths: heatmap sub-folders are taken below it, so they do not depend on what the folder holds."""
    if not isinstance(images, (str, Path)):
        return None
    p = Path(images).expanduser()
    if p.is_dir():
        return os.path.abspath(p)
    if p.is_file():
        return os.path.abspath(p.parent)
    fixed = []
    for part in p.parts:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return os.path.abspath(Path(*fixed)) if fixed and len(fixed) < len(p.parts) else None


def heatmap_names(paths: list[str], root: str | None = None) -> dict[str, str]:
    """Image path -> heatmap file name `<image file name>_heatmap.png` (the extension kept, so `cell.bmp` and
    `cell.tiff` get `cell.bmp_heatmap.png` and `cell.tiff_heatmap.png`), in the image's sub-folders below `root`
    (the `--images` folder; default: the images' common folder), so that `test/good/000.png` and
    `test/crack/000.png` get `good/000.png_heatmap.png` and `crack/000.png_heatmap.png`. Every image's name is
    its own: it does not change when another image is added beside it, and no two images share one."""
    if not paths:
        return {}
    absolute = [os.path.abspath(p) for p in paths]
    if root is None or any(Path(os.path.relpath(a, root)).parts[0] == os.pardir for a in absolute):
        root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return {p: str(Path(os.path.relpath(a, root)).with_name(Path(a).name + "_heatmap.png"))
            for p, a in zip(paths, absolute)}


def write_heatmaps(det: FewShotDetector, map_files: list[tuple[list[dict], str]], out_dir: Path,
                   names: dict[str, str] | None = None) -> tuple[float, float]:
    """Overlay PNGs for every scored image, all on one scale computed over the whole set; `names`: image path ->
    file name below `out_dir` (default `heatmap_names` of the scored paths)."""
    samples = []
    rng = np.random.default_rng(0)
    for _, f in map_files:
        m = det.smooth(np.load(f))
        flat = m.reshape(-1)
        samples.append(rng.choice(flat, min(flat.size, 200_000), replace=False))
    scale = dataset_scale(np.concatenate(samples), det.threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(sum(len(r) for r, _ in map_files), "heatmaps")
    if names is None:
        names = heatmap_names([row["path"] for rows, _ in map_files for row in rows])
    for rows, f in map_files:
        maps = normalise_maps(det.smooth(np.load(f)), scale)
        for row, heat in zip(rows, maps):
            img = read_image(row["path"], det.config.get("deep_max"))
            target = out_dir / names[row["path"]]
            target.parent.mkdir(parents=True, exist_ok=True)
            save_image(target, overlay(img, heat))
            progress.update()
    progress.close()
    write_colour_scale(out_dir / COLOUR_SCALE_FILE, scale, det.threshold)
    return scale


def write_colour_scale(path: Path, scale: tuple[float, float], threshold: float) -> Path:
    """The legend every heatmap in the folder shares (one scale for the whole scored set): the patch distance each
    colour stands for, with the image threshold marked (an image's score is its re-weighted largest patch distance,
    so the threshold is on nearly, not exactly, the same scale as the pixels)."""
    from vai.core.plots import colour_scale

    lo, hi = scale
    at = (threshold - lo) / max(hi - lo, 1e-12)
    ticks = {0.0: f"{lo:.3g}", 1.0: f"{hi:.3g}"}
    if at >= 0.9:  # the top of the scale is the threshold (a set of good parts)
        ticks[1.0] = f"{hi:.3g} (image threshold {threshold:.3g})"
    elif at > 0.1:
        ticks[at] = f"image threshold {threshold:.3g}"
    return colour_scale(path, title="One colour scale for every heatmap in this folder",
                        ticks=dict(sorted(ticks.items())), scale_label="distance to the nearest good patch "
                        "(an image's score is its re-weighted maximum)")


# -- evaluate --------------------------------------------------------------------------------------
def evaluate_model(model: str | Path, good, defect, *, masks: str | Path | None = None, out_dir: str | Path | None = None,
                   save_threshold: bool = False) -> dict:
    """Image AUROC, pixel AUROC and AUPRO (when masks exist), F1/recall/FPR at the saved threshold and the
    F1-optimal threshold; JSON, per-image CSV and plots in `out_dir`."""
    import pandas as pd

    from vai.core.io import atomic_write_json, atomic_write_table
    from vai.core.settings import get_settings

    from . import metrics as M

    det = FewShotDetector.load(model)
    good_paths = list_images(good)
    defect_paths = list_images(defect)
    overlap = set(good_paths) & set(defect_paths)
    if overlap:
        raise VaiError(f"{len(overlap)} images are both in --good and --defect (e.g. {sorted(overlap)[0]}): "
                       "point --defect at a folder without the good images")
    if masks and not Path(masks).is_dir():
        raise VaiError(f"{masks}: masks folder not found (--masks takes the folder of masks named like the images)")
    mask_files = {}
    if masks:  # matched before scoring: a folder with none of the defects' masks would silently drop pixel metrics
        mask_files = {p: find_mask(p, Path(masks)) for p in defect_paths}
        missing = [p for p, m in mask_files.items() if m is None]
        if len(missing) == len(defect_paths):
            raise VaiError(f"--masks {masks}: none of the {len(defect_paths)} defect images has a mask there (looked "
                           f"for e.g. {missing[0].stem}.png or {missing[0].stem}_mask.png, in sub-folders too); "
                           "point --masks at the folder of masks named like the defect images")
        if missing:
            log.warning("--masks %s: %d of %d defect images have no mask (e.g. %s): pixel metrics use the %d that do",
                        masks, len(missing), len(defect_paths), missing[0], len(defect_paths) - len(missing))
    support = {os.path.abspath(p) for p in det.support_paths}
    seen = [p for p in good_paths + defect_paths if os.path.abspath(p) in support]
    if seen:  # the model has seen them: their scores are optimistic, not a test result
        log.warning("%d of the evaluation images are the model's own support images (e.g. %s): their scores are "
                    "not a held-out result; evaluate on images the model was not fitted on", len(seen), seen[0])
    out = Path(out_dir) if out_dir else get_settings().runs_dir / f"inspect-evaluate-{time.strftime('%Y%m%d-%H%M%S')}"
    params = {"model": str(model), "good": str(good), "defect": str(defect), "masks": str(masks) if masks else None,
              "out": str(out)}
    with _store().run(VERTICAL, "evaluate", params) as run:
        g = det.score(good_paths)
        d = det.score(defect_paths)
        scores = np.r_[g.scores, d.scores]
        labels = np.r_[np.zeros(len(g.scores)), np.ones(len(d.scores))]
        result = {"n_good": len(g.scores), "n_defect": len(d.scores), "bad_images": len(g.bad) + len(d.bad),
                  "support_images_evaluated": len(seen),
                  "image_auroc": M.image_auroc(labels, scores),
                  "at_saved_threshold": M.at_threshold(labels, scores, det.threshold),
                  "threshold_method": det.threshold_info.get("method")}
        from .detector import f1_optimal_threshold

        t_f1, f1 = f1_optimal_threshold(labels, scores)
        result["f1_optimal"] = M.at_threshold(labels, scores, t_f1)
        if masks:
            mask_list, map_list, missing = [], [], 0
            s = det.image_hw
            for p, mp in zip(d.paths, d.maps):
                mf = mask_files.get(p)
                if mf is None:
                    missing += 1
                    continue
                mask_list.append(read_mask(mf, s))
                map_list.append(mp)
            if mask_list:
                mask_list += [np.zeros(s, bool)] * len(g.maps)
                map_list += list(g.maps)
                mk, mp = np.stack(mask_list), np.stack(map_list)
                result["pixel_auroc"] = M.pixel_auroc(mk, mp)
                result["aupro"] = M.aupro(mk, mp)
                result["masks_found"] = len(mask_list) - len(g.maps)
            result["masks_missing"] = missing
        frame = pd.DataFrame({"path": [str(p) for p in g.paths + d.paths], "label": labels.astype(int),
                              "score": scores, "threshold": det.threshold, "is_defect": scores > det.threshold})
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_table(out / "scores.csv", frame)
        plots = M.plot_evaluation(labels, scores, det.threshold, out)
        if save_threshold:
            det.set_threshold(t_f1, "f1_optimal")
            det.threshold_info["f1_at_threshold"] = f1
            det.save(model, metrics=dict(det.model_dir.metrics))
            result["threshold_saved"] = t_f1
        atomic_write_json(out / "evaluation.json", result)
        run.write_table("scores", frame)
        for name, p in {"evaluation": out / "evaluation.json", **plots}.items():
            run.add_output(name, p)
        run.summary.update({k: v for k, v in result.items() if not isinstance(v, dict)})
        run.summary["f1_at_saved_threshold"] = result["at_saved_threshold"]["f1"]
    return result


# -- defect typing ---------------------------------------------------------------------------------
def types_fit(model: str | Path, defects_root: str | Path, out: str | Path, *, unknown_margin: float = 1.3) -> dict:
    from .defect_types import DefectTyper, examples_from_folder

    examples = examples_from_folder(defects_root)
    params = {"model": str(model), "defects": str(defects_root), "out": str(out)}
    with _store().run(VERTICAL, "types-fit", params) as run:
        typer = DefectTyper(FewShotDetector.load(model), unknown_margin=unknown_margin).fit(examples)
        typer.save(out)
        bad = {str(b.path) for b in typer.bad}
        summary = {"types": {k: sum(str(p) not in bad for p in v) for k, v in examples.items()},  # images used
                   "radius": typer.radius, "bad_images": len(typer.bad)}
        for b in typer.bad:
            log.warning("skipped %s", b.error)
        run.summary.update(summary)
        if typer.bad:
            run.status = "partial"
            run.summary["errors"] = {b.path: b.error for b in typer.bad[:20]}
        run.add_output("typer", out)
    return summary


def types_predict(typer_dir: str | Path, images, out_csv: str | Path):
    import pandas as pd

    from vai.core.io import atomic_write_table

    from .defect_types import DefectTyper

    out_csv = check_table_output(out_csv)
    params = {"typer": str(typer_dir), "images": str(images), "out": str(out_csv)}
    with _store().run(VERTICAL, "types-predict", params) as run:
        typer = DefectTyper.load(typer_dir)
        preds = typer.predict(images)
        frame = pd.DataFrame([p.__dict__ for p in preds],
                             columns=["path", "type", "nearest_type", "distance", "score", "is_defect"])
        atomic_write_table(Path(out_csv), frame)
        run.write_table("types", frame)
        run.add_output("types_csv", out_csv)
        run.summary.update({"images": len(frame), "by_type": frame["type"].value_counts().to_dict(),
                            "bad_images": len(typer.predict_bad)})
        frame.attrs["bad_images"] = len(typer.predict_bad)  # the CLI's exit status
        if typer.predict_bad:
            run.status = "partial"
            run.summary["errors"] = {b.path: b.error for b in typer.predict_bad[:20]}
            for b in typer.predict_bad:
                log.warning("skipped %s", b.error)
    return frame
