"""Rows into the run tables: value checks with located errors, New York dates, both input paths."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from engine.journal.delta_table import SchemaMismatchError
from engine.journal.run_rows import check_rows, exchange_dates, rows_table, stamp
from engine.journal.run_tables import TABLES
from tests.journal.test_run_tables import full_row

NY = ZoneInfo("America/New_York")
T = datetime(2024, 1, 2, 16, tzinfo=NY)


def both_ways(name: str, rows: list[dict[str, Any]]) -> list[pa.Table]:
    """The rows stamped from dicts and from an Arrow table (no schema given)."""
    return [stamp(name, rows), stamp(name, pa.Table.from_pylist(rows))]


def test_date_is_the_new_york_day_even_when_utc_is_the_next_day() -> None:
    evening = datetime(2024, 6, 3, 20, 30, tzinfo=NY)  # 00:30 UTC on 2024-06-04
    new_year = datetime(2019, 12, 31, 20, 30, tzinfo=NY)  # already 2020 in UTC
    assert evening.astimezone(UTC).date() == date(2024, 6, 4)
    rows = [full_row("equity", evening), full_row("equity", new_year)]
    for table in both_ways("equity", rows):
        assert table.schema == TABLES["equity"]
        assert table.column("date").to_pylist() == [date(2024, 6, 3), date(2019, 12, 31)]
        assert table.column("year").to_pylist() == [2024, 2019]
        assert table.column("time").to_pylist() == [evening, new_year]  # same instants


def test_exchange_dates_per_row_with_repeated_times() -> None:
    base = datetime(2024, 3, 10, 3, 30, tzinfo=UTC)  # 22:30 EST on the 9th
    times = [base, base + timedelta(hours=5), base, base + timedelta(hours=20)]
    dates, years = exchange_dates(pa.array(times, pa.timestamp("us", tz="UTC")))
    assert dates.to_pylist() == [date(2024, 3, 9), date(2024, 3, 10)] * 2
    assert years.type == pa.int16() and years.to_pylist() == [2024] * 4


def test_dict_and_arrow_rows_give_the_same_table() -> None:
    rows = [full_row("positions", T + timedelta(minutes=i // 2), i) for i in range(5)]
    rows[1] |= {"mark": None, "close_reason": None, "dte": 7}  # an int in a float column
    rows[3]["quantity"] = np.int64(4)  # numpy scalars are numbers too
    from_dicts, from_arrow = both_ways("positions", rows)
    assert from_dicts.equals(from_arrow)
    assert from_dicts.column("dte")[1].as_py() == 7.0


def test_given_date_and_year_must_match_the_derived_ones() -> None:
    evening = datetime(2024, 6, 3, 20, 30, tzinfo=NY)
    ok = full_row("orders", evening) | {"date": date(2024, 6, 3), "year": 2024}
    assert stamp("orders", [ok]).column("date").to_pylist() == [date(2024, 6, 3)]
    utc_day = ok | {"date": date(2024, 6, 4)}
    for data in ([utc_day], pa.Table.from_pylist([utc_day])):
        with pytest.raises(
            SchemaMismatchError, match=r"orders: column 'date'.*2024-06-04 in row 0"
        ):
            stamp("orders", data)
    with pytest.raises(SchemaMismatchError, match=r"orders: column 'year'.*2023 in row 0"):
        stamp("orders", [ok | {"year": 2023}])


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "quantity",
            1.5,
            r"'quantity': expected an int in \[-2147483648, 2147483648\), found 1\.5",
        ),
        ("quantity", 2**31, r"'quantity': expected an int .*found 2147483648"),
        ("quantity", True, r"'quantity': expected an int .*found True \(bool\)"),
        ("net_price", True, r"'net_price': expected a number, found True"),
        ("net_price", "1.5", r"'net_price': expected a number, found '1\.5' \(str\)"),
        ("legs", 3, r"'legs': expected a str, found 3 \(int\)"),
        ("time", datetime(2024, 1, 2, 16), r"'time': expected a datetime with a time zone"),
        ("status", "maybe", r"'status': expected one of filled, partial, rejected, blocked"),
        ("rule_id", None, r"'rule_id': expected a value \(not nullable\), found None in row 1"),
    ],
)
def test_bad_values_are_refused_naming_column_row_and_value(
    column: str, value: Any, message: str
) -> None:
    rows = [full_row("orders", T), full_row("orders", T, 1) | {column: value}]
    with pytest.raises(SchemaMismatchError, match="^orders: column " + message):
        check_rows("orders", rows)


def test_a_datetime_is_not_a_date() -> None:
    row = full_row("fills", T, expiry=datetime(2019, 1, 18, 16, tzinfo=NY))
    with pytest.raises(SchemaMismatchError, match="fills: column 'expiry': expected a date"):
        check_rows("fills", [row])


def test_arrow_rows_are_checked_too() -> None:
    def arrow(**changes: Any) -> pa.Table:
        return pa.Table.from_pylist([full_row("fills", T, **changes)])

    with pytest.raises(SchemaMismatchError, match="fills: column 'ratio': expected int32"):
        stamp("fills", arrow(ratio=1.5))
    with pytest.raises(SchemaMismatchError, match=r"fills: column 'price'.*not nullable"):
        stamp("fills", arrow(price=None).cast(arrow().schema))
    with pytest.raises(SchemaMismatchError, match=r"fills: column 'right'.*'X' in row 0"):
        stamp("fills", arrow(right="X"))


def test_missing_and_unknown_columns_are_named() -> None:
    row = full_row("positions", T)
    del row["legs"]
    with pytest.raises(SchemaMismatchError, match=r"positions: column 'legs'.*no value in row 0"):
        check_rows("positions", [row])
    extra = full_row("positions", T, colour="red")
    with pytest.raises(SchemaMismatchError, match="column 'colour': expected no such column"):
        check_rows("positions", [extra])


def test_null_means_not_applicable_in_nullable_vocabularies() -> None:
    assert len(check_rows("fills", [full_row("fills", T, right=None, how=None)])) == 1


def test_rows_table_joins_dict_and_arrow_parts_in_order() -> None:
    rows = [full_row("decisions", T + timedelta(minutes=i), i) for i in range(4)]
    parts = [check_rows("decisions", rows[:1]), stamp("decisions", rows[1:2]),
             check_rows("decisions", rows[2:])]  # fmt: skip
    table = rows_table("decisions", parts)
    assert table.schema == TABLES["decisions"]
    assert table.column("rule_id").to_pylist() == [f"rule_id-{i}" for i in range(4)]
    assert rows_table("decisions", []).num_rows == 0


def test_date_without_year_is_refused() -> None:
    row = full_row("equity", T) | {"date": date(2024, 1, 2)}
    with pytest.raises(SchemaMismatchError, match="equity: column 'year': expected int16"):
        check_rows("equity", [row])
