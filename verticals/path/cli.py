"""`vai path ...`: whole-slide images to genotype predictions. Heavy libraries load inside the handlers."""
from __future__ import annotations

import argparse
import json
import sys

from vai.core.io import model_dir_arg, output_dir_arg, table_output_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("path", help="whole-slide pathology: slides to genotype predictions",
                       description="Whole-slide pathology: tiling, embedding, MIL genotype models, heatmaps.")
    verbs = p.add_subparsers(dest="path_command", metavar="VERB")

    v = verbs.add_parser("info", help="print a slide's metadata as JSON")
    v.add_argument("slide")
    v.add_argument("--slide-mpp", "--mpp", dest="slide_mpp", type=float, help="µm/px at level 0: for slides whose metadata lacks it (a given value wins over the metadata, with a warning when they differ)")
    v.set_defaults(func=cmd_info)

    v = verbs.add_parser("tissue", help="tissue masks (PNG) and tissue fractions")
    v.add_argument("slides", nargs="+", metavar="SLIDE")
    v.add_argument("--out", type=output_dir_arg, required=True)
    v.set_defaults(func=cmd_tissue)

    def tiling_args(v, with_min=True):
        v.add_argument("--mpp", type=float, default=0.5, help="target µm/px of the tiles (default 0.5, i.e. 20x)")
        v.add_argument("--tile", type=int, default=256, help="tile side in pixels (default 256)")
        if with_min:
            v.add_argument("--min-tissue", type=float, default=0.5, help="minimum tissue fraction per tile (default 0.5)")
        v.add_argument("--slide-mpp", type=float, help="level-0 µm/px for slides whose metadata lacks it")

    v = verbs.add_parser("tile", help="tile coordinates at a target resolution (HDF5 per slide)")
    v.add_argument("slides", nargs="+", metavar="SLIDE")
    v.add_argument("--out", type=output_dir_arg, required=True)
    tiling_args(v)
    v.add_argument("--workers", type=int, default=1)
    v.set_defaults(func=cmd_tile)

    v = verbs.add_parser("embed", help="embed tiles with a timm backbone (features per slide, resumable)")
    v.add_argument("slides", nargs="+", metavar="SLIDE")
    v.add_argument("--out", type=output_dir_arg, required=True)
    v.add_argument("--backbone", default="tf_efficientnet_lite0")
    v.add_argument("--weights", help="local .safetensors weights for backbones without bundled weights")
    v.add_argument("--batch-size", type=int, default=64)
    v.add_argument("--workers", type=int, default=None, help="DataLoader workers decoding tiles (default: cores-1, max 4)")
    v.add_argument("--engine", choices=["local", "ray"], default="local")
    v.add_argument("--address", help="Ray cluster address for --engine ray")
    v.add_argument("--device", help="cpu or cuda (default: auto)")
    v.add_argument("--stain", choices=["macenko", "reinhard"], help="stain-normalise tiles before embedding")
    v.add_argument("--stain-target", help="reference image for --stain")
    v.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the backbone: auto = on a GPU, or on CPU for jobs of 2,000+ tiles (a one-off "
                        "C++ build of ~30 s, then a faster forward); VAI_DISABLE_COMPILE=1 forces off")
    tiling_args(v)
    v.set_defaults(func=cmd_embed)

    v = verbs.add_parser("train", help="train a MIL genotype model with patient-level cross-validation")
    v.add_argument("--features", required=True)
    v.add_argument("--labels", required=True, help="slide table CSV: slide, [patient], [site], one column per target")
    v.add_argument("--targets", required=True, help="comma-separated target columns, e.g. KRAS,TP53")
    v.add_argument("--out", type=model_dir_arg, required=True, help="model directory to write")
    v.add_argument("--model", choices=["abmil", "transmil"], default="abmil")
    v.add_argument("--folds", type=int, default=5)
    v.add_argument("--epochs", type=int, default=30)
    v.add_argument("--patience", type=int, default=6)
    v.add_argument("--lr", type=float, default=2e-4)
    v.add_argument("--max-tiles", type=int, default=4096, help="tiles sampled per bag per training step (0 = all)")
    v.add_argument("--control", type=int, default=0, metavar="R", help="also run R shuffled-label cross-validations")
    v.add_argument("--threads", type=int, help="torch threads while training")
    v.set_defaults(func=cmd_train)

    v = verbs.add_parser("predict", help="per-slide probabilities (CSV) and attention heatmaps")
    v.add_argument("slides", nargs="*", metavar="SLIDE", help="slide files to embed first (optional)")
    v.add_argument("--model", required=True)
    v.add_argument("--features", help="features folder from `vai path embed` (or where to embed SLIDEs)")
    v.add_argument("--out", type=table_output_arg(), required=True, help="predictions table (.csv, .tsv, .xlsx or .parquet)")
    v.add_argument("--heatmaps", type=output_dir_arg, help="folder for heatmap and top-tile PNGs")
    v.add_argument("--labels", help="slide table with a patient column: also write <out>_patients.csv")
    v.add_argument("--slide-mpp", type=float)
    v.add_argument("--batch-size", type=int, default=64)
    v.set_defaults(func=cmd_predict)

    v = verbs.add_parser("synth", help="write synthetic slides with a planted morphology and labels.csv")
    v.add_argument("--out", type=output_dir_arg, required=True)
    v.add_argument("--slides", type=int, default=12)
    v.add_argument("--size", type=int, default=1024, help="slide side in pixels at level 0")
    v.add_argument("--slide-mpp", type=float, default=0.5)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--slides-per-patient", type=int, default=1)
    v.add_argument("--sites", type=int, default=4)
    v.set_defaults(func=cmd_synth)

    v = verbs.add_parser("labels-tcga", help="slide table from the TCGA mutation tables (WT 0, mutation 1, NS blank)")
    v.add_argument("slides", nargs="+", metavar="SLIDE", help="TCGA slide files, folders or barcodes")
    v.add_argument("--genes", required=True, help="comma-separated genes, e.g. KRAS,TP53")
    v.add_argument("--out", type=table_output_arg(), required=True, help="labels table (.csv, .tsv, .xlsx or .parquet)")
    v.add_argument("--mutations", help="folder with tcga-mutations-*.txt (default <data dir>/path/labels/tcga_mutations)")
    v.set_defaults(func=cmd_labels_tcga)

    v = verbs.add_parser("stain", help="stain-normalise images towards a target (Macenko or Reinhard)")
    v.add_argument("images", nargs="+")
    v.add_argument("--target", required=True)
    v.add_argument("--method", choices=["macenko", "reinhard"], default="macenko")
    v.add_argument("--convention", choices=["staintools", "histolab"], default="staintools")
    v.add_argument("--out", type=output_dir_arg, required=True)
    v.set_defaults(func=cmd_stain)

    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_info(args) -> int:
    from .slide import SlideReader

    with SlideReader(args.slide, mpp=args.slide_mpp) as s:
        info = s.info().as_dict()
    _print(info)
    if info["mpp_x"] is None:  # the JSON above still shows the rest; the exit status says it is incomplete
        print(f"error: {args.slide} has no resolution (mpp) or objective power in its metadata: pass it with --mpp "
              "(µm per pixel at full resolution, e.g. 0.25 for 40x, 0.5 for 20x)", file=sys.stderr)
        return 1
    return 0


