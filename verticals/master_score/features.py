"""Point-in-time features and labels per ticker-day.

Everything on day D uses prices up to D's close and news assigned to sessions <= D (see calendar.py);
the label is the return from the next session's close (D+1, the first price a score made at D's close can
trade at) to the close 20 trading days after that, minus the universe median.
Cross-sectional transforms (universe z-scores, sector-relative versions) use only day D's rows.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.verticals.master_score.calendar import assign_session, in_calendar, to_utc

log = get_logger("vai.master_score")

HORIZON = 20
EXECUTION_LAG = 1  # sessions between the score (at D's close) and the label's start (D+1's close)
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
    news["emb_row"] = np.arange(len(news))
    sentiment = np.asarray(sentiment, np.float32)
    if len(news):
        news["published_at"] = to_utc(news["published_at"]).set_axis(news.index)  # refuses zone-less times
        inside = in_calendar(news["published_at"])
        if not inside.all():
            log.warning("%d headline(s) dated outside the NYSE calendar (1990 to one year ahead) are left out, "
                        "e.g. %s", int((~inside).sum()), news.loc[~inside, "published_at"].iloc[0])
            news, sentiment = news[inside].reset_index(drop=True), sentiment[inside]
    news["session"] = assign_session(news["published_at"]).values if len(news) else pd.Series([], dtype="datetime64[ns]")
    pos = np.searchsorted(dates.values, news["session"].values.astype("datetime64[ns]"), side="left")
    news["date_idx"] = pos
    news["sentiment"] = sentiment
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


def _warn_price_gaps(px: pd.DataFrame, dates: pd.DatetimeIndex) -> None:
    """Sessions the prices skip: windows are counted in price rows (21 = a month), so a session missing for the
    whole file stretches them; a ticker's own gaps leave its features blank those days and move its news to its
    next priced day."""
    from vai.verticals.master_score.calendar import trading_days

    try:
        sessions = trading_days(dates[0], dates[-1])
    except VaiError:
        return
    missing = sessions.difference(dates)
    if len(missing):
        log.warning("the prices skip %d NYSE session(s) between %s and %s (e.g. %s): month and year windows then "
                    "span more than 21 / 252 sessions; add the missing days", len(missing), dates[0].date(),
                    dates[-1].date(), ", ".join(str(d.date()) for d in missing[:5]))
    priced = px.notna().to_numpy()
    span = (np.cumsum(priced, axis=0) > 0) & (np.cumsum(priced[::-1], axis=0)[::-1] > 0)  # first..last price row
    gaps = pd.Series((span & ~priced).sum(axis=0), index=px.columns)
    gaps = gaps[gaps > 0].sort_values(ascending=False)
    if len(gaps):
        log.warning("%d ticker(s) have no price row on some sessions between their first and last one (%s): "
                    "their features are blank those days and their news counts for their next priced day",
                    len(gaps), ", ".join(f"{t} {n} day(s)" for t, n in gaps.head(10).items())
                    + (f", +{len(gaps) - 10} more" if len(gaps) > 10 else ""))


def build_panel(prices: pd.DataFrame, news: pd.DataFrame, sentiment: np.ndarray, embeddings: np.ndarray,
                sectors: dict[str, str] | None = None) -> Panel:
    if prices.empty:
        raise VaiError("no prices: the prices input has no valid rows")
    px = prices.pivot_table(index="date", columns="ticker", values="adj_close", aggfunc="last").sort_index()
    vol = prices.pivot_table(index="date", columns="ticker", values="volume", aggfunc="last").reindex_like(px)
    dates, tickers = pd.DatetimeIndex(px.index), list(px.columns)
    T, N = px.shape
    _warn_price_gaps(px, dates)
    col = {t: j for j, t in enumerate(tickers)}
    known = news["ticker"].isin(col).to_numpy() if len(news) else np.zeros(0, bool)
    if not known.all():
        unknown = news.loc[~known, "ticker"].value_counts()
        log.warning("%d headline(s) for %d ticker(s) with no prices are left out: %s", int(unknown.sum()),
                    len(unknown), ", ".join(f"{t} ({n})" for t, n in unknown.head(10).items()))
    news = prepare_news(news[known], np.asarray(sentiment)[known], np.asarray(embeddings)[known], dates)
    embeddings = np.asarray(embeddings)[known]
    if len(news):
        priced = np.isfinite(px.to_numpy(float))
        j = news["ticker"].map(col).to_numpy()
        # news from before a ticker's first price row has no day to count for: piled onto the first priced
        # day it would inflate that day's news count and sentiment (and the training rows built on them)
        first = dates[priced.argmax(axis=0)][j]
        early = news["session"].to_numpy() < first.to_numpy()
        if early.any():
            by = news.loc[early, "ticker"].value_counts()
            log.warning("%d headline(s) published before their ticker's first price row are left out: %s",
                        int(early.sum()), ", ".join(f"{t} ({n})" for t, n in by.head(10).items()))
            news, j = news[~early].reset_index(drop=True), j[~early]
        # a headline on a day its ticker has no price row (a halt, a gap in the file) counts for that ticker's
        # next priced day: later, never earlier, so still point-in-time
        nxt = np.where(priced, np.arange(T)[:, None], T)
        nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
        moved = nxt[news["date_idx"].to_numpy(), j]
        keep = moved < T
        news = news[keep].reset_index(drop=True)
        news["date_idx"] = moved[keep]
        news["date"] = dates[news["date_idx"].to_numpy()]
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
    past = np.vstack([np.full((1, N), np.nan), count[:-1]])  # yesterday and before
    past_mean, past_std = _rolling(past, 60, 5, "mean"), _rolling(past, 60, 5, "std")
    feats["abnormal_count"] = (count - past_mean) / (past_std + 0.5)
    feats["sent_level"] = np.divide(sent_sum, count, out=np.zeros_like(sent_sum), where=count > 0)
    feats["sent_decay"] = pd.DataFrame(sent_sum).ewm(halflife=SENT_HALFLIFE, adjust=False).mean().to_numpy()
    feats["novelty"] = _novelty(T, N, ti, tj, emb_all)
    P = px.to_numpy(float)
    logp = np.log(P)
    lp = pd.DataFrame(logp)
    feats["mom_12_1"] = (lp.shift(21) - lp.shift(252)).to_numpy()
    feats["rev_1m"] = (lp - lp.shift(21)).to_numpy()
    lr = lp.diff()
    feats["vol_20"] = _rolling(lr.to_numpy(), 20, 10, "std") * np.sqrt(252)
    lv = np.log1p(vol.to_numpy(float))
    lv_past = np.vstack([np.full((1, N), np.nan), lv[:-1]])
    feats["vol_surprise"] = lv - _rolling(lv_past, 20, 5, "mean")
    # label: D+1 close -> D+1+20 close, relative to the universe median on D. The score uses D's close and news
    # up to it, so the earliest honest fill is the next session: starting at D's close would credit the score
    # with a trade at the very price it was computed from
    fwd = np.full((T, N), np.nan)
    L, H = EXECUTION_LAG, HORIZON
    if T > L + H:
        fwd[: T - L - H] = P[L + H:] / P[L: T - H] - 1
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


def _rolling(a: np.ndarray, window: int, min_periods: int, stat: str) -> np.ndarray:
    """pandas' `DataFrame.rolling(window, min_periods).mean()/.std()` (ddof 1, NaNs skipped) on a whole
    (days x tickers) array at once: pandas runs one Python-level pass per column, ~0.5 s per call at 5,500
    tickers. Running sums in float64 (values here are counts, log returns and log volumes: no cancellation
    that matters at these magnitudes)."""
    a = np.asarray(a, np.float64)
    ok = ~np.isnan(a)
    x = np.where(ok, a, 0.0)

    def windowed(v):
        c = np.cumsum(v, axis=0)
        out = c.copy()
        out[window:] -= c[:-window]
        return out

    n, s1 = windowed(ok.astype(np.float64)), windowed(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        if stat == "mean":
            res = mean
        else:
            # centre on the window mean before squaring: sum((x - m)^2) = s2 - n m^2, clipped at 0
            s2 = windowed(x * x)
            res = np.sqrt(np.maximum(s2 - n * mean * mean, 0.0) / (n - 1))
            res[n < 2] = np.nan
    res[n < min_periods] = np.nan
    return res


def _novelty(T: int, N: int, ti: np.ndarray, tj: np.ndarray, emb: np.ndarray, window: int = 20) -> np.ndarray:
    """1 - cosine(today's mean news embedding, the ticker's mean news embedding over the prior `window` days);
    1 when the ticker had no earlier news in the window, 0 on days without news."""
    out = np.zeros((T, N))
    if len(ti) == 0:
        return out
    # one pass over all tickers as two sparse products (a per-ticker loop cost ~4 s at 5,500 tickers): rows are
    # sorted (ticker, day) keys, G sums each key's headlines, W sums each key's prior keys within the window
    # (a window never reaches into the previous ticker because keys sort by ticker first)
    from scipy import sparse

    key = tj.astype(np.int64) * T + ti.astype(np.int64)
    keys, inverse = np.unique(key, return_inverse=True)
    K, n = len(keys), len(key)
    emb = np.asarray(emb, np.float32)
    G = sparse.csr_matrix((np.ones(n, np.float32), (inverse.ravel(), np.arange(n))), shape=(K, n))
    sums = np.asarray(G @ emb)
    kj, days = keys // T, keys % T
    lo = np.searchsorted(keys, kj * T + np.maximum(days - window, 0), side="left")
    counts = np.arange(K) - lo  # how many earlier news days of the same ticker fall in [t-window, t-1]
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    W = sparse.csr_matrix((np.ones(int(counts.sum()), np.float32), (np.repeat(np.arange(K), counts),
                           np.arange(int(counts.sum())) + starts)), shape=(K, K))
    prior = np.asarray(W @ sums)
    pn, tn = np.linalg.norm(prior, axis=1), np.linalg.norm(sums, axis=1)
    cos = np.einsum("ij,ij->i", prior, sums) / np.maximum(pn * tn, 1e-12)
    out[days, kj] = np.where(counts > 0, 1 - cos, 1.0)
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
