"""Vision inspection: fit a few-shot detector on a handful of good images, score test images, move the
threshold, and see heatmaps (normalised over the scored set). Calls the vision_inspect SDK only."""
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from vai.core.extras import page_requires
from vai.core.store import Store
from vai.core.tables import download_buttons

st.set_page_config(page_title="Vision inspection", layout="wide")
page_requires(st, "vision", "The vision-inspection page")  # an install without the [vision] extra: one line, not a traceback
st.title("Vision inspection: few-shot defect detection")
st.caption("Fit on a few good images (PatchCore-style memory bank, offline EfficientNet-Lite0 features), "
           "score new images, set the threshold, and see where the defect is.")


def _save_uploads(files, folder: Path, names: dict[str, str]) -> list[Path]:
    """Uploads as files, so the SDK reads them as the CLI does (16-bit camera images on one fixed scale, the same
    errors); `names` maps each saved path back to the name the user gave."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(files or []):
        p = folder / f"{i:04d}_{Path(f.name).name}"  # two uploads may share a name
        p.write_bytes(f.getvalue())
        names[str(p)] = f.name
        paths.append(p)
    return paths


def _as_given(text: str, names: dict[str, str]) -> str:
    for saved, given in names.items():
        text = text.replace(saved, given)
    return text


with st.sidebar:
    st.header("Inputs")
    use_sample = st.checkbox("Use generated sample images (synthetic textures with scratches and spots)", value=False)
    size = st.select_slider("Model resolution (px)", options=[96, 128, 160, 224], value=128)
    keep_aspect = st.checkbox("Keep the good images' aspect ratio", value=False, disabled=use_sample,
                              help="the resolution above becomes the shorter side, so elongated parts are not squashed")
    augment = st.selectbox("Support augmentation", ["flip", "rot", "none"],
                           help="none for oriented parts; rot needs a square resolution")
    good_files = st.file_uploader("Good images (a handful)", type=["png", "jpg", "jpeg", "bmp", "tif", "tiff"],
                                  accept_multiple_files=True, disabled=use_sample, key="good_upload")
    test_files = st.file_uploader("Images to inspect", type=["png", "jpg", "jpeg", "bmp", "tif", "tiff"],
                                  accept_multiple_files=True, disabled=use_sample, key="inspect_upload")
    go = st.button("Fit and score", type="primary")

if go:
    from vai.verticals.vision_inspect import FewShotDetector
    from vai.verticals.vision_inspect.synthetic import make_set

    from vai.core.errors import VaiError

    names: dict[str, str] = {}
    if use_sample:
        good, defect, _, kinds = make_set(10, 6, size=size, seed=0)
        support, tests = good[:4], np.concatenate([good[4:], defect])
        sample_names = [f"good_{i}" for i in range(6)] + [f"{k}_{i}" for i, k in enumerate(kinds)]
    else:
        folder = Path(tempfile.mkdtemp(prefix="vai-inspect-"))
        support = _save_uploads(good_files, folder / "good", names)
        tests = _save_uploads(test_files, folder / "inspect", names)
        if keep_aspect and support:
            from vai.verticals.vision_inspect.data import aspect_size

            size = aspect_size(support, size)
            if augment == "rot" and size[0] != size[1]:
                st.warning(f"rot needs a square resolution; using flip at {size[0]} x {size[1]}")
                augment = "flip"
    if len(support) == 0 or len(tests) == 0:
        st.error("Upload at least one good image and one image to inspect, or tick 'Use generated sample images'.")
    else:
        try:
            with st.spinner(f"Fitting on {len(support)} good images and scoring {len(tests)}..."):
                store = Store()
                with store.run("vision_inspect", "page-score",
                               {"support": len(support), "images": len(tests), "sample": use_sample,
                                "image_size": size if isinstance(size, int) else list(size)}) as run:
                    det = FewShotDetector(image_size=size, augment=augment).fit(support)
                    res = det.score(tests, keep_images=True)
                    bad = [_as_given(b.error, names) for b in det.fit_bad + res.bad]
                    run.summary.update({"threshold": det.threshold, "images": len(res.scores),
                                        "flagged": int((res.scores > det.threshold).sum()), "bad_images": len(bad)})
        except VaiError as exc:  # e.g. no readable good image, a 16-bit image for an 8-bit model
            st.session_state.pop("vi_result", None)
            st.error(_as_given(str(exc), names))
        else:
            if len(res.scores) == 0:  # every image to inspect unreadable: nothing to show but why
                st.session_state.pop("vi_result", None)
                st.error("None of the images to inspect could be read: " + "; ".join(bad))
                st.stop()
            test_names = sample_names if use_sample else [names[str(p)] for p in res.paths]
            st.session_state["vi_result"] = {"names": test_names, "scores": res.scores, "maps": res.maps,
                                             "images": res.images, "threshold": det.threshold,
                                             "method": det.threshold_info["method"], "bad": bad}

result = st.session_state.get("vi_result")
if result:
    import pandas as pd

    from vai.verticals.vision_inspect.detector import dataset_scale, normalise_maps, overlay
    from vai.verticals.vision_inspect.pipeline import write_colour_scale

    st.header("Scores")
    scores = result["scores"]
    lo, hi = float(scores.min()), float(scores.max())
    span = max(hi - lo, 1e-6)
    thr = st.slider("Threshold", min_value=round(lo - 0.1 * span, 3), max_value=round(hi + 0.1 * span, 3),
                    value=float(np.clip(result["threshold"], lo - 0.1 * span, hi + 0.1 * span)),
                    help=f"starts at the threshold set without defects ({result['method']})")
    flagged = scores > thr
    c1, c2, c3 = st.columns(3)
    c1.metric("Images", len(scores))
    c2.metric("Flagged as defect", int(flagged.sum()))
    c3.metric("Saved threshold", f"{result['threshold']:.3f}")
    table = pd.DataFrame({"image": result["names"], "score": scores, "is_defect": flagged})
    st.dataframe(table.sort_values("score", ascending=False), hide_index=True, use_container_width=True)
    download_buttons(st, table, "scores", "download_scores")
    for b in result["bad"]:
        st.warning(f"skipped {b}")
    st.header("Heatmaps (one colour scale for the whole set)")
    scale = dataset_scale(result["maps"], result["threshold"])
    with tempfile.TemporaryDirectory() as tmp:  # the legend the CLI writes beside its heatmaps
        st.image(write_colour_scale(Path(tmp) / "scale.png", scale, result["threshold"]).read_bytes())
    heat = normalise_maps(result["maps"], scale)
    order = np.argsort(-scores)
    cols = st.columns(4)
    for j, i in enumerate(order):
        with cols[j % 4]:
            st.image(overlay(result["images"][i], heat[i]),
                     caption=f"{result['names'][i]}: {scores[i]:.2f}{' DEFECT' if flagged[i] else ''}")

st.header("Recent vision-inspection runs")
runs = Store().runs(vertical="vision_inspect", limit=20)
if runs.empty:
    st.info("No vision-inspection runs yet: run `vai inspect fit/score` or `vai demo`, or use the form on the left.")
else:
    st.dataframe(runs[["run_id", "command", "status", "started_at", "duration_s"]], hide_index=True,
                 use_container_width=True)
