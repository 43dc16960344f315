"""Listed option expiries of an underlying on a date: monthlies, weeklies and dailies, on XNYS.

What is listed, by symbol and date (`LISTINGS`; effective dates from exchange announcements,
approximate to the week — a synthetic chain needs the shape of the listing, not its history):

- monthly: the third Friday of every month (the last trading day; before 2015 equity options
  formally expired on the Saturday after it). Every monthly up to `max_days` is listed.
- Friday weeklies: SPX since 2005-10; SPY, QQQ and IWM since 2010-06-04, one week ahead until
  the 2012-11-15 expansion to five consecutive weeklies (here: Fridays up to six weeks after
  the current week's Friday, which covers five weeklies and the monthly between them; SPX
  seven weeks).
- other weekdays, listed for the current and the next week (from Thursday on also the week
  after, as new ones are listed late in the week; SPX five weeks), as seen in real chains:
  SPY Wednesdays from 2016-09-07, Mondays from 2018-02-16, Tuesdays and Thursdays from
  2022-11-14; SPX Wednesdays 2016-02-23, Mondays 2016-08-15, Tuesdays 2022-04-18, Thursdays
  2022-05-11; QQQ Mondays and Wednesdays 2021-04-20, Tuesdays and Thursdays 2022-11-14.
- quarterlies: the last session of March, June, September and December (SPY, QQQ, IWM);
  SPX lists the last session of every month (end-of-month series).

Holidays (exchange_calendars XNYS): a Friday, Wednesday or end-of-period expiry that is not a
session moves to the previous session (the April 2025 monthly expired Thursday 2025-04-17,
Good Friday); a Monday moves to the next session (Tuesday); a Tuesday or Thursday that is
not a session is not listed. Every expiry is a PM expiry at the 16:00 close; SPX's AM-settled
monthly is listed once, as its PM-settled SPXW twin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.market.calendar import xnys_sessions

CALENDAR = "XNYS"
CALENDAR_START = dt.date(1990, 1, 1)  # the store's history starts here
CALENDAR_END = dt.date(2035, 12, 31)
DAY = np.timedelta64(1, "D")
WEEK = np.timedelta64(7, "D")
# numpy counts days from 1970-01-01, a Thursday: (days + 3) % 7 is 0 on Mondays.
_MONDAY_OFFSET = 3
MON, TUE, WED, THU, FRI = range(5)


class ExpiryError(ValueError):
    """Bad input to the expiry calendar: a date outside the calendar, a negative horizon."""


@dataclass(frozen=True)
class Listing:
    """When each kind of expiry is listed for one symbol; None means never."""

    weekly_fridays: dt.date | None = None
    weeklies_expanded: dt.date | None = None  # five consecutive weeklies from this date
    mondays: dt.date | None = None
    tuesdays: dt.date | None = None
    wednesdays: dt.date | None = None
    thursdays: dt.date | None = None
    quarter_ends: dt.date | None = None
    month_ends: dt.date | None = None
    weekly_weeks_ahead: int = 6  # Friday weeklies up to this many weeks after this Friday
    daily_weeks_ahead: int = 1  # Monday-Thursday expiries up to this many weeks after it


LISTINGS: dict[str, Listing] = {
    "SPY": Listing(
        weekly_fridays=dt.date(2010, 6, 4),
        weeklies_expanded=dt.date(2012, 11, 15),
        mondays=dt.date(2018, 2, 16),
        tuesdays=dt.date(2022, 11, 14),
        wednesdays=dt.date(2016, 9, 7),
        thursdays=dt.date(2022, 11, 14),
        quarter_ends=dt.date(2008, 1, 1),
    ),
    "SPX": Listing(
        weekly_fridays=dt.date(2005, 10, 28),
        weeklies_expanded=dt.date(2005, 10, 28),
        mondays=dt.date(2016, 8, 15),
        tuesdays=dt.date(2022, 4, 18),
        wednesdays=dt.date(2016, 2, 23),
        thursdays=dt.date(2022, 5, 11),
        quarter_ends=dt.date(2008, 1, 1),
        month_ends=dt.date(2014, 1, 1),
        weekly_weeks_ahead=7,
        daily_weeks_ahead=5,
    ),
    "QQQ": Listing(
        weekly_fridays=dt.date(2010, 6, 4),
        weeklies_expanded=dt.date(2012, 11, 15),
        mondays=dt.date(2021, 4, 20),
        tuesdays=dt.date(2022, 11, 14),
        wednesdays=dt.date(2021, 4, 20),
        thursdays=dt.date(2022, 11, 14),
        quarter_ends=dt.date(2008, 1, 1),
    ),
    "IWM": Listing(
        weekly_fridays=dt.date(2010, 6, 4),
        weeklies_expanded=dt.date(2012, 11, 15),
        quarter_ends=dt.date(2008, 1, 1),
    ),
}
# Any other underlying: monthlies plus Friday weeklies, as most optionable ETFs have now.
DEFAULT_LISTING = Listing(
    weekly_fridays=dt.date(2010, 6, 4), weeklies_expanded=dt.date(2012, 11, 15)
)


def _sessions() -> npt.NDArray[np.datetime64]:
    """XNYS sessions CALENDAR_START..CALENDAR_END, sorted datetime64[D] (one shared calendar)."""
    return xnys_sessions(CALENDAR_START, CALENDAR_END)


def is_session(days: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where the date is an XNYS trading session."""
    sessions = _sessions()
    d = np.asarray(days, dtype="datetime64[D]")
    i = np.clip(np.searchsorted(sessions, d), 0, sessions.size - 1)
    return np.asarray(sessions[i] == d)


