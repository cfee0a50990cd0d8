"""Stain normalisation against golden pairs; slide tables and the TCGA converter."""
import numpy as np
import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.verticals.path import StainNormalizer, read_slide_table, tcga_labels
from vai.verticals.path.stain import read_rgb


def _mad(a, b):
    return float(np.abs(a / 255.0 - b / 255.0).mean())


@pytest.mark.data
@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_tiatoolbox_golden_pairs(shared_data_dir, method):
    g = shared_data_dir / "path" / "stainnorm_golden" / "tiatoolbox"
    out = StainNormalizer(method).fit(read_rgb(g / "target_image.png")).transform(read_rgb(g / "source_image.png"))
    assert _mad(out, read_rgb(g / f"norm_{method}.png")) < 1e-2


# histolab's reference comes from its own tissue mask (a different filter chain from our luminosity mask), so
# the pixels it normalises differ at tissue borders. Macenko (stain vectors, robust to the mask) stays within
# 0.02; Reinhard (statistics and changes over the masked pixels only) within 0.06. Both must also be
# closer to histolab's output than the untouched source is (Macenko by more than half; Reinhard's
# low-nuclei tile only by ~15%, measured 0.057 vs 0.067: the mask difference dominates there).
HISTOLAB_TOL = {"macenko": 0.02, "reinhard": 0.06}
CLOSER_THAN_SOURCE = {"macenko": 0.5, "reinhard": 0.9}


@pytest.mark.data
@pytest.mark.parametrize("method", ["macenko", "reinhard"])
@pytest.mark.parametrize("tile", ["low-nuclei-score-level0", "medium-nuclei-score-level1"])
def test_histolab_golden_pairs(shared_data_dir, method, tile):
    g = shared_data_dir / "path" / "stainnorm_golden" / "histolab"
    fit = "tissue-level0-7352-11762-7864-12274"
    src = read_rgb(g / f"{tile}.png")
    expected = read_rgb(g / f"expected__{fit}--{tile}--{method}.png")
    out = StainNormalizer(method, "histolab").fit(read_rgb(g / f"{fit}.png")).transform(src)
    assert _mad(out, expected) < HISTOLAB_TOL[method]
    assert _mad(out, expected) < CLOSER_THAN_SOURCE[method] * _mad(src, expected)


def test_stain_normaliser_moves_colours_towards_target():
    rng = np.random.default_rng(0)
    base = np.full((64, 64, 3), 245, np.uint8)
    base[8:56, 8:56] = (200, 120, 170)
    base[rng.random((64, 64)) < 0.2] = (90, 60, 150)
    target = base.copy()
    target[8:56, 8:56] = (230, 150, 200)
    src = np.clip(base.astype(int) - 25, 0, 255).astype(np.uint8)
    for method in ("macenko", "reinhard"):
        out = StainNormalizer(method).fit(target).transform(src)
        assert _mad(out, target) < _mad(src, target)
    with pytest.raises(VaiError, match="no tissue"):
        StainNormalizer("macenko").fit(np.full((8, 8, 3), 255, np.uint8))


