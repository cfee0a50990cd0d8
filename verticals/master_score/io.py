"""Loaders: the news and prices CSV formats, and the real data sets in `<data_dir>/master_score/`.

Every bad row is reported with its file and line number (the physical line in the file, header = 1).
`strict=True` raises on the first bad rows; otherwise they are skipped and listed in `LoadResult.bad_rows`.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.core.tables import csv_dialect, is_excel, open_text, read_user_table, repeated_names
from vai.verticals.master_score.calendar import has_time_zone, in_calendar, not_a_session

NEWS_REQUIRED = ("published_at", "ticker", "headline")
NEWS_OPTIONAL = ("body", "source")
PRICES_REQUIRED = ("date", "ticker", "open", "high", "low", "close", "volume")
PRICES_OPTIONAL = ("adj_close",)
# an overnight close ratio this far from 1 and near a split ratio (2:1, 3:2, 1:10, ...) is most likely a split
SPLIT_RATIOS = (1.5, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30, 40, 50)
SPLIT_TOLERANCE = 0.06

log = get_logger("vai.master_score")


@dataclass
class LoadResult:
    frame: pd.DataFrame
    bad_rows: list[str] = field(default_factory=list)  # "file:line: field: problem"

    def summary(self, limit: int = 5, verb: str = "skipped") -> str:
        head = "; ".join(self.bad_rows[:limit])
        more = f" (+{len(self.bad_rows) - limit} more)" if len(self.bad_rows) > limit else ""
        return f"{len(self.bad_rows)} bad rows {verb}: {head}{more}" if self.bad_rows else "no bad rows"

    def bad_rows_frame(self) -> pd.DataFrame:
        """Every bad row as file, line, field, problem (the summary shows only the first few)."""
        rows = []
        for msg in self.bad_rows:
            file, line, rest = _split_message(msg)
            fld, _, problem = rest.partition(": ")
            rows.append((file, line, fld, problem))
        return pd.DataFrame(rows, columns=["file", "line", "field", "problem"])


def _split_message(msg: str) -> tuple[str, int, str]:
    """'path:line: rest' -> (path, line, rest); a path may itself contain ':'."""
    import re

    m = re.match(r"^(.*?):(\d+): (.*)$", msg)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else ("", 0, msg)


def _open_text(path: Path):
    if not path.exists():
        raise VaiError(f"{path}: file not found")
    # surrogateescape: a stray Latin-1 byte becomes a marker in its row (a bad row, named with its line), instead
    # of a UnicodeDecodeError that stops the whole file with no line
    return open_text(path, errors="surrogateescape")


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _undecodable(raw: pd.DataFrame, path: Path, bad: list[str]) -> pd.Series:
    """Rows holding bytes that are not UTF-8: reported (line and field) and left out."""
    hit = pd.Series(False, index=raw.index)
    for c in [c for c in raw.columns if not str(c).startswith("_")]:
        # plain Python: pandas' Arrow-backed strings refuse surrogates
        m = pd.Series([isinstance(x, str) and _UNDECODABLE.search(x) is not None for x in raw[c]], index=raw.index)
        for i in np.flatnonzero((m & ~hit).to_numpy()):
            bad.append(f"{path}:{raw['_line'].iat[i]}: {c}: not valid UTF-8 text (save the file as UTF-8, e.g. "
                       "`iconv -f latin1 -t utf-8`)")
        hit |= m
        if m.any():
            raw.loc[m, c] = ""  # the row is left out; blanked so later string operations never meet the bytes
    return hit


def _check_header(path: Path, header: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    repeated = repeated_names(header)
    if repeated:
        raise VaiError(f"{path}:1: column(s) {', '.join(repeated)} appear more than once in the header; keep one "
                       "of each (which copy holds the data cannot be guessed)")
    missing = [c for c in required if c not in header]
    if missing:
        raise VaiError(f"{path}:1: missing column(s) {', '.join(missing)}; the header must contain "
                       f"{', '.join(required)} (optional: {', '.join(optional)})")


def _read_csv_with_lines(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV into strings, keeping each record's physical starting line (quoted bodies may span lines); an
    .xlsx workbook's first sheet the same way, its sheet row numbers as the lines."""
    if is_excel(path):
        return _read_sheet_with_rows(path, required, optional)
    with _open_text(path) as fh:
        dialect = csv_dialect(path)
        reader = csv.reader(fh, delimiter=dialect.sep)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise VaiError(f"{path}: the file is empty (expected a header with {', '.join(required)})") from None
        _check_header(path, header, required, optional)
        rows, lines = [], []
        line = reader.line_num + 1
        for rec in reader:
            rows.append(rec)
            lines.append(line)
            line = reader.line_num + 1
    width = len(header)
    frame = pd.DataFrame([r + [""] * (width - len(r)) if len(r) < width else r[:width] for r in rows],
                         columns=header, dtype=object)
    frame["_line"] = lines
    frame["_ncols"] = [len(r) for r in rows]
    frame.attrs["decimal"] = dialect.decimal  # `1,5` in a `;`-separated export is one and a half
    return frame


