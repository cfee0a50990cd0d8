"""Master score: one synthetic day of N tickers and M headlines scored end to end, with per-stage timings.

    python -m benchmarks.master_score_daily --tickers 5500 --headlines 50000 --encoder hashing
    python -m benchmarks.master_score_daily --encoder minilm --minilm-sample 5000   # rate measured on a sample

Untimed setup (stands for what earlier days' ingests left in the database): 260 days of price history, the
previous 20 days' headlines with stored embeddings (hashing), and a logistic scorer fitted on the history.
Timed: encoding + sentiment of today's headlines, the feature panel, scoring with contributions, rationales.
All data is SYNTHETIC.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickers", type=int, default=5500)
    ap.add_argument("--headlines", type=int, default=50000)
    ap.add_argument("--history-days", type=int, default=260)
    ap.add_argument("--encoder", default="hashing", choices=["hashing", "minilm"])
    ap.add_argument("--minilm-sample", type=int, default=0, help="encode only this many with MiniLM and extrapolate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vai.verticals.master_score.calendar import NY, trading_days
    from vai.verticals.master_score.features import build_panel
    from vai.verticals.master_score.model import LogisticScorer, _sigmoid, score_from_p, train_rows
    from vai.verticals.master_score.rationale import RationaleWriter
    from vai.verticals.master_score.synthetic import NEGATIVE, NEUTRAL, POSITIVE, _fill, template_sentences
    from vai.verticals.master_score.text import HashingEncoder, train_sentiment

    rng = np.random.default_rng(args.seed)
    N, T = args.tickers, args.history_days
    days = trading_days("2023-01-03", "2024-12-31")[:T]
    tickers = [f"T{i:05d}" for i in range(N)]
    logp = np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0) + np.log(rng.uniform(5, 300, N))
    prices = pd.DataFrame({"date": np.repeat(days.values, N), "ticker": np.tile(tickers, T),
                           "adj_close": np.exp(logp).ravel(), "volume": rng.lognormal(13, 0.5, T * N).ravel()})
    sectors = {t: f"sec{i % 11}" for i, t in enumerate(tickers)}
    pools = POSITIVE + NEGATIVE + NEUTRAL

    def headlines(n, day_idx):
        tk = rng.integers(0, N, n)
        minutes = rng.integers(8 * 60, 15 * 60 + 50, n)
        when = (pd.DatetimeIndex(days[day_idx]) + pd.to_timedelta(minutes, unit="min")).tz_localize(NY).tz_convert("UTC")
        text = [_fill(pools[rng.integers(len(pools))], tickers[t], rng) for t in tk]
        return pd.DataFrame({"published_at": when, "ticker": np.array(tickers)[tk], "headline": text, "body": "", "source": "synthetic"})

    hist_days = rng.integers(T - 21, T - 1, args.headlines * 2)
    hist = headlines(len(hist_days), hist_days)
    today = headlines(args.headlines, np.full(args.headlines, T - 1))
    tmpl = template_sentences(600, seed=1)
    sent_model = train_sentiment(tmpl["sentence"].tolist(), tmpl["label"].tolist(), encoder=args.encoder, max_epochs=15, hidden=32)
    hist_emb = HashingEncoder().encode(hist["headline"].tolist())
    if args.encoder == "minilm":  # stored embeddings must have MiniLM's width; random unit vectors stand in (timing only)
        hist_emb = rng.normal(size=(len(hist), 384)).astype(np.float32)
        hist_emb /= np.linalg.norm(hist_emb, axis=1, keepdims=True)
    hist_sent = sent_model.probabilities(hist_emb) @ np.array([-1, 0, 1.0]) if args.encoder == "hashing" else rng.uniform(-1, 1, len(hist))
    timings = {}
    texts = today["headline"].tolist()
    if args.encoder == "minilm" and args.minilm_sample and args.minilm_sample < len(texts):
        t = time.perf_counter()
        s_part, e_part = sent_model.score(texts[: args.minilm_sample], cache=False)
        per = (time.perf_counter() - t) / args.minilm_sample
        timings["text_encoding_and_sentiment_s"] = per * len(texts)
        timings["text_encoding_extrapolated_from"] = args.minilm_sample
        sent = np.resize(s_part, len(texts))
        emb = np.resize(e_part, (len(texts), e_part.shape[1]))
    else:
        t = time.perf_counter()
        sent, emb = sent_model.score(texts, cache=False)
        timings["text_encoding_and_sentiment_s"] = time.perf_counter() - t
    t = time.perf_counter()
    news = pd.concat([hist, today], ignore_index=True)
    panel = build_panel(prices, news, np.concatenate([hist_sent, sent]).astype(np.float32), np.vstack([hist_emb, emb]), sectors)
    timings["features_s"] = time.perf_counter() - t
    # the scorer was trained on an earlier day (untimed, like the cached model the daily job reuses)
    frame = panel.frame
    tr = train_rows(frame, T - 1)
    t_fit = time.perf_counter()
    scorer = LogisticScorer(panel.features).fit(frame.loc[tr, panel.features].to_numpy(float), frame.loc[tr, "y"].to_numpy(float),
                                                frame.loc[tr, "date_idx"].to_numpy())
    fit_s = time.perf_counter() - t_fit
    t = time.perf_counter()
    rows = frame[frame["date_idx"] >= T - 2].copy()
    base, contrib = scorer.contributions(rows[panel.features].to_numpy(float))
    rows["p_up"], rows["base"], rows["trained"] = _sigmoid(base + contrib.sum(1)), base, True
    for j, f in enumerate(panel.features):
        rows["c_" + f] = contrib[:, j]
    rows["score"] = score_from_p(rows["p_up"].to_numpy())
    rows["rank_pct"] = rows.groupby("date")["p_up"].rank(pct=True) * 100
    timings["scoring_s"] = time.perf_counter() - t
    t = time.perf_counter()
    rows["rationale"] = RationaleWriter(panel.features, panel.news).write(rows)
    timings["rationale_s"] = time.perf_counter() - t
    total = sum(v for k, v in timings.items() if k.endswith("_s"))
    out = {"tickers": N, "headlines_today": len(today), "history_days": T, "encoder": args.encoder,
           "timed_total_s": round(total, 2), **{k: round(v, 2) if isinstance(v, float) else v for k, v in timings.items()},
           "untimed_scorer_fit_s": round(fit_s, 2), "n_scored": int((rows["date_idx"] == T - 1).sum()),
           "cpu_count": os.cpu_count(), "data": "SYNTHETIC"}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
