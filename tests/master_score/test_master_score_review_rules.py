"""Input and window rules a user meets first: duplicated header columns, a header-only news file, reversed
dates, a window inside the warm-up, missing sessions, split-like jumps without adj_close, and a flat
day-over-day change in the rationale."""
import logging

import numpy as np
import pandas as pd
import pytest

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.master_score.calendar import trading_days
from vai.verticals.master_score.io import load_news_csv, load_prices_csv, split_like_jumps
from vai.verticals.master_score.synthetic import write_market_csvs


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    return write_market_csvs(tmp_path_factory.mktemp("mkt"), n_tickers=8, n_days=200, seed=4)


def test_a_repeated_header_column_is_an_error_naming_it(tmp_path):
    p = tmp_path / "news.csv"
    p.write_text("published_at,ticker,headline,ticker\n2023-01-05T10:00:00Z,AAA,Up,BBB\n")
    with pytest.raises(VaiError, match=r"news.csv:1: column\(s\) ticker appear more than once"):
        load_news_csv(p)


def test_a_header_only_news_file_warns_that_scores_come_from_prices(tmp_path, caplog):
    p = tmp_path / "news.csv"
    p.write_text("published_at,ticker,headline\n")
    with caplog.at_level(logging.WARNING):
        res = load_news_csv(p)
    assert res.frame.empty and "no news rows" in caplog.text and "prices alone" in caplog.text


def test_end_before_start_fails_before_reading_the_files(tmp_path, capsys):
    rc = main(["score", "backtest", "--news", str(tmp_path / "missing.csv"), "--prices", str(tmp_path / "nope.csv"),
               "--start", "2021-09-01", "--end", "2021-06-30", "--out", str(tmp_path / "bt")])
    err = capsys.readouterr().err
    assert rc != 0 and "--end 2021-06-30 is before --start 2021-09-01" in err and "not found" not in err


def test_a_window_inside_the_warm_up_names_the_first_scorable_day(csvs, tmp_path, capsys):
    news, prices, _ = csvs
    rc = main(["score", "backtest", "--news", str(news), "--prices", str(prices), "--start", "2021-01-05",
               "--end", "2021-02-10", "--out", str(tmp_path / "bt"), "--sentiment-model", "builtin"])
    err = capsys.readouterr().err
    assert rc != 0 and "warm-up" in err and "first scored day is" in err
    first = err.split("first scored day is ")[1][:10]
    assert not (tmp_path / "bt" / "scores.csv").exists()
    # starting there, the first block trains: no placeholder rows
    rc = main(["score", "backtest", "--news", str(news), "--prices", str(prices), "--start", first,
               "--end", str((pd.Timestamp(first) + pd.Timedelta(days=40)).date()), "--out", str(tmp_path / "bt2"),
               "--sentiment-model", "builtin"])
    assert rc == 0
    detail = pd.read_parquet(tmp_path / "bt2" / "scores_detail.parquet")
    assert detail["trained"].all() and str(detail["date"].min().date()) == first


def test_missing_sessions_and_a_tickers_gaps_are_reported(caplog):
    from vai.verticals.master_score.features import build_panel

    days = trading_days("2023-01-03", "2023-02-28")
    rows = [(d, t, 10.0 + i) for i, d in enumerate(days) for t in ("AAA", "BBB")
            if d != days[5] and not (t == "BBB" and d in days[10:13])]
    prices = pd.DataFrame(rows, columns=["date", "ticker", "adj_close"]).assign(volume=1000.0)
    news = pd.DataFrame({"published_at": pd.Series([], dtype="datetime64[ns, UTC]"), "ticker": [], "headline": []})
    with caplog.at_level(logging.WARNING):
        build_panel(prices, news, np.zeros(0, np.float32), np.zeros((0, 4), np.float32))
    assert "skip 1 NYSE session(s)" in caplog.text and str(days[5].date()) in caplog.text
    assert "BBB 3 day(s)" in caplog.text and "AAA" not in caplog.text.split("ticker(s) have no price row")[1]


