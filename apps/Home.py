"""The Streamlit hub: the verticals and recent runs. Pages call the SDK only."""
import streamlit as st

from vai import __version__
from vai.core.settings import get_settings
from vai.core.store import Store

st.set_page_config(page_title="vai hub", layout="wide")
st.title("vai: vertical-AI platform")
st.caption(f"version {__version__}")

VERTICALS = [
    ("Pathology", "Whole-slide H&E images to genotype predictions (KRAS, TP53, MSI...) with attention heatmaps."),
    ("Discovery", "Cosmetic ingredient properties: solubility, skin permeability, sensitisation, UV absorption."),
    ("Vision inspection", "Few-shot defect detection: a handful of good images in, anomaly scores and heatmaps out."),
    ("Scheduling", "Petrochemical feed scheduling with OR-Tools CP-SAT: vessels, tanks, blending, CDUs."),
    ("Master score", "A daily 1-100 news-driven stock score with a rationale and honest backtests."),
]
cols = st.columns(len(VERTICALS))
for col, (name, text) in zip(cols, VERTICALS):
    with col:
        st.subheader(name)
        st.write(text)

settings = get_settings()
st.header("Recent runs")
store = Store()
runs = store.runs(limit=50)
if runs.empty:
    st.info(f"No runs yet in {store.url}. Run `vai demo` or any `vai <vertical> <verb>` batch job.")
else:
    vertical = st.selectbox("Vertical", ["all"] + sorted(runs["vertical"].unique().tolist()))
    shown = runs if vertical == "all" else runs[runs["vertical"] == vertical]
    st.dataframe(shown[["run_id", "vertical", "command", "status", "started_at", "duration_s"]],
                 use_container_width=True, hide_index=True)
    run_id = st.selectbox("Run details", shown["run_id"].tolist())
    if run_id:
        st.json(store.get(run_id))
with st.expander("Settings"):
    st.json({"home": str(settings.home), "store": settings.store_url, "data dir": str(settings.data_dir),
             "models": str(settings.models_dir)})
