"""File-level workflows behind the CLI and the page: train from a table, predict a table, explain."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger

from .chem import load_molecules, standardize_frame
from .models import PropertyPredictor
from .splits import make_split

log = get_logger("vai.discovery")


def prepare_training_frame(frame: pd.DataFrame, smiles_col: str, target_cols: Sequence[str], source: str = "input",
                           solvent_col: str | None = None, keep_salts: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Standardise, coerce targets to numbers, drop rows without a molecule or any label (counted)."""
    missing = [c for c in target_cols if c not in frame.columns]
    if missing:
        raise VaiError(f"{source}: no target column {missing[0]!r} (columns: {', '.join(map(str, frame.columns))})")
    if solvent_col and solvent_col not in frame.columns:
        raise VaiError(f"{source}: no solvent column {solvent_col!r}")
    if "smiles_std" not in frame.columns or "error" not in frame.columns or keep_salts:
        frame = standardize_frame(frame.drop(columns=["smiles_std", "error"], errors="ignore"), smiles_col,
                                  keep_salts=keep_salts)
    for c in target_cols:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    bad_mol = frame["error"] != ""
    no_label = frame[list(target_cols)].isna().all(axis=1)
    report = {"rows": int(len(frame)), "bad_molecules": int(bad_mol.sum()), "no_label": int((no_label & ~bad_mol).sum()),
              "errors": frame.loc[bad_mol, "error"].head(10).tolist()}
    keep = frame[~bad_mol & ~no_label].reset_index(drop=True)
    if solvent_col:
        keep = keep[keep[solvent_col].notna()].reset_index(drop=True)
    report["used"] = int(len(keep))
    if report["bad_molecules"]:
        log.warning("%s: %d row(s) skipped (unparsable SMILES), e.g. %s", source, report["bad_molecules"], report["errors"][:1])
    if report["no_label"]:
        log.warning("%s: %d row(s) skipped (no numeric value in %s)", source, report["no_label"], ", ".join(target_cols))
    return keep, report


TEST_PREDICTIONS = "test_predictions.csv"  # in a model directory: the held-out test molecules, measured and predicted


def train_table(frame: pd.DataFrame, *, smiles_col: str, target_cols: Sequence[str], out: str | Path | None,
                task: str = "regression", model: str = "gbm", split: str = "scaffold", seed: int = 0,
                sizes=(0.8, 0.1, 0.1), solvent_col: str | None = None, split_indices: dict | None = None,
                source: str = "input", data_fingerprint: str | None = None, **model_kwargs) -> tuple[PropertyPredictor, dict]:
    """Train a PropertyPredictor on a table and (with `out`) save it; returns (predictor, metrics)."""
    if task != "regression":  # text classes would otherwise be dropped as "no numeric value"
        for c in target_cols:
            if c not in frame.columns:
                continue
            raw = frame[c].dropna().astype(str).str.strip()
            text = raw[(raw != "") & pd.to_numeric(raw, errors="coerce").isna()]
            if len(text):
                seen = ", ".join(repr(v) for v in sorted(text.unique())[:5])
                raise VaiError(f"{source}: classification labels in {c!r} must be class numbers (0/1, or 0..K-1); "
                               f"found text ({seen}): map each class to a number first")
    data, report = prepare_training_frame(frame, smiles_col, target_cols, source, solvent_col,
                                          keep_salts=bool(model_kwargs.get("keep_salts")))
    if len(data) < 10:
        raise VaiError(f"{source}: only {len(data)} usable row{'' if len(data) == 1 else 's'} (valid SMILES with a "
                       "numeric label); need at least 10: fix or add rows")
    smiles = data["smiles_std"].tolist()
    if split_indices is not None:
        tr, va, te = (np.asarray(split_indices[k], dtype=int) for k in ("train", "val", "test"))
    else:
        tr, va, te = make_split(split, smiles, sizes, seed)
    predictor = PropertyPredictor(model, task, targets=list(target_cols), seed=seed, solvent=bool(solvent_col),
                                  **model_kwargs)
    solvents = data[solvent_col].astype(str).tolist() if solvent_col else None
    metrics = predictor.fit(smiles, data[list(target_cols)].to_numpy(dtype=float), train_idx=tr, val_idx=va,
                            test_idx=te, solvents=solvents)
    metrics["data"] = report
    metrics["split"] = {"kind": split if split_indices is None else "given", "seed": seed, "sizes": list(sizes)}
    predictor.metrics = metrics
    if out is not None:
        split_json = {"train": tr.tolist(), "val": va.tolist(), "test": te.tolist()}
        import json

        files = {"split_indices.json": json.dumps(split_json)}
        if len(te):  # as chemprop writes it: what the test molecules were and what the model said
            test = data.iloc[te].reset_index(drop=True)
            pred = predictor.predict_smiles(test["smiles_std"].tolist(),
                                            test[solvent_col].astype(str).tolist() if solvent_col else None)
            measured = test[list(target_cols)].add_prefix("measured_")
            files[TEST_PREDICTIONS] = pd.concat([test[["smiles_std"]], measured, pred], axis=1).to_csv(index=False)
        predictor.save(out, data_fingerprint=data_fingerprint, extra_files=files)
    return predictor, metrics