def _read_sheet_with_rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> pd.DataFrame:
    sheet = read_user_table(path, "file", dtype=str, keep_default_na=False)
    header = [str(h).strip().lower() for h in sheet.columns]
    _check_header(path, header, required, optional)
    frame = pd.DataFrame(sheet.to_numpy(dtype=object), columns=header, dtype=object)
    frame["_line"] = np.arange(len(frame)) + 2  # the sheet's row numbers: row 1 is the header
    frame["_ncols"] = len(header)
    frame.attrs["decimal"] = "."  # numbers in a workbook are numbers, whatever the locale shows
    return frame


def load_news_csv(path, strict: bool = False) -> LoadResult:
    """News CSV: published_at (ISO-8601 with a time zone), ticker, headline, optional body and source."""
    path = Path(path)
    raw = _read_csv_with_lines(path, NEWS_REQUIRED, NEWS_OPTIONAL)
    bad: list[str] = []
    undecodable = _undecodable(raw, path, bad)
    ts = pd.to_datetime(raw["published_at"].str.strip(), errors="coerce", utc=True, format="ISO8601")
    has_tz = has_time_zone(raw["published_at"].fillna(""))
    ticker = raw["ticker"].fillna("").str.strip().str.upper()
    headline = raw["headline"].fillna("").str.strip()
    for i in np.flatnonzero((raw["_ncols"] < len(NEWS_REQUIRED)).to_numpy()):
        bad.append(f"{path}:{raw['_line'].iat[i]}: row: only {raw['_ncols'].iat[i]} fields")
    ok = raw["_ncols"] >= len(NEWS_REQUIRED)
    ok &= ~undecodable
    for mask, fld, msg in ((ts.isna(), "published_at", "not an ISO-8601 timestamp"),
                           (ts.notna() & ~has_tz, "published_at", "has no time zone (add Z or +HH:MM)"),
                           (ts.notna() & has_tz & ~in_calendar(ts), "published_at",
                            "outside the NYSE calendar (1990 to one year ahead)"),
                           (ticker == "", "ticker", "empty"), (headline == "", "headline", "empty")):
        m = (mask & ok).to_numpy()
        for i in np.flatnonzero(m):
            bad.append(f"{path}:{raw['_line'].iat[i]}: {fld}: {msg} ({raw[fld].iat[i]!r})")
        ok &= ~mask
    frame = pd.DataFrame({"published_at": ts, "ticker": ticker, "headline": headline,
                          "body": raw["body"].fillna("") if "body" in raw else "",
                          "source": raw["source"].fillna("") if "source" in raw else "",
                          "line": raw["_line"]})[ok.to_numpy()].reset_index(drop=True)
    # the same story twice (a re-sent feed row) would count twice in news counts and sentiment
    dup = frame.duplicated(["published_at", "ticker", "headline"], keep="first")
    for i in np.flatnonzero(dup.to_numpy()):
        r = frame.iloc[i]
        bad.append(f"{path}:{r['line']}: published_at,ticker,headline: duplicate of an earlier row for {r['ticker']}")
    frame = frame[~dup.to_numpy()].reset_index(drop=True)
    if frame.empty and not bad:
        log.warning("%s: no news rows (only a header): every score will come from prices alone", path)
    return _finish(path, LoadResult(frame, sorted(bad, key=_line_key)), strict)