def test_split_like_jumps_warn_without_adj_close_only(tmp_path, caplog):
    days = [d.strftime("%Y-%m-%d") for d in trading_days("2023-01-03", "2023-01-12")]
    closes = {"AAA": [100, 101, 50.4, 51, 52, 51, 50, 49], "BBB": [20, 21, 12, 11, 12, 12, 12, 12]}  # BBB: -43%, x0.571
    body = "".join(f"{d},{t},{c},{c},{c},{c},1000\n" for t, cs in closes.items() for d, c in zip(days, cs))
    p = tmp_path / "prices.csv"
    p.write_text("date,ticker,open,high,low,close,volume\n" + body)
    with caplog.at_level(logging.WARNING):
        load_prices_csv(p)
    assert "look like stock splits" in caplog.text and "AAA on 2023-01-05" in caplog.text
    assert "BBB" not in caplog.text  # a big fall not near a split ratio (x0.571) is a move, not a split
    jumps = split_like_jumps(load_prices_csv(p).frame)
    assert list(jumps["ticker"]) == ["AAA"] and jumps["ratio"].iloc[0] == pytest.approx(0.499, abs=1e-3)
    caplog.clear()
    q = tmp_path / "adj.csv"
    q.write_text("date,ticker,open,high,low,close,adj_close,volume\n"
                 + "".join(f"{d},AAA,{c},{c},{c},{c},{c},1000\n" for d, c in zip(days, closes["AAA"])))
    with caplog.at_level(logging.WARNING):
        load_prices_csv(q)
    assert "stock splits" not in caplog.text


def test_a_flat_day_names_no_driver_as_the_change():
    from vai.verticals.master_score.rationale import RationaleWriter

    feats = ["rev_1m", "mom_12_1"]
    day = pd.Timestamp("2023-01-05")
    s = pd.DataFrame({"date": [day, day + pd.Timedelta(days=1)], "date_idx": [0, 1], "ticker": ["AAA", "AAA"],
                      "p_up": [0.6, 0.6], "score": [60, 60], "rank_pct": [50.0, 50.0], "trained": [True, True],
                      "c_rev_1m": [0.3, 0.3], "c_mom_12_1": [-0.1, -0.1]})
    text = RationaleWriter(feats).write(s).iloc[1]
    assert "Since 2023-01-05: +0 (60 -> 60), no driver changed" in text and "largest change" not in text


def test_a_score_change_is_told_by_the_drivers_that_moved_it_that_way():
    from vai.verticals.master_score.features import describe
    from vai.verticals.master_score.rationale import RationaleWriter

    feats = ["rev_1m", "mom_12_1", "vol_20d"]
    day = pd.Timestamp("2023-01-05")
    s = pd.DataFrame({"date": [day, day + pd.Timedelta(days=1)], "date_idx": [0, 1], "ticker": ["AAA", "AAA"],
                      "p_up": [0.67, 0.86], "score": [67, 86], "rank_pct": [50.0, 90.0], "trained": [True, True],
                      # rev_1m fell the most in size, but the score rose: mom_12_1 rose more and explains it
                      "c_rev_1m": [0.3, -1.5], "c_mom_12_1": [0.1, 1.3], "c_vol_20d": [0.0, 1.0]})
    text = RationaleWriter(feats).write(s).iloc[1]
    assert (f"Since 2023-01-05: +19 (67 -> 86), driven by {describe('mom_12_1')} (+1.20), partly offset by "
            f"{describe('rev_1m')} (-1.80).") in text
    down = s.assign(score=[86, 67], p_up=[0.86, 0.67], c_rev_1m=[0.3, 0.31], c_mom_12_1=[1.3, 0.1], c_vol_20d=0.0)
    text = RationaleWriter(feats).write(down).iloc[1]
    assert f"-19 (86 -> 67), driven by {describe('mom_12_1')} (-1.20), partly offset by {describe('rev_1m')} (+0.01)" in text


def test_trained_models_do_not_depend_on_the_global_random_state():
    """The same seed gives the same model whatever ran before (initial weights were once drawn unseeded)."""
    import torch

    from vai.verticals.master_score.model import LightningScorer
    from vai.verticals.master_score.synthetic import template_sentences
    from vai.verticals.master_score.text import train_sentiment

    data = template_sentences(120, seed=3)
    probe = np.random.default_rng(0).normal(size=(4, 2))
    heads, scorers = [], []
    rng = np.random.default_rng(1)
    n_dates, per_day = 60, 10
    X = rng.normal(size=(n_dates * per_day, 3))
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(float)
    dates_idx = np.repeat(np.arange(n_dates), per_day)
    for other in (11, 22):
        torch.manual_seed(other)  # whatever the caller did before
        model = train_sentiment(data["sentence"].tolist(), data["label"].tolist(), encoder="hashing", max_epochs=2,
                                hidden=8)
        heads.append(next(model.module.parameters()).detach().clone())
        torch.manual_seed(other)
        sc = LightningScorer(["a", "b", "c"], max_epochs=2).fit(X, y, dates_idx, seed=0)
        scorers.append(sc.predict_proba(np.c_[probe, probe[:, :1]]))
    assert torch.equal(heads[0], heads[1])
    np.testing.assert_array_equal(scorers[0], scorers[1])
