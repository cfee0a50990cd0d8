"""Rules found in acceptance review: time zones are never guessed, timestamps outside the calendar are bad rows
(not a poisoned database), every bad row is listed, constant features cannot blow up the Lightning scorer, the
score's side of 50 always matches p_up's side of 0.5, and news is never piled onto a ticker's first price day."""
import numpy as np
import pandas as pd
import pytest

from vai.cli import main
from vai.core.errors import VaiError
from vai.verticals.master_score.calendar import is_trading_day, to_utc
from vai.verticals.master_score.features import build_panel
from vai.verticals.master_score.io import load_news_csv, load_prices_csv
from vai.verticals.master_score.model import LightningScorer, LogisticScorer, score_from_p
from vai.verticals.master_score.rationale import format_p


def test_score_side_matches_probability_side_exactly():
    p = np.array([0.5 + 4e-16, 0.5, 0.5 - 1e-12, 0.51, 0.5100001, 0.0, 1e-9, 1.0, 0.503])
    s = score_from_p(p)
    assert s.tolist() == [51, 50, 50, 51, 52, 1, 1, 100, 51]
    assert ((s >= 51) == (p > 0.5)).all()
    assert format_p(0.5 + 4e-16) == "just above 0.50" and format_p(0.503) == "= 0.503"
    assert format_p(0.5) == "= 0.50" and format_p(0.62) == "= 0.62"