def split_like_jumps(prices: pd.DataFrame) -> pd.DataFrame:
    """Overnight close moves that look like stock splits (ticker, date, prev_close, close, ratio): a fall below
    0.6x or a rise above 1.45x whose ratio (or its inverse) is within 6% of a usual split ratio."""
    p = prices.sort_values(["ticker", "date"])
    prev = p.groupby("ticker", sort=False)["close"].shift(1)
    ratio = p["close"] / prev
    big = (ratio < 0.6) | (ratio > 1.45)
    r = ratio[big]
    k = np.where(r < 1, 1 / r, r).astype(float)
    near = np.min(np.abs(k[:, None] / np.asarray(SPLIT_RATIOS, float)[None, :] - 1), axis=1) <= SPLIT_TOLERANCE if len(k) \
        else np.zeros(0, bool)
    hit = p.loc[big].loc[near]
    return pd.DataFrame({"ticker": hit["ticker"].to_numpy(), "date": hit["date"].to_numpy(),
                         "prev_close": prev.loc[hit.index].to_numpy(), "close": hit["close"].to_numpy(),
                         "ratio": ratio.loc[hit.index].to_numpy()})


def load_prices_csv(path, strict: bool = False) -> LoadResult:
    """Prices CSV: date, ticker, open, high, low, close, optional adj_close, volume (one row per ticker-day)."""
    path = Path(path)
    raw = _read_csv_with_lines(path, PRICES_REQUIRED, PRICES_OPTIONAL)
    bad: list[str] = []
    undecodable = _undecodable(raw, path, bad)
    date_text = raw["date"].fillna("").str.strip()
    date = pd.to_datetime(date_text, errors="coerce", format="ISO8601")
    # a time of day other than midnight (pandas writes "2024-06-10 00:00:00") means the file is not daily bars
    timed = date.notna() & (date != date.dt.normalize())
    ticker = raw["ticker"].fillna("").str.strip().str.upper()
    def number(c: str) -> pd.Series:
        text = raw[c].str.replace(",", ".", regex=False) if raw.attrs["decimal"] == "," else raw[c]
        return pd.to_numeric(text, errors="coerce")

    num = {c: number(c) for c in ("open", "high", "low", "close", "volume")}
    adj = number("adj_close") if "adj_close" in raw else num["close"]
    adj = adj.where(adj.notna() & (raw["adj_close"].fillna("").str.strip() != ""), num["close"]) if "adj_close" in raw else adj
    ok = ~undecodable
    checks = [(date.isna(), "date", "not a date (YYYY-MM-DD)"),
              (timed, "date", "has a time of day; expected one row per trading day (YYYY-MM-DD)"),
              (ticker == "", "ticker", "empty")]
    for c in ("open", "high", "low", "close"):
        checks.append((num[c].isna() | ~(num[c] > 0), c, "not a positive number"))
    checks.append((num["volume"].isna() | (num["volume"] < 0), "volume", "not a non-negative number"))
    checks.append((adj.isna() | ~(adj > 0), "adj_close", "not a positive number"))
    for mask, fld, msg in checks:
        m = (mask & ok).to_numpy()
        for i in np.flatnonzero(m):
            val = raw[fld].iat[i] if fld in raw else ""
            bad.append(f"{path}:{raw['_line'].iat[i]}: {fld}: {msg} ({val!r})")
        ok &= ~mask
    frame = pd.DataFrame({"date": date.dt.normalize(), "ticker": ticker, **num, "adj_close": adj,
                          "line": raw["_line"]})[ok.to_numpy()]
    # a row on a weekend or holiday would become a "trading day" for every ticker and shift the 20-day
    # label horizon and the momentum windows
    off = not_a_session(frame["date"])
    for i in np.flatnonzero(off):
        r = frame.iloc[i]
        bad.append(f"{path}:{r['line']}: date: {r['date'].date()} is not an NYSE trading session")
    frame = frame[~off]
    dup = frame.duplicated(["date", "ticker"], keep="first")
    for i in np.flatnonzero(dup.to_numpy()):
        r = frame.iloc[i]
        bad.append(f"{path}:{r['line']}: date,ticker: duplicate row for {r['ticker']} on {r['date'].date()}")
    frame = frame[~dup.to_numpy()].sort_values(["ticker", "date"]).reset_index(drop=True)
    if "adj_close" not in raw and len(frame):
        jumps = split_like_jumps(frame)
        if len(jumps):
            eg = "; ".join(f"{r.ticker} on {pd.Timestamp(r.date).date()} ({r.prev_close:g} -> {r.close:g}, x{r.ratio:.3g})"
                           for r in jumps.head(5).itertuples())
            log.warning("%s: %d overnight close move(s) look like stock splits and the file has no adj_close column, "
                        "so returns, momentum and labels across them are wrong: %s%s. Add split-adjusted closes as "
                        "adj_close", path, len(jumps), eg, f" (+{len(jumps) - 5} more)" if len(jumps) > 5 else "")
    return _finish(path, LoadResult(frame, sorted(bad, key=_line_key)), strict)


