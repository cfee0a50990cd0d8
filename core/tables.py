"""Reading the tables users bring: CSV, TSV, European `;` CSV with decimal commas, and Excel workbooks.

Spreadsheets in much of Europe export `;`-separated files with `1,5` for one and a half; read as plain CSV
such a file has one column and no numbers, and every row is skipped. The dialect is read off the file itself,
once, by every vertical that takes a user's table. An `.xlsx` workbook is read as it is (its first sheet):
most tables are kept in Excel before anyone exports them.

The text encoding is read off the file too: UTF-8 (with or without the byte-order mark Excel's "CSV UTF-8"
writes), UTF-16 with its mark (Excel's "Unicode Text"), or Windows-1252, which Excel on Windows writes for a plain
"CSV"; read as UTF-8, such a file's "Glycéryl" would come back as "Glyc�ryl".
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import VaiError

SEPARATORS = (",", ";", "\t")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")
_SAMPLE_LINES = 200


@dataclass(frozen=True)
class CsvDialect:
    sep: str = ","
    decimal: str = "."
    bom: bool = False  # writing: start with UTF-8's byte-order mark, so that Excel reads accents right


# a well-formed UTF-8 multi-byte character: Windows-1252 text (accents as single bytes) almost never holds one
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_SCAN_BLOCK = 1 << 20


def _raw(p: Path):
    return gzip.open(p, "rb") if p.suffix.lower() == ".gz" else open(p, "rb")


def source_encoding(path: str | os.PathLike) -> str:
    """How a text file is encoded: `utf-8`, `utf-8-bom`, `utf-16` (with its mark) or `cp1252` (not valid UTF-8
    and no UTF-8 character in it: a Windows "CSV" export). A file mixing UTF-8 with stray other bytes stays
    `utf-8` (the stray bytes are replaced, or reported as bad rows where a loader checks). One pass over the file,
    remembered per file version."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return "utf-8"
    return _sniff_encoding(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sniff_encoding(path: str, size: int, mtime_ns: int) -> str:
    p = Path(path)
    try:
        with _raw(p) as fh:
            head = fh.read(_SCAN_BLOCK)
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                return "utf-16"
            bom = head.startswith(codecs.BOM_UTF8)
            decoder = codecs.getincrementaldecoder("utf-8")()
            block = head
            try:
                while block:
                    decoder.decode(block)
                    block = fh.read(_SCAN_BLOCK)
                decoder.decode(b"", final=True)
                return "utf-8-bom" if bom else "utf-8"
            except UnicodeDecodeError:
                pass
        with _raw(p) as fh:  # not UTF-8 throughout: a Windows-1252 export, or UTF-8 with a few stray bytes?
            while block := fh.read(_SCAN_BLOCK):
                if not block.isascii() and _UTF8_MULTIBYTE.search(block):  # isascii: C speed for plain blocks
                    return "utf-8-bom" if bom else "utf-8"
    except (OSError, EOFError, gzip.BadGzipFile):
        return "utf-8"  # the reader that opens it next names the problem
    from .progress import get_logger

    get_logger("vai.core").info("%s: not UTF-8; read as Windows-1252 (Excel's plain CSV on Windows)", p)
    return "cp1252"


def _reading_codec(path: str | os.PathLike) -> str:
    enc = source_encoding(path)
    return "utf-8-sig" if enc.startswith("utf-8") else enc


def open_text(path: str | os.PathLike, errors: str = "replace"):
    """A text handle on a plain or gzipped file in its own encoding (`source_encoding`; a byte-order mark dropped)."""
    p = Path(path)
    codec = _reading_codec(p)
    if p.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding=codec, errors=errors, newline="")
    return open(p, encoding=codec, errors=errors, newline="")


