"""XNYS sessions from exchange_calendars' rules, and fitting dates onto them."""

from __future__ import annotations

import warnings
from datetime import date

import exchange_calendars as xc
import numpy as np
import pytest

from engine.market.calendar import fit_to_sessions, sessions_for, xnys_sessions


def their_sessions(start: str, end: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pandas, inside exchange_calendars
        calendar = xc.get_calendar("XNYS", start=start, end=end)
    return calendar.sessions.values.astype("datetime64[D]")


def days(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[D]")


def is_session(text: str) -> bool:
    day = date.fromisoformat(text)
    return len(xnys_sessions(day, day)) == 1


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        ("2001-09-10", True),
        ("2001-09-11", False),  # the 9/11 closure, four days
        ("2001-09-14", False),
        ("2001-09-17", True),
        ("2004-06-11", False),  # Reagan's funeral: CBOE still published a VIX
        ("2012-10-29", False),  # Hurricane Sandy
        ("2019-12-25", False),
        ("2019-12-28", False),  # a Saturday
        ("1969-12-25", False),  # before 1970: see the next test
        ("1965-12-24", False),  # Christmas observed on the Friday
        ("1961-11-07", False),  # Election Day, closed until 1968 (and 1972, 1976, 1980)
        ("1961-11-08", True),
    ],
)
def test_known_days(day: str, open_: bool) -> None:
    assert is_session(day) is open_


def test_pre_1970_holidays_count_unlike_calendar_sessions() -> None:
    # exchange_calendars' own session index ignores its holiday rules before 1970 (pandas'
    # CustomBusinessDay default range); ours applies them.
    theirs = their_sessions("1960-01-04", "1975-12-31")
    ours = xnys_sessions(date(1960, 1, 4), date(1975, 12, 31))
    assert np.datetime64("1969-12-25") in theirs
    assert np.datetime64("1969-12-25") not in ours
    after = np.datetime64("1970-01-01")
    assert np.array_equal(theirs[theirs >= after], ours[ours >= after])


def test_agrees_with_exchange_calendars_since_1990() -> None:
    theirs = their_sessions("1990-01-02", "2019-12-31")
    assert np.array_equal(theirs, xnys_sessions(date(1990, 1, 2), date(2019, 12, 31)))


def test_empty_range() -> None:
    assert len(xnys_sessions(date(2020, 1, 2), date(2020, 1, 1))) == 0
    assert len(xnys_sessions(date(2020, 1, 4), date(2020, 1, 5))) == 0  # a weekend


def test_sessions_are_cached_read_only() -> None:
    sessions = xnys_sessions(date(2019, 1, 1), date(2019, 12, 31))
    assert len(sessions) == 252
    with pytest.raises(ValueError):
        sessions[0] = np.datetime64("2000-01-01")


def test_fit_drops_closed_days_and_lists_gaps() -> None:
    dates = days("2001-09-07", "2001-09-11", "2001-09-17", "2001-09-19", "2001-09-22")
    fit = fit_to_sessions(dates, sessions_for(dates))
    assert fit.on_session.tolist() == [True, False, True, True, False]
    assert fit.off_session.tolist() == [False, True, False, False, True]
    # 09-10 and 09-18 are sessions without a row; the 11th-14th closure is not a gap.
    assert [str(d) for d in fit.gaps] == ["2001-09-10", "2001-09-18"]


def test_fit_gaps_only_inside_the_kept_range() -> None:
    dates = days("2019-12-24", "2019-12-25", "2019-12-26")
    fit = fit_to_sessions(dates, xnys_sessions(date(2019, 12, 1), date(2019, 12, 31)))
    assert fit.on_session.tolist() == [True, False, True]
    assert len(fit.gaps) == 0


def test_fit_with_no_session_at_all() -> None:
    dates = days("2019-12-25", "2019-12-28")
    fit = fit_to_sessions(dates, sessions_for(dates))
    assert not fit.on_session.any()
    assert len(fit.gaps) == 0
