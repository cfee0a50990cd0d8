"""Pathology: pick or upload a slide, see its thumbnail, tissue mask and tile grid, run a trained genotype
model and see per-target probabilities and the attention heatmap. Calls the vai.verticals.path SDK only."""
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from vai.core.extras import page_requires
from vai.core.settings import get_settings
from vai.core.store import Store
from vai.verticals.path import SlideReader, Tiler, TissueDetector, make_synthetic_slide
from vai.verticals.path.heatmap import grid_overlay
from vai.verticals.path.pipeline import predict_features

st.set_page_config(page_title="Pathology", layout="wide")
page_requires(st, "path", "The pathology page")  # an install without the [path] extra: one line, not a traceback
st.title("Pathology: slides to genotype predictions")
st.caption("Whole-slide H&E images -> tissue -> tiles -> embeddings -> MIL genotype model -> attention heatmaps.")

settings = get_settings()
store = Store()

# -- recent runs -------------------------------------------------------------------------------------
st.header("Recent pathology runs")
runs = store.runs(vertical="path", limit=20)
if runs.empty:
    st.info("No pathology runs yet: try `vai demo --only path` or `vai path synth --out DIR --slides 12`.")
else:
    st.dataframe(runs[["run_id", "command", "status", "started_at", "duration_s"]], hide_index=True,
                 use_container_width=True)

# -- slide ---------------------------------------------------------------------------------------------
st.header("Slide")
SYNTH = "synthetic demo slide (generated)"
choices = [SYNTH]
if settings.data_dir and (settings.data_dir / "path" / "slides").is_dir():
    choices += [str(p) for p in sorted((settings.data_dir / "path" / "slides").iterdir())]
choice = st.selectbox("Pick a slide", choices)
upload = st.file_uploader("...or upload one (SVS, tiled TIFF, NDPI, ...)", key="slide_upload")
work = Path(tempfile.gettempdir()) / "vai_path_page"
work.mkdir(parents=True, exist_ok=True)
if upload is not None:
    slide_path = work / upload.name
    slide_path.write_bytes(upload.getvalue())
elif choice == SYNTH:
    slide_path = work / "synthetic_demo.tiff"
    if not slide_path.exists():
        make_synthetic_slide(slide_path, size=768, morph_a=True, seed=11)
else:
    slide_path = Path(choice)

slide_mpp = st.number_input("Slide µm/px at full resolution: only for a file whose metadata lacks it (0 = from the "
                            "file)", 0.0, 10.0, 0.0, 0.01, format="%.4f", key="slide_mpp") or None
col1, col2, col3 = st.columns(3)
target_mpp = col1.number_input("Tile resolution (µm/px)", 0.1, 8.0, 0.5 if choice != SYNTH else 1.0, 0.25)
tile_size = col2.select_slider("Tile size (px)", [64, 128, 224, 256, 512], 256 if choice != SYNTH else 64)
min_tissue = col3.slider("Minimum tissue per tile", 0.0, 1.0, 0.5, 0.05)

try:
    with SlideReader(slide_path, mpp=slide_mpp) as slide:
        info = slide.info()
        if info.mpp_x is None:  # the CLI's message names its flag; here the field above
            st.error(f"{slide_path.name}: the slide has no resolution (mpp) or objective power in its metadata; "
                     "enter its µm/px at full resolution above (e.g. 0.25 for 40x, 0.5 for 20x)")
            st.stop()
        mask = TissueDetector(thumbnail_size=768).detect(slide)
        grid, _ = Tiler(target_mpp, tile_size, min_tissue).grid(slide, mask)
except Exception as exc:  # noqa: BLE001 - VaiError for bad files; the page shows it instead of a traceback
    st.error(str(exc))
    st.stop()

st.write(f"**{slide_path.name}** — {info.width} x {info.height} px, {info.level_count} level(s), "
         f"{info.mpp_x} µm/px ({info.mpp_source}), vendor {info.vendor}; tissue {mask.fraction:.1%}; "
         f"{len(grid)} tiles at {target_mpp} µm/px")
c1, c2, c3 = st.columns(3)
c1.image(mask.thumbnail, caption="thumbnail", use_container_width=True)
c2.image(mask.mask.astype("uint8") * 255, caption=f"tissue mask ({mask.fraction:.1%})", use_container_width=True)
c3.image(grid_overlay(mask.thumbnail, mask.downsample, grid.coords, grid.size0),
         caption=f"tile grid ({len(grid)} tiles)", use_container_width=True)
if mask.empty:
    st.warning("No tissue found on this slide.")

# -- model ---------------------------------------------------------------------------------------------
st.header("Run a trained genotype model")
trained = runs[(runs["command"] == "train") & (runs["status"] == "succeeded")] if not runs.empty else runs
default_model = trained.iloc[0]["outputs"].get("model", "") if not trained.empty else ""
model_dir = st.text_input("Model directory (from `vai path train`)", default_model)
if st.button("Predict this slide", disabled=not model_dir):
    out = work / "predict"
    try:
        res = predict_features(model_dir, None, out / "predictions.csv", heatmaps_dir=out / "heatmaps",
                               slides=[str(slide_path)], work_dir=out / "features", num_workers=0,
                               slide_mpp=slide_mpp)
    except Exception as exc:  # noqa: BLE001
        st.error(str(exc))
    else:
        frame = res["predictions"]
        st.subheader("Per-target probabilities")
        flag = frame["in_domain"].iloc[0] if "in_domain" in frame.columns else None
        if flag is not None and not pd.isna(flag) and not bool(flag):
            st.warning(f"This slide lies outside the training slides' feature range (domain distance "
                       f"{frame['domain_distance'].iloc[0]:.1f}; 1 is the edge of what training covered): another "
                       "scanner, stain, organ or artefact. The probabilities below are not backed by the "
                       "cross-validation.")
        st.dataframe(frame, hide_index=True)
        probs = [c for c in frame.columns if c.endswith("_prob")]
        if probs:
            st.bar_chart(pd.Series({c[:-5]: float(frame[c].iloc[0]) for c in probs}, name="probability"))
        for c in probs:
            t = c[:-5]
            heat = out / "heatmaps" / f"{slide_path.stem}_{t}_heatmap.png"
            top = out / "heatmaps" / f"{slide_path.stem}_{t}_top_tiles.png"
            h1, h2 = st.columns(2)
            if heat.exists():
                h1.image(str(heat), caption=f"{t}: attention heatmap", use_container_width=True)
            if top.exists():
                h2.image(str(top), caption=f"{t}: most-attended tiles", use_container_width=True)
