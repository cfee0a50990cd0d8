"""Reading users' delimited tables: the separator and decimal mark come from the file itself."""

import codecs
import gzip

import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.core.tables import CsvDialect, csv_dialect, read_user_table


def test_dialects_are_read_off_the_file(tmp_path):
    cases = {
        "plain.csv": ("a,b\n1.5,2\n", CsvDialect(",", ".")),
        "semi_comma.csv": ("a;b\nx;1,5\ny;-0,25\n", CsvDialect(";", ",")),
        "semi_point.csv": ("a;b\nx;1.5\n", CsvDialect(";", ".")),
        "semi_text_commas.csv": ('name;b\n"Smith, J";2\n', CsvDialect(";", ".")),  # a comma in text is no decimal
        "tabbed.txt": ("a\tb\n1,5\t2\n", CsvDialect("\t", ",")),
        "named.tsv": ("a,b\tc\n1\t2\n", CsvDialect("\t", ".")),
        "one_column.csv": ("smiles\nCCO\n", CsvDialect(",", ".")),
        "commas_beat_semicolons.csv": ("a,b,c;d\n1,2,3\n", CsvDialect(",", ".")),
    }
    for name, (text, expected) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        assert csv_dialect(p) == expected, name
    gz = tmp_path / "semi.csv.gz"
    gz.write_bytes(gzip.compress("\ufeffa;b\nx;1,5\n".encode()))
    assert csv_dialect(gz) == CsvDialect(";", ",")


def test_european_export_reads_as_numbers(tmp_path):
    p = tmp_path / "excel_de.csv"
    p.write_bytes("\ufeffName;SMILES;logS\nEthanol;CCO;1,1\nBenzol;c1ccccc1;-1,64\nWasser;O;\n".encode())
    frame = read_user_table(p)
    assert list(frame.columns) == ["Name", "SMILES", "logS"]
    assert frame["logS"].iloc[:2].tolist() == pytest.approx([1.1, -1.64]) and pd.isna(frame["logS"].iloc[2])
    chunks = list(read_user_table(p, chunksize=2))
    assert [len(c) for c in chunks] == [2, 1] and chunks[0]["logS"].dtype.kind == "f"