@pytest.mark.parametrize("kind", ["logistic", "lightning"])
def test_a_feature_constant_while_fitting_does_not_swamp_the_score(kind, one_thread):
    """12-1 momentum is 0 everywhere in the first year; once it varies, a scale of ~1e-9 made the MLP's inputs
    ~1e9 and its probabilities 0 or 1."""
    rng = np.random.default_rng(0)
    n = 4000
    X = rng.normal(size=(n, 3))
    X[:, 2] = 0.0  # constant in the fitting window
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(float)
    dates = np.repeat(np.arange(200), n // 200)
    sc = (LogisticScorer if kind == "logistic" else LightningScorer)(["a", "b", "mom"]).fit(X, y, dates, seed=0)
    Xt = rng.normal(size=(500, 3))
    p = sc.predict_proba(Xt)
    assert np.isfinite(p).all() and ((p > 0.02) & (p < 0.98)).mean() > 0.95
    base, contrib = sc.contributions(Xt)
    assert np.allclose(contrib[:, 2], 0.0)  # the inactive feature explains nothing
    if kind == "lightning":
        back = LightningScorer.from_json(sc.to_json(), sc.weights())
        np.testing.assert_allclose(back.predict_proba(Xt), p, rtol=1e-6)


def test_news_loader_reports_out_of_calendar_rows_and_prices_with_a_time(tmp_path):
    news = tmp_path / "news.csv"
    news.write_text("published_at,ticker,headline\n1985-06-10T15:00:00Z,AAA,before the calendar\n"
                    "2024-06-14T15:00:00Z,AAA,fine\n")
    res = load_news_csv(news)
    assert len(res.frame) == 1 and res.bad_rows[0].startswith(f"{news}:2: published_at: outside the NYSE calendar")
    prices = tmp_path / "prices.csv"
    prices.write_text("date,ticker,open,high,low,close,volume\n2024-06-10 09:30,AAA,1,1,1,1,10\n"
                      "2024-06-11 00:00:00,AAA,1,1,1,1,10\n2024-06-12,AAA,1,1,1,1,10\n")
    res = load_prices_csv(prices)
    assert len(res.frame) == 2 and res.bad_rows == [
        f"{prices}:2: date: has a time of day; expected one row per trading day (YYYY-MM-DD) ('2024-06-10 09:30')"]
    frame = res.bad_rows_frame()
    assert frame.to_dict("records") == [{"file": str(prices), "line": 2, "field": "date",
                                         "problem": "has a time of day; expected one row per trading day "
                                                    "(YYYY-MM-DD) ('2024-06-10 09:30')"}]


def test_zone_less_times_are_refused_in_the_sdk_not_read_as_utc():
    with pytest.raises(VaiError, match="no time zone"):
        to_utc(pd.Series([pd.Timestamp("2024-06-14 17:30")]))
    with pytest.raises(VaiError, match="no time zone"):
        to_utc(pd.Series(["2024-06-14T17:30:00"]))
    mixed = to_utc(pd.Series(["2024-06-15T04:00:00+09:00", "2024-06-14T15:00:00-04:00"]))
    assert mixed.tolist() == [pd.Timestamp("2024-06-14T19:00Z"), pd.Timestamp("2024-06-14T19:00Z")]
    prices = pd.DataFrame({"date": pd.to_datetime(["2024-06-13", "2024-06-14"]), "ticker": "AAA", "open": 1.0,
                           "high": 1.0, "low": 1.0, "close": 1.0, "adj_close": 1.0, "volume": 1.0})
    news = pd.DataFrame({"published_at": [pd.Timestamp("2024-06-14 17:30")], "ticker": ["AAA"], "headline": ["x"]})
    with pytest.raises(VaiError, match="no time zone"):
        build_panel(prices, news, np.zeros(1, np.float32), np.zeros((1, 4), np.float32))


def test_dates_beyond_the_calendar_are_a_clear_error(tmp_path, capsys):
    with pytest.raises(VaiError, match="outside the NYSE calendar"):
        is_trading_day("2200-01-02")
    db = tmp_path / "x.sqlite"
    db.write_bytes(b"")
    rc = main(["score", "run", "--db", str(db), "--date", "2200-01-02", "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "outside the NYSE calendar" in err and "DateOutOfBounds" not in err


def _prices(tickers_days: dict[str, pd.DatetimeIndex]) -> pd.DataFrame:
    rows = [(d, t, 10.0 + i % 7, 1000.0 + i) for t, days in tickers_days.items() for i, d in enumerate(days)]
    f = pd.DataFrame(rows, columns=["date", "ticker", "close", "volume"])
    return f.assign(open=f["close"], high=f["close"], low=f["close"], adj_close=f["close"])


def test_news_before_a_tickers_first_price_is_left_out_and_embeddings_stay_aligned():
    from vai.verticals.master_score.calendar import trading_days

    days = trading_days("2024-01-02", "2024-03-28")
    prices = _prices({"AAA": days, "BBB": days[30:]})  # BBB lists on day 30
    stamp = lambda d: (d + pd.Timedelta(hours=15)).tz_localize("America/New_York")  # noqa: E731 - before the close
    news = pd.DataFrame({
        "published_at": [stamp(days[5]), stamp(days[10]), stamp(days[12]), stamp(days[20]), stamp(days[36])],
        "ticker": ["BBB", "ZZZ", "AAA", "AAA", "BBB"],  # a pre-listing BBB story, an unknown ticker
        "headline": ["pre-listing", "unknown", "a1", "a2", "b1"]})
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(5, 8)).astype(np.float32)
    sent = np.array([0.9, 0.5, 0.1, 0.2, 0.3], np.float32)
    panel = build_panel(prices, news, sent, emb)
    assert panel.news["headline"].tolist() == ["a1", "a2", "b1"]
    assert panel.news["sentiment"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    first_bbb = panel.frame[(panel.frame["ticker"] == "BBB")].iloc[0]
    assert first_bbb["date"] == days[30] and first_bbb["news_count"] == 0  # nothing piled onto the listing day
    # novelty of AAA's second story is 1 - cos(a2, a1) from their own embedding rows (3 and 2), though an
    # unknown-ticker row sits before them
    a2 = panel.frame[(panel.frame["ticker"] == "AAA") & (panel.frame["date"] == days[20])].iloc[0]
    cos = emb[2] @ emb[3] / np.linalg.norm(emb[2]) / np.linalg.norm(emb[3])
    assert a2["novelty"] == pytest.approx(1 - cos, abs=1e-5)


def test_ingest_stores_utc_so_offsets_neither_hide_nor_double_news(tmp_path, one_thread):
    from vai.verticals.master_score.db import ingest, load_point_in_time
    from vai.verticals.master_score.synthetic import template_sentences
    from vai.verticals.master_score.text import train_sentiment

    data = template_sentences(120, seed=3)
    model = train_sentiment(data["sentence"].tolist(), data["label"].tolist(), encoder="hashing", max_epochs=3,
                            hidden=8)
    prices = _prices({"AAA": pd.DatetimeIndex(["2024-06-13", "2024-06-14"]),
                      "BBB": pd.DatetimeIndex(["2024-06-13", "2024-06-14"])})
    news = pd.DataFrame({"published_at": ["2024-06-15T04:00:00+09:00", "2024-06-14T19:00:00Z",
                                          "2024-06-14T15:00:00-04:00", "2024-06-14T16:30:00-04:00"],
                         "ticker": ["AAA", "BBB", "BBB", "AAA"],
                         "headline": ["tokyo desk, before the close", "same story", "same story", "after the close"],
                         "body": "", "source": ""})
    db = tmp_path / "db.sqlite"
    out = ingest(news, prices, db, sentiment_model=model)
    assert out["news_added"] == 3 and out["news_already_present"] == 1  # the BBB story once, whatever its offset
    _, loaded, _, _, _ = load_point_in_time(db, "2024-06-14")
    assert sorted(loaded["headline"]) == ["same story", "tokyo desk, before the close"]
    bad = news.iloc[:1].assign(published_at="1985-06-10T15:00:00Z", headline="old")
    with pytest.raises(VaiError, match="outside the NYSE calendar.*nothing was ingested"):
        ingest(bad, prices, db, sentiment_model=model)


def test_cli_lists_every_bad_row_in_a_file_and_strict_says_failed(tmp_path, capsys):
    news = tmp_path / "news.csv"
    lines = ["published_at,ticker,headline"] + [f"2024-06-1{i % 5}T1{i % 10}:00:00,AAA,no zone {i}" for i in range(9)]
    lines.append("2024-06-14T15:00:00Z,AAA,fine")
    news.write_text("\n".join(lines) + "\n")
    prices = tmp_path / "prices.csv"
    prices.write_text("date,ticker,open,high,low,close,volume\n2024-06-14,AAA,1,1,1,1,1\n")
    db = tmp_path / "db.sqlite"
    rc = main(["score", "ingest", "--news", str(news), "--prices", str(prices), "--db", str(db), "--strict"])
    err = capsys.readouterr().err
    assert rc == 2 and "9 bad rows found" in err and "skipped" not in err and "--strict: nothing loaded" in err
    listed = pd.read_csv(str(db) + ".bad_rows.csv")
    assert len(listed) == 9 and listed["line"].tolist() == list(range(2, 11))
    assert set(listed["field"]) == {"published_at"} and not db.exists()


def test_metrics_rank_the_published_score_and_a_flat_day_is_no_position():
    import numpy as np
    import pandas as pd

    from vai.verticals.master_score.backtest import compute_metrics

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2022-01-03", periods=60)
    rows = []
    for k, d in enumerate(dates):
        ret = rng.normal(0, 0.05, 10)
        flat = k % 2 == 0  # every other day the model has no skill: p_up differs by 1e-9, the score not at all
        p = np.full(10, 0.465) + (1e-9 * ret if flat else 0.1 * np.sign(ret) * (rng.random(10) < 0.8))
        for j in range(10):
            rows.append({"date": d, "ticker": f"T{j}", "p_up": p[j], "excess_ret": ret[j],
                         "y": float(ret[j] > 0), "trained": True})
    frame = pd.DataFrame(rows)
    from vai.verticals.master_score.model import score_from_p

    frame["score"] = score_from_p(frame["p_up"].to_numpy())
    rep, series = compute_metrics(frame)
    m = rep["model"]
    assert m["signal"] == "score" and m["flat_days"] == 30 and m["flat_day_share"] == 0.5
    assert (series["ic"].loc[dates[::2]] == 0).all()  # no ranking published: IC 0, not p_up's hidden one
    on_p = compute_metrics(frame.drop(columns="score"))[0]["model"]
    assert on_p["ic_mean"] > m["ic_mean"] + 0.2  # what ranking p_up would have claimed
    # hit rate counts calls on days that rank stocks only
    skill = frame[~frame["date"].isin(dates[::2])]
    expect = float(((skill["p_up"] > 0.5) == (skill["y"] > 0.5))[skill["p_up"] != 0.5].mean())
    assert m["hit_rate"] == pytest.approx(expect)


def test_tied_scores_split_across_quintiles_symmetrically():
    import numpy as np
    import pandas as pd

    from vai.verticals.master_score.backtest import quintile_returns, quintile_weights

    # 10 names, three score levels: 4 low, 2 middle, 4 high; the low group must be as much "Q1" as the high
    # group is "Q5" (a plain rank-then-ceil put the low group in Q2 and the high one in Q5)
    day = pd.DataFrame({"date": pd.Timestamp("2024-01-02"), "ticker": [f"T{i}" for i in range(10)],
                        "score": [30] * 4 + [50] * 2 + [70] * 4, "excess_ret": [-0.02] * 4 + [0.0] * 2 + [0.03] * 4})
    w = quintile_weights(day, "score").to_numpy()
    assert np.allclose(w.sum(axis=1), 1) and np.allclose(w.sum(axis=0), 2)  # each name whole, each quintile n/5
    assert np.allclose(w[0], [0.5, 0.5, 0, 0, 0]) and np.allclose(w[-1], [0, 0, 0, 0.5, 0.5])
    assert np.allclose(w[4], [0, 0, 1, 0, 0])
    q, _ = quintile_returns(day, "score")
    assert q.loc[day["date"].iloc[0], 5] - q.loc[day["date"].iloc[0], 1] == pytest.approx(0.05)
    flat = day.assign(score=50)  # one score for all: every quintile is the universe, the spread 0
    q, _ = quintile_returns(flat, "score")
    assert np.ptp(q.iloc[0].to_numpy()) < 1e-12 and q.iloc[0, 0] == pytest.approx(0.004)
    shuffled = day.sample(frac=1, random_state=1)  # row order decides nothing
    assert np.allclose(quintile_returns(shuffled, "score")[0].to_numpy(), quintile_returns(day, "score")[0].to_numpy())


def test_net_spread_charges_the_trades_of_rolling_20_day_tranches():
    import numpy as np
    import pandas as pd

    from vai.verticals.master_score.backtest import COST_BPS, compute_metrics

    dates = pd.bdate_range("2022-01-03", periods=60)
    rng = np.random.default_rng(0)
    rows = []
    for k, d in enumerate(dates):
        order = np.arange(10) if k < 30 else rng.permutation(10)  # a fixed ranking, then a new one every day
        for j in range(10):
            p = 0.3 + 0.04 * order[j]
            rows.append({"date": d, "ticker": f"T{j}", "p_up": p, "score": int(p * 100), "excess_ret": 0.01 * order[j],
                         "y": float(order[j] >= 5), "trained": True})
    m = compute_metrics(pd.DataFrame(rows))[0]["model"]
    roll = [0.5] * 20 + [0.0] * 10  # opening the first 20 tranches; then the tranche 20 days back is the same
    # from day 30 on, each day's legs are compared with those of 20 sessions before (random vs fixed or random)
    assert m["q5_q1_spread_20d"] == pytest.approx(0.08)
    assert 0.0 < m["tranche_roll_turnover"] < 1.0 and m["tranche_roll_turnover"] > np.mean(roll + [0.0] * 30)
    assert m["q5_q1_spread_net_20d"] == pytest.approx(0.08 - 4 * m["tranche_roll_turnover"] * COST_BPS / 1e4)
    fixed = compute_metrics(pd.DataFrame([r for r in rows if r["date"] < dates[30]]))[0]["model"]
    assert fixed["tranche_roll_turnover"] == pytest.approx(np.mean(roll))  # same names: only the openings cost
    # a user's own cost: small caps cost more; the gross spread and the turnover do not change with it
    dear = compute_metrics(pd.DataFrame(rows), cost_bps=50.0)[0]["model"]
    assert dear["cost_bps_one_way"] == 50.0 and dear["q5_q1_spread_20d"] == m["q5_q1_spread_20d"]
    assert dear["q5_q1_spread_net_20d"] == pytest.approx(0.08 - 4 * m["tranche_roll_turnover"] * 50.0 / 1e4)
    assert compute_metrics(pd.DataFrame(rows), cost_bps=0.0)[0]["model"]["q5_q1_spread_net_20d"] == pytest.approx(0.08)
    from vai.core.errors import VaiError

    with pytest.raises(VaiError, match=r"--cost-bps -5: give a one-way trading cost in basis points"):
        compute_metrics(pd.DataFrame(rows), cost_bps=-5.0)


def test_the_label_starts_at_the_next_close_not_the_one_the_score_used():
    from vai.verticals.master_score.calendar import trading_days
    from vai.verticals.master_score.model import PURGE, train_rows

    days = trading_days("2024-01-02", "2024-03-28")
    prices = _prices({"AAA": days, "BBB": days})
    prices.loc[prices["ticker"] == "BBB", ["close", "adj_close"]] *= 2
    empty = pd.DataFrame({"published_at": pd.Series([], dtype="datetime64[ns, UTC]"), "ticker": [], "headline": []})
    panel = build_panel(prices, empty, np.zeros(0, np.float32), np.zeros((0, 4), np.float32))
    aaa = panel.frame[panel.frame["ticker"] == "AAA"].set_index("date_idx")
    close = prices[prices["ticker"] == "AAA"]["close"].to_numpy()
    assert aaa.loc[0, "fwd_ret"] == pytest.approx(close[21] / close[1] - 1)  # D+1 close -> D+21 close
    assert np.isnan(aaa.loc[len(days) - 21, "fwd_ret"])  # needs the close 21 sessions on: not known yet
    # a model scoring day t0 trains on labels whose last close is before t0
    usable = panel.frame["date_idx"][train_rows(panel.frame, 40)]
    assert usable.max() + 1 + 20 <= 40 - 1 and PURGE == 21


def test_a_non_utf8_byte_is_a_bad_row_with_its_line_not_a_dead_file(tmp_path):
    windows = tmp_path / "windows.csv"  # a whole Windows-1252 export (Excel on Windows) is read as such
    windows.write_bytes(b"published_at,ticker,headline\n2024-06-03T14:00:00Z,AAA,Caf\xe9 chain opens\n")
    res = load_news_csv(windows)
    assert res.frame["headline"].tolist() == ["Café chain opens"] and not res.bad_rows
    p = tmp_path / "latin.csv"  # UTF-8 with one stray Latin-1 byte: that row is bad, the rest is read
    p.write_bytes(b"published_at,ticker,headline\n2024-06-03T14:00:00Z,AAA,Caf\xe9 chain opens\n"
                  b"2024-06-03T15:00:00Z,BBB,plain headline \xe2\x80\x94 with a dash\n")
    res = load_news_csv(p)
    assert res.frame["ticker"].tolist() == ["BBB"] and res.frame["headline"].iloc[0].endswith("— with a dash")
    assert res.bad_rows == [f"{p}:2: headline: not valid UTF-8 text (save the file as UTF-8, e.g. `iconv -f latin1 "
                            "-t utf-8`)"]
