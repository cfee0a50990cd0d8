"""Discovery: property predictions with intervals and atom heatmaps; library screening. Calls the SDK only."""
import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from vai.core.errors import VaiError
from vai.core.extras import page_requires
from vai.core.store import Store
from vai.core.tables import download_buttons, read_user_table
from vai.verticals.discovery import PropertyPredictor, Standardizer, load_zoo, prediction_columns, screen_library
from vai.verticals.discovery.zoo import default_zoo_dir

try:  # the Ketcher editor (EPAM) bundled with its WebAssembly toolkit: drawing works offline, in the browser
    from streamlit_ketcher import st_ketcher
except ImportError:  # the page still takes pasted SMILES
    st_ketcher = None

st.set_page_config(page_title="Discovery", layout="wide")
page_requires(st, "discovery", "The discovery page")  # an install without the [discovery] extra: one line, not a traceback
st.title("Discovery: cosmetic ingredient properties")
st.caption("Solubility, skin permeability, sensitisation, UV absorption, logD: predictions with 90% conformal "
           "intervals, applicability domain and atom contributions.")

zoo = load_zoo()
if not zoo:
    st.info(f"No trained zoo models in {default_zoo_dir()}. Train them with `vai discovery zoo`, or train a small "
            "demo model below (SYNTHETIC labels: RDKit Crippen logP).")
    if st.button("Train demo model (synthetic labels)", key="train_demo"):
        from vai.verticals.discovery.sample_data import synthetic_logp_frame
        from vai.verticals.discovery.workflows import train_table

        with st.spinner("training"):
            train_table(synthetic_logp_frame(), smiles_col="smiles", target_cols=["logp_crippen"],
                        out=default_zoo_dir() / "demo_logp_synthetic" / "model", model="gbm", split="random")
        zoo = load_zoo()


@st.cache_resource
def _load(path: str):
    return PropertyPredictor.load(path)


tab_predict, tab_screen, tab_train, tab_runs = st.tabs(["Predict", "Screen a library", "Train on your data",
                                                         "Recent runs"])

with tab_predict:
    text = st.text_area("SMILES, one per line", "COc1ccc(cc1)C(=O)CC(=O)c1ccc(cc1)C(C)(C)C\nOCCOc1ccccc1",
                        key="smiles_input")
    drawn = ""
    if st_ketcher is None:
        st.caption("To draw molecules here, install the editor: `pip install streamlit-ketcher` "
                   "(part of the `discovery` extra).")
    elif st.toggle("Draw a molecule", key="draw"):
        # a toggle rather than an expander: the editor lays itself out on first render, at full width
        drawn = (st_ketcher("", key="ketcher", height=450) or "").strip()
        st.caption(f"Drawn: `{drawn}` (predicted with the molecules above)" if drawn else
                   "Draw, then press Apply in the editor; the drawn molecule is predicted with those above.")
    molecules = [s.strip() for s in text.splitlines() if s.strip()] + ([drawn] if drawn else [])
    solvent = st.text_input("Solvent SMILES (for UV lambda max)", "CCO", key="solvent")
    if st.button("Predict", key="predict") and zoo:
        std = Standardizer()
        rows = [{"input": s, **dict(zip(("smiles_std", "error"), std(s)))} for s in molecules]
        frame = pd.DataFrame(rows)
        for name, entry in zoo.items():
            model = _load(entry["model_dir"])
            sub = frame.copy()
            if model.solvent:
                sub["solvent"] = solvent
            pred = model.predict(sub, "input", "solvent" if model.solvent else None)  # a salt model re-reads input
            # the screen's columns: one per target of a multi-task model, 90% interval bounds, in-domain flag
            for col, values in prediction_columns(name, model, pred).items():
                frame[col] = values
        st.session_state["predictions"] = frame
    if "predictions" in st.session_state:
        frame = st.session_state["predictions"]
        st.dataframe(frame, use_container_width=True, hide_index=True)
        download_buttons(st, frame, "predictions", "download_predictions")
        valid = frame[frame["error"] == ""]
        if len(valid) and zoo:
            c1, c2 = st.columns(2)
            mol = c1.selectbox("Molecule", valid["smiles_std"].tolist(), key="explain_mol")
            prop = c2.selectbox("Property", list(zoo), key="explain_prop")
            model = _load(zoo[prop]["model_dir"])
            target = st.selectbox("Target", model.targets, key="explain_target") if len(model.targets) > 1 else None
            with tempfile.TemporaryDirectory() as tmp:
                res = model.explain(mol, Path(tmp) / "atoms.png", solvent=solvent if model.solvent else None,
                                    target=target)
                how = " by fingerprint occlusion" if model.gps else ""  # a GP has no gradients or trees to read
                st.image(Path(res["image"]).read_bytes(), caption=f"atom contributions to {prop}"
                         f"{'.' + target if target else ''}{how} (green raises, pink lowers)", width=400)
    if zoo:
        with st.expander("Model cards"):
            for name, entry in zoo.items():
                st.markdown(f"**{name}**: {entry['card'].get('summary', 'no card')}")