def test_unreadable_tables_name_the_file(tmp_path):
    with pytest.raises(VaiError, match=r"missing\.csv: labels file not found"):
        read_user_table(tmp_path / "missing.csv", "labels file")
    with pytest.raises(VaiError, match="is a folder"):
        read_user_table(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(VaiError, match=r"empty\.csv: the file is empty"):
        read_user_table(empty)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n1,2,3,4\n")
    with pytest.raises(VaiError, match=r"ragged\.csv: cannot read as CSV"):
        read_user_table(ragged)


def test_repeated_header_names_are_found_in_the_files_dialect(tmp_path):
    from vai.core.tables import header_names, repeated_names

    p = tmp_path / "t.csv"
    p.write_text("\ufeff smiles ;logS;logS;note;note\nCCO;1;2;a;b\n")
    assert header_names(p) == ["smiles", "logS", "logS", "note", "note"]
    assert repeated_names(header_names(p)) == ["logS", "note"]
    assert repeated_names(header_names(p), among=["smiles", "logS"]) == ["logS"]


def test_an_excel_workbook_is_read_from_its_first_sheet(tmp_path):
    from vai.core.tables import header_names

    p = tmp_path / "assays.xlsx"
    with pd.ExcelWriter(p) as writer:
        pd.DataFrame({"SMILES": ["CCO", "c1ccccc1", "O"], "logS": [1.1, -1.64, None]}).to_excel(
            writer, sheet_name="results", index=False)
        pd.DataFrame({"note": ["not this one"]}).to_excel(writer, sheet_name="notes", index=False)
    frame = read_user_table(p)
    assert list(frame.columns) == ["SMILES", "logS"] and frame["logS"].iloc[:2].tolist() == [1.1, -1.64]
    assert header_names(p) == ["SMILES", "logS"]
    assert [len(c) for c in read_user_table(p, chunksize=2)] == [2, 1]
    as_text = read_user_table(p, dtype=str, keep_default_na=False)
    assert as_text["SMILES"].tolist() == ["CCO", "c1ccccc1", "O"] and as_text["logS"].iloc[2] == ""
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(VaiError, match=r"broken\.xlsx: cannot read as an Excel workbook"):
        read_user_table(broken)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(VaiError, match=r"old Excel format \(\.xls\)"):
        read_user_table(old)


def test_blank_excel_header_cells_are_not_a_repeated_name(tmp_path):
    from vai.core.tables import header_names, repeated_names

    p = tmp_path / "t.xlsx"
    pd.DataFrame([["slide", None, "KRAS", None], ["a", "x", 1, "y"]]).to_excel(p, header=False, index=False)
    assert header_names(p) == ["slide", "", "KRAS", ""] and repeated_names(header_names(p)) == []
    empty = tmp_path / "empty.xlsx"
    pd.DataFrame().to_excel(empty, index=False)
    assert header_names(empty) == []


def test_results_are_written_in_the_users_format(tmp_path):
    import gzip

    import numpy as np
    import openpyxl

    from vai.core.io import atomic_write_table

    frame = pd.DataFrame({"smiles": ["CCO", "=HYPERLINK(\"x\")", None], "prediction": [1.5, np.nan, -2.25],
                          "n": [1, 2, 3], "in_domain": [True, False, True]})
    # an Excel workbook: numbers stay numbers, and text starting with "=" stays text, never a formula
    atomic_write_table(tmp_path / "preds.xlsx", frame)
    back = read_user_table(tmp_path / "preds.xlsx")
    assert back["prediction"].iloc[[0, 2]].tolist() == [1.5, -2.25] and np.isnan(back["prediction"].iloc[1])
    assert back["smiles"].iloc[1] == "=HYPERLINK(\"x\")" and back["in_domain"].tolist() == [True, False, True]
    cell = openpyxl.load_workbook(tmp_path / "preds.xlsx").active["A3"]
    assert cell.data_type == "s"
    atomic_write_table(tmp_path / "inf.xlsx", pd.DataFrame({"ratio": [np.inf, -np.inf, 2.0]}))  # no infinity in Excel
    assert openpyxl.load_workbook(tmp_path / "inf.xlsx").active["A2"].value == "inf"
    assert read_user_table(tmp_path / "inf.xlsx")["ratio"].tolist()[2] == 2.0
    # a CSV like the input: `;` with decimal commas in, the same out (and read back by our own reader)
    source = tmp_path / "in.csv"
    source.write_text("smiles;logS\nCCO;1,5\nO;-0,3\n")
    atomic_write_table(tmp_path / "preds.csv", frame, like=source)
    text = (tmp_path / "preds.csv").read_text()
    assert text.splitlines()[0] == "smiles;prediction;n;in_domain" and "CCO;1,5;1;True" in text
    assert read_user_table(tmp_path / "preds.csv")["prediction"].iloc[2] == -2.25
    tabbed = tmp_path / "in.tsv"
    tabbed.write_text("smiles\tlogS\nCCO\t1.5\n")
    atomic_write_table(tmp_path / "from_tabs.csv", frame, like=tabbed)  # a .csv is never tab-separated
    assert (tmp_path / "from_tabs.csv").read_text().splitlines()[1] == "CCO,1.5,1,True"
    atomic_write_table(tmp_path / "plain.csv", frame, like=tmp_path / "preds.xlsx")  # not a CSV: plain commas
    assert (tmp_path / "plain.csv").read_text().splitlines()[1] == "CCO,1.5,1,True"
    # .tsv is tab-separated and .csv.gz really compressed, though both go through a temporary `.tmp` file
    atomic_write_table(tmp_path / "preds.tsv", frame)
    assert (tmp_path / "preds.tsv").read_text().splitlines()[0] == "smiles\tprediction\tn\tin_domain"
    atomic_write_table(tmp_path / "preds.csv.gz", frame)
    assert gzip.open(tmp_path / "preds.csv.gz", "rt").readline().strip() == "smiles,prediction,n,in_domain"


def test_too_many_rows_for_a_sheet_is_a_clear_error(tmp_path, monkeypatch):
    import vai.core.tables as tables
    from vai.core.io import atomic_write_table

    monkeypatch.setattr(tables, "EXCEL_MAX_ROWS", 3)
    with pytest.raises(VaiError, match=r"big\.xlsx: 3 rows do not fit in one Excel sheet.*\.csv or \.parquet"):
        atomic_write_table(tmp_path / "big.xlsx", pd.DataFrame({"a": [1, 2, 3]}))
    assert not (tmp_path / "big.xlsx").exists() and not list(tmp_path.iterdir())  # no half-written file left
    monkeypatch.setattr(tables, "EXCEL_MAX_COLUMNS", 2)
    with pytest.raises(VaiError, match=r"wide\.xlsx: 3 columns do not fit in one Excel sheet"):
        atomic_write_table(tmp_path / "wide.xlsx", pd.DataFrame({"a": [1], "b": [2], "c": [3]}))
    for old_kind in ("old.xls", "macros.xlsm"):  # Excel refuses a workbook whose name says another format
        with pytest.raises(VaiError, match=r"written as \.xlsx .*name the output (old|macros)\.xlsx"):
            atomic_write_table(tmp_path / old_kind, pd.DataFrame({"a": [1]}))
    assert not list(tmp_path.iterdir())


def test_a_table_name_that_says_no_table_format_is_refused_before_writing(tmp_path, capsys):
    from vai.cli import main
    from vai.core.io import atomic_write_table, table_suffix

    assert table_suffix("a/Preds.CSV.gz") == ".csv.gz" and table_suffix("x.v2.tsv") == ".tsv"
    assert table_suffix("scores") == "" and table_suffix("x.xlsx.gz") == ".xlsx.gz"
    for name in ("preds.json", "scores", "book.xlsx.gz", "out.parquet.gz"):  # once a CSV under that name
        with pytest.raises(VaiError, match=r"cannot write a.* the suffix picks the format; name it \.csv, \.tsv"):
            atomic_write_table(tmp_path / name, pd.DataFrame({"a": [1]}))
    assert not list(tmp_path.iterdir())
    for name, written in (("UP.CSV", "a\n1\n"), ("t.tsv.gz", "a\n1\n")):  # case and .gz as before
        atomic_write_table(tmp_path / name, pd.DataFrame({"a": [1]}))
        opener = gzip.open if name.endswith(".gz") else open
        with opener(tmp_path / name, "rt") as fh:
            assert fh.read() == written
    # a command refuses the name at parsing, before any work (the model folder does not even exist)
    with pytest.raises(SystemExit) as stop:
        main(["inspect", "score", "--model", str(tmp_path / "none"), "--images", str(tmp_path),
              "--out", str(tmp_path / "scores.json")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot write a .json file" in err and ".parquet" in err


def test_the_text_encoding_is_read_off_the_file_and_excel_gets_its_mark_back(tmp_path, monkeypatch):
    import vai.core.tables as tables
    from vai.core.io import atomic_write_table
    from vai.core.tables import output_dialect, source_encoding

    text = "name;logS\nGlycéryl stéarate;-5,5\nCrème base;1,25\n"
    windows = tmp_path / "windows.csv"  # Excel on Windows, "CSV (;)": Windows-1252, decimal commas
    windows.write_bytes(text.encode("cp1252"))
    excel_utf8 = tmp_path / "excel_utf8.csv"  # Excel's "CSV UTF-8": the byte-order mark
    excel_utf8.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    unicode_text = tmp_path / "unicode.txt"  # Excel's "Unicode Text": UTF-16 with its mark, tab-separated
    unicode_text.write_bytes(text.replace(";", "\t").encode("utf-16"))
    plain = tmp_path / "plain.csv"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "windows.csv.gz"
    packed.write_bytes(gzip.compress(text.encode("cp1252")))
    want = ["Glycéryl stéarate", "Crème base"]
    for path, encoding in ((windows, "cp1252"), (excel_utf8, "utf-8-bom"), (unicode_text, "utf-16"),
                           (plain, "utf-8"), (packed, "cp1252")):
        assert source_encoding(path) == encoding, path.name
        frame = read_user_table(path)
        assert frame["name"].tolist() == want and frame["logS"].tolist() == [-5.5, 1.25], path.name
        out = tmp_path / f"out_{path.name.split('.')[0]}.csv"
        atomic_write_table(out, frame, like=path)
        raw = out.read_bytes()
        assert raw.startswith(codecs.BOM_UTF8) == (encoding != "utf-8"), path.name  # Excel reads é right
        assert read_user_table(out)["name"].tolist() == want
    assert output_dialect(plain) == CsvDialect(";", ",", bom=False)
    # UTF-8 with one stray Windows byte stays UTF-8 (the stray byte replaced), not mojibake for every accent
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes("name\nGlycéryl\n".encode("utf-8") + b"Cr\xe8me\n")
    assert source_encoding(mixed) == "utf-8"
    assert read_user_table(mixed)["name"].tolist() == ["Glycéryl", "Cr\ufffdme"]
    # a UTF-8 character cut by the scan's block boundary is still UTF-8
    monkeypatch.setattr(tables, "_SCAN_BLOCK", 3)
    tables._sniff_encoding.cache_clear()
    cut = tmp_path / "cut.csv"
    cut.write_text("ab\né\n", encoding="utf-8")  # é's two bytes fall in two blocks
    assert source_encoding(cut) == "utf-8" and source_encoding(windows) == "cp1252"


def test_table_downloads_match_what_the_cli_writes(tmp_path):
    import io

    from vai.core.tables import table_bytes

    frame = pd.DataFrame({"smiles": ["CCO", "=1+1"], "prediction": [0.5, -1.25]})
    back = pd.read_excel(io.BytesIO(table_bytes(frame, "xlsx")))
    assert back["smiles"].tolist() == ["CCO", "=1+1"] and back["prediction"].tolist() == [0.5, -1.25]
    assert table_bytes(frame).decode().splitlines() == ["smiles,prediction", "CCO,0.5", "=1+1,-1.25"]
    accents = pd.DataFrame({"name": ["α-tocopherol", "crème"], "logS": [-8.1, -1.0]})
    raw = table_bytes(accents)
    assert raw.startswith(b"\xef\xbb\xbf")  # so that Excel shows the accents, not two odd characters each
    assert pd.read_csv(io.BytesIO(raw))["name"].tolist() == ["α-tocopherol", "crème"]
    with pytest.raises(ValueError, match="fmt must be"):
        table_bytes(frame, "xls")


def test_excel_output_writes_dates_as_date_cells_and_zoned_times_as_iso_text(tmp_path):
    import datetime as dt

    import openpyxl

    from vai.core.io import atomic_write_table

    frame = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-02", None, "2024-01-04"]),  # trading days: no 00:00:00 shown
        "at": pd.to_datetime(["2024-01-02 15:30:01.500", "2024-01-03 09:00:00.000", "2024-01-04 00:00:00.000"]),
        "published_at": pd.to_datetime(["2024-01-02 15:30"] * 3).tz_localize("America/New_York"),
        "day": [dt.date(2024, 1, 2), None, dt.date(2024, 1, 4)]})
    atomic_write_table(tmp_path / "scores.xlsx", frame)
    sheet = openpyxl.load_workbook(tmp_path / "scores.xlsx").active
    date, at, zoned, day = (sheet.cell(2, c) for c in range(1, 5))
    assert date.is_date and date.value == dt.datetime(2024, 1, 2) and date.number_format == "yyyy-mm-dd"
    assert sheet.cell(3, 1).value is None  # NaT: an empty cell, not the text "NaT"
    assert at.value == dt.datetime(2024, 1, 2, 15, 30, 1, 500000) and at.number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet.cell(4, 2).number_format == "yyyy-mm-dd hh:mm:ss"  # one format per column, midnight or not
    assert zoned.value == "2024-01-02T15:30:00-05:00"  # Excel has no time zones: the instant, unambiguous
    assert day.is_date and day.number_format == "yyyy-mm-dd"
    back = read_user_table(tmp_path / "scores.xlsx")
    assert back["date"].iloc[0] == pd.Timestamp("2024-01-02") and pd.isna(back["date"].iloc[1])
