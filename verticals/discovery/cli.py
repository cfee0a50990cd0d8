"""`vai discovery ...`: train, predict, fingerprint, explain, screen, zoo, benchmark, mixture.

Heavy libraries (RDKit, torch, LightGBM) are imported inside the handlers so `vai --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vai.core.io import model_dir_arg, output_dir_arg, table_output_arg

VERTICAL = "discovery"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("discovery", help="cosmetic material property prediction (RDKit)",
                              description="Property models for cosmetic ingredients: train, predict with "
                                          "intervals, explain, screen libraries, the property zoo.")
    sub = p.add_subparsers(dest="discovery_command", metavar="VERB")

    t = sub.add_parser("train", help="train a property model from a CSV/SDF/.smi table")
    t.add_argument("--data", required=True, help="CSV (any SMILES column), SDF or .smi file")
    t.add_argument("--smiles-col", help="SMILES column (default: a column named like smiles)")
    t.add_argument("--target-col", required=True, help="target column; comma-separated for multi-task")
    t.add_argument("--task", choices=["regression", "classification"], default="regression")
    t.add_argument("--model", choices=["mpnn", "gbm", "ensemble", "gp"], default="gbm",
                   help="gp: Gaussian process (regression; the small-data choice, a few seconds for ~1,000 molecules)")
    t.add_argument("--split", choices=["scaffold", "random", "cluster"], default="scaffold")
    t.add_argument("--sizes", default="0.8,0.1,0.1", help="train,val,test fractions (default 0.8,0.1,0.1)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=60, help="D-MPNN epochs (early stopping on validation)")
    t.add_argument("--gbm-members", type=int, default=3, help="bagged LightGBM members (ensemble spread)")
    t.add_argument("--mpnn-members", type=int, default=1)
    t.add_argument("--no-descriptors", action="store_true", help="Morgan counts / graph only, no RDKit 2D descriptors")
    t.add_argument("--keep-salts", action="store_true",
                   help="an organic salt keeps its counter-ions (sodium and calcium citrate stay two substances): "
                        "for properties of the salt itself, such as solubility")
    t.add_argument("--alerts", action="store_true",
                   help="skin-sensitisation structural alerts (protein-reactivity domains) as GBM inputs, and an "
                        "`alerts` column naming them in every prediction")
    t.add_argument("--solvent-col", help="solvent SMILES column, a second model input (e.g. for UV lambda max)")
    t.add_argument("--alpha", type=float, default=0.1, help="conformal miscoverage (0.1 = 90%% intervals)")
    t.add_argument("--base-model", help="a trained model (e.g. a zoo model on a large public set) to start from: the "
                                        "new model learns its error on this data (transfer to small sets); a regression "
                                        "base for regression, a binary classifier base for --task classification with "
                                        "--model gbm (a correction to its log-odds); a base that takes the solvent "
                                        "needs --solvent-col here too")
    t.add_argument("--base-target", help="which target of a multi-target --base-model to start from")
    t.add_argument("--out", type=model_dir_arg, required=True, help="model directory to write")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("predict", help="predict a table with a trained model")
    pr.add_argument("--model", required=True, help="model directory")
    pr.add_argument("--data", required=True)
    pr.add_argument("--smiles-col")
    pr.add_argument("--solvent-col")
    pr.add_argument("--out", type=table_output_arg((".sdf", ".sdf.gz")), required=True, help="output table: all input columns + predictions; .csv (in the input CSV's separator and decimal mark), .tsv, .xlsx, .parquet, .csv.gz, or .sdf / .sdf.gz (structures with the predictions as SD tags)")
    pr.set_defaults(func=cmd_predict)

    fp = sub.add_parser("fingerprint", help="the vectors a model reads molecules by (learned D-MPNN vectors, or its "
                                            "input features), for other tools")
    fp.add_argument("--model", required=True, help="model directory")
    fp.add_argument("--data", required=True, help="CSV/Excel (any SMILES column), SDF or .smi")
    fp.add_argument("--smiles-col")
    fp.add_argument("--out", type=table_output_arg(), required=True, help="output table (.parquet, .csv, .tsv or .xlsx)")
    fp.set_defaults(func=cmd_fingerprint)

    e = sub.add_parser("explain", help="atom contributions drawn on the molecule (PNG/SVG)")
    e.add_argument("--model", required=True)
    e.add_argument("--smiles", nargs="+", help="SMILES to explain")
    e.add_argument("--data", help="or a table of molecules (first --limit rows)")
    e.add_argument("--smiles-col")
    e.add_argument("--solvent", help="solvent SMILES for solvent-aware models")
    e.add_argument("--target", help="which target of a multi-task model to explain (default: its first)")
    e.add_argument("--limit", type=int, default=20)
    e.add_argument("--format", choices=["png", "svg"], default="png")
    e.add_argument("--out", type=output_dir_arg, required=True, help="output folder")
    e.set_defaults(func=cmd_explain)

    s = sub.add_parser("screen", help="score a library against property models with constraints")
    s.add_argument("--library", required=True, help="CSV/.smi/SDF library (streamed in chunks)")
    s.add_argument("--smiles-col")
    s.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="property model (repeat)")
    s.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                   help="e.g. 'logS>-3', 'logkp<-2.5', 'sens<0.5', 'lambda_max=290:320' (repeat)")
    s.add_argument("--similar-to", action="append", default=[], metavar="SMILES", help="Tanimoto similarity query")
    s.add_argument("--solvent", help="solvent SMILES for solvent-aware models (e.g. CCO)")
    s.add_argument("--top", type=int, default=1000)
    s.add_argument("--chunk-size", type=int, default=5000)
    s.add_argument("--engine", choices=["local", "ray"], default="local")
    s.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: one per CPU for 20,000+ molecules, else in-process)")
    s.add_argument("--address", help="Ray cluster address (engine ray)")
    s.add_argument("--no-domain", action="store_true", help="skip the applicability-domain similarity (faster)")
    s.add_argument("--out", type=output_dir_arg, required=True, help="output folder (ranked.csv, ranked.xlsx, ranked.sdf, ranked.png, scored parts)")
    s.set_defaults(func=cmd_screen)

    z = sub.add_parser("zoo", help="train and evaluate the property zoo on the real data sets, with model cards")
    z.add_argument("--data-dir", help="data dir holding discovery/ (default: the global data dir)")
    z.add_argument("--out", type=output_dir_arg, help="zoo folder (default <home>/models/discovery/zoo)")
    z.add_argument("--only", help="comma-separated properties (default: all)")
    z.add_argument("--seeds", default="0,1,2")
    z.add_argument("--model", choices=["gbm", "mpnn", "ensemble", "gp"], default=None,
                   help="override each property's default model kind")
    z.add_argument("--epochs", type=int, default=None)
    z.add_argument("--retrain", action="store_true",
                   help="train every property again (default: skip those already trained with these settings on "
                        "the same data)")
    z.add_argument("--list", action="store_true", help="list the properties and exit")
    z.set_defaults(func=cmd_zoo)

    b = sub.add_parser("benchmark", help="ESOL/FreeSolv/Cheruvu scaffold-balanced benchmark (seeds 0,1,2)")
    b.add_argument("--data-dir")
    b.add_argument("--datasets", default="esol,freesolv,cheruvu_logkp")
    b.add_argument("--seeds", default="0,1,2")
    b.add_argument("--model", choices=["gbm", "mpnn", "ensemble", "gp"], default="gbm")
    b.add_argument("--epochs", type=int, default=60)
    b.add_argument("--out", type=output_dir_arg, required=True, help="output folder (splits JSON, results JSON/markdown)")
    b.set_defaults(func=cmd_benchmark)

    m = sub.add_parser("mixture", help="formulation property from ingredients and fractions")
    msub = m.add_subparsers(dest="mixture_command", metavar="ACTION")
    mt = msub.add_parser("train", help="train on a CSV with smiles_1..n, frac_1..n and a target column")
    mt.add_argument("--data", required=True)
    mt.add_argument("--target-col", required=True)
    mt.add_argument("--epochs", type=int, default=150)
    mt.add_argument("--seed", type=int, default=0)
    mt.add_argument("--out", type=model_dir_arg, required=True, help="mixture model directory to write")
    mt.set_defaults(func=cmd_mixture_train)
    mp = msub.add_parser("predict", help="predict formulations (smiles_1..n, frac_1..n) with a mixture model")
    mp.add_argument("--model", required=True)
    mp.add_argument("--data", required=True)
    mp.add_argument("--out", type=table_output_arg(), required=True, help="predictions table (.csv, .tsv, .xlsx or .parquet)")
    mp.set_defaults(func=cmd_mixture_predict)
    m.set_defaults(func=lambda a: m.print_help())

    p.set_defaults(func=lambda a: p.print_help())


def _store():
    from vai.core.store import Store

    return Store()


def _sizes(text: str) -> tuple[float, float, float]:
    from vai.core.errors import VaiError

    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise VaiError(f"--sizes {text!r}: write three fractions, e.g. 0.8,0.1,0.1") from None
    if len(parts) != 3 or abs(sum(parts) - 1) > 1e-6:
        raise VaiError(f"--sizes {text!r}: three fractions that sum to 1")
    return parts  # type: ignore[return-value]


def cmd_train(args) -> int:
    from .workflows import train_file

    targets = [c.strip() for c in args.target_col.split(",") if c.strip()]
    params = {k: v for k, v in vars(args).items() if k not in ("func",) and not callable(v)}
    with _store().run(VERTICAL, "train", params) as run:
        _, metrics = train_file(args.data, smiles_col=args.smiles_col, target_cols=targets, out=args.out,
                                task=args.task, model=args.model, split=args.split, seed=args.seed,
                                sizes=_sizes(args.sizes), solvent_col=args.solvent_col, epochs=args.epochs,
                                gbm_members=args.gbm_members, mpnn_members=args.mpnn_members,
                                use_descriptors=not args.no_descriptors, alpha=args.alpha, alerts=args.alerts, keep_salts=args.keep_salts,
                                base_model=args.base_model, base_target=args.base_target, progress=True)
        run.add_output("model", args.out)
        run.summary.update({"test": metrics.get("test"), "data": metrics.get("data"), "task": metrics.get("task")})
    print(json.dumps({"model": args.out, "test": metrics.get("test"), "data": metrics.get("data")}, indent=2, default=str))
    return 0


def cmd_predict(args) -> int:
    from .workflows import predict_file

    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "predict", params) as run:
        pred = predict_file(args.model, args.data, args.out, args.smiles_col, args.solvent_col)
        n_err = int((pred["error"] != "").sum())
        run.add_output("predictions", args.out)
        run.summary.update({"rows": len(pred), "errors": n_err})
        if n_err:
            run.status = "partial"
    print(f"wrote {args.out}: {len(pred)} rows, {n_err} with errors")
    return 0


def cmd_fingerprint(args) -> int:
    from .workflows import fingerprint_file

    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "fingerprint", params) as run:
        table = fingerprint_file(args.model, args.data, args.out, args.smiles_col)
        n_err = int((table["error"] != "").sum())
        width = table.shape[1] - 3
        run.add_output("fingerprints", args.out)
        run.summary.update({"rows": len(table), "errors": n_err, "width": width})
        if n_err:
            run.status = "partial"
    print(f"wrote {args.out}: {len(table)} rows x {width} columns, {n_err} with errors")
    return 0


def cmd_explain(args) -> int:
    from vai.core.errors import VaiError

    from .chem import load_molecules
    from .models import PropertyPredictor

    predictor = PropertyPredictor.load(args.model)
    target = args.target or predictor.targets[0]
    if target not in predictor.targets:
        raise VaiError(f"--target {target!r}: {args.model} predicts {', '.join(predictor.targets)}; name one of them")
    if args.smiles:
        raw = list(args.smiles)
    elif args.data:
        frame, col = load_molecules(args.data, args.smiles_col)
        raw = frame[col].astype(str).head(args.limit).tolist()
    else:
        raise VaiError("give --smiles SMILES... or --data FILE")
    std = predictor.standardizer()
    out = Path(args.out)
    rows = []
    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "explain", params) as run:
        for i, s in enumerate(raw):
            smi, err = std(s)
            if err:
                rows.append({"input": s, "target": target, "image": "", "error": err})
                continue
            try:
                res = predictor.explain(smi, out / f"mol_{i:04d}.{args.format}", solvent=args.solvent, target=target)
            except VaiError as exc:  # one molecule that cannot be explained does not stop the others
                rows.append({"input": s, "smiles_std": smi, "target": target, "image": "", "error": str(exc)})
                continue
            rows.append({"input": s, "smiles_std": smi, "target": target, "image": res["image"],
                         "atom_weights": json.dumps([round(w, 5) for w in res["atom_weights"]]),
                         **({"alerts": res["alerts"]} if "alerts" in res else {}), "error": ""})
        import pandas as pd

        from vai.core.io import atomic_write_table

        atomic_write_table(out / "explanations.csv", pd.DataFrame(rows))
        run.add_output("explanations", out / "explanations.csv")
        run.summary["molecules"] = len(rows)
        if any(r["error"] for r in rows):
            run.status = "partial"
    failed = sum(bool(r["error"]) for r in rows)
    print(f"explained {len(rows) - failed} of {len(rows)} molecules -> {out}"
          + (f" ({failed} with errors: see the error column of {out / 'explanations.csv'})" if failed else ""))
    return 1 if failed == len(rows) else 0


def cmd_screen(args) -> int:
    from .screen import parse_model_specs, screen_library

    models = parse_model_specs(args.model)
    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "screen", params) as run:
        res = screen_library(args.library, args.out, models=models, constraints=args.constraint,
                             smiles_col=args.smiles_col, similar_to=args.similar_to, solvent=args.solvent,
                             top=args.top, chunk_size=args.chunk_size, engine=args.engine, workers=args.workers,
                             address=args.address, domain=not args.no_domain, store_run=run)
        run.add_output("ranked", res.ranked_path)
        run.summary.update(res.summary())
    summary = res.summary()
    print(json.dumps(summary, indent=2, default=str))
    if summary.get("failed_chunks"):  # written and resumable, but not complete: say so in the exit status
        print(f"error: {len(summary['failed_chunks'])} library chunk(s) failed (see failed_chunks); re-run to retry them",
              file=sys.stderr)
        return 1
    return 0


def cmd_zoo(args) -> int:
    from vai.core.settings import get_settings

    from .zoo import PROPERTIES, run_zoo

    if args.list:
        width = max(map(len, PROPERTIES))
        for name, spec in PROPERTIES.items():
            print(f"{name:{width}s}  {spec.description}")
        return 0
    data_dir = Path(args.data_dir) if args.data_dir else get_settings().require_data_dir()
    out = Path(args.out) if args.out else get_settings().models_dir / "discovery" / "zoo"
    only = [x.strip() for x in args.only.split(",")] if args.only else None
    seeds = [int(s) for s in args.seeds.split(",")]
    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "zoo", params) as run:
        job = run_zoo(data_dir, out, only=only, seeds=seeds, model=args.model, epochs=args.epochs,
                      retrain=args.retrain, store_run=run)
        run.add_output("zoo", out)
        summaries = {k: v.get("summary") for k, v in job.results.items()}
        run.summary["properties"] = summaries
    print(json.dumps(summaries, indent=2, default=str))
    if job.resumed:
        print(f"{len(job.resumed)} propert{'y' if len(job.resumed) == 1 else 'ies'} already trained with these "
              f"settings on the same data, kept: {', '.join(job.resumed)} (--retrain trains them again)",
              file=sys.stderr)
    for name, error in job.failed.items():
        print(f"error: {name}: {error}", file=sys.stderr)
    return 1 if job.failed else 0


def cmd_benchmark(args) -> int:
    from vai.core.settings import get_settings

    from .benchmark import run_benchmark

    data_dir = Path(args.data_dir) if args.data_dir else get_settings().require_data_dir()
    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "benchmark", params) as run:
        res = run_benchmark(data_dir, Path(args.out), datasets=args.datasets.split(","),
                            seeds=[int(s) for s in args.seeds.split(",")], model=args.model, epochs=args.epochs)
        run.add_output("results", Path(args.out) / "results.json")
        run.summary["results"] = res["summary"]
    print(json.dumps(res["summary"], indent=2))
    return 0


def cmd_mixture_train(args) -> int:
    from .mixtures import train_mixture_file

    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "mixture-train", params) as run:
        metrics = train_mixture_file(args.data, args.target_col, args.out, epochs=args.epochs, seed=args.seed)
        run.add_output("model", args.out)
        run.summary.update(metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_mixture_predict(args) -> int:
    from .mixtures import predict_mixture_file

    params = {k: v for k, v in vars(args).items() if not callable(v)}
    with _store().run(VERTICAL, "mixture-predict", params) as run:
        pred = predict_mixture_file(args.model, args.data, args.out)
        run.add_output("predictions", args.out)
        run.summary["rows"] = len(pred)
    print(f"wrote {args.out}: {len(pred)} formulations")
    return 0
