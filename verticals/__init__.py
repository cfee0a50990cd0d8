"""The five verticals. Each is a package with the same shape: io/data, models, the SDK's public classes
in its `__init__`, `cli.py` (`register(subparsers)`), `demo.py` (`run_demo(out_dir)`), and a Streamlit page
in `apps/pages/`. A vertical imports `vai.core`, never another vertical."""
