"""The NYSE trading calendar (exchange_calendars XNYS) and the point-in-time cut-off rule.

A headline counts for trading day D only if it was published strictly before D's close (16:00
America/New_York, or the early close on half days, e.g. 13:00 the day after Thanksgiving); anything later,
or on a weekend/holiday, belongs to the next trading day.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from vai.core.errors import VaiError

NY = "America/New_York"


@functools.lru_cache(maxsize=4)
def _calendar(start: str = "1990-01-01"):
    import exchange_calendars as xc

    return xc.get_calendar("XNYS", start=start)


def trading_days(start, end) -> pd.DatetimeIndex:
    """NYSE sessions in [start, end] as tz-naive midnight dates."""
    cal = _calendar()
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end > cal.last_session:
        raise VaiError(f"date {end.date()} is beyond the NYSE calendar ({cal.last_session.date()})")
    return cal.sessions_in_range(max(start, cal.first_session), end)


def session_closes(sessions: pd.DatetimeIndex) -> pd.Series:
    """UTC close time of each session (handles early closes)."""
    cal = _calendar()
    return cal.closes.reindex(sessions)


def not_a_session(dates: pd.Series) -> np.ndarray:
    """True for dates inside the calendar's range that are not NYSE sessions (outside it: not judged)."""
    if dates.empty:
        return np.zeros(0, bool)
    cal = _calendar()
    inside = (dates >= cal.first_session) & (dates <= cal.last_session)
    if not inside.any():
        return np.zeros(len(dates), bool)
    sessions = cal.sessions_in_range(max(dates.min(), cal.first_session), min(dates.max(), cal.last_session))
    return (inside & ~dates.isin(sessions)).to_numpy()


def _in_range(day) -> pd.Timestamp:
    """`day` as a midnight date, or a clear error when it lies outside the calendar's range."""
    cal = _calendar()
    day = pd.Timestamp(day).normalize()
    if day < cal.first_session or day > cal.last_session:
        raise VaiError(f"date {day.date()} is outside the NYSE calendar ({cal.first_session.date()} to "
                       f"{cal.last_session.date()}; it reaches one year ahead of the installed exchange_calendars)")
    return day


def is_trading_day(day) -> bool:
    return bool(_calendar().is_session(_in_range(day)))


def next_trading_day(day) -> pd.Timestamp:
    cal = _calendar()
    day = _in_range(day)
    return cal.date_to_session(day, direction="next") if not is_trading_day(day) else cal.next_session(day)


_TZ_SUFFIX = r"[T ]\d\d(?::?\d\d){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$"  # a time, then a zone


def has_time_zone(text: pd.Series) -> pd.Series:
    """For ISO-8601 strings: True where a time with a zone (Z, +HH, +HHMM, +HH:MM) is given."""
    return text.astype(str).str.strip().str.contains(_TZ_SUFFIX, regex=True, na=False)


def to_utc(published_at, what: str = "published_at") -> pd.Series:
    """Publication times as UTC timestamps. A time without a zone is refused, never guessed: read as UTC, a
    17:30 New York (after the close) headline would count for the same day, a look-ahead."""
    s = pd.Series(published_at)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        naive = s.notna()
    else:
        is_text = s.map(lambda v: isinstance(v, str)).to_numpy()
        naive = pd.Series(False, index=s.index)
        if is_text.any():
            naive[is_text] = ~has_time_zone(s[is_text]).to_numpy()
        other = ~is_text & s.notna().to_numpy()
        if other.any():
            naive[other] = [getattr(v, "tzinfo", None) is None for v in s[other]]
    if naive.any():
        i = int(np.flatnonzero(naive.to_numpy())[0])
        raise VaiError(f"{what}: {int(naive.sum())} timestamp(s) have no time zone (first: row {i}, {s.iloc[i]!r}); "
                       "give each a zone (e.g. 2024-06-14T15:30:00-04:00 or ...Z): a zone-less time cannot be placed "
                       "before or after the 16:00 New York close")
    return pd.to_datetime(s, utc=True, format="ISO8601" if not pd.api.types.is_datetime64_any_dtype(s.dtype) else None)


def in_calendar(ts_utc: pd.Series) -> np.ndarray:
    """True where a UTC timestamp can be assigned a session: after the calendar's first close and before its last."""
    closes = _calendar().closes
    return ((ts_utc >= closes.iloc[0]) & (ts_utc < closes.iloc[-1])).to_numpy()


def assign_session(published_at) -> pd.Series:
    """Map publication timestamps (tz-aware, any zone) to the trading day they count for.

    Vectorised: the session is the first one whose close is strictly after the timestamp.
    """
    ts = to_utc(published_at)
    if ts.isna().any():
        raise VaiError("assign_session: some timestamps are missing or unparseable")
    cal = _calendar()
    closes = cal.closes
    close_ns = closes.values.astype("datetime64[ns]").astype(np.int64)
    ts_ns = ts.values.astype("datetime64[ns]").astype(np.int64)
    idx = np.searchsorted(close_ns, ts_ns, side="right")
    outside = (idx >= len(closes)) | (idx == 0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise VaiError(f"{int(outside.sum())} news timestamp(s) lie outside the NYSE calendar ({closes.iloc[0]} to "
                       f"{closes.iloc[-1]} UTC), first {ts.iloc[i]}; drop them (the CSV loader reports such rows)")
    return pd.Series(closes.index[idx].values, index=ts.index, name="session")
