"""The run tables: schemas, vocabularies, and the doc that must match them."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from engine.journal.run_tables import CHOICES, PARTITION_BY, TABLES, describe, json_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "journal" / "tables.md"

# One value of every column type, all non-null; `i` varies the values so rows differ.
_SAMPLE: dict[pa.DataType, Any] = {
    pa.string(): "x",
    pa.float64(): 1.25,
    pa.int32(): 3,
    pa.bool_(): True,
    pa.date32(): date(2019, 1, 18),
    pa.timestamp("us", tz="UTC"): datetime(2018, 12, 3, 15, 0, tzinfo=UTC),
}


def full_row(name: str, time: datetime, i: int = 0, **changes: Any) -> dict[str, Any]:
    """A row of table `name` at `time` with every column set (date and year left out)."""
    row: dict[str, Any] = {}
    for field in TABLES[name]:
        if field.name in ("date", "year"):
            continue
        allowed = CHOICES.get(name, {}).get(field.name)
        value = allowed[i % len(allowed)] if allowed else _SAMPLE[field.type]
        if field.type == pa.string() and not allowed:
            value = f"{field.name}-{i}"
        elif field.type == pa.float64():
            value = 1.25 + i
        elif field.type == pa.int32():
            value = 3 + i
        row[field.name] = value
    row["time"] = time
    return row | changes


def test_every_table_starts_with_tick_columns_and_partitions_by_year() -> None:
    assert list(TABLES) == ["decisions", "orders", "fills", "positions", "equity", "risk_events"]
    assert PARTITION_BY == ("year",)
    for schema in TABLES.values():
        head = [(f.name, str(f.type), f.nullable) for f in list(schema)[:3]]
        assert head == [
            ("time", "timestamp[us, tz=UTC]", False),
            ("date", "date32[day]", False),
            ("year", "int16", False),
        ]


@pytest.mark.parametrize(
    ("table", "column", "dtype", "nullable"),
    [
        ("decisions", "fired", "bool", False),
        ("decisions", "trace", "string", True),
        ("orders", "quantity", "int32", False),
        ("orders", "net_price", "double", True),
        ("fills", "expiry", "date32[day]", True),
        ("fills", "cash_flow", "double", False),
        ("positions", "opened_at", "timestamp[us, tz=UTC]", False),
        ("positions", "adjustments", "int32", False),
        ("equity", "open_positions", "int32", False),
        ("equity", "hedge_shares", "double", True),
    ],
)
def test_spec_types_and_nullability(table: str, column: str, dtype: str, nullable: bool) -> None:
    field = TABLES[table].field(column)
    assert (str(field.type), field.nullable) == (dtype, nullable)


def test_json_text_is_canonical() -> None:
    a = json_text([{"role": "short_put", "contract": "SPY 2019-01-18 250P", "ratio": -1}])
    b = json_text([{"ratio": -1, "contract": "SPY 2019-01-18 250P", "role": "short_put"}])
    assert a == b == '[{"contract":"SPY 2019-01-18 250P","ratio":-1,"role":"short_put"}]'
    assert json.loads(a)[0]["ratio"] == -1


def test_every_closed_vocabulary_is_documented_in_its_column() -> None:
    for table, columns in CHOICES.items():
        lines = describe([table]).splitlines()
        for column, allowed in columns.items():
            line = next(ln for ln in lines if ln.startswith(f"| `{column}` |"))
            assert all(value in line for value in allowed), (table, column)


def test_doc_lists_exactly_the_schema_columns() -> None:
    """docs/journal/tables.md holds describe()'s output verbatim between its markers."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- tables:begin -->\n(.*)<!-- tables:end -->", text, re.S)
    assert found, f"{DOC} lacks the <!-- tables:begin/end --> markers"
    regenerate = "regenerate with: uv run python -m engine.journal.run_tables"
    assert found.group(1) == describe(), f"{DOC} is out of date with the schemas; {regenerate}"
    documented = re.findall(r"^\| `(\w+)` \|", found.group(1), re.M)
    assert documented == [n for schema in TABLES.values() for n in schema.names]
