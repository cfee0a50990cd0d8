"""`vai demo` for master_score: a SYNTHETIC market with embedded news (no downloads, no shared data):
walk-forward backtest, then ingest + the daily job for the last date. Finishes in well under a minute."""
from __future__ import annotations

import time
from pathlib import Path


def run_demo(out_dir: Path) -> dict:
    from vai.verticals.master_score.backtest import run_backtest
    from vai.verticals.master_score.db import daily_run, ingest
    from vai.verticals.master_score.synthetic import synthetic_market

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    news, prices, sectors, _ = synthetic_market(n_tickers=40, n_days=300, seed=7)
    dates = sorted(prices["date"].unique())
    start, end = dates[100], dates[-1]
    report = run_backtest(news, prices, start, end, out / "backtest", sectors=sectors, sentiment_model="builtin",
                          synthetic=True, progress=False, params={"demo": True})
    ingest(news, prices, out / "scores.sqlite", sentiment_model="builtin", sectors=sectors)
    day = daily_run(out / "scores.sqlite", end, out / "daily_scores.csv")
    m = report["metrics"]["model"]
    return {"data": "SYNTHETIC", "tickers": int(prices["ticker"].nunique()), "headlines": int(len(news)),
            "scored_rows": report["n_scored_rows"], "synthetic_rank_ic": round(m["ic_mean"], 3),
            "synthetic_random_control_ic": round(report["metrics"]["controls"]["random"]["ic_mean"], 3),
            "synthetic_q5_q1_20d": round(m["q5_q1_spread_20d"], 4), "daily_scored": day["n_scored"],
            "seconds": round(time.perf_counter() - t0, 1)}