def train_file(data: str | Path, *, smiles_col: str | None, target_cols: Sequence[str], out: str | Path, **kwargs):
    from vai.core.artifacts import fingerprint_files
    from vai.core.tables import header_names, repeated_names

    from .chem import read_table, table_kind

    frame, col = read_table(data, smiles_col)
    if table_kind(Path(data)) == "table":
        repeated = repeated_names(header_names(data), among=[col, *target_cols])
        if repeated:
            raise VaiError(f"{data}: column(s) {', '.join(map(repr, repeated))} appear more than once in the header; "
                           "keep one (which copy holds the right values cannot be guessed)")
    return train_table(frame, smiles_col=col, target_cols=target_cols, out=out, source=str(data),
                       data_fingerprint=fingerprint_files([data]), **kwargs)


def predict_file(model_dir: str | Path, data: str | Path, out: str | Path | None, smiles_col: str | None = None,
                 solvent_col: str | None = None) -> pd.DataFrame:
    if out is not None:  # a name that says no table format stops before the work, not after it
        from vai.core.io import check_table_output

        check_table_output(out, extra=(".sdf", ".sdf.gz"))
    predictor = PropertyPredictor.load(model_dir)
    frame, col = load_molecules(data, smiles_col)
    pred = predictor.predict(frame, col, solvent_col)  # the raw column: a model that keeps salts needs it
    if out is not None and str(out).lower().endswith((".sdf", ".sdf.gz")):
        from .chem import table_kind, write_sdf

        # from an SD file, each record keeps its own structure (coordinates, conformer) with the predictions added
        write_sdf(out, pred, col, source_sdf=data if table_kind(Path(data)) == "sdf" else None)
    elif out is not None:
        from vai.core.io import atomic_write_table

        atomic_write_table(out, pred, like=data)  # a `;` table with decimal commas gets its results the same way
    return pred


def fingerprint_file(model_dir: str | Path, data: str | Path, out: str | Path | None,
                     smiles_col: str | None = None) -> pd.DataFrame:
    """The vectors a model reads molecules by (`PropertyPredictor.fingerprints`), one row per input row: the SMILES
    column, `smiles_std`, `error` (a row that cannot be standardised keeps its error and empty vectors), then the
    vector's columns. Written as CSV, or Parquet for a `.parquet` name (wide vectors are much smaller there)."""
    from vai.core.io import check_table_output

    from .chem import read_table, standardize_frame

    if out is not None:
        check_table_output(out)
    predictor = PropertyPredictor.load(model_dir)
    frame, col = read_table(data, smiles_col)
    std = standardize_frame(frame[[col]], col, keep_salts=predictor.keep_salts)
    ok = np.flatnonzero((std["error"] == "").to_numpy())
    matrix, names = predictor.fingerprints(std["smiles_std"].iloc[ok].tolist())
    full = np.full((len(std), len(names)), np.nan, dtype=np.float32)
    full[ok] = matrix
    result = pd.concat([std[[col, "smiles_std", "error"]].reset_index(drop=True),
                        pd.DataFrame(full, columns=names)], axis=1)
    if out is not None:
        from vai.core.io import atomic_write_table

        atomic_write_table(out, result, like=data)
    return result
