"""Small shared helpers for the discovery tests (embedded molecules, tiny models)."""
from pathlib import Path

import pandas as pd


def sample_frame(n=None) -> pd.DataFrame:
    from vai.verticals.discovery.sample_data import synthetic_logp_frame

    return synthetic_logp_frame(n)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


TINY_MPNN = {"epochs": 5, "hidden": 32, "patience": 5, "batch_size": 32, "lr": 3e-3}
