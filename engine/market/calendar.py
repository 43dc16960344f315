"""XNYS session calendar (exchange_calendars rules) and fitting a daily series onto it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import numpy.typing as npt

DateArray = npt.NDArray[np.datetime64]  # unit: days
BoolArray = npt.NDArray[np.bool_]

EXCHANGE = "XNYS"


@lru_cache(maxsize=8)
def _sessions(start: date, end: date) -> DateArray:
    import exchange_calendars as xc

    with warnings.catch_warnings():
        # exchange_calendars 4.x trips a pandas deprecation inside get_calendar (Series.values
        # on tz-aware data); it concerns its internals, not the holiday rules read here.
        warnings.filterwarnings("ignore", message=r"Series\.values", category=DeprecationWarning)
        calendar = xc.get_calendar(EXCHANGE)
    # Not `calendar.sessions`: it comes from a pandas CustomBusinessDay, which evaluates the
    # holiday rules only from 1970 (pandas' AbstractHolidayCalendar default), so every pre-1970
    # holiday (Christmas 1969, …) would count as a session. The same rules evaluated over the
    # requested range give the exchange's real closures, e.g. S&P 500 history since 1927 then
    # has no gap and no row off-session.
    regular = np.asarray(calendar.regular_holidays.holidays(start, end), dtype="datetime64[D]")
    adhoc = np.asarray(calendar.adhoc_holidays, dtype="datetime64[D]")
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    open_days = np.is_busday(
        days, weekmask=calendar.weekmask, holidays=np.concatenate([regular, adhoc])
    )
    sessions = days[open_days]
    sessions.setflags(write=False)  # cached and shared: nobody may edit it in place
    return sessions


def xnys_sessions(start: date, end: date) -> DateArray:
    """The NYSE session dates from `start` to `end` inclusive, as sorted datetime64[D]."""
    if end < start:
        return np.array([], dtype="datetime64[D]")
    return _sessions(start, end)


@dataclass(frozen=True)
class CalendarFit:
    """How a series' dates sit on the session calendar."""

    on_session: BoolArray  # per input row: the exchange was open that day
    gaps: DateArray  # sessions between the first and last kept row that have no row

    @property
    def off_session(self) -> BoolArray:
        return ~self.on_session


def fit_to_sessions(dates: DateArray, sessions: DateArray) -> CalendarFit:
    """Mark rows on closed days and list sessions missing inside the series' range (pure)."""
    on_session = np.isin(dates, sessions)
    kept = dates[on_session]
    if len(kept) == 0:
        return CalendarFit(on_session, np.array([], dtype="datetime64[D]"))
    inside = sessions[(sessions >= kept[0]) & (sessions <= kept[-1])]
    gaps = inside[~np.isin(inside, kept)]
    return CalendarFit(on_session, gaps)


def sessions_for(dates: DateArray) -> DateArray:
    """The sessions spanning a (sorted, non-empty) array of dates."""
    first = dates[0].astype(object)
    last = dates[-1].astype(object)
    return xnys_sessions(first, last)
