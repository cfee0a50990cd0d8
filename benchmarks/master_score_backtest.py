"""Master score walk-forward backtests: a long SYNTHETIC one (speed) and the real data sets (skill).

    python -m benchmarks.master_score_backtest synthetic --tickers 500 --years 10
    python -m benchmarks.master_score_backtest stocknet --out /tmp/ms_stocknet [--sentiment-model DIR]
    python -m benchmarks.master_score_backtest sp500 --out /tmp/ms_sp500        # prices only (no news)

StockNet: tweets are de-duplicated per ticker and capped at 5 per ticker-day (reposts dominate the raw file);
they are the news. Scored window 2014-07-01 .. 2015-12-31 (tweets cover 2014-2015); prices from 2012 feed the
momentum features. The S&P 500 run has survivorship bias (Feb-2018 members) and no news features.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd


def _summary(rep: dict, seconds: float) -> dict:
    m = rep["metrics"]["model"]
    c = rep["metrics"]["controls"]
    keys = ("ic_mean", "ic_ci95", "icir", "ic_t_newey_west", "hit_rate", "q5_q1_spread_20d", "q5_q1_spread_ci95",
            "brier", "brier_base_rate", "top_quintile_daily_turnover")
    return {"label": rep["label"], "model": rep["model"], "sentiment_model": rep["sentiment_model"],
            "rows_evaluated": rep["metrics"]["n_rows"], "tickers": rep["metrics"]["n_tickers"],
            "period": [rep["metrics"]["first_date"], rep["metrics"]["last_date"]],
            **{k: m.get(k) for k in keys}, "controls": {k: {"ic_mean": v["ic_mean"], "ic_t": v["ic_t_newey_west"],
                                                            "q5_q1": v["q5_q1_spread_20d"]} for k, v in c.items()},
            "timings_s": rep["timings_s"], "wall_s": round(seconds, 1), "cpu_count": os.cpu_count()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["synthetic", "stocknet", "sp500"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--tickers", type=int, default=500)
    ap.add_argument("--years", type=float, default=10)
    ap.add_argument("--model", default="logistic", choices=["logistic", "lightning"])
    ap.add_argument("--sentiment-model", default=None)
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--max-per-day", type=int, default=5, help="StockNet: tweets kept per ticker-day")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vai.verticals.master_score.backtest import run_backtest

    out = Path(args.out or f"/tmp/master_score_bench_{args.which}")
    t0 = time.perf_counter()
    if args.which == "synthetic":
        from vai.verticals.master_score.synthetic import synthetic_market

        n_days = int(252 * args.years)
        news, prices, sectors, _ = synthetic_market(n_tickers=args.tickers, n_days=n_days, news_rate=0.04, seed=1,
                                                    start="2010-01-04")
        dates = sorted(prices["date"].unique())
        t0 = time.perf_counter()  # market generation is not part of the backtest
        rep = run_backtest(news, prices, dates[252], dates[-1], out, sectors=sectors,
                           sentiment_model=args.sentiment_model or "builtin", model=args.model, synthetic=True,
                           progress=True, record=False, plots=not args.no_plots)
    elif args.which == "stocknet":
        from vai.verticals.master_score.io import load_stocknet

        news, prices, sectors = load_stocknet()
        news = news.drop_duplicates(["ticker", "headline"])
        day = news["published_at"].dt.tz_convert("America/New_York").dt.date
        news = news.assign(_d=day).groupby(["ticker", "_d"]).head(args.max_per_day).drop(columns="_d").reset_index(drop=True)
        prices = prices[prices["date"] <= "2016-03-31"]
        rep = run_backtest(news, prices, "2014-07-01", "2015-12-31", out, sectors=sectors,
                           sentiment_model=args.sentiment_model, model=args.model, synthetic=False, progress=True,
                           record=False, plots=not args.no_plots, params={"data": "stocknet"})
    else:
        from vai.verticals.master_score.io import load_sp500

        prices = load_sp500()
        news = pd.DataFrame({"published_at": pd.Series([], dtype="datetime64[ns, UTC]"), "ticker": [], "headline": [],
                             "body": [], "source": []})
        rep = run_backtest(news, prices, "2014-03-03", "2018-02-07", out, sentiment_model="builtin", model=args.model,
                           synthetic=False, progress=True, record=False, plots=not args.no_plots,
                           params={"data": "sp500_5yr"})
    res = _summary(rep, time.perf_counter() - t0)
    res["which"] = args.which
    print(json.dumps(res, indent=2, default=str))
    (out / "bench_summary.json").write_text(json.dumps(res, indent=2, default=str))
    return res


if __name__ == "__main__":
    main()
