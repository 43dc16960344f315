"""IntradayFeed: one-minute bars to snapshots with a synthetic chain per tick; bad files."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from engine.feeds.feed import Feed
from engine.feeds.intraday import IntradayFeed, MinuteBarsError, read_minute_bars
from engine.market.surface import VolIndices

NY = ZoneInfo("America/New_York")
HEADER = "datetime,open,high,low,close,volume,vwap,transactions"


def _file(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_regular_session_bars_become_ticks_with_chains(tmp_path: Path) -> None:
    path = _file(tmp_path, [
        "2024-04-15 09:29:00-04:00,500,500,500,500.0,1,500,1",  # pre-market: skipped
        "2024-04-15 09:30:00-04:00,500,501,499,500.5,1,500,1",
        "2024-04-15 15:59:00-04:00,500,501,499,501.0,1,500,1",
        "2024-04-15 16:00:00-04:00,500,501,499,499.0,1,500,1",  # post-market: skipped
        "2024-04-16 09:30:00-04:00,500,501,499,495.0,1,500,1",
    ])  # fmt: skip
    bars = read_minute_bars(path)
    assert [b.time for b in bars] == [datetime(2024, 4, 15, 9, 31, tzinfo=NY),
                                      datetime(2024, 4, 15, 16, 0, tzinfo=NY),
                                      datetime(2024, 4, 16, 9, 31, tzinfo=NY)]  # fmt: skip
    feed = IntradayFeed(
        bars,
        lambda day: VolIndices(vix=14.0),
    )
    assert isinstance(feed, Feed)
    snaps = list(feed.ticks())
    assert [s.underlyings["SPY"].price for s in snaps] == [500.5, 501.0, 495.0]
    assert snaps[2].underlyings["SPY"].prev_close == 501.0
    assert snaps[2].underlyings["SPY"].change_pct == pytest.approx(495 / 501 - 1)
    first, last = snaps[0].chains["SPY"], snaps[1].chains["SPY"]
    # the 16:00 tick no longer lists the same-day expiry
    assert np.datetime64("2024-04-15") in first.expiry
    assert np.datetime64("2024-04-15") not in last.expiry
    # the same contracts an afternoon later, spot up 0.50: OTM puts lose value
    a = (first.expiry == np.datetime64("2024-05-17")) & ~first.is_call & (first.strike < 480)
    b = (last.expiry == np.datetime64("2024-05-17")) & ~last.is_call & (last.strike < 480)
    assert np.array_equal(first.strike[a], last.strike[b]) and a.sum() > 10
    assert np.all((last.bid + last.ask)[b] <= (first.bid + first.ask)[a])


def test_days_without_indices_are_skipped(tmp_path: Path) -> None:
    path = _file(tmp_path, ["2024-04-15 10:00:00-04:00,1,1,1,500,1,1,1",
                            "2024-04-16 10:00:00-04:00,1,1,1,501,1,1,1"])  # fmt: skip
    levels = {date(2024, 4, 16): VolIndices(vix=15.0)}
    snaps = list(IntradayFeed(read_minute_bars(path), levels.get).ticks())
    assert [s.time.date() for s in snaps] == [date(2024, 4, 16)]


@pytest.mark.parametrize(
    ("rows", "where", "what"),
    [
        (["2024-04-15 10:00:00-04:00,1,1,1,abc,1,1,1"], ":2:5:", "not a price"),
        (["yesterday,1,1,1,500,1,1,1"], ":2:1:", "not a timestamp"),
        (["2024-04-15 10:00:00,1,1,1,500,1,1,1"], ":2:1:", "without a time zone"),
        (["2024-04-15 10:00:00-04:00,1,1,1,-5,1,1,1"], ":2:5:", "is not > 0"),
        (["2024-04-15 10:01:00-04:00,1,1,1,5,1,1,1", "2024-04-15 10:00:00-04:00,1,1,1,5,1,1,1"],
         ":3:1:", "not after"),
    ],
)  # fmt: skip
def test_malformed_files_are_located(
    tmp_path: Path, rows: list[str], where: str, what: str
) -> None:
    path = _file(tmp_path, rows)
    with pytest.raises(MinuteBarsError, match=what) as info:
        read_minute_bars(path)
    assert f"{path}{where}" in str(info.value)


def test_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("time,price\n2024-04-15 10:00:00-04:00,500\n")
    with pytest.raises(MinuteBarsError, match=r":1:1: missing column\(s\) datetime, close"):
        read_minute_bars(path)


def test_real_spy_minute_bars(shared_data: Path) -> None:
    path = next((shared_data / "intraday").glob("spy_1min_*.csv"))
    bars = read_minute_bars(path)
    assert len(bars) == 63 * 390  # exactly 390 regular-hours bars per session
    feed = IntradayFeed(bars[:3], lambda day: VolIndices(vix=14.0))
    snaps = list(feed.ticks())
    assert len(snaps) == 3 and snaps[0].time == datetime(2024, 2, 20, 9, 31, tzinfo=NY)
    assert len(snaps[0].chains["SPY"]) > 1000
    assert IntradayFeed(bars[:1], lambda d: None).describe().startswith("intraday SPY: 1")
