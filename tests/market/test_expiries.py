"""Listed expiries: third Fridays, holiday moves on the XNYS calendar, listing eras, real chains."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from engine.feeds.cboe_chains import load_cboe_chain
from engine.market.expiries import (
    ExpiryError,
    is_session,
    listed_expiries,
    next_session,
    previous_session,
    third_friday,
)

D = dt.date


def test_good_friday_2025_monthly_expires_thursday() -> None:
    days = listed_expiries(D(2025, 4, 10), 14, "SPY")
    assert D(2025, 4, 17) in days
    assert D(2025, 4, 18) not in days  # Good Friday: no session


def test_third_fridays_of_a_year() -> None:
    for month in range(1, 13):
        f = third_friday(2024, month)
        assert f.weekday() == 4 and 15 <= f.day <= 21
    assert third_friday(2023, 10) == D(2023, 10, 20)
    assert third_friday(2025, 6) == D(2025, 6, 20)


def test_monthlies_are_listed_up_to_the_horizon() -> None:
    days = listed_expiries(D(2023, 9, 1), 70, "SPY")
    assert {D(2023, 9, 15), D(2023, 10, 20)} <= set(days)
    assert D(2023, 11, 17) not in days  # 77 days out


def test_juneteenth_friday_monthly_moves_to_thursday() -> None:
    # June 2026: the third Friday is Juneteenth (a market holiday since 2022).
    days = listed_expiries(D(2026, 6, 1), 30, "SPY")
    assert D(2026, 6, 18) in days
    assert D(2026, 6, 19) not in days


@pytest.mark.parametrize(
    ("asof", "thursday", "friday"),
    [
        (D(2025, 6, 30), D(2025, 7, 3), D(2025, 7, 4)),  # Independence Day on a Friday
        (D(2026, 6, 29), D(2026, 7, 2), D(2026, 7, 3)),  # observed on Friday July 3
        (D(2020, 6, 29), D(2020, 7, 2), D(2020, 7, 3)),
    ],
)
def test_july_4th_friday_weekly_moves_to_thursday(
    asof: dt.date, thursday: dt.date, friday: dt.date
) -> None:
    days = listed_expiries(asof, 10, "SPY")
    assert thursday in days
    assert friday not in days


def test_monday_holiday_moves_to_tuesday_and_wednesday_holiday_to_tuesday() -> None:
    # 2019: SPY lists Mondays and Wednesdays, not yet Tuesdays.
    mlk = listed_expiries(D(2019, 1, 14), 10, "SPY")
    assert D(2019, 1, 21) not in mlk and D(2019, 1, 22) in mlk
    assert D(2019, 1, 15) not in mlk  # an ordinary Tuesday is not listed
    # 2018-12-05, a Wednesday, closed for President Bush's funeral.
    mourning = listed_expiries(D(2018, 12, 3), 5, "SPY")
    assert D(2018, 12, 5) not in mourning and D(2018, 12, 4) in mourning


def test_a_thursday_holiday_is_not_replaced() -> None:
    days = listed_expiries(D(2025, 6, 16), 5, "SPY")
    assert days == [D(2025, 6, 16), D(2025, 6, 17), D(2025, 6, 18), D(2025, 6, 20)]


def test_listing_eras() -> None:
    # Before weeklies (and before quarterlies): monthlies only.
    assert listed_expiries(D(2005, 3, 1), 70, "SPY") == [D(2005, 3, 18), D(2005, 4, 15)]
    # 2011: one Friday weekly ahead, no other weekdays.
    days = listed_expiries(D(2011, 3, 1), 30, "SPY")
    assert all(d.weekday() == 4 or d == D(2011, 3, 31) for d in days)
    assert D(2011, 3, 4) in days and D(2011, 3, 11) in days and D(2011, 3, 25) not in days
    # Today: every weekday of this week and the next.
    recent = listed_expiries(D(2024, 3, 4), 10, "SPY")
    assert [d.weekday() for d in recent[:5]] == [0, 1, 2, 3, 4]


def test_unknown_symbol_has_monthlies_and_friday_weeklies() -> None:
    days = listed_expiries(D(2024, 3, 4), 40, "XYZ")
    good_friday = D(2024, 3, 29)
    assert all(d.weekday() == 4 for d in days if d != good_friday - dt.timedelta(days=1))
    assert D(2024, 3, 28) in days
    assert D(2024, 3, 15) in days and D(2024, 4, 12) in days


@pytest.mark.parametrize("symbol", ["SPY", "SPX", "QQQ", "IWM", "XYZ"])
def test_every_expiry_is_a_session_sorted_distinct_and_in_range(symbol: str) -> None:
    for asof in np.arange("2016-01-01", "2026-01-01", 37, dtype="datetime64[D]"):
        a = asof.item()
        days = listed_expiries(a, 70, symbol)
        assert days == sorted(set(days))
        assert all(a <= d <= a + dt.timedelta(days=70) for d in days)
        assert is_session(np.array(days, dtype="datetime64[D]")).all()
        monthly = previous_session(np.datetime64(third_friday(a.year, a.month), "D")).item()
        assert monthly in days or monthly < a


def test_session_helpers() -> None:
    good_friday = np.datetime64("2025-04-18")
    assert not is_session(good_friday)
    assert previous_session(good_friday) == np.datetime64("2025-04-17")
    assert next_session(good_friday) == np.datetime64("2025-04-21")
    assert next_session(np.datetime64("2025-04-17")) == np.datetime64("2025-04-17")


def test_bad_input() -> None:
    with pytest.raises(ExpiryError, match="max_days"):
        listed_expiries(D(2024, 1, 2), -1)
    with pytest.raises(ExpiryError, match="outside the XNYS calendar"):
        listed_expiries(D(1985, 1, 2), 70)


def test_matches_the_real_spy_chain_listing(shared_data: Path) -> None:
    chain = load_cboe_chain(shared_data / "option_chains" / "spy_chain_2023-09-14_cboe_delayed.csv")
    asof = chain.snapshot_date.item()
    real = {
        e.item() for e in np.unique(chain.expiry) if (e - chain.snapshot_date).astype(int) <= 70
    }
    assert set(listed_expiries(asof, 70, "SPY")) == real


def test_covers_the_real_spx_listing(shared_data: Path) -> None:
    chain = load_cboe_chain(shared_data / "option_chains" / "spx_chain_2023-09-14_cboe_delayed.csv")
    asof = chain.snapshot_date.item()
    real = {
        e.item() for e in np.unique(chain.expiry) if (e - chain.snapshot_date).astype(int) <= 70
    }
    synth = set(listed_expiries(asof, 70, "SPX"))
    assert real <= synth
    assert len(synth - real) <= 3  # SPX lists a few Mon-Thu dailies less far out than here