with tab_screen:
    upload = st.file_uploader("Library (CSV, TSV or Excel with a SMILES column, .smi or SDF; gzipped too)",
                              type=["csv", "tsv", "txt", "xlsx", "smi", "smiles", "sdf", "sd", "gz"], key="library")
    names = st.multiselect("Models", list(zoo), default=list(zoo)[:2], key="screen_models")
    constraints = st.text_area("Constraints, one per line (e.g. logS>-3, prop=290:320)", "", key="constraints")
    similar = st.text_input("Similarity query SMILES (optional)", "", key="similar")
    if st.button("Screen", key="screen") and upload is not None and (names or similar):
        tmp = Path(tempfile.mkdtemp(prefix="vai-screen-"))
        lib = tmp / upload.name
        lib.write_bytes(upload.getvalue())
        try:
            with Store().run("discovery", "screen", {"page": True, "library": upload.name}) as run:
                res = screen_library(lib, tmp / "out", models={n: zoo[n]["model_dir"] for n in names},
                                     constraints=[c for c in constraints.splitlines() if c.strip()],
                                     similar_to=[similar] if similar.strip() else None, solvent=solvent or None,
                                     chunk_size=2000, store_run=run)
                run.add_output("ranked", res.ranked_path)
                run.summary.update(res.summary())
            sdf = res.ranked_path.with_suffix(".sdf")
            st.session_state["screen_result"] = (read_user_table(res.ranked_path), res.summary())  # the library's dialect
            st.session_state["screen_sdf"] = sdf.read_bytes() if sdf.exists() else None
        except VaiError as exc:  # a library without a SMILES column, a bad constraint: said plainly, not a traceback
            st.session_state.pop("screen_result", None)
            st.error(str(exc))
    if "screen_result" in st.session_state:
        ranked, summary = st.session_state["screen_result"]
        st.write(f"{summary['rows']} molecules, {summary['valid']} valid, {summary['passing']} pass the constraints")
        if "pareto" in ranked:
            only_pareto = st.checkbox("Pareto front only", key="pareto_only")
            if only_pareto:
                ranked = ranked[ranked["pareto"]]
        st.dataframe(ranked, use_container_width=True, hide_index=True)
        download_buttons(st, ranked, "ranked", "download")
        if st.session_state.get("screen_sdf") and not st.session_state.get("pareto_only"):
            st.download_button("Download SDF (structures with the predictions as tags)", st.session_state["screen_sdf"],
                               "ranked.sdf", "chemical/x-mdl-sdfile", key="download_sdf")
        numeric = [c for c in names if c in ranked]
        if len(numeric) >= 2:
            import plotly.express as px

            st.plotly_chart(px.scatter(ranked, x=numeric[0], y=numeric[1],
                                       color="pareto" if "pareto" in ranked else None,
                                       hover_data=["smiles_std"]), use_container_width=True)