def test_slide_table_validation(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("slide,patient,site,KRAS,TP53\na,P1,S1,1,\nb,,S2,0,1\n")
    df = read_slide_table(p, ["KRAS", "TP53"])
    assert df["KRAS"].tolist() == [1.0, 0.0] and np.isnan(df["TP53"][0])
    assert df["patient"].tolist() == ["P1", "b"]  # blank patient -> the slide is its own patient
    p.write_text("slide,KRAS\na,1\nb,maybe\n")
    with pytest.raises(VaiError, match=r"row 3, column 'KRAS'.*'maybe'"):
        read_slide_table(p, ["KRAS"])
    with pytest.raises(VaiError, match="'EGFR' not found"):
        read_slide_table(p, ["EGFR"])
    p.write_text("name,KRAS\na,1\n")
    with pytest.raises(VaiError, match="no 'slide' column"):
        read_slide_table(p)
    p.write_text("slide;patient;KRAS;TP53\na;P1;1;0,0\nb;P2;0;1,0\n")  # a European spreadsheet's export
    df = read_slide_table(p)
    assert df["slide"].tolist() == ["a", "b"] and df["TP53"].tolist() == [0.0, 1.0]
    import pandas as pd

    book = tmp_path / "labels.xlsx"  # or the workbook itself: numbers are numbers there, blanks are missing
    pd.DataFrame({"slide": ["a", "b", "c"], "KRAS": [1, 0, None], "TP53": ["mut", "wt", "wt"]}).to_excel(book, index=False)
    df = read_slide_table(book)
    assert df["KRAS"].tolist()[:2] == [1.0, 0.0] and np.isnan(df["KRAS"][2]) and df["TP53"].tolist() == [1.0, 0.0, 0.0]


def test_slide_table_repeated_columns_and_disagreeing_patients(tmp_path, caplog):
    p = tmp_path / "labels.csv"
    p.write_bytes(b"\xef\xbb\xbfslide,KRAS,KRAS\na,1,0\n")  # a BOM, then a pasted-twice column
    with pytest.raises(VaiError, match="'KRAS' appear more than once"):
        read_slide_table(p)
    p.write_bytes(b"\xef\xbb\xbfslide,patient,KRAS\na,P1,1\nb,P1,0\nc,P2,0\n")
    with caplog.at_level("WARNING", logger="vai.path"):
        df = read_slide_table(p)
    assert df["slide"].tolist() == ["a", "b", "c"]  # the BOM does not hide the slide column
    assert "1 patient(s) have slides labelled both 1 and 0 for KRAS (e.g. P1)" in caplog.text


def test_tcga_converter_on_a_small_table(tmp_path):
    (tmp_path / "tcga-mutations-part1.txt").write_text(
        "STUDY_ID\tSAMPLE_ID\tKRAS\tTP53\n"
        "coad\tTCGA-AA-0001-01\tG12D\tWT\n"
        "coad\tTCGA-AA-0002-01\tWT\tNS\n"
        "coad\tTCGA-BB-0003-01\tWT\tR175H\n")
    df = tcga_labels(["TCGA-AA-0001-01Z-00-DX1", "TCGA-AA-0002-01A-01-TS1", "TCGA-BB-0003-01Z-00-DX1",
                      "TCGA-CC-0009-01Z-00-DX1"], ["KRAS", "TP53"], tmp_path)
    assert df["KRAS"].tolist()[:3] == [1, 0, 0] and pd.isna(df["KRAS"][3])
    assert df["TP53"][0] == 0 and pd.isna(df["TP53"][1]) and df["TP53"][2] == 1
    assert df["patient"][0] == "TCGA-AA-0001" and df["site"][2] == "BB"
    # a solid-tissue-normal slide (sample type 11) of a mutated patient does not inherit the tumour's call
    normal = tcga_labels(["TCGA-AA-0001-11A-01-TS1", "TCGA-AA-0001-01Z-00-DX2"], ["KRAS"], tmp_path)
    assert pd.isna(normal["KRAS"][0]) and normal["KRAS"][1] == 1
    with pytest.raises(VaiError, match="not a TCGA barcode"):
        tcga_labels(["slide7"], ["KRAS"], tmp_path)
    with pytest.raises(VaiError, match="EGFR"):
        tcga_labels(["TCGA-AA-0001-01Z"], ["EGFR"], tmp_path)


def test_tcga_labels_of_a_folder_count_a_slide_and_its_features_once(tmp_path):
    from vai.cli import main

    (tmp_path / "tcga-mutations-part1.txt").write_text(
        "STUDY_ID\tSAMPLE_ID\tKRAS\ncoad\tTCGA-AA-0001-01\tG12D\ncoad\tTCGA-AA-0002-01\tWT\n")
    slides = tmp_path / "slides"
    slides.mkdir()
    for name in ("TCGA-AA-0001-01Z-00-DX1.svs", "TCGA-AA-0001-01Z-00-DX1.h5", "TCGA-AA-0002-01Z-00-DX1.mrxs",
                 "notes.txt"):
        (slides / name).write_bytes(b"")
    out = tmp_path / "labels.csv"
    assert main(["path", "labels-tcga", str(slides), "--genes", "KRAS", "--out", str(out),
                 "--mutations", str(tmp_path)]) == 0
    df = read_slide_table(out, ["KRAS"])
    assert df["slide"].tolist() == ["TCGA-AA-0001-01Z-00-DX1", "TCGA-AA-0002-01Z-00-DX1"]  # once each; MIRAX too
    assert df["KRAS"].tolist() == [1, 0]


@pytest.mark.data
def test_tcga_converter_real_tables(shared_data_dir, tmp_path, capsys):
    from vai.cli import main

    folder = shared_data_dir / "path" / "labels" / "tcga_mutations"
    out = tmp_path / "labels.csv"
    assert main(["path", "labels-tcga", "TCGA-HE-7130-01Z-00-DX1", "--genes", "TP53,FGFR3,KRAS",
                 "--out", str(out), "--mutations", str(folder)]) == 0
    df = read_slide_table(out, ["TP53", "FGFR3", "KRAS"])
    # SOURCES.md: TCGA-HE-7130-01 (KIRP) is TP53 wild type and FGFR3 mutated.
    assert df["TP53"][0] == 0 and df["FGFR3"][0] == 1
    assert df["patient"][0] == "TCGA-HE-7130"
