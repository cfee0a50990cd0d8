"""Discovery: property predictions with intervals and atom heatmaps; library screening. Calls the SDK only."""
import io
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from vai.core.errors import VaiError
from vai.core.store import Store
from vai.verticals.discovery import PropertyPredictor, Standardizer, load_zoo, prediction_columns, screen_library
from vai.verticals.discovery.zoo import default_zoo_dir

try:  # the Ketcher editor (EPAM) bundled with its WebAssembly toolkit: drawing works offline, in the browser
    from streamlit_ketcher import st_ketcher
except ImportError:  # the page still takes pasted SMILES
    st_ketcher = None

st.set_page_config(page_title="Discovery", layout="wide")
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


tab_predict, tab_screen, tab_runs = st.tabs(["Predict", "Screen a library", "Recent runs"])

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
            st.session_state["screen_result"] = (pd.read_csv(res.ranked_path), res.summary())
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
        buf = io.StringIO()
        ranked.to_csv(buf, index=False)
        st.download_button("Download ranked CSV", buf.getvalue(), "ranked.csv", "text/csv", key="download")
        numeric = [c for c in names if c in ranked]
        if len(numeric) >= 2:
            import plotly.express as px

            st.plotly_chart(px.scatter(ranked, x=numeric[0], y=numeric[1],
                                       color="pareto" if "pareto" in ranked else None,
                                       hover_data=["smiles_std"]), use_container_width=True)

with tab_runs:
    runs = Store().runs(vertical="discovery", limit=30)
    if runs.empty:
        st.info("No discovery runs yet: `vai demo --only discovery` or any `vai discovery` batch verb records one.")
    else:
        st.dataframe(runs[["run_id", "command", "status", "started_at", "duration_s"]], use_container_width=True,
                     hide_index=True)
