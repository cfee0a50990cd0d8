"""Point-in-time features and labels per ticker-day.

Everything on day D uses prices up to D's close and news assigned to sessions <= D (see calendar.py);
the label is the return from D's close to the close 20 trading days later, minus the universe median.
Cross-sectional transforms (universe z-scores, sector-relative versions) use only day D's rows.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.verticals.master_score.calendar import assign_session

HORIZON = 20
RAW_FEATURES = ["news_count", "abnormal_count", "sent_level", "sent_decay", "novelty", "mom_12_1", "rev_1m",
                "vol_20", "vol_surprise"]
SECTOR_RELATIVE = ["sent_decay", "mom_12_1", "rev_1m", "vol_surprise"]
NEWS_FEATURES = {"news_count", "abnormal_count", "sent_level", "sent_decay", "novelty"}
DESCRIPTIONS = {
    "news_count": "number of headlines today", "abnormal_count": "news volume vs its 60-day norm",
    "sent_level": "today's news sentiment", "sent_decay": "recent news sentiment (5-day half-life)",
    "novelty": "novelty of today's news", "mom_12_1": "12-1 month momentum", "rev_1m": "1-month return (reversal)",
    "vol_20": "20-day volatility", "vol_surprise": "volume surprise",
}
SENT_HALFLIFE = 5


def describe(feature: str) -> str:
    base, _, suffix = feature.partition("__")
    text = DESCRIPTIONS.get(base, base)
    return text + (" vs its sector" if suffix == "sec" else "")


def prepare_news(news: pd.DataFrame, sentiment: np.ndarray, embeddings: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Attach the session (cut-off rule) and the price date it counts for (the first price date >= session)."""
    news = news.reset_index(drop=True).copy()
    news["session"] = assign_session(news["published_at"]).values if len(news) else pd.Series([], dtype="datetime64[ns]")
    pos = np.searchsorted(dates.values, news["session"].values.astype("datetime64[ns]"), side="left")
    news["date_idx"] = pos
    news["sentiment"] = np.asarray(sentiment, np.float32)
    news["emb_row"] = np.arange(len(news))
    keep = pos < len(dates)  # news after the last price date counts for no scored day
    news = news[keep].reset_index(drop=True)
    news["date"] = dates[news["date_idx"].to_numpy()]
    return news


