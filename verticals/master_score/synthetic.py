"""A synthetic market with embedded news, for tests, the demo and benchmarks (everything it produces is
SYNTHETIC and labelled so).

Each headline comes from positive / negative / neutral templates. A planted signal: a positive (negative)
headline that counts for session s (published before s's close) adds +alpha (-alpha) per day to the
ticker's return over sessions s+1 .. s+20. Headlines published after the close count for the next session,
and so does their drift, so a point-in-time model can recover the signal and a leaky one would not gain.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vai.verticals.master_score.calendar import NY, trading_days

POSITIVE = ["{co} reports record quarterly profit", "{co} raises full-year guidance after strong demand",
            "{co} wins major contract with {partner}", "{co} upgraded to buy at {bank}",
            "{co} beats earnings estimates as net sales rose {n} percent", "{co} operating profit increased to EUR {n} million",
            "{co} announces share buyback of {n} million", "{co} margins improve and orders grow"]
NEGATIVE = ["{co} cuts full-year outlook", "{co} misses earnings estimates as sales fell {n} percent",
            "{co} announces layoffs of {n} employees", "{co} downgraded to sell at {bank}",
            "{co} faces regulatory probe over accounting", "{co} operating loss widened to EUR {n} million",
            "{co} recalls products after defects", "{co} warns of weaker demand and lower margins"]
NEUTRAL = ["{co} to present at {bank} investor conference", "{co} schedules quarterly results call for {month}",
           "{co} appoints new board member", "{co} annual general meeting to be held in {city}",
           "{co} files routine annual report", "{co} changes its listing venue to {city}"]
_PARTNERS = ["Nokia", "Siemens", "the US Navy", "Walmart", "Airbus", "a Chinese utility"]
_BANKS = ["Goldman Sachs", "Morgan Stanley", "UBS", "Barclays", "Jefferies"]
_CITIES = ["Helsinki", "New York", "London", "Chicago", "Stockholm"]
_MONTHS = ["March", "May", "August", "November"]


def _fill(template: str, co: str, rng: np.random.Generator) -> str:
    return template.format(co=co, partner=rng.choice(_PARTNERS), bank=rng.choice(_BANKS), n=int(rng.integers(2, 90)),
                           city=rng.choice(_CITIES), month=rng.choice(_MONTHS))


def template_sentences(n: int = 600, seed: int = 1) -> pd.DataFrame:
    """Labelled synthetic sentences (for a built-in sentiment head when no PhraseBank model is trained)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = ("positive", "negative", "neutral")[i % 3]
        pool = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}[label]
        co = f"Company{rng.integers(0, 10_000):04d}"
        rows.append((_fill(pool[rng.integers(len(pool))], co, rng), label))
    return pd.DataFrame(rows, columns=["sentence", "label"])


def synthetic_market(n_tickers: int = 40, n_days: int = 320, start: str = "2021-01-04", news_rate: float = 0.12,
                     after_close_share: float = 0.3, alpha: float = 0.003, n_sectors: int = 4, seed: int = 0,
                     daily_vol: float = 0.015):
    """Returns (news, prices, sectors, planted) where `planted` lists each headline's kind and session."""
    rng = np.random.default_rng(seed)
    sessions = trading_days(start, pd.Timestamp(start) + pd.Timedelta(days=int(n_days * 1.6) + 20))[: n_days + 1]
    if len(sessions) < n_days + 1:
        raise ValueError("calendar too short for n_days")
    days = sessions[:n_days]
    tickers = [f"S{i:03d}" for i in range(n_tickers)]
    sectors = {t: f"sector{i % n_sectors}" for i, t in enumerate(tickers)}
    T, N = n_days, n_tickers
    # news: which ticker-days, kind (+1/-1/0), and whether it was published after the close
    has_news = rng.random((T, N)) < news_rate
    tt, ii = np.nonzero(has_news)
    kind = rng.choice([1, -1, 0], size=len(tt), p=[0.35, 0.35, 0.30])
    after = rng.random(len(tt)) < after_close_share
    # the session each headline counts for: same day if before the close, else the next session
    eff_t = tt + after.astype(int)
    drift = np.zeros((T + 21, N))
    for t, i, k in zip(eff_t, ii, kind):
        if k:
            drift[t + 1: t + 21, i] += k * alpha
    drift = drift[:T]
    market = rng.normal(0.0003, 0.01, T)
    sector_ret = rng.normal(0, 0.006, (T, n_sectors))
    sec_idx = np.arange(N) % n_sectors
    idio = rng.normal(0, daily_vol, (T, N))
    ret = market[:, None] + sector_ret[:, sec_idx] + idio + drift
    ret[0] = 0
    close = 50 * np.exp(np.cumsum(ret, axis=0)) * rng.uniform(0.5, 3, N)
    open_ = close * np.exp(rng.normal(0, 0.004, (T, N)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, (T, N))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, (T, N))))
    news_today = np.zeros((T, N))
    np.add.at(news_today, (np.minimum(eff_t, T - 1), ii), 1)
    volume = np.round(rng.lognormal(13, 0.3, (T, N)) * (1 + 0.5 * news_today))
    prices = pd.DataFrame({
        "date": np.repeat(days.values, N), "ticker": np.tile(tickers, T),
        "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
        "adj_close": close.ravel(), "volume": volume.ravel()})
    # publication times: 08:00-15:50 New York for pre-close, 16:00-22:00 for after-close
    minutes = np.where(after, rng.integers(16 * 60, 22 * 60, len(tt)), rng.integers(8 * 60, 15 * 60 + 50, len(tt)))
    local = pd.DatetimeIndex(days[tt]) + pd.to_timedelta(minutes, unit="min")
    published = local.tz_localize(NY).tz_convert("UTC")
    heads = []
    for i, k in zip(ii, kind):
        pool = POSITIVE if k > 0 else NEGATIVE if k < 0 else NEUTRAL
        heads.append(_fill(pool[rng.integers(len(pool))], tickers[i], rng))
    news = pd.DataFrame({"published_at": published, "ticker": np.array(tickers)[ii], "headline": heads,
                         "body": "", "source": "synthetic"})
    planted = news.assign(kind=kind, after_close=after, session=days[np.minimum(eff_t, T - 1)].values)
    news = news.sort_values("published_at").reset_index(drop=True)
    return news, prices, sectors, planted.sort_values("published_at").reset_index(drop=True)


def write_market_csvs(out_dir, **kwargs):
    """Write synthetic news.csv / prices.csv (the CLI formats); returns their paths and the sectors."""
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    news, prices, sectors, _ = synthetic_market(**kwargs)
    news = news.assign(published_at=news["published_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%z"))
    prices = prices.assign(date=prices["date"].dt.strftime("%Y-%m-%d"))
    news.to_csv(out / "news.csv", index=False)
    prices.round(4).to_csv(out / "prices.csv", index=False)
    pd.Series(sectors, name="sector").rename_axis("ticker").reset_index().to_csv(out / "sectors.csv", index=False)
    return out / "news.csv", out / "prices.csv", out / "sectors.csv"
