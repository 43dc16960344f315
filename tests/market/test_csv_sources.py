"""Daily CSV parsing: layouts by header name, dates, validation located at file:line:col."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.market.csv_sources import (
    HistoryFormatError,
    Repair,
    check_ohlc,
    read_daily_csv,
)


def write(tmp_path: Path, text: str, name: str = "f.csv", *, bom: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def located(path: Path, line: int, column: int) -> str:
    return f"{path}:{line}:{column}: "


def test_cboe_layout_with_us_dates(tmp_path: Path) -> None:
    path = write(tmp_path, "DATE,OPEN,HIGH,LOW,CLOSE\n01/02/1990,17.24,17.5,17.0,17.3\n")
    series = read_daily_csv(path)
    assert series.dates.tolist() == [np.datetime64("1990-01-02").astype(object)]
    assert (series.open[0], series.high[0], series.low[0], series.close[0]) == (
        17.24,
        17.5,
        17.0,
        17.3,
    )
    assert series.volume is None and series.dividend is None


def test_columns_found_by_name_not_position(tmp_path: Path) -> None:
    # RUT and the futures files: Date,Close,High,Low,Open,Volume.
    path = write(
        tmp_path, "Date,Close,High,Low,Open,Volume\n2019-12-31,3231.0,3236.25,3213,3223.25,7\n"
    )
    series = read_daily_csv(path)
    assert series.open[0] == 3223.25
    assert series.close[0] == 3231.0
    assert series.volume is not None and series.volume[0] == 7
    assert series.columns["open"] == 5


def test_adj_close_is_ignored_and_close_is_traded(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2019-12-31,165.08,166.35,164.71,165.67,161.49,100\n"
    )
    series = read_daily_csv(write(tmp_path, text))
    assert series.close[0] == 165.67


@pytest.mark.parametrize("name", ["Dividend", "Dividends", "DIVIDENDS"])
def test_dividend_column_names(tmp_path: Path, name: str) -> None:
    text = f"date,open,high,low,close,volume,{name},AdjFactor\n2019-12-20,1,2,1,2,10,1.57,0.9\n"
    series = read_daily_csv(write(tmp_path, text))
    assert series.dividend is not None and series.dividend[0] == 1.57


def test_single_value_file_is_a_close(tmp_path: Path) -> None:
    series = read_daily_csv(write(tmp_path, "DATE,VVIX\n03/06/2006,71.73\n03/15/2006,75.5\n"))
    assert series.close.tolist() == [71.73, 75.5]
    assert np.isnan(series.open).all() and np.isnan(series.high).all()


def test_timezone_suffix_gives_the_new_york_date(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2019-12-30 00:00:00-05:00,3240.09,3240.92,3216.57,3221.29,100,0.0,0.0\n"
        # Same instant written in UTC: still the 31st in New York.
        "2019-12-31 05:00:00+00:00,3215.18,3231.72,3212.03,3230.78,100,0.0,0.0\n"
    )
    series = read_daily_csv(write(tmp_path, text))
    assert [str(d) for d in series.dates] == ["2019-12-30", "2019-12-31"]


def test_bom_crlf_and_blank_lines_tolerated(tmp_path: Path) -> None:
    text = "DATE,CLOSE\r\n01/02/1990,17.24\r\n\r\n01/03/1990,18.19\r\n\r\n"
    series = read_daily_csv(write(tmp_path, text, bom=True))
    assert series.close.tolist() == [17.24, 18.19]
    assert series.lines.tolist() == [2, 4]


def test_empty_open_high_low_are_missing(tmp_path: Path) -> None:
    series = read_daily_csv(write(tmp_path, "Date,Open,High,Low,Close\n2019-12-31,,,,10\n"))
    assert all(math.isnan(v) for v in (series.open[0], series.high[0], series.low[0]))


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("", 1, 1, "empty file"),
        ("\n\n", 1, 1, "empty file"),
        ("DATE,CLOSE\n", 2, 1, "no data rows"),
        ("DATE,CLOSE\n01/02/1990,1\n13/45/1990,2\n", 3, 1, "bad date '13/45/1990'"),
        ("DATE,CLOSE\n1990-1-2,1\n", 2, 1, "bad date"),
        ("DATE,CLOSE\n01/02/90,1\n", 2, 1, "bad date"),
        ("Date,Open,Close\n2019-12-30,1,2\n2019-12-31,abc,2\n", 3, 2, "'abc' is not a finite"),
        ("Date,Close\n2019-12-31,nan\n", 2, 2, "'nan' is not a finite"),
        ("Date,Close\n2019-12-31,inf\n", 2, 2, "not a finite"),
        ("Date,Close\n2019-12-31,1_000\n", 2, 2, "not a finite"),
        ("Date,Open,Close\n2019-12-31,1,\n", 2, 3, "a close is required"),
        ("Date,Open,High\n2019-12-31,1,2\n", 1, 1, "no CLOSE column"),
        ("Day,Close\n2019-12-31,1\n", 1, 1, "no DATE column"),
        ("Date,Close,CLOSE\n2019-12-31,1,1\n", 1, 3, "repeats column 2"),
        ("Date,Close\n2019-12-30,1\n2019-12-31\n", 3, 2, "expected 2 fields, found 1"),
        ("Date,Close\n2019-12-30,1\n2019-12-31,1,2\n", 3, 3, "expected 2 fields, found 3"),
        (
            "Date,Close\n2019-12-30,1\n2019-12-30,2\n",
            3,
            1,
            "duplicate date 2019-12-30 (also on line 2)",
        ),
        ("Date,Close\n2019-12-30,1\n2019-12-27,2\n", 3, 1, "not after 2019-12-30 on line 2"),
        ("Date,Open,Close\n2019-12-30,0,2\n", 2, 2, "open 0.0 is not a positive price"),
        ("Date,Close\n2019-12-30,-3\n", 2, 2, "close -3.0 is not a positive"),
        ("Date,Close,Volume\n2019-12-30,3,-1\n", 2, 3, "volume -1.0 is negative"),
    ],
)
def test_malformed_files_are_located(
    tmp_path: Path, text: str, line: int, column: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HistoryFormatError) as caught:
        read_daily_csv(path)
    error = caught.value
    assert str(error).startswith(located(path, line, column)), str(error)
    assert words in str(error)
    assert (error.path, error.line, error.column) == (path, line, column)


def test_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"Date,Close\n2019-12-30,1\n2019-12-31,\xff\n")
    with pytest.raises(HistoryFormatError, match=r"bin.csv:3:2: not UTF-8"):
        read_daily_csv(path)


def test_unreadable_csv_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Close\n2019-12-30,1\n2019-12-31," + "9" * 200_000 + "\n")
    with pytest.raises(HistoryFormatError, match=r"f.csv:3:1: not readable as CSV"):
        read_daily_csv(path)


OHLC = (
    "Date,Open,High,Low,Close\n"
    "2019-12-30,10,11,9,10.5\n"
    "2019-12-31,12,11,9,10.5\n"  # open above high
)


def test_strict_ohlc_names_the_high_column(tmp_path: Path) -> None:
    path = write(tmp_path, OHLC)
    with pytest.raises(HistoryFormatError) as caught:
        check_ohlc(read_daily_csv(path), Repair.STRICT)
    assert str(caught.value).startswith(located(path, 3, 3))
    assert "high 11.0 is below open 12.0" in str(caught.value)


def test_strict_high_below_low(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Low,Close\n2019-12-31,,9,11,10\n")
    with pytest.raises(HistoryFormatError, match=r":2:3: high 9.0 is below low 11.0"):
        check_ohlc(read_daily_csv(path), Repair.STRICT)


def test_strict_low_above_close(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Low,Close\n2019-12-31,10,12,10.5,11\n")
    with pytest.raises(HistoryFormatError, match=r":2:4: low 10.5 is above open 10.0"):
        check_ohlc(read_daily_csv(path), Repair.STRICT)


def test_clamp_widens_high_and_low(tmp_path: Path) -> None:
    text = OHLC + "2020-01-02,10,11,10.8,10.5\n"  # low above close
    series, repaired = check_ohlc(read_daily_csv(write(tmp_path, text)), Repair.CLAMP)
    assert repaired.tolist() == [False, True, True]
    assert series.high.tolist() == [11, 12, 11]
    assert series.low.tolist() == [9, 9, 10]
    assert series.open.tolist() == [10, 12, 10]


def test_clamp_keeps_missing_values_missing(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close\n2019-12-30,,,9,8\n2019-12-31,,11,,12\n"
    series, repaired = check_ohlc(read_daily_csv(write(tmp_path, text)), Repair.CLAMP)
    assert repaired.tolist() == [True, True]
    assert math.isnan(series.high[0]) and series.low[0] == 8
    assert series.high[1] == 12 and math.isnan(series.low[1])
    assert np.isnan(series.open).all()


def test_null_open_drops_only_a_stale_open(tmp_path: Path) -> None:
    series, repaired = check_ohlc(read_daily_csv(write(tmp_path, OHLC)), Repair.NULL_OPEN)
    assert repaired.tolist() == [False, True]
    assert series.open[0] == 10 and math.isnan(series.open[1])
    assert series.high.tolist() == [11, 11]


def test_null_open_still_rejects_a_close_outside_the_range(tmp_path: Path) -> None:
    path = write(tmp_path, OHLC + "2020-01-02,10,11,9,12\n")
    with pytest.raises(HistoryFormatError, match=r":4:3: high 11.0 is below close 12.0"):
        check_ohlc(read_daily_csv(path), Repair.NULL_OPEN)


def test_consistent_rows_are_untouched(tmp_path: Path) -> None:
    source = read_daily_csv(write(tmp_path, "Date,Open,High,Low,Close\n2019-12-31,,11,9,10\n"))
    series, repaired = check_ohlc(source, Repair.STRICT)
    assert series is source and not repaired.any()


def test_every_real_daily_file_parses(shared_data: Path) -> None:
    files = sorted((shared_data / "daily").glob("*.csv"))
    assert len(files) >= 13
    for path in files:
        series = read_daily_csv(path)
        assert len(series) > 500, path.name
        assert (np.diff(series.dates).astype(int) > 0).all()
        assert (series.close > 0).all()