def _line_key(msg: str) -> int:
    return _split_message(msg)[1]


def _finish(path: Path, result: LoadResult, strict: bool) -> LoadResult:
    if result.bad_rows and strict:
        raise VaiError(f"{path}: {result.summary(verb='found (--strict: nothing loaded)')}")
    if result.bad_rows and result.frame.empty:
        raise VaiError(f"{path}: no valid rows; {result.summary(verb='found')}")
    return result


# -- real data sets ------------------------------------------------------------------------------------------
def _dataset_dir(data_dir=None) -> Path:
    from vai.core.settings import get_settings

    if data_dir is not None:
        p = Path(data_dir)
        p = p / "master_score" if (p / "master_score").is_dir() else p
        if not p.is_dir():
            raise VaiError(f"data folder {p} does not exist: check VAI_DATA_DIR / --data-dir")
        return p
    return get_settings().require_data_dir("master_score")


def load_stocknet(data_dir=None, tickers: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """StockNet: (news, prices, sector by ticker). Tweets are the news; `created_at_utc` is the publication time."""
    d = _dataset_dir(data_dir) / "stocknet"
    prices = pd.read_csv(d / "prices_daily.csv.gz", parse_dates=["date"])
    tweets = pd.read_csv(d / "tweets_preprocessed.csv.gz")
    news = pd.DataFrame({"published_at": pd.to_datetime(tweets["created_at_utc"], utc=True),
                         "ticker": tweets["ticker"].str.upper(), "headline": tweets["text_tokens"].astype(str),
                         "body": "", "source": "twitter"})
    table = pd.read_csv(d / "StockTable.tsv", sep="\t")
    sectors = {s.lstrip("$").upper(): sec for s, sec in zip(table["Symbol"], table["Sector"])}
    if tickers:
        prices, news = prices[prices["ticker"].isin(tickers)], news[news["ticker"].isin(tickers)]
    return news.reset_index(drop=True), _clean_prices(prices), sectors


def load_sp500(data_dir=None) -> pd.DataFrame:
    """S&P 500 5-year prices (split- but not dividend-adjusted; survivorship-biased: Feb-2018 members)."""
    d = _dataset_dir(data_dir) / "sp500_5yr"
    prices = pd.read_csv(d / "all_stocks_5yr.csv.gz", parse_dates=["date"]).rename(columns={"Name": "ticker"})
    prices["adj_close"] = prices["close"]
    return _clean_prices(prices)


def load_fnspid_prices(data_dir=None) -> pd.DataFrame:
    """FNSPID 50-ticker prices with the GPT news sentiment; the sentiment is lagged one day (its
    intraday time is lost upstream, so day-t news may be after the close)."""
    d = _dataset_dir(data_dir) / "fnspid"
    prices = pd.read_csv(d / "price_gpt_sentiment_50tickers.csv.gz", parse_dates=["date"])
    prices = _clean_prices(prices)
    for col in ("sentiment_gpt", "news_flag"):
        if col in prices:
            prices[col + "_lag1"] = prices.groupby("ticker")[col].shift(1)
    return prices


def load_benzinga_news(data_dir=None) -> pd.DataFrame:
    """The Benzinga analyst-ratings sample (headline, timestamp with offset, ticker)."""
    d = _dataset_dir(data_dir) / "benzinga_sample"
    raw = pd.read_csv(d / "analyst_ratings_processed_first10k.csv")
    ts = pd.to_datetime(raw["date"], utc=True, errors="coerce")
    news = pd.DataFrame({"published_at": ts, "ticker": raw["stock"].astype(str).str.upper(),
                         "headline": raw["title"].astype(str), "body": "", "source": "benzinga"})
    return news[ts.notna()].reset_index(drop=True)


def load_fnspid_headlines(data_dir=None) -> pd.DataFrame:
    """FNSPID nasdaq.com headlines for A, AA, AAPL. Only the date is known, so each headline is stamped
    23:59 New York time (it counts for the next trading day: never earlier than it could have been seen).
    Rows with relative dates ("14 HOURS AGO") are dropped."""
    d = _dataset_dir(data_dir) / "fnspid"
    parts = []
    for t in ("a", "aa", "aapl"):
        raw = pd.read_csv(d / f"headlines_{t}.csv", encoding="utf-8-sig")
        day = pd.to_datetime(raw["Date"], format="%b %d, %Y", errors="coerce")
        ts = (day + pd.Timedelta(hours=23, minutes=59)).dt.tz_localize("America/New_York")
        parts.append(pd.DataFrame({"published_at": ts, "ticker": t.upper(), "headline": raw["Headline"].astype(str),
                                   "body": "", "source": "nasdaq.com"})[day.notna().to_numpy()])
    news = pd.concat(parts, ignore_index=True)
    news["published_at"] = news["published_at"].dt.tz_convert("UTC")
    return news


def _clean_prices(prices: pd.DataFrame) -> pd.DataFrame:
    prices = prices.copy()
    prices["ticker"] = prices["ticker"].astype(str).str.upper()
    prices["date"] = pd.to_datetime(prices["date"]).dt.normalize()
    if "adj_close" not in prices:
        prices["adj_close"] = prices["close"]
    prices["adj_close"] = prices["adj_close"].fillna(prices["close"])
    prices = prices[(prices["close"] > 0) & (prices["adj_close"] > 0)]
    return prices.drop_duplicates(["date", "ticker"]).sort_values(["ticker", "date"]).reset_index(drop=True)


def load_phrasebank(data_dir=None, agreement: str = "50") -> pd.DataFrame:
    """Financial PhraseBank `Sentences_<agreement>Agree.txt` (latin-1, `sentence@label` lines)."""
    d = _dataset_dir(data_dir) / "financial_phrasebank"
    path = d / f"Sentences_{agreement}Agree.txt"
    if not path.exists():
        raise VaiError(f"{path}: not found (agreement must be one of 50, 66, 75, All)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        label = label.strip()
        if not sep or label not in ("positive", "neutral", "negative"):
            raise VaiError(f"{path}:{n}: expected 'sentence@positive|neutral|negative', got {line[-40:]!r}")
        rows.append((sentence.strip(), label))
    return pd.DataFrame(rows, columns=["sentence", "label"])
