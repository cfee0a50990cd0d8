"""Slide label tables and the TCGA mutation-table converter.

A slide table is a CSV with `slide` (the slide file's stem), optional `patient` and `site`, and one
column per target holding 1, 0 or blank (missing). The TCGA converter builds one from cBioPortal-style
per-sample mutation tables (STUDY_ID, SAMPLE_ID, one column per gene: `WT` -> 0, a protein change -> 1,
`NS` (not sequenced) or blank -> missing), matching slides to samples by TCGA barcode."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.core.tables import header_names, read_user_table, repeated_names

log = get_logger("vai.path")

RESERVED = ("slide", "patient", "site")
_TRUE = {"1", "1.0", "1,0", "true", "yes", "pos", "positive", "mut", "mutated"}
_FALSE = {"0", "0.0", "0,0", "false", "no", "neg", "negative", "wt", "wildtype", "wild-type"}
TCGA_BARCODE = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})(-(\d{2})[A-Z]?)?", re.IGNORECASE)


def read_slide_table(path: str | os.PathLike, targets: list[str] | None = None):
    """Read and validate a slide table. Returns a DataFrame with `slide`, `patient`, `site` (if given) and
    the target columns as float (1.0 / 0.0 / NaN). Errors name the file, row and column."""
    p = Path(path)
    df = read_user_table(p, "labels file", dtype=str, keep_default_na=False)
    repeated = repeated_names(header_names(p))
    if repeated:  # pandas would rename the second one `X.1` and train on it as another target
        raise VaiError(f"{p}: column(s) {', '.join(repr(c) for c in repeated)} appear more than once in the header; "
                       "keep one column per target")
    df.columns = [c.strip() for c in df.columns]
    if "slide" not in df.columns:
        raise VaiError(f"{p}: no 'slide' column (columns: {', '.join(df.columns)}); the slide column holds file stems")
    df["slide"] = df["slide"].str.strip()
    if (df["slide"] == "").any():
        row = int(np.flatnonzero(df["slide"] == "")[0]) + 2
        raise VaiError(f"{p}: row {row}: empty 'slide' value")
    dup = df["slide"][df["slide"].duplicated()]
    if len(dup):
        raise VaiError(f"{p}: slide {dup.iloc[0]!r} appears more than once; one row per slide")
    if targets is None:
        targets = [c for c in df.columns if c not in RESERVED]
    if not targets:
        raise VaiError(f"{p}: no target columns besides {', '.join(RESERVED)}")
    for t in targets:
        if t not in df.columns:
            raise VaiError(f"{p}: target column {t!r} not found (columns: {', '.join(df.columns)})")
        values = np.full(len(df), np.nan)
        for i, raw in enumerate(df[t].str.strip().str.lower()):
            if raw in ("", "na", "nan", "ns", "none"):
                continue
            if raw in _TRUE:
                values[i] = 1.0
            elif raw in _FALSE:
                values[i] = 0.0
            else:
                raise VaiError(f"{p}: row {i + 2}, column {t!r}: value {df[t].iloc[i]!r} is not 1, 0 or blank")
        df[t] = values
    if "patient" not in df.columns or (df["patient"].str.strip() == "").all():
        df["patient"] = df["slide"]
    else:
        df["patient"] = df["patient"].str.strip().where(df["patient"].str.strip() != "", df["slide"])
    _warn_patient_disagreement(p, df, targets)
    keep = ["slide", "patient"] + (["site"] if "site" in df.columns else []) + list(targets)
    return df[keep].reset_index(drop=True)


def _warn_patient_disagreement(path: Path, df, targets: list[str]) -> None:
    """Slides of one patient with different labels for a target (e.g. two tumour blocks): the patient counts as
    positive (max over its slides) in stratification and patient-level metrics, which the user should know."""
    for t in targets:
        labelled = df[["patient", t]].dropna()
        spread = labelled.groupby("patient")[t].nunique()
        mixed = spread[spread > 1]
        if len(mixed):
            log.warning("%s: %d patient(s) have slides labelled both 1 and 0 for %s (e.g. %s): slides keep their own "
                        "labels, the patient counts as positive", path, len(mixed), t, mixed.index[0])


def tcga_ids(slide_name: str) -> tuple[str, str | None] | None:
    """(patient 'TCGA-XX-YYYY', sample 'TCGA-XX-YYYY-01' or None) from a slide stem, or None if not TCGA."""
    m = TCGA_BARCODE.match(slide_name.strip())
    if not m:
        return None
    patient = m.group(1).upper()
    sample = f"{patient}-{m.group(3)}" if m.group(3) else None
    return patient, sample


def read_tcga_mutations(folder: str | os.PathLike, genes: list[str]):
    """Per-sample 1/0/NaN for `genes` from every `tcga-mutations-*.txt` in `folder` (joined on SAMPLE_ID)."""
    import pandas as pd

    folder = Path(folder)
    files = sorted(folder.glob("tcga-mutations*.txt"))
    if not files:
        raise VaiError(f"{folder}: no tcga-mutations*.txt tables (tab-separated: STUDY_ID, SAMPLE_ID, genes...)")
    merged = None
    for f in files:
        header = pd.read_csv(f, sep="\t", nrows=0).columns.tolist()
        if "SAMPLE_ID" not in header:
            raise VaiError(f"{f}: no SAMPLE_ID column; expected cBioPortal-style mutation tables")
        wanted = [g for g in genes if g in header]
        cols = ["SAMPLE_ID"] + (["STUDY_ID"] if "STUDY_ID" in header else []) + wanted
        part = pd.read_csv(f, sep="\t", usecols=cols, dtype=str, keep_default_na=False)
        merged = part if merged is None else merged.merge(part, on=[c for c in ("SAMPLE_ID", "STUDY_ID") if c in part.columns and c in merged.columns], how="outer")
    missing = [g for g in genes if g not in merged.columns]
    if missing:
        raise VaiError(f"{folder}: gene(s) {', '.join(missing)} are not in the mutation tables")
    out = merged[["SAMPLE_ID"] + (["STUDY_ID"] if "STUDY_ID" in merged.columns else [])].copy()
    for g in genes:
        raw = merged[g].fillna("").str.strip()
        vals = np.where(raw.str.upper() == "WT", 0.0, 1.0)
        vals[(raw == "") | (raw.str.upper() == "NS")] = np.nan
        out[g] = vals
    return out.drop_duplicates("SAMPLE_ID")


def tcga_labels(slides: list[str], genes: list[str], mutations_dir: str | os.PathLike,
                sites_csv: str | os.PathLike | None = None):
    """A slide table for TCGA slides: patient from the barcode, site = tissue-source-site code (institution
    when `sites_csv` is given), one column per gene. Slides whose sample is not in the tables get blanks."""
    import pandas as pd

    muts = read_tcga_mutations(mutations_dir, genes).set_index("SAMPLE_ID")
    by_patient = muts.reset_index()
    by_patient["patient"] = by_patient["SAMPLE_ID"].str[:12]
    by_patient = by_patient.drop_duplicates("patient").set_index("patient")
    institutions = {}
    if sites_csv and Path(sites_csv).exists():
        tss = pd.read_csv(sites_csv, sep=";", dtype=str, keep_default_na=False)
        institutions = dict(zip(tss["TSS Code"], tss["Source Site"]))
    rows = []
    normal = []
    for name in slides:
        ids = tcga_ids(name)
        if ids is None:
            raise VaiError(f"slide {name!r}: not a TCGA barcode (expected TCGA-XX-XXXX-01...); use a slide table instead")
        patient, sample = ids
        if sample and not is_tumour_sample(sample):
            # a normal-tissue or control slide (sample type 10-29) does not carry the tumour's somatic calls
            rec = None
            normal.append(name)
        else:
            rec = muts.loc[sample] if sample and sample in muts.index else (
                by_patient.loc[patient] if patient in by_patient.index else None)
        tss = patient.split("-")[1]
        row = {"slide": name, "patient": patient, "site": institutions.get(tss, tss)}
        for g in genes:
            row[g] = np.nan if rec is None else rec[g]
        rows.append(row)
    if normal:
        log.warning("%d slide(s) are from normal-tissue or control samples (TCGA sample type 10-29, e.g. %s): "
                    "their labels are left blank, as the mutation tables are tumour calls", len(normal), normal[0])
    df = pd.DataFrame(rows)
    for g in genes:
        df[g] = df[g].astype("Float64").round().astype("Int64")
    return df


def is_tumour_sample(sample: str) -> bool:
    """TCGA sample type (the two digits after the patient): 01-09 tumour, 10-19 normal, 20-29 control."""
    try:
        return int(sample.rsplit("-", 1)[1][:2]) < 10
    except (IndexError, ValueError):
        return True