with tab_train:
    st.caption("Upload your measurements (CSV, TSV or Excel with a SMILES column), pick the property, and train a "
               "model; with few molecules, start from a zoo model of the same property. The model joins the zoo: "
               "the Predict and Screen tabs use it.")
    data_file = st.file_uploader("Measurements", type=["csv", "tsv", "txt", "xlsx", "smi", "sdf"], key="train_upload")
    if data_file is not None:
        from vai.verticals.discovery.chem import read_table
        from vai.verticals.discovery.workflows import TEST_PREDICTIONS, train_table

        tmp = Path(tempfile.mkdtemp(prefix="vai-train-"))
        table_path = tmp / data_file.name
        table_path.write_bytes(data_file.getvalue())
        try:
            frame, smiles_col = read_table(table_path)
        except VaiError as exc:
            st.error(str(exc))
            frame = None
        if frame is not None:
            others = [c for c in frame.columns if c != smiles_col]
            c1, c2, c3 = st.columns(3)
            target = c1.selectbox("Property column", others, key="train_target")
            task = c2.radio("Task", ["regression", "classification"], key="train_task", horizontal=True)
            kind = c3.selectbox("Model", ["gbm", "gp", "ensemble", "mpnn"] if task == "regression"
                                else ["gbm", "ensemble", "mpnn"], key="train_model")
            # a zoo model of the same kind (a classifier for a classifier, on GBM), one target, no solvent input
            base_task = "regression" if task == "regression" else "binary"
            loaded = {n: _load(e["model_dir"]) for n, e in zoo.items()}
            bases = {n: zoo[n]["model_dir"] for n, m in loaded.items()
                     if m.task == base_task and len(m.targets) == 1 and not m.solvent}
            can_base = bool(bases) and (task == "regression" or kind == "gbm")
            base = st.selectbox("Start from a zoo model (transfer)", ["none", *bases], key="train_base",
                                disabled=not can_base,
                                help="learns this data's difference from the zoo model; a classifier on a "
                                     "classifier base trains GBM")
            split = st.radio("Split", ["scaffold", "random"], key="train_split", horizontal=True)
            name = st.text_input("Name in the zoo", f"my_{target}", key="train_name").strip()
            if st.button("Train", key="train") and target and name:
                out = default_zoo_dir() / name / "model"
                try:
                    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):  # a folder of the zoo, nowhere else
                        raise VaiError(f"name {name!r}: use letters, digits, '_', '-' or '.' (it names a folder)")
                    with st.spinner(f"training on {len(frame)} rows"):
                        with Store().run("discovery", "train", {"page": True, "data": data_file.name,
                                                                "target": target, "model": kind,
                                                                "base": base}) as run:
                            _, metrics = train_table(frame, smiles_col=smiles_col, target_cols=[target], out=out,
                                                     task=task, model=kind, split=split,
                                                     base_model=bases.get(base) if can_base else None,
                                                     source=data_file.name)
                            run.add_output("model", out)
                            run.summary.update({"test": metrics.get("test"), "data": metrics.get("data")})
                    _load.clear()
                    st.session_state["train_result"] = (name, metrics, out)
                except VaiError as exc:  # too few rows, a constant target, a text class: said plainly
                    st.session_state.pop("train_result", None)
                    st.error(str(exc))
    if "train_result" in st.session_state:
        name, metrics, out = st.session_state["train_result"]
        test = next(iter((metrics.get("test") or {}).values()), {})  # the one target's held-out metrics
        data = metrics.get("data", {})
        st.success(f"{name}: trained on {metrics['n_train']} molecules ({data.get('bad_molecules', 0)} unparsable "
                   f"and {data.get('no_label', 0)} unlabelled rows skipped); held-out test set of "
                   f"{metrics.get('n_test', 0)}")
        shown = {k: v for k, v in test.items() if isinstance(v, (int, float)) and v == v}
        st.dataframe(pd.DataFrame([shown]), hide_index=True, use_container_width=True)
        if metrics.get("transfer"):
            t = metrics["transfer"]
            st.caption(f"Validation RMSE {t['val_rmse']:.3f} with the correction, {t['val_rmse_base_alone']:.3f} "
                       "for the zoo model alone.")
        held_out = Path(out) / TEST_PREDICTIONS
        if held_out.exists() and metrics.get("task") == "regression":
            import plotly.express as px

            tp = pd.read_csv(held_out)
            measured = next(c for c in tp.columns if c.startswith("measured_"))
            fig = px.scatter(tp, x=measured, y="prediction", hover_data=["smiles_std"],
                             error_y=tp["interval_high"] - tp["prediction"],
                             error_y_minus=tp["prediction"] - tp["interval_low"],
                             title="Held-out test molecules: predicted (90% interval) vs measured")
            lo, hi = float(tp[[measured, "prediction"]].min().min()), float(tp[[measured, "prediction"]].max().max())
            fig.add_shape(type="line", x0=lo, y0=lo, x1=hi, y1=hi, line={"dash": "dot", "color": "grey"})
            st.plotly_chart(fig, use_container_width=True)

with tab_runs:
    runs = Store().runs(vertical="discovery", limit=30)
    if runs.empty:
        st.info("No discovery runs yet: `vai demo --only discovery` or any `vai discovery` batch verb records one.")
    else:
        st.dataframe(runs[["run_id", "command", "status", "started_at", "duration_s"]], use_container_width=True,
                     hide_index=True)
