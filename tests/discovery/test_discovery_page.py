from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "apps" / "pages" / "2_Discovery.py")


def test_page_without_models_offers_a_demo_model():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert "Discovery" in at.title[0].value
    assert any("No trained zoo models" in i.value for i in at.info)


def test_page_predicts_and_draws_with_a_zoo_model():
    from vai.verticals.discovery.sample_data import synthetic_logp_frame
    from vai.verticals.discovery.workflows import train_table
    from vai.verticals.discovery.zoo import default_zoo_dir

    train_table(synthetic_logp_frame(), smiles_col="smiles", target_cols=["logp_crippen"],
                out=default_zoo_dir() / "logp_synthetic" / "model", model="gbm", split="random", gbm_members=1)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    at.text_area(key="smiles_input").set_value("OCCOc1ccccc1\nnot_a_smiles").run()
    at.button(key="predict").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 2 and "logp_synthetic" in table.columns
    assert table["error"].iloc[1] != ""
    # the screen's column names: the interval around each prediction and the domain flag
    lo, hi, pred = table["logp_synthetic_interval_low"], table["logp_synthetic_interval_high"], table["logp_synthetic"]
    assert (lo.iloc[0] < pred.iloc[0] < hi.iloc[0]) and "logp_synthetic_in_domain" in table.columns
    assert len(at.get("image")) == 1
    downloads = at.get("download_button")  # the table as CSV and as an Excel workbook
    assert len(downloads) == 2, downloads
    # the drawing editor (a browser component, exercised in tests/apps/test_apps_e2e.py) opens without errors
    at.toggle(key="draw").set_value(True).run()
    assert not at.exception


def test_page_shows_every_target_of_a_multi_task_zoo_model():
    from vai.verticals.discovery.sample_data import synthetic_logp_frame
    from vai.verticals.discovery.workflows import train_table
    from vai.verticals.discovery.zoo import default_zoo_dir

    f = synthetic_logp_frame()
    f["small"] = (f["heavy_atoms"] < 12).astype(int)
    f.loc[f.index[::3], "small"] = None  # missing labels, as in Tox21
    train_table(f, smiles_col="smiles", target_cols=["logp_high", "small"], task="classification",
                out=default_zoo_dir() / "two_assays" / "model", model="gbm", split="random", gbm_members=1)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_area(key="smiles_input").set_value("OCCOc1ccccc1\nCCCCCCCCCCCCCCCCO").run()
    at.button(key="predict").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert {"two_assays.logp_high", "two_assays.small"} <= set(table.columns)
    assert table["two_assays.small"].between(0, 1).all()
    assert table["two_assays.small"].iloc[0] > table["two_assays.small"].iloc[1]  # 9 heavy atoms vs 17
    at.selectbox(key="explain_target").set_value("small").run()
    assert not at.exception and len(at.get("image")) == 1
    assert "two_assays.small" in at.get("image")[0].proto.imgs[0].caption


def test_page_trains_on_an_upload_on_top_of_a_zoo_model_and_the_model_joins_the_zoo():
    from vai.verticals.discovery.sample_data import synthetic_logp_frame
    from vai.verticals.discovery.workflows import train_table
    from vai.verticals.discovery.zoo import default_zoo_dir, load_zoo

    f = synthetic_logp_frame()
    train_table(f, smiles_col="smiles", target_cols=["logp_crippen"], out=default_zoo_dir() / "logp_public" / "model",
                model="gbm", split="random", gbm_members=1)
    mine = f[["smiles", "logp_crippen"]].assign(assay=lambda d: 0.9 * d["logp_crippen"] - 1.5).drop(columns="logp_crippen")
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    at.file_uploader(key="train_upload").set_value(("mine.csv", mine.to_csv(index=False).encode(), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="train_target").set_value("assay")
    at.selectbox(key="train_base").set_value("logp_public")
    at.radio(key="train_split").set_value("random")
    at.button(key="train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("my_assay: trained on" in s.value for s in at.success)
    assert any("with the correction" in c.value for c in at.caption)
    assert "my_assay" in load_zoo() and (default_zoo_dir() / "my_assay" / "model" / "test_predictions.csv").exists()


def test_page_says_what_is_wrong_with_a_library_or_a_training_table():
    from vai.verticals.discovery.sample_data import synthetic_logp_frame
    from vai.verticals.discovery.workflows import train_table
    from vai.verticals.discovery.zoo import default_zoo_dir

    train_table(synthetic_logp_frame(), smiles_col="smiles", target_cols=["logp_crippen"],
                out=default_zoo_dir() / "logp_synthetic" / "model", model="gbm", split="random", gbm_members=1)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.file_uploader(key="library").set_value(("lib.csv", b"name,weight\naspirin,180\n", "text/csv")).run()
    at.button(key="screen").click().run()
    assert not at.exception and any("cannot tell which column holds SMILES" in e.value for e in at.error)
    # a library that can be screened: the ranked table, and downloads as CSV, Excel and SDF
    library = b"name,smiles\nethanol,CCO\nphenoxyethanol,OCCOc1ccccc1\ntoluene,Cc1ccccc1\n"
    at.file_uploader(key="library").set_value(("lib.csv", library, "text/csv")).run()
    at.text_area(key="constraints").set_value("logp_synthetic>-10").run()
    at.button(key="screen").click().run()
    assert not at.exception and len(at.dataframe[0].value) == 3
    assert len(at.get("download_button")) == 3
    euro = library.replace(b",", b";")  # a European-locale spreadsheet's CSV: ranked.csv comes back in `;` too
    at.file_uploader(key="library").set_value(("lib.csv", euro, "text/csv")).run()
    at.button(key="screen").click().run()
    assert not at.exception and len(at.dataframe[0].value) == 3 and "logp_synthetic" in at.dataframe[0].value
    at.file_uploader(key="train_upload").set_value(("few.csv", b"smiles,y\nCCO,1\nCCCO,2\n", "text/csv")).run()
    at.button(key="train").click().run()
    assert not at.exception and any("need at least 10" in e.value for e in at.error)
    at.text_input(key="train_name").set_value("../outside").run()
    at.button(key="train").click().run()
    assert not at.exception and any("it names a folder" in e.value for e in at.error)
