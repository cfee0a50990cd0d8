"""Results-table writers: rows/s for the formats `--out` takes (CSV, CSV in `;` + decimal-comma dialect, TSV,
gzipped CSV, Parquet, an Excel workbook) and SD files of predictions, on a prediction-shaped table (a SMILES text
column, eight float columns, a flag), then reading the CSV back in UTF-8 and as a Windows-1252 export (the
encoding is sniffed from the whole file first). Synthetic data, timing only."""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vai.core.io import atomic_write_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--sdf-rows", type=int, default=5_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    smiles = ["OCCOc1ccccc1", "CCO", "Cc1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"]
    frame = pd.DataFrame({"smiles": [smiles[i % 4] for i in range(args.rows)],
                          **{f"p{i}": rng.normal(size=args.rows) for i in range(8)},
                          "in_domain": rng.random(args.rows) > 0.1})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        european = tmp / "in.csv"
        european.write_text("smiles;y\nCCO;1,5\n")
        for label, name, like in (("csv", "t.csv", None), ("csv ; decimal comma", "t_eu.csv", european),
                                  ("tsv", "t.tsv", None), ("csv.gz", "t.csv.gz", None),
                                  ("parquet", "t.parquet", None), ("xlsx", "t.xlsx", None)):
            t0 = time.perf_counter()
            atomic_write_table(tmp / name, frame, like=like)
            secs = time.perf_counter() - t0
            rows.append((label, args.rows, secs, (tmp / name).stat().st_size / 1e6))
        from vai.core.tables import _sniff_encoding, read_user_table, source_encoding

        windows = tmp / "windows.csv"  # the same table as Excel on Windows saves it: one accented name at the end
        windows.write_bytes((tmp / "t.csv").read_bytes() + "Crème,".encode("cp1252") + b"0," * 8 + b"True\n")
        for label, path in (("read csv (utf-8)", tmp / "t.csv"), ("read csv (windows-1252)", windows)):
            _sniff_encoding.cache_clear()
            t0 = time.perf_counter()
            source_encoding(path)
            sniff = time.perf_counter() - t0
            _sniff_encoding.cache_clear()
            t0 = time.perf_counter()
            n = len(read_user_table(path))
            rows.append((f"{label}, of which {sniff:.2f} s finding the encoding", n, time.perf_counter() - t0,
                         path.stat().st_size / 1e6))
        from vai.verticals.discovery.chem import write_sdf

        part = frame.head(args.sdf_rows)
        t0 = time.perf_counter()
        write_sdf(tmp / "t.sdf", part, "smiles")
        rows.append(("sdf (2D coordinates from SMILES)", len(part), time.perf_counter() - t0,
                     (tmp / "t.sdf").stat().st_size / 1e6))
    print(f"\nmachine: {platform.processor() or platform.machine()}, date {dt.date.today()}, "
          f"command: python -m benchmarks.core_tables --rows {args.rows} --sdf-rows {args.sdf_rows}")
    print("| format | rows | seconds | rows/s | MB |\n|---|---|---|---|---|")
    for label, n, secs, mb in rows:
        print(f"| {label} | {n:,} | {secs:.2f} | {n / secs:,.0f} | {mb:.1f} |")


if __name__ == "__main__":
    main()
