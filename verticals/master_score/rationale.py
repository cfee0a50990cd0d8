"""The rationale writer: a short paragraph per ticker-day built only from the model's own signed
contributions (log-odds, summing to logit(p_up)), the headlines that fed the news features, and the change
since the previous scored day. Every number it prints is a rounded value of a column in the scores table
and every headline is quoted verbatim from the input news with its timestamp.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vai.verticals.master_score.features import NEWS_FEATURES, SENT_HALFLIFE, describe

TOP_DRIVERS = 2
MIN_ABS = 0.005  # contributions smaller than this (in log-odds) are not worth a word
RECENT_NEWS_DAYS = 10


def format_p(p: float) -> str:
    """P to two decimals, except where rounding would contradict the score's side of 0.5 (51 from
    p = 0.5000001 must not read "= 0.50")."""
    if p > 0.5 and round(p, 2) <= 0.5:
        return f"= {p:.3f}" if round(p, 3) > 0.5 else "just above 0.50"
    return f"= {p:.2f}"


class RationaleWriter:
    def __init__(self, features: list[str], news: pd.DataFrame | None = None):
        self.features = features
        self._news: dict[str, tuple] = {}
        if news is not None and len(news):
            n = news.sort_values(["ticker", "date_idx", "published_at"])
            for t, g in n.groupby("ticker", sort=False):
                self._news[t] = (g["date_idx"].to_numpy(), g["sentiment"].to_numpy(float), g["headline"].to_numpy(object),
                                 pd.DatetimeIndex(g["published_at"]).tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M").to_numpy())

    def cited_headlines(self, ticker: str, t: int, k: int = 2) -> list[tuple[str, str, float]]:
        """Today's headlines (count for day t) by |sentiment|; if none, the recent ones weighted by the decay."""
        if ticker not in self._news:
            return []
        di, sent, head, when = self._news[ticker]
        lo, hi = np.searchsorted(di, t, "left"), np.searchsorted(di, t, "right")
        if hi > lo:
            sel = np.arange(lo, hi)
            weight = np.abs(sent[sel])
        else:
            lo = np.searchsorted(di, t - RECENT_NEWS_DAYS, "left")
            sel = np.arange(lo, hi)
            weight = np.abs(sent[sel]) * 0.5 ** ((t - di[sel]) / SENT_HALFLIFE)
        sel = sel[np.argsort(-weight, kind="stable")][:k]
        return [(str(head[i]), str(when[i]), float(sent[i])) for i in sel]

    def _what_moved(self, delta: np.ndarray, points: int) -> str:
        """The change in each driver's contribution since the previous day, told in the direction the score moved
        (`points`): the driver that moved it most that way, and the largest one that pulled the other way; a
        score that rose 19 points is not "explained" by the driver that fell."""
        if points == 0:
            j = int(np.argmax(np.abs(delta)))
            return (f"largest change from {describe(self.features[j])} ({delta[j]:+.2f})" if abs(delta[j]) >= MIN_ABS
                    else f"no driver changed by {MIN_ABS} log-odds or more")
        sign = 1.0 if points > 0 else -1.0
        j, k = int(np.argmax(sign * delta)), int(np.argmax(-sign * delta))
        told = []
        if sign * delta[j] >= MIN_ABS:
            told.append(f"driven by {describe(self.features[j])} ({delta[j]:+.2f})")
        if -sign * delta[k] >= MIN_ABS:
            told.append(f"{'partly offset by' if told else 'despite'} {describe(self.features[k])} ({delta[k]:+.2f})")
        return ", ".join(told) if told else f"no driver changed by {MIN_ABS} log-odds or more"

    def write(self, scores: pd.DataFrame) -> pd.Series:
        """One paragraph per row of `scores` (needs date, date_idx, ticker, p_up, score, rank_pct, trained, c_*;
        optional published_score: the score stored for that row by an earlier run)."""
        s = scores.sort_values(["ticker", "date_idx"])
        C = s[["c_" + f for f in self.features]].to_numpy(float)
        prev_same = s["ticker"].to_numpy()[:-1] == s["ticker"].to_numpy()[1:]
        n_day = s.groupby("date_idx")["ticker"].transform("size").to_numpy()
        out = []
        tick, didx = s["ticker"].to_numpy(), s["date_idx"].to_numpy()
        dates = pd.DatetimeIndex(s["date"]).strftime("%Y-%m-%d").to_numpy()
        score, p, rank, trained = s["score"].to_numpy(), s["p_up"].to_numpy(), s["rank_pct"].to_numpy(), s["trained"].to_numpy()
        # the score published for that row earlier (daily runs: the stored one), when it may differ
        published = s["published_score"].to_numpy(float) if "published_score" in s else np.full(len(s), np.nan)
        for r in range(len(s)):
            if not trained[r]:
                out.append(f"{tick[r]}: {score[r]}/100 on {dates[r]}: not enough history yet to train a model "
                           f"(needs labelled days before this date); neutral placeholder, no view.")
                continue
            parts = [f"{tick[r]}: {score[r]}/100 on {dates[r]} (P(beats the universe median over the next 20 trading days) "
                     f"{format_p(p[r])}; cross-sectional percentile {rank[r]:.0f} among {n_day[r]} stocks)."]
            c = C[r]
            order = np.argsort(-np.abs(c))
            ups = [j for j in order if c[j] >= MIN_ABS][:TOP_DRIVERS]
            downs = [j for j in order if c[j] <= -MIN_ABS][:TOP_DRIVERS]
            if ups:
                parts.append("Lifting it: " + ", ".join(f"{describe(self.features[j])} ({c[j]:+.2f})" for j in ups) + ".")
            if downs:
                parts.append("Weighing on it: " + ", ".join(f"{describe(self.features[j])} ({c[j]:+.2f})" for j in downs) + ".")
            if not ups and not downs:
                parts.append("No driver moves it by more than 0.005 log-odds.")
            news_drivers = [j for j in ups + downs if self.features[j].split("__")[0] in NEWS_FEATURES]
            if news_drivers:
                cited = self.cited_headlines(tick[r], int(didx[r]))
                if cited:
                    parts.append("News: " + "; ".join(f'"{h}" ({w} ET, sentiment {v:+.2f})' for h, w, v in cited) + ".")
            if r > 0 and prev_same[r - 1] and trained[r - 1]:
                delta = C[r] - C[r - 1]
                was = published[r - 1]
                if np.isfinite(was) and int(was) != int(score[r - 1]):
                    # the previous day was published by the model before today's retrain: quote what was
                    # published, and attribute only the part today's model explains
                    parts.append(f"Since {dates[r - 1]}: {int(score[r]) - int(was):+d} ({int(was)} published -> "
                                 f"{score[r]}); the model was retrained today and would have scored "
                                 f"{dates[r - 1]} at {score[r - 1]}; from that, "
                                 f"{self._what_moved(delta, int(score[r]) - int(score[r - 1]))}.")
                else:
                    d = int(score[r]) - int(score[r - 1])
                    parts.append(f"Since {dates[r - 1]}: {d:+d} ({score[r - 1]} -> {score[r]}), "
                                 f"{self._what_moved(delta, d)}.")
            out.append(" ".join(parts))
        return pd.Series(out, index=s.index).reindex(scores.index)
