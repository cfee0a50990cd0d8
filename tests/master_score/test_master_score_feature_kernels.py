"""The whole-panel NumPy feature kernels against the plain per-column / per-ticker definitions they replace."""
import numpy as np
import pandas as pd
import pytest

from vai.verticals.master_score.features import _novelty, _rolling


@pytest.mark.parametrize("window,min_periods", [(20, 10), (60, 5), (20, 5)])
def test_rolling_matches_pandas_with_gaps(window, min_periods):
    rng = np.random.default_rng(1)
    a = rng.normal(13, 0.5, (400, 30))
    a[rng.random(a.shape) < 0.1] = np.nan
    a[:50, 3] = np.nan  # a late listing
    a[100:180, 4] = np.nan  # a suspension longer than the window
    frame = pd.DataFrame(a)
    for stat in ("mean", "std"):
        ref = getattr(frame.rolling(window, min_periods=min_periods), stat)().to_numpy()
        got = _rolling(a, window, min_periods, stat)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9, equal_nan=True)


def _novelty_per_ticker(T, N, ti, tj, emb, window=20):
    out = np.zeros((T, N))
    for j in np.unique(tj):
        sel = tj == j
        for t in np.unique(ti[sel]):
            today = emb[sel & (ti == t)].sum(0)
            prior_rows = sel & (ti >= t - window) & (ti < t)
            if not prior_rows.any():
                out[t, j] = 1.0
                continue
            prior = emb[prior_rows].sum(0)
            out[t, j] = 1 - today @ prior / (np.linalg.norm(today) * np.linalg.norm(prior))
    return out


def test_novelty_matches_the_per_ticker_definition():
    rng = np.random.default_rng(0)
    T, N, n = 120, 9, 900
    ti, tj = rng.integers(0, T, n), rng.integers(0, N, n)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    got = _novelty(T, N, ti, tj, emb)
    np.testing.assert_allclose(got, _novelty_per_ticker(T, N, ti, tj, emb.astype(np.float64)), atol=1e-5)
    # a ticker's first news day is fully novel; a day without news is 0; a repeat of the window is ~0
    j = tj[0]
    first_day = ti[tj == j].min()
    assert got[first_day, j] == 1.0
    quiet = np.ones((T, N), bool)
    quiet[ti, tj] = False
    assert (got[quiet] == 0).all()
    same = np.tile(emb[:1], (2, 1))
    assert _novelty(5, 1, np.array([1, 2]), np.array([0, 0]), same)[2, 0] == pytest.approx(0, abs=1e-6)
