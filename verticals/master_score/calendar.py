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


def is_trading_day(day) -> bool:
    return bool(_calendar().is_session(pd.Timestamp(day).normalize()))


def next_trading_day(day) -> pd.Timestamp:
    cal = _calendar()
    return cal.date_to_session(pd.Timestamp(day).normalize(), direction="next") if not is_trading_day(day) \
        else cal.next_session(pd.Timestamp(day).normalize())


def assign_session(published_at) -> pd.Series:
    """Map publication timestamps (tz-aware, any zone) to the trading day they count for.

    Vectorised: the session is the first one whose close is strictly after the timestamp.
    """
    ts = pd.to_datetime(pd.Series(published_at), utc=True)
    if ts.isna().any():
        raise VaiError("assign_session: some timestamps are missing or unparseable")
    cal = _calendar()
    closes = cal.closes
    close_ns = closes.values.astype("datetime64[ns]").astype(np.int64)
    ts_ns = ts.values.astype("datetime64[ns]").astype(np.int64)
    idx = np.searchsorted(close_ns, ts_ns, side="right")
    if len(idx) and (idx.max() >= len(closes) or idx.min() == 0):
        raise VaiError("a news timestamp lies outside the NYSE calendar range (1990 to one year ahead)")
    return pd.Series(closes.index[idx].values, index=ts.index, name="session")
