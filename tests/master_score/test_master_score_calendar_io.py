"""Calendar / cut-off rules and the CSV loaders' file:line errors."""
import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.verticals.master_score.calendar import assign_session, is_trading_day, trading_days
from vai.verticals.master_score.io import load_news_csv, load_prices_csv


@pytest.mark.parametrize("published, session", [
    ("2023-01-05T15:59:59-05:00", "2023-01-05"),   # Thursday, just before the close
    ("2023-01-05T16:00:00-05:00", "2023-01-06"),   # at the close: next trading day
    ("2023-01-05T20:59:00Z", "2023-01-05"),        # 15:59 EST given in UTC
    ("2023-01-05T21:00:00Z", "2023-01-06"),        # 16:00 EST given in UTC
    ("2023-03-13T19:59:00Z", "2023-03-13"),        # after the DST switch 15:59 EDT = 19:59 UTC
    ("2023-03-13T20:01:00Z", "2023-03-14"),        # ... and 16:01 EDT is after the close
    ("2023-01-06T17:00:00-05:00", "2023-01-09"),   # Friday evening -> Monday
    ("2023-01-07T10:00:00-05:00", "2023-01-09"),   # Saturday -> Monday
    ("2023-07-04T10:00:00-04:00", "2023-07-05"),   # Independence Day -> next session
    ("2023-11-24T12:59:00-05:00", "2023-11-24"),   # half day: the close is 13:00
    ("2023-11-24T13:30:00-05:00", "2023-11-27"),   # after the early close -> Monday
    ("2023-01-05T16:30:00+02:00", "2023-01-05"),   # 16:30 in Athens = 09:30 New York, same day
    ("2023-01-05T23:30:00+02:00", "2023-01-06"),   # 23:30 in Athens = 16:30 New York, next day
])
def test_news_counts_for_the_day_only_before_the_new_york_close(published, session):
    got = assign_session(pd.Series([published]))
    assert got.iloc[0] == pd.Timestamp(session)


def test_trading_days_skip_weekends_and_holidays():
    days = trading_days("2023-07-01", "2023-07-07")
    assert [d.day for d in days] == [3, 5, 6, 7]
    assert not is_trading_day("2023-12-25") and is_trading_day("2023-12-26")


NEWS_CSV = '''published_at,ticker,headline,body,source
2023-01-05T10:00:00-05:00,AAA,Good headline,"a body
spanning two lines",wire
2023-01-05 11:00:00,BBB,No time zone,,wire
not-a-date,CCC,Bad timestamp,,wire
2023-01-05T12:00:00Z,,Empty ticker,,wire
2023-01-05T13:00:00Z,DDD,Fine too,,wire
'''


def test_news_loader_reports_bad_rows_with_file_and_physical_line(tmp_path):
    p = tmp_path / "news.csv"
    p.write_text(NEWS_CSV)
    res = load_news_csv(p)
    assert list(res.frame["ticker"]) == ["AAA", "DDD"]
    assert res.frame["published_at"].iloc[0] == pd.Timestamp("2023-01-05T15:00:00Z")
    # the quoted body spans lines 2-3, so the bad rows sit on lines 4, 5 and 6
    assert res.bad_rows[0].startswith(f"{p}:4: published_at: has no time zone")
    assert res.bad_rows[1].startswith(f"{p}:5: published_at: not an ISO-8601 timestamp")
    assert res.bad_rows[2].startswith(f"{p}:6: ticker: empty")
    with pytest.raises(VaiError, match=r"news.csv: 3 bad rows found \(--strict: nothing loaded\): .*news.csv:4: published_at"):
        load_news_csv(p, strict=True)