@dataclass
class Panel:
    """Long table (date, ticker, features, label) plus what the rationale needs to cite headlines."""

    frame: pd.DataFrame
    features: list[str]
    dates: pd.DatetimeIndex
    news: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_panel(prices: pd.DataFrame, news: pd.DataFrame, sentiment: np.ndarray, embeddings: np.ndarray,
                sectors: dict[str, str] | None = None) -> Panel:
    if prices.empty:
        raise VaiError("no prices: the prices input has no valid rows")
    px = prices.pivot_table(index="date", columns="ticker", values="adj_close", aggfunc="last").sort_index()
    vol = prices.pivot_table(index="date", columns="ticker", values="volume", aggfunc="last").reindex_like(px)
    dates, tickers = pd.DatetimeIndex(px.index), list(px.columns)
    T, N = px.shape
    col = {t: j for j, t in enumerate(tickers)}
    news = prepare_news(news[news["ticker"].isin(col)], sentiment[news["ticker"].isin(col).to_numpy()] if len(news) else sentiment,
                        embeddings, dates) if len(news) else prepare_news(news, sentiment, embeddings, dates)
    emb_all = embeddings[news["emb_row"].to_numpy()] if len(news) else np.zeros((0, 1), np.float32)
    if len(news):
        news["emb_row"] = np.arange(len(news))
    ti = news["date_idx"].to_numpy()
    tj = news["ticker"].map(col).to_numpy() if len(news) else np.zeros(0, int)
    count = np.zeros((T, N))
    sent_sum = np.zeros((T, N))
    np.add.at(count, (ti, tj), 1)
    np.add.at(sent_sum, (ti, tj), news["sentiment"].to_numpy() if len(news) else 0)
    feats: dict[str, np.ndarray] = {}
    feats["news_count"] = np.log1p(count)
    cnt = pd.DataFrame(count)
    past_mean = cnt.shift(1).rolling(60, min_periods=5).mean()
    past_std = cnt.shift(1).rolling(60, min_periods=5).std()
    feats["abnormal_count"] = ((cnt - past_mean) / (past_std + 0.5)).to_numpy()
    feats["sent_level"] = np.divide(sent_sum, count, out=np.zeros_like(sent_sum), where=count > 0)
    feats["sent_decay"] = pd.DataFrame(sent_sum).ewm(halflife=SENT_HALFLIFE, adjust=False).mean().to_numpy()
    feats["novelty"] = _novelty(T, N, ti, tj, emb_all)
    P = px.to_numpy(float)
    logp = np.log(P)
    lp = pd.DataFrame(logp)
    feats["mom_12_1"] = (lp.shift(21) - lp.shift(252)).to_numpy()
    feats["rev_1m"] = (lp - lp.shift(21)).to_numpy()
    lr = lp.diff()
    feats["vol_20"] = (lr.rolling(20, min_periods=10).std() * np.sqrt(252)).to_numpy()
    lv = pd.DataFrame(np.log1p(vol.to_numpy(float)))
    feats["vol_surprise"] = (lv - lv.shift(1).rolling(20, min_periods=5).mean()).to_numpy()
    # label: D close -> D+20 close, relative to the universe median on D
    fwd = np.full((T, N), np.nan)
    fwd[: T - HORIZON] = P[HORIZON:] / P[: T - HORIZON] - 1 if T > HORIZON else fwd[:0]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the last 20 days have no label yet (all-NaN rows)
        excess = fwd - np.nanmedian(fwd, axis=1, keepdims=True)
    present = ~np.isnan(P)
    rows_t, rows_j = np.nonzero(present)
    frame = pd.DataFrame({"date": dates[rows_t], "date_idx": rows_t, "ticker": np.array(tickers)[rows_j]})
    for name, arr in feats.items():
        frame[name] = arr[rows_t, rows_j]
    frame["fwd_ret"] = fwd[rows_t, rows_j]
    frame["excess_ret"] = excess[rows_t, rows_j]
    frame["y"] = np.where(np.isnan(frame["excess_ret"]), np.nan, (frame["excess_ret"] > 0).astype(float))
    frame["sector"] = frame["ticker"].map(sectors or {}).fillna("all")
    features = _cross_sectional(frame)
    return Panel(frame=frame, features=features, dates=dates, news=news.assign(emb_row=np.arange(len(news))))


def _novelty(T: int, N: int, ti: np.ndarray, tj: np.ndarray, emb: np.ndarray, window: int = 20) -> np.ndarray:
    """1 - cosine(today's mean news embedding, the ticker's mean news embedding over the prior `window` days);
    1 when the ticker had no earlier news in the window, 0 on days without news."""
    out = np.zeros((T, N))
    if len(ti) == 0:
        return out
    order = np.lexsort((ti, tj))
    ti, tj, emb = ti[order], tj[order], emb[order]
    for j in np.unique(tj):
        sel = tj == j
        t_j, e_j = ti[sel], emb[sel]
        days, first = np.unique(t_j, return_index=True)
        sums = np.add.reduceat(e_j, first, axis=0)
        csum = np.vstack([np.zeros((1, sums.shape[1])), np.cumsum(sums, axis=0)])
        lo = np.searchsorted(days, days - window, side="left")
        prior = csum[np.arange(len(days))] - csum[lo]  # days in [t-window, t-1]
        pn, tn = np.linalg.norm(prior, axis=1), np.linalg.norm(sums, axis=1)
        cos = np.einsum("ij,ij->i", prior, sums) / np.maximum(pn * tn, 1e-12)
        out[days, j] = np.where(pn > 0, 1 - cos, 1.0)
    return out


def _cross_sectional(frame: pd.DataFrame) -> list[str]:
    """Universe z-scores (winsorised at +-3, missing -> 0 = the day's average) and sector-relative versions."""
    g = frame.groupby("date_idx", sort=False)
    names = []
    for f in RAW_FEATURES:
        mu, sd = g[f].transform("mean"), g[f].transform("std")
        z = ((frame[f] - mu) / sd.where(sd > 1e-12)).clip(-3, 3).fillna(0.0)
        frame[f + "__z"] = z
        names.append(f + "__z")
    if frame["sector"].nunique() > 1:
        gs = frame.groupby(["date_idx", "sector"], sort=False)
        for f in SECTOR_RELATIVE:
            frame[f + "__sec"] = frame[f + "__z"] - gs[f + "__z"].transform("mean")
            names.append(f + "__sec")
    return names
