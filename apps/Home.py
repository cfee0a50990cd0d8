"""The Streamlit hub: the verticals and recent runs. Pages call the SDK only."""
from pathlib import Path

import streamlit as st

from vai import __version__
from vai.core.extras import VERTICAL_EXTRAS, install_hint, missing
from vai.core.settings import get_settings
from vai.core.store import Store

st.set_page_config(page_title="vai hub", layout="wide")
st.title("vai: vertical-AI platform")
st.caption(f"version {__version__}")

VERTICALS = [  # (name, package, what it does)
    ("Pathology", "path", "Whole-slide H&E images to genotype predictions (KRAS, TP53, MSI...) with attention heatmaps."),
    ("Discovery", "discovery", "Cosmetic ingredient properties: solubility, skin permeability, sensitisation, UV absorption."),
    ("Vision inspection", "vision_inspect", "Few-shot defect detection: a handful of good images in, anomaly scores and heatmaps out."),
    ("Scheduling", "scheduling", "Petrochemical feed scheduling with OR-Tools CP-SAT: vessels, tanks, blending, CDUs."),
    ("Master score", "master_score", "A daily 1-100 news-driven stock score with a rationale and honest backtests."),
]
cols = st.columns(len(VERTICALS))
for col, (name, package, text) in zip(cols, VERTICALS):
    with col:
        st.subheader(name)
        st.write(text)
        gone = missing(VERTICAL_EXTRAS[package])
        if gone:  # an install without this vertical's extra: its page says the same
            st.warning(f"Not installed here (needs {', '.join(gone)}): `{install_hint(VERTICAL_EXTRAS[package])}`")

settings = get_settings()
st.caption("Open a vertical from the sidebar. Every CLI batch job and demo run is recorded below.")
st.header("Recent runs")
store = Store()
runs = store.runs(limit=50)
if runs.empty:
    st.info(f"No runs yet in {store.url}. Run `vai demo` or any `vai <vertical> <verb>` batch job.")
else:
    vertical = st.selectbox("Vertical", ["all"] + sorted(runs["vertical"].unique().tolist()))
    shown = runs if vertical == "all" else runs[runs["vertical"] == vertical]
    st.dataframe(shown[["run_id", "vertical", "command", "status", "started_at", "duration_s"]],
                 width="stretch", hide_index=True)
    run_id = st.selectbox("Run details", shown["run_id"].tolist())
    if run_id:
        record = store.get(run_id)
        if record.get("error"):
            st.error(record["error"])
        left, right = st.columns(2)
        with left:
            st.markdown("**Summary**")
            st.json(record.get("summary") or {})
            st.markdown("**Parameters**")
            st.json(record.get("params") or {}, expanded=False)
        with right:
            st.markdown("**Outputs**")
            outputs = record.get("outputs") or {}
            if not outputs:
                st.caption("no outputs recorded")
            for name, path in outputs.items():
                p = Path(path)
                if p.suffix.lower() in {".png", ".jpg", ".jpeg"} and p.is_file():
                    st.image(str(p), caption=name)
                    continue
                st.write(f"`{name}`: {path}" + ("" if p.exists() else " (missing)"))
                if p.is_dir():  # a folder of pictures (heatmaps, plots): its legend first, then a few of them
                    pictures = sorted(p.rglob("*.png"), key=lambda f: (f.name != "colour_scale.png", str(f)))
                    shown_pictures = pictures[:7]
                    for pic in shown_pictures:
                        st.image(str(pic), caption=str(pic.relative_to(p)))
                    if len(pictures) > len(shown_pictures):
                        st.caption(f"... and {len(pictures) - len(shown_pictures)} more in {p}")
with st.expander("Settings"):
    st.json({"home": str(settings.home), "store": settings.store_url, "data dir": str(settings.data_dir),
             "models": str(settings.models_dir)})