def test_news_loader_names_missing_columns(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text("time,ticker,headline\n2023-01-05T10:00:00Z,A,x\n")
    with pytest.raises(VaiError, match=r"n.csv:1: missing column\(s\) published_at"):
        load_news_csv(p)


def test_prices_loader_checks_values_and_duplicates(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("date,ticker,open,high,low,close,adj_close,volume\n"
                 "2023-01-05,AAA,10,11,9,10.5,,1000\n"
                 "2023-01-05,AAA,10,11,9,10.6,10.6,1000\n"
                 "2023-01-06,AAA,10,11,9,-1,,1000\n"
                 "2023-01-06,BBB,10,11,9,abc,,1000\n"
                 "2023-13-01,BBB,10,11,9,10,,1000\n"
                 "2023-01-06,CCC,10,11,9,10,,-5\n")
    res = load_prices_csv(p)
    assert len(res.frame) == 1 and res.frame["adj_close"].iloc[0] == 10.5  # empty adj_close falls back to close
    msgs = "\n".join(res.bad_rows)
    for line, fld in ((3, "duplicate"), (4, "close"), (5, "close"), (6, "date"), (7, "volume")):
        assert f"prices.csv:{line}: " in msgs and fld in msgs
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(VaiError, match="empty"):
        load_prices_csv(empty)
    european = tmp_path / "prices_eu.csv"  # `;`-separated with decimal commas, as a European spreadsheet saves it
    european.write_text("date;ticker;open;high;low;close;volume\n2023-01-05;AAA;10,0;11,25;9,5;10,75;1000\n")
    res = load_prices_csv(european)
    assert not res.bad_rows and res.frame[["open", "high", "close"]].iloc[0].tolist() == [10.0, 11.25, 10.75]


def test_news_and_prices_from_excel_workbooks_report_bad_rows_by_sheet_row(tmp_path):
    import datetime

    import pandas as pd

    prices = tmp_path / "prices.xlsx"  # dates as Excel dates, numbers as numbers, one bad close
    pd.DataFrame({"Date": [datetime.datetime(2023, 1, 5), datetime.datetime(2023, 1, 6)], "Ticker": ["AAA", "AAA"],
                  "Open": [10.0, 10.5], "High": [11.25, 11.0], "Low": [9.5, 10.0], "Close": [10.75, "n/a"],
                  "Volume": [1000, 1200]}).to_excel(prices, index=False)
    res = load_prices_csv(prices)
    assert len(res.frame) == 1 and res.frame[["open", "high", "close"]].iloc[0].tolist() == [10.0, 11.25, 10.75]
    assert str(res.frame["date"].iloc[0].date()) == "2023-01-05"
    assert len(res.bad_rows) == 1 and "prices.xlsx:3: " in res.bad_rows[0] and "close" in res.bad_rows[0]
    news = tmp_path / "news.xlsx"  # a cell without a time zone cannot be placed before or after the close
    pd.DataFrame({"published_at": ["2023-01-05T10:00:00-05:00", "2023-01-05 10:00"], "ticker": ["aaa", "AAA"],
                  "headline": ["Acme wins a contract", "Acme again"]}).to_excel(news, index=False)
    res = load_news_csv(news)
    assert res.frame["ticker"].tolist() == ["AAA"] and any("news.xlsx:3: " in m for m in res.bad_rows)
    missing = tmp_path / "short.xlsx"
    pd.DataFrame({"date": ["2023-01-05"], "ticker": ["AAA"]}).to_excel(missing, index=False)
    with pytest.raises(VaiError, match=r"short\.xlsx:1: missing column\(s\) open"):
        load_prices_csv(missing)


def test_loaders_drop_duplicate_news_and_price_rows_off_the_calendar(tmp_path):
    n = tmp_path / "news.csv"
    n.write_text("published_at,ticker,headline\n"
                 "2023-01-05T10:00:00Z,AAA,Acme wins a contract\n"
                 "2023-01-05T10:00:00Z,AAA,Acme wins a contract\n"   # the feed sent it twice
                 "2023-01-05T11:00:00Z,AAA,Acme wins a contract\n")  # a later re-post is another row
    res = load_news_csv(n)
    assert len(res.frame) == 2 and any("news.csv:3: " in m and "duplicate" in m for m in res.bad_rows)
    p = tmp_path / "prices.csv"
    p.write_text("date,ticker,open,high,low,close,volume\n"
                 "2023-01-06,AAA,10,11,9,10,1000\n"
                 "2023-01-07,AAA,10,11,9,10,1000\n"   # a Saturday
                 "2023-01-16,AAA,10,11,9,10,1000\n"   # Martin Luther King Jr. Day
                 "2023-01-17,AAA,10,11,9,10,1000\n")
    res = load_prices_csv(p)
    assert [d.strftime("%Y-%m-%d") for d in res.frame["date"]] == ["2023-01-06", "2023-01-17"]
    msgs = "\n".join(res.bad_rows)
    assert "prices.csv:3: date: 2023-01-07 is not an NYSE trading session" in msgs and "prices.csv:4: " in msgs


def test_news_on_a_day_its_ticker_has_no_price_counts_for_its_next_priced_day(caplog):
    import numpy as np

    from vai.verticals.master_score.features import build_panel

    days = trading_days("2023-01-03", "2023-01-10")
    rows = [(d, t, 10.0) for d in days for t in ("AAA", "BBB") if not (t == "AAA" and d == days[2])]
    prices = pd.DataFrame(rows, columns=["date", "ticker", "adj_close"]).assign(volume=1000.0)
    news = pd.DataFrame({"published_at": pd.to_datetime(["2023-01-05T14:00:00Z", "2023-01-05T14:00:00Z"], utc=True),
                         "ticker": ["AAA", "ZZZ"], "headline": ["Acme halted", "Unknown co"]})
    panel = build_panel(prices, news, np.array([0.5, 0.5], np.float32), np.ones((2, 4), np.float32))
    f = panel.frame
    day = f[(f["ticker"] == "AAA") & (f["date"] == days[3])]  # AAA has no price on 01-05: it counts on 01-06
    assert len(day) == 1 and day["news_count"].iloc[0] > 0
    assert len(panel.news) == 1 and panel.news["date"].iloc[0] == days[3]
    assert "ZZZ (1)" in caplog.text  # news for a ticker without prices is reported, not silently dropped


def test_news_time_zones_may_be_hours_only_but_a_bare_date_has_none(tmp_path):
    n = tmp_path / "news.csv"
    n.write_text("published_at,ticker,headline\n"
                 "2023-01-05T10:00:00-05,AAA,Acme wins a contract\n"
                 "2023-01-05,AAA,Acme wins another\n")
    res = load_news_csv(n)
    assert res.frame["published_at"].tolist() == [pd.Timestamp("2023-01-05T15:00:00Z")]
    assert "news.csv:3: published_at: has no time zone" in res.bad_rows[0]


def test_sectors_file_in_either_dialect_and_a_clear_error(tmp_path):
    from vai.verticals.master_score.pipeline import read_sectors

    p = tmp_path / "sectors.csv"
    p.write_text("ticker;sector\naaa;Energy\nBBB;Health Care\n")
    assert read_sectors(p) == {"AAA": "Energy", "BBB": "Health Care"}
    p.write_text("symbol,sector\nAAA,Energy\n")
    with pytest.raises(VaiError, match="needs columns ticker, sector"):
        read_sectors(p)
    with pytest.raises(VaiError, match="sectors file not found"):
        read_sectors(tmp_path / "nope.csv")