def previous_session(days: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """The date itself if it is a session, else the last session before it."""
    sessions = _sessions()
    d = np.asarray(days, dtype="datetime64[D]")
    i = np.maximum(np.searchsorted(sessions, d, side="right") - 1, 0)
    return np.asarray(sessions[i], dtype="datetime64[D]")


def next_session(days: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """The date itself if it is a session, else the first session after it."""
    sessions = _sessions()
    d = np.asarray(days, dtype="datetime64[D]")
    i = np.minimum(np.searchsorted(sessions, d, side="left"), sessions.size - 1)
    return np.asarray(sessions[i], dtype="datetime64[D]")


def _weekday(days: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    return (days.astype(np.int64) + _MONDAY_OFFSET) % 7


def _weekday_of(day: np.datetime64) -> int:
    return (int(day.astype(np.int64)) + _MONDAY_OFFSET) % 7


def _on_or_after(since: dt.date | None, asof: dt.date) -> bool:
    return since is not None and asof >= since


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of a month (before any holiday adjustment)."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(FRI - first.weekday()) % 7 + 14)


def _month_starts(asof: np.datetime64, end: np.datetime64) -> npt.NDArray[np.datetime64]:
    first = asof.astype("datetime64[M]")
    return np.arange(first, end.astype("datetime64[M]") + 2, dtype="datetime64[M]")


def _monthlies(asof: np.datetime64, end: np.datetime64) -> npt.NDArray[np.datetime64]:
    firsts = _month_starts(asof, end).astype("datetime64[D]")
    fridays = firsts + (FRI - _weekday(firsts)) % 7 * DAY + 2 * WEEK
    return previous_session(fridays)


def _period_ends(
    asof: np.datetime64, end: np.datetime64, quarterly: bool
) -> npt.NDArray[np.datetime64]:
    months = _month_starts(asof, end)
    if quarterly:
        months = months[(months.astype(np.int64) % 12) % 3 == 2]  # Mar, Jun, Sep, Dec
    last_days = (months + 1).astype("datetime64[D]") - DAY
    return previous_session(last_days)


def _weekdays(
    asof: np.datetime64, until: np.datetime64, weekday: int
) -> npt.NDArray[np.datetime64]:
    start = asof + (weekday - _weekday_of(asof)) % 7 * DAY
    return np.arange(start, until + DAY, WEEK, dtype="datetime64[D]")


def listed_expiries(asof: dt.date, max_days: int = 70, symbol: str = "SPY") -> list[dt.date]:
    """Expiry dates listed on `asof` for `symbol`, from `asof` itself to `asof + max_days`.

    Sorted, distinct, all XNYS sessions. Same-day expiries are included (they trade until the
    close); a chain built at or after 16:00 drops them. Unknown symbols use DEFAULT_LISTING.
    """
    if max_days < 0:
        raise ExpiryError(f"max_days must be >= 0, got {max_days}")
    if not (CALENDAR_START <= asof <= CALENDAR_END - dt.timedelta(days=max_days + 40)):
        raise ExpiryError(
            f"{asof} + {max_days} days is outside the {CALENDAR} calendar "
            f"({CALENDAR_START}..{CALENDAR_END})"
        )
    rules = LISTINGS.get(symbol.upper(), DEFAULT_LISTING)
    a = np.datetime64(asof, "D")
    end: np.datetime64 = a + max_days * DAY
    this_friday: np.datetime64 = a + (FRI - _weekday_of(a)) % 7 * DAY
    parts = [_monthlies(a, end)]
    if _on_or_after(rules.weekly_fridays, asof):
        weeks = rules.weekly_weeks_ahead if _on_or_after(rules.weeklies_expanded, asof) else 1
        parts.append(previous_session(_weekdays(a, this_friday + weeks * WEEK, FRI)))
    # New dailies are listed late in the week for the week after next.
    daily_weeks = rules.daily_weeks_ahead + (1 if _weekday_of(a) >= THU else 0)
    daily_until = this_friday + daily_weeks * WEEK
    if _on_or_after(rules.mondays, asof):
        parts.append(next_session(_weekdays(a, daily_until, MON)))
    if _on_or_after(rules.wednesdays, asof):
        parts.append(previous_session(_weekdays(a, daily_until, WED)))
    for since, weekday in ((rules.tuesdays, TUE), (rules.thursdays, THU)):
        if _on_or_after(since, asof):
            days = _weekdays(a, daily_until, weekday)
            parts.append(days[is_session(days)])
    if _on_or_after(rules.month_ends, asof):
        parts.append(_period_ends(a, end, quarterly=False))
    elif _on_or_after(rules.quarter_ends, asof):
        parts.append(_period_ends(a, end, quarterly=True))
    days = np.unique(np.concatenate(parts))
    days = days[(days >= a) & (days <= end)]
    return [d.item() for d in days]
