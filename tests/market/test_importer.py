"""`v6 import-history`: real files end to end, idempotence, and all-or-nothing on bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from engine.market.bars import TABLE
from engine.market.csv_sources import HistoryFormatError
from engine.market.import_command import (
    default_sources,
    parse_assignments,
    run_import_history,
)
from engine.market.importer import ImportReport, ImportSpecError, import_history
from engine.market.store import MarketStore

# -- the real shared data --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImportReport]:
    out = tmp_path_factory.mktemp("real") / "store"
    yield run_import_history(out, data_dir=shared_data)


def close_on(store: MarketStore, symbol: str, day: str) -> float:
    when = date.fromisoformat(day)
    rows = store.bars(symbol, when, when)
    assert rows.num_rows == 1, (symbol, day)
    value: float = rows.column("close")[0].as_py()
    return value


def test_every_shared_file_is_imported(real: ImportReport) -> None:
    expected = {"SPY", "QQQ", "IWM", "SPX", "RUT", "VIX", "VIX9D", "VIX3M", "VVIX", "SKEW"}
    assert expected | {"ES", "NQ", "RTY"} == set(real.symbols)
    store = MarketStore(real.store)
    assert store.symbols()["VIX"] == "index"
    assert store.symbols()["ES"] == "future"
    assert store.symbols()["SPX"] == "underlying"
    assert real["SPX"].first == date(1927, 12, 30)
    assert real["RTY"].first == date(2017, 7, 10)
    assert real.version == 0


CENT = 0.005  # the README's check values are rounded to the cent (SPY's file has 201.7199)


def test_readme_check_values(real: ImportReport) -> None:
    store = MarketStore(real.store)
    assert close_on(store, "VIX", "2008-11-20") == pytest.approx(80.86, abs=CENT)
    assert close_on(store, "VIX", "2008-10-24") == pytest.approx(79.13, abs=CENT)
    assert close_on(store, "VIX", "2015-08-24") == pytest.approx(40.74, abs=CENT)
    assert close_on(store, "VIX", "2018-02-05") == pytest.approx(37.32, abs=CENT)
    assert close_on(store, "SPY", "2008-10-10") == pytest.approx(88.50, abs=CENT)
    assert close_on(store, "SPY", "2015-01-05") == pytest.approx(201.72, abs=CENT)


def test_the_four_missing_vix_days_are_gaps(real: ImportReport) -> None:
    vix = real["VIX"]
    assert vix.gaps == 4
    assert vix.gap_dates == (
        date(1991, 3, 1),
        date(1997, 1, 31),
        date(1997, 11, 26),
        date(1999, 12, 31),
    )


def test_holiday_rows_are_dropped_and_counted(real: ImportReport) -> None:
    assert real["VIX"].dropped == 1
    assert real["VIX"].dropped_dates == (date(2004, 6, 11),)
    store = MarketStore(real.store)
    assert store.bars("VIX", date(2004, 6, 11), date(2004, 6, 11)).num_rows == 0
    es = real["ES"]
    assert es.dropped == 25 and es.dropped_dates[0] == date(2001, 9, 11)
    assert es.rows + es.dropped == 4875  # the file's rows
    # The 9/11 closure is no gap, for anyone.
    assert all(date(2001, 9, 11) not in r.gap_dates for r in real.series)
    assert real["SPX"].gaps == 0 and real["SPY"].gaps == 0


def test_bad_prints_are_repaired_and_counted(real: ImportReport) -> None:
    assert real["ES"].repaired == 10 and real["NQ"].repaired == 24
    assert real["VIX"].repaired == 47  # stale opens, 1992-2006
    assert real["SPY"].repaired == 0
    store = MarketStore(real.store)
    day = date(2004, 11, 8)  # VIX open printed 2.58 in a 13.68-14.48 day
    vix = store.bars("VIX", day, day).to_pylist()[0]
    assert vix["open"] is None and (vix["low"], vix["high"]) == (13.68, 14.48)
    day = date(2002, 1, 31)  # ES close 1130.5 above the printed high 1130.0
    es = store.bars("ES", day, day).to_pylist()[0]
    assert es["high"] == 1130.5 and es["close"] == 1130.5


def test_columns_by_kind(real: ImportReport) -> None:
    store = MarketStore(real.store)
    day = date(2019, 12, 20)
    spy = store.bars("SPY", day, day).to_pylist()[0]
    assert spy["dividend"] == pytest.approx(1.57, abs=0.01) and spy["volume"] > 0
    vvix = store.bars("VVIX", day, day).to_pylist()[0]
    assert vvix["open"] is None and vvix["volume"] is None and vvix["dividend"] is None
    iwm = store.bars("IWM", day, day).to_pylist()[0]
    assert iwm["dividend"] is None  # the file has no dividend column
    assert iwm["source"].startswith("iwm_unadjusted_")


def test_summary_names_every_symbol(real: ImportReport) -> None:
    text = real.summary()
    assert text.startswith("imported 13 symbols")
    assert "1991-03-01, 1997-01-31, 1997-11-26, 1999-12-31" in text
    for symbol in real.symbols:
        assert f"\n{symbol} " in text


def test_reimport_is_idempotent(real: ImportReport, shared_data: Path) -> None:
    first = DeltaTable(str(real.store / TABLE)).to_pyarrow_table()
    again = run_import_history(real.store, data_dir=shared_data)
    table = DeltaTable(str(real.store / TABLE))
    second = table.to_pyarrow_table()
    keys = [("symbol", "ascending"), ("date", "ascending")]
    assert second.num_rows == first.num_rows == real.rows
    assert second.sort_by(keys).equals(first.sort_by(keys))
    assert again.version == 1
    history = table.history()
    assert [h["operation"] for h in history] == ["WRITE", "WRITE"]
    assert history[0]["operationMetrics"]["num_added_rows"] == real.rows
    assert len(table.file_uris()) == len(real.symbols)  # the first import's files are gone


# -- synthetic files -------------------------------------------------------------------------

SPY_CSV = (
    "Date,Open,High,Low,Close,Volume,Dividend,AdjFactor\n"
    "2019-12-23,320.0,321.0,319.0,320.5,100,0.0,1.0\n"
    "2019-12-24,320.5,321.5,320.0,321.2,100,0.0,1.0\n"
    "2019-12-26,321.2,322.9,321.0,322.9,100,0.0,1.0\n"
    "2019-12-27,323.0,323.8,322.3,322.9,100,0.0,1.0\n"
)
VIX_CSV = (
    "DATE,OPEN,HIGH,LOW,CLOSE\n"
    "12/23/2019,12.5,12.9,12.2,12.6\n"
    "12/24/2019,12.6,12.8,12.4,12.7\n"
    "12/25/2019,12.7,12.8,12.6,12.7\n"  # Christmas: the exchange was closed
    "12/27/2019,13.0,13.6,12.9,13.4\n"  # the 26th is missing
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, ImportReport]:
    out = tmp_path / "store"
    report = import_history(
        out,
        {"spy": write(tmp_path, "spy.csv", SPY_CSV)},
        {"VIX": write(tmp_path, "vix.csv", VIX_CSV)},
        {},
    )
    return out, report


def test_synthetic_import(seeded: tuple[Path, ImportReport]) -> None:
    out, report = seeded
    assert report.symbols == ("SPY", "VIX")  # by kind, then symbol; names upper-cased
    vix = report["VIX"]
    assert (vix.rows, vix.dropped, vix.gaps) == (3, 1, 1)
    assert vix.dropped_dates == (date(2019, 12, 25),)
    assert vix.gap_dates == (date(2019, 12, 26),)
    dates, closes = MarketStore(out).closes(["SPY", "VIX"])
    assert len(dates) == 4
    assert closes["VIX"][2] != closes["VIX"][2]  # NaN on the 26th


# Each malformed file: its name, text, and the line:col the error must name.
MALFORMED = {
    "bad date": (SPY_CSV.replace("2019-12-24", "2019-12-32"), 3, 1),
    "text in a number": (SPY_CSV.replace("321.5", "3x1.5"), 3, 3),
    "missing column": (VIX_CSV.replace("CLOSE", "SHUT"), 1, 1),
    "duplicate date": (SPY_CSV.replace("2019-12-26", "2019-12-24"), 4, 1),
    "non-increasing": (SPY_CSV.replace("2019-12-26", "2019-12-20"), 4, 1),
    "high below low": (SPY_CSV.replace("323.0,323.8,322.3", "323.0,322.0,322.3"), 5, 3),
    "close below low": (SPY_CSV.replace("321.0,319.0,320.5", "321.0,319.0,318.5"), 2, 4),
    "empty close": (SPY_CSV.replace("322.9,100", ",100", 1), 4, 5),
    "underlying on a holiday": (SPY_CSV.replace("2019-12-26", "2019-12-25"), 4, 1),
    "empty file": ("", 1, 1),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_located_and_writes_nothing(
    seeded: tuple[Path, ImportReport], tmp_path: Path, case: str
) -> None:
    out, report = seeded
    text, line, column = MALFORMED[case]
    bad = write(tmp_path, "bad.csv", text)
    before = DeltaTable(str(out / TABLE)).to_pyarrow_table()
    good = write(tmp_path, "qqq.csv", SPY_CSV)
    with pytest.raises(HistoryFormatError) as caught:
        # The good file comes first: it must not be written either.
        import_history(out, {"QQQ": good, "SPY": bad}, {}, {})
    assert str(caught.value).startswith(f"{bad}:{line}:{column}: "), str(caught.value)
    table = DeltaTable(str(out / TABLE))
    assert table.version() == report.version
    assert table.to_pyarrow_table().equals(before)


def test_malformed_first_import_creates_no_table(tmp_path: Path) -> None:
    out = tmp_path / "store"
    with pytest.raises(HistoryFormatError):
        import_history(out, {"SPY": write(tmp_path, "bad.csv", "Date,Close\n")}, {}, {})
    assert not MarketStore(out).exists()


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "spy.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SPY_CSV.replace("\n", "\r\n").encode())
    report = import_history(tmp_path / "store", {"SPY": path}, {}, {})
    assert report["SPY"].rows == 4


def test_underlying_bad_prints_fail_where_futures_are_repaired(tmp_path: Path) -> None:
    text = SPY_CSV.replace("323.0,323.8,322.3", "324.0,323.8,322.3")  # open above high
    path = write(tmp_path, "x.csv", text)
    report = import_history(tmp_path / "store", {}, {}, {"ES": path})
    assert report["ES"].repaired == 1
    assert report["ES"].repaired_dates == (date(2019, 12, 27),)
    with pytest.raises(HistoryFormatError, match=r"x.csv:5:3: high 323.8 is below open 324.0"):
        import_history(tmp_path / "store", {"SPY": path}, {}, {})


def test_reimport_replaces_a_symbol(seeded: tuple[Path, ImportReport], tmp_path: Path) -> None:
    out, report = seeded
    shorter = write(tmp_path, "vix2.csv", "DATE,VIX\n12/30/2019,14.0\n")
    again = import_history(out, {}, {"VIX": shorter}, {})
    assert again.version == report.version + 1
    store = MarketStore(out)
    assert store.bars("VIX").column("close").to_pylist() == [14.0]
    assert store.bars("SPY").num_rows == 4


def test_spec_errors(tmp_path: Path) -> None:
    spy = write(tmp_path, "spy.csv", SPY_CSV)
    with pytest.raises(ImportSpecError, match="given twice"):
        import_history(tmp_path / "s", {"SPY": spy}, {"spy": spy}, {})
    with pytest.raises(ImportSpecError, match="no such file"):
        import_history(tmp_path / "s", {"SPY": tmp_path / "none.csv"}, {}, {})
    with pytest.raises(ImportSpecError, match="symbol 'S P'"):
        import_history(tmp_path / "s", {"S P": spy}, {}, {})
    with pytest.raises(ImportSpecError, match="nothing to import"):
        import_history(tmp_path / "s", {}, {}, {})
    assert not (tmp_path / "s").exists()


# -- the command's helpers -------------------------------------------------------------------


def test_parse_assignments(tmp_path: Path) -> None:
    spy = write(tmp_path, "spy.csv", SPY_CSV)
    assert parse_assignments([f"spy={spy}"], "--underlying") == {"SPY": spy}
    for value, words in [
        ("SPY", "expected SYMBOL=FILE"),
        ("=x.csv", "expected SYMBOL=FILE"),
        ("SPY=", "expected SYMBOL=FILE"),
        (f"SPY={tmp_path / 'none.csv'}", "--underlying SPY: no such file"),
    ]:
        with pytest.raises(ImportSpecError, match=words):
            parse_assignments([value], "--underlying")
    with pytest.raises(ImportSpecError, match="SPY is given twice"):
        parse_assignments([f"SPY={spy}", f"spy={spy}"], "--underlying")


def test_default_sources(tmp_path: Path) -> None:
    daily = tmp_path / "daily"
    daily.mkdir()
    for name in ("vix_cboe_a.csv", "vix3m_cboe_a.csv", "es_front_month_a.csv", "notes.txt"):
        (daily / name).write_text("x")
    underlyings, indices, futures = default_sources(tmp_path)
    assert underlyings == {}
    assert indices == {"VIX": daily / "vix_cboe_a.csv", "VIX3M": daily / "vix3m_cboe_a.csv"}
    assert futures == {"ES": daily / "es_front_month_a.csv"}
    (daily / "vix_cboe_b.csv").write_text("x")
    with pytest.raises(ImportSpecError, match="several files match"):
        default_sources(tmp_path)
    with pytest.raises(ImportSpecError, match="no daily data folder"):
        default_sources(tmp_path / "none")


def test_command_with_explicit_files(tmp_path: Path) -> None:
    vix = write(tmp_path, "vix.csv", VIX_CSV)
    report = run_import_history(tmp_path / "store", index=[f"VIX={vix}"])
    assert report.symbols == ("VIX",)
    assert isinstance(MarketStore(tmp_path / "store").bars("VIX"), pa.Table)