def cmd_tissue(args) -> int:
    from .pipeline import tissue_masks

    res = tissue_masks(args.slides, args.out)
    for name, row in res["slides"].items():
        if row["no_tissue"]:
            print(f"warning: no tissue found on {name}", file=sys.stderr)
    _print(res["slides"])
    return _job_exit(res)


def _job_exit(res: dict) -> int:
    if res.get("failed"):
        for k, e in res["errors"].items():
            print(f"error: {k}: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_tile(args) -> int:
    from .pipeline import tile_slides

    res = tile_slides(args.slides, args.out, target_mpp=args.mpp, tile_size=args.tile, min_tissue=args.min_tissue,
                      slide_mpp=args.slide_mpp, workers=args.workers)
    for name in res["no_tissue"]:
        print(f"warning: no tissue found on {name} (0 tiles)", file=sys.stderr)
    _print({k: v for k, v in res.items() if k != "results"})
    return _job_exit(res)


def cmd_embed(args) -> int:
    from .pipeline import embed_slides

    res = embed_slides(args.slides, args.out, backbone=args.backbone, weights=args.weights, batch_size=args.batch_size,
                       num_workers=args.workers, engine=args.engine, target_mpp=args.mpp, tile_size=args.tile,
                       min_tissue=args.min_tissue, slide_mpp=args.slide_mpp, device=args.device, stain=args.stain,
                       stain_target=args.stain_target, address=args.address,
                       compile={"auto": None, "on": True, "off": False}[args.compile])
    _print({k: v for k, v in res.items() if k != "results"})
    return _job_exit(res)


def cmd_train(args) -> int:
    from .pipeline import train_model

    res = train_model(args.features, args.labels, args.targets.split(","), args.out, kind=args.model, folds=args.folds,
                      max_epochs=args.epochs, patience=args.patience, lr=args.lr, max_tiles=args.max_tiles or None,
                      control=args.control, seed=getattr(args, "global_seed", None), threads=args.threads,
                      progress=sys.stderr.isatty())
    out = {"run_id": res["run_id"], "model": res["model"], "cv_patient_level": res["summary"],
           "folds": res["report"]["cv"]["folds"], "grouped_by": res["report"]["cv"]["grouped_by"]}
    if "shuffled_label_control" in res["report"]:
        out["shuffled_control_mean_auroc"] = res["report"]["shuffled_label_control"]["mean_auroc"]
    _print(out)
    return 0


def cmd_predict(args) -> int:
    from .pipeline import predict_features

    res = predict_features(args.model, args.features, args.out, heatmaps_dir=args.heatmaps, slides=args.slides or None,
                           batch_size=args.batch_size, slide_mpp=args.slide_mpp, labels_csv=args.labels)
    frame = res["predictions"]
    print(frame.to_csv(index=False), end="")
    failed = frame[frame["error"] != ""]
    for slide, err in zip(failed["slide"], failed["error"]):
        print(f"error: {slide}: {err}", file=sys.stderr)
    if len(failed):
        print(f"{len(failed)} of {len(frame)} slide(s) have no prediction (see the error column of {args.out})",
              file=sys.stderr)
    return 1 if len(failed) else 0


def cmd_synth(args) -> int:
    from .pipeline import synth_slides

    res = synth_slides(args.out, args.slides, size=args.size, mpp=args.slide_mpp, seed=args.seed,
                       slides_per_patient=args.slides_per_patient, n_sites=args.sites)
    _print(res)
    return 0


def cmd_labels_tcga(args) -> int:
    from .pipeline import tcga_label_table

    genes = [g.strip() for g in args.genes.split(",") if g.strip()]
    res = tcga_label_table(args.slides, genes, args.out, mutations_dir=args.mutations)
    print(res["labels"].to_csv(index=False), end="")
    return 0


def cmd_stain(args) -> int:
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from vai.core.io import atomic_path

    from .stain import StainNormalizer, read_rgb

    norm = StainNormalizer.from_target(args.method, args.target, args.convention)
    out = Path(args.out)
    for img in args.images:
        res = norm.transform(read_rgb(img))
        with atomic_path(out / f"{Path(img).stem}_{args.method}.png", suffix=".png") as tmp:
            Image.fromarray(np.asarray(res)).save(tmp, format="PNG")
        print(out / f"{Path(img).stem}_{args.method}.png")
    return 0