def csv_dialect(path: str | os.PathLike) -> CsvDialect:
    """The separator from the header line (`,` unless `;` or tab is clearly more frequent; `.tsv` is tab), and
    `,` as the decimal mark when the separator is not `,` and the first rows hold numbers written like `1,5`."""
    p = Path(path)
    name = p.name.lower()
    try:
        with open_text(p) as fh:
            lines = [line for _, line in zip(range(_SAMPLE_LINES), fh)]
    except OSError:
        return CsvDialect()
    if name.endswith((".tsv", ".tsv.gz")):
        sep = "\t"
    else:
        header = lines[0] if lines else ""
        counts = {s: header.count(s) for s in SEPARATORS}
        best = max(counts, key=counts.get)
        sep = best if counts[best] > counts[","] else ","
    if sep == ",":
        return CsvDialect(sep)
    comma_numbers = any(_DECIMAL_COMMA.match(field)
                        for row in csv.reader(lines[1:], delimiter=sep) for field in row)
    return CsvDialect(sep, "," if comma_numbers else ".")


def is_excel(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in EXCEL_SUFFIXES


def header_names(path: str | os.PathLike) -> list[str]:
    """The header line's column names, stripped, in the file's own dialect (an Excel sheet's first row)."""
    if is_excel(path):
        first = _excel(Path(path), header=None, nrows=1)
        # a blank header cell has no name (as a blank CSV field), not the name "nan"
        return [] if first.empty else ["" if c != c or c is None else str(c).strip() for c in first.iloc[0].tolist()]
    with open_text(path) as fh:
        return [c.strip() for c in next(csv.reader(fh, delimiter=csv_dialect(path).sep), [])]


def repeated_names(names, among=None) -> list[str]:
    """Names given more than once (optionally only those in `among`): pandas would quietly rename the second
    copy `X.1`, so a column pasted twice would be read as two different things."""
    wanted = None if among is None else set(among)
    return sorted({n for n in names if n and names.count(n) > 1 and (wanted is None or n in wanted)})


def read_user_table(path: str | os.PathLike, what: str = "file", **kwargs):
    """A user's table: CSV/TSV by pandas.read_csv in the file's own dialect, or an .xlsx workbook's first sheet; a
    missing or unreadable file is a VaiError naming it.
    Extra keyword arguments go to pandas (`chunksize` gives the usual iterator)."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise VaiError(f"{p}: {what} not found")
    if p.is_dir():
        raise VaiError(f"{p}: is a folder; expected a CSV or .xlsx {what}")
    if p.suffix.lower() == ".xls":
        raise VaiError(f"{p}: the old Excel format (.xls) is not read; save the sheet as .xlsx or CSV")
    if is_excel(p):
        chunksize = kwargs.pop("chunksize", None)
        kwargs.pop("encoding_errors", None)
        frame = _excel(p, **kwargs)
        if chunksize:  # a workbook is read whole (it holds at most ~1M rows); handed on in chunks all the same
            return iter([frame.iloc[i:i + chunksize] for i in range(0, max(len(frame), 1), chunksize)])
        return frame
    dialect = csv_dialect(p)
    kwargs.setdefault("encoding_errors", "replace")
    kwargs.setdefault("encoding", _reading_codec(p))
    try:
        return pd.read_csv(p, sep=dialect.sep, decimal=dialect.decimal, **kwargs)
    except pd.errors.EmptyDataError:
        raise VaiError(f"{p}: the {what} is empty (expected a header line and rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise VaiError(f"{p}: cannot read as CSV: {str(exc).strip()}") from None


def _excel(p: Path, **kwargs):
    """The first sheet of a workbook, with pandas' CSV options that apply to it (dtype, keep_default_na, ...)."""
    import pandas as pd

    try:
        import openpyxl  # noqa: F401 - pandas' engine for .xlsx
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError(f"{p}: reading Excel files needs openpyxl (pip install openpyxl), or save the "
                                     "sheet as CSV") from None
    try:
        with pd.ExcelFile(p, engine="openpyxl") as book:
            if len(book.sheet_names) > 1:
                from .progress import get_logger

                get_logger("vai.core").info("%s: reading the first of %d sheets, %r", p, len(book.sheet_names),
                                            book.sheet_names[0])
            return book.parse(book.sheet_names[0], **kwargs)
    except (ValueError, KeyError, OSError) as exc:  # a damaged or mislabelled workbook
        raise VaiError(f"{p}: cannot read as an Excel workbook ({type(exc).__name__}: {exc}); save it as .xlsx "
                       "or CSV again") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl's zip and XML errors have no common base
        raise VaiError(f"{p}: cannot read as an Excel workbook ({type(exc).__name__}); save it as .xlsx or CSV "
                       "again") from None


EXCEL_MAX_ROWS = 1_048_576  # one header row + data rows per sheet
EXCEL_MAX_COLUMNS = 16_384


def output_dialect(source: str | os.PathLike | None) -> CsvDialect:
    """The dialect a CSV written for a user's table should use: the table's own (`;` with decimal commas in, `;`
    with decimal commas out, so the result opens in the same spreadsheet locale), `,` for anything else. Output is
    UTF-8, with the byte-order mark when the input came from Excel (it had the mark, or was Windows-1252 or
    UTF-16): without it Excel would show the accents the input had as two odd characters each."""
    if source is None or not Path(source).is_file() or _target_suffix(Path(source), skip_gz=True) not in (
            ".csv", ".tsv", ".txt"):  # a workbook, an SD or .smi file: nothing to carry over
        return CsvDialect()
    found = csv_dialect(source)
    bom = source_encoding(source) != "utf-8"
    if found.sep == "\t":  # a tab-separated input: a .csv keeps commas (or `;` when numbers use decimal commas)
        return CsvDialect(";", ",", bom) if found.decimal == "," else CsvDialect(bom=bom)
    return CsvDialect(found.sep, found.decimal, bom)


def write_user_table(path: str | os.PathLike, frame, dialect: CsvDialect | None = None,
                     shown_as: str | os.PathLike | None = None) -> None:
    """Write `frame` to `path` (not atomically: `core.io.atomic_write_table` wraps this): an `.xlsx` workbook (one
    sheet), a `.tsv`, or a CSV in `dialect` (default `,` and `.`). Errors name `shown_as` (the final file)."""
    p = Path(path)
    if _target_suffix(p) in EXCEL_SUFFIXES:
        _write_excel(p, frame, Path(shown_as or p))
        return
    d = dialect or CsvDialect()
    gz = _target_suffix(p) == ".gz"
    sep = "\t" if _target_suffix(p, skip_gz=True) == ".tsv" else d.sep
    decimal = d.decimal if sep != "," else "."  # a decimal comma inside comma-separated fields would split them
    # compression from the target's name: pandas would read it off the temporary file's `.tmp` and not compress
    frame.to_csv(p, index=False, sep=sep, decimal=decimal, compression="gzip" if gz else None,
                 encoding="utf-8-sig" if d.bom else "utf-8")


def _target_suffix(p: Path, skip_gz: bool = False) -> str:
    # atomic writes go through `.name.xlsx.tmp`-style temporary files: the suffix that counts is the one before .tmp
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".tmp":
        suffixes = suffixes[:-1]
    if skip_gz and suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def table_bytes(frame, fmt: str = "csv") -> bytes:
    """A results table as a download (`csv` or `xlsx`), as the CLI writes it: for the pages' download buttons."""
    if fmt == "xlsx":
        buf = io.BytesIO()
        _write_excel(buf, frame, Path("download.xlsx"))
        return buf.getvalue()
    if fmt != "csv":
        raise ValueError(f"table_bytes: fmt must be 'csv' or 'xlsx', not {fmt!r}")
    text = frame.to_csv(index=False)
    # a download is mostly opened by double-clicking it into Excel, which reads a CSV without the byte-order mark in
    # the Windows code page: "α-tocopherol" would show as "Î±-tocopherol". Plain ASCII needs no mark (and stays
    # byte-identical to what scripts expect); anything else gets it (pandas and Excel both read it)
    return text.encode("utf-8") if text.isascii() else text.encode("utf-8-sig")


def download_buttons(st, frame, stem: str, key: str) -> None:
    """A page's two download buttons for a results table, CSV and Excel (`st`: the streamlit module; core does
    not import it)."""
    left, right = st.columns(2)
    left.download_button("Download CSV", table_bytes(frame, "csv"), f"{stem}.csv", "text/csv", key=f"{key}_csv")
    right.download_button("Download Excel", table_bytes(frame, "xlsx"), f"{stem}.xlsx",
                          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key=f"{key}_xlsx")


def _write_excel(p, frame, shown_as: Path) -> None:
    """One sheet named `results`, the header in row 1 (frozen). Text is always written as text: a value that
    starts with `=` (a headline, a file name) must not become a formula when the sheet is opened."""
    import datetime as dt
    import math

    import numpy as np

    try:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError(f"{shown_as}: writing Excel files needs openpyxl (pip install openpyxl), or name the "
                                     "output .csv") from None
    if len(frame) + 1 > EXCEL_MAX_ROWS:
        raise VaiError(f"{shown_as}: {len(frame):,} rows do not fit in one Excel sheet ({EXCEL_MAX_ROWS - 1:,} at most); "
                       "name the output .csv or .parquet")
    if len(frame.columns) > EXCEL_MAX_COLUMNS:
        raise VaiError(f"{shown_as}: {len(frame.columns):,} columns do not fit in one Excel sheet "
                       f"({EXCEL_MAX_COLUMNS:,} at most); name the output .csv or .parquet")
    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    sheet.freeze_panes = "A2"

    # one number format per datetime column (a column of trading days shows no 00:00:00, a timestamp column all times)
    column_formats = [_excel_date_format(frame[c]) for c in frame.columns] if len(frame) else []

    def cell(value, date_format=None):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, np.generic):
            value = value.item()
            if isinstance(value, float) and math.isnan(value):
                return None
        if isinstance(value, float) and math.isinf(value):
            value = str(value)  # Excel has no infinity: a number cell holding "inf" makes the file unreadable
        if isinstance(value, str):
            c = WriteOnlyCell(sheet, value=value)
            c.data_type = "s"  # never a formula
            return c
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, dt.datetime):  # pandas Timestamps too
            if value != value:  # NaT
                return None
            if value.tzinfo is not None:  # Excel has no time zones: ISO text keeps the instant unambiguous
                return value.isoformat()
            c = WriteOnlyCell(sheet, value=dt.datetime(*value.timetuple()[:6], value.microsecond))  # Excel: to ms
            # a real date cell (sorts and filters as a date)
            c.number_format = date_format or ("yyyy-mm-dd" if value.time() == dt.time() else "yyyy-mm-dd hh:mm:ss")
            return c
        if isinstance(value, dt.date):
            c = WriteOnlyCell(sheet, value=value)
            c.number_format = "yyyy-mm-dd"
            return c
        return str(value)  # timedeltas, lists, ...: Excel has no type for them

    sheet.append([cell(str(c)) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        sheet.append([cell(v, f) for v, f in zip(row, column_formats)])
    book.save(p)


def _excel_date_format(column) -> str | None:
    """`yyyy-mm-dd` for a time-zone-free datetime column whose values are all midnight (days), the full timestamp
    format for other such columns, None for anything else (each cell then decides)."""
    import pandas as pd

    if not pd.api.types.is_datetime64_dtype(column.dtype):  # tz-aware columns are not this dtype: ISO text
        return None
    values = column.dropna()
    return "yyyy-mm-dd" if (values == values.dt.normalize()).all() else "yyyy-mm-dd hh:mm:ss"
