"""Rows into the run tables: checked against the schemas, dated in New York, made Arrow.

Two ways in. Dict rows (what the engine produces, a few per tick) are checked value by value
in Python by `check_rows` and converted to Arrow only when a batch is written (`rows_table`):
for a handful of rows, Arrow's per-call overhead (several us per column per call) costs more
than the checks (2-3 us for a row of 16 columns). Arrow tables are checked column by column
by `stamp` (delta_table.conform plus the rules below). Either way `date` and `year` are
derived from `time` in New York, and a given `date` or `year` must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from operator import is_not
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.journal.delta_table import Rows, SchemaMismatchError, conform
from engine.journal.run_tables import CHOICES, DERIVED, TABLES
from engine.state.snapshot import EXCHANGE_TZ


def exchange_dates(times: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, pa.Array]:
    """The New York trading date (date32) and its year (int16) of each UTC instant.

    Converted once per distinct time (a batch is usually one tick) with zoneinfo, so the
    result does not depend on Arrow's time-zone database being installed.
    """
    times = pa.chunked_array([times]) if isinstance(times, pa.Array) else times
    distinct = pc.unique(times)
    local = [t.astimezone(EXCHANGE_TZ).date() for t in distinct.to_pylist()]
    if len(local) == 1:  # one tick: no lookup needed
        n = len(times)
        return pa.array(local * n, pa.date32()), pa.array([local[0].year] * n, pa.int16())
    index = pc.index_in(times, value_set=distinct).combine_chunks()
    dates = pa.array(local, pa.date32()).take(index)
    years = pa.array([d.year for d in local], pa.int16()).take(index)
    return dates, years


def stamp(name: str, data: Rows) -> pa.Table:
    """`data` as a Table of table `name`'s schema, with `date` and `year` derived from `time`.

    Rows may leave out `date` and `year` (the usual case); if given they must equal the
    derived values. Raises SchemaMismatchError naming the column for any other mismatch.
    """
    if not isinstance(data, pa.Table | pa.RecordBatch):
        return rows_table(name, [check_rows(name, data)])
    schema = TABLES[name]
    missing = [c for c in DERIVED if c not in data.schema.names]
    table = conform(data, pa.schema([f for f in schema if f.name not in missing]), name)
    derived = dict(zip(DERIVED, exchange_dates(table.column("time")), strict=True))
    for column in DERIVED:
        if column in missing:
            continue
        differs = pc.not_equal(table.column(column), derived[column])
        if pc.any(differs).as_py():
            row = pc.index(differs, True).as_py()
            found = f"{table.column(column)[row]} in row {row}"
            expected = f"{derived[column][row]}, the New York date of {table.column('time')[row]}"
            raise SchemaMismatchError(name, column, expected, found)
    columns = [derived[f.name] if f.name in missing else table.column(f.name) for f in schema]
    result = pa.Table.from_arrays(columns, schema=schema)
    check_choices(name, result)
    return result


# What a Python value must be to enter a column of each type. Exact checks, because Arrow
# converts silently what these refuse: a float into an int column (truncated), a naive
# datetime into a zoned one (read as UTC), a datetime into a date column, a bool into a float.
_NUMBER = (int, float, np.integer, np.floating)


def _value_rule(dtype: pa.DataType) -> tuple[str, Callable[[Any], bool]]:
    if pa.types.is_string(dtype):
        return "a str", lambda v: isinstance(v, str)
    if pa.types.is_boolean(dtype):
        return "a bool", lambda v: isinstance(v, bool | np.bool_)
    if pa.types.is_floating(dtype):
        return "a number", lambda v: isinstance(v, _NUMBER) and not isinstance(v, bool | np.bool_)
    if pa.types.is_integer(dtype):
        bound = 2 ** (dtype.bit_width - 1)
        return (
            f"an int in [{-bound}, {bound})",
            lambda v: (
                isinstance(v, int | np.integer) and not isinstance(v, bool) and -bound <= v < bound
            ),
        )
    if pa.types.is_date(dtype):
        return "a date", lambda v: isinstance(v, date) and not isinstance(v, datetime)
    if pa.types.is_timestamp(dtype):
        return (
            "a datetime with a time zone",
            lambda v: isinstance(v, datetime) and v.utcoffset() is not None,
        )
    raise TypeError(f"no value rule for {dtype}")


def _vocabulary(table: str, column: str) -> frozenset[str] | None:
    allowed = CHOICES.get(table, {}).get(column)
    return None if allowed is None else frozenset(allowed)


_Rule = tuple[str, bool, str, Callable[[Any], bool], frozenset[str] | None]
_RULES: dict[str, list[_Rule]] = {
    name: [
        (f.name, f.nullable, *_value_rule(f.type), _vocabulary(name, f.name))
        for f in schema
        if f.name not in DERIVED
    ]
    for name, schema in TABLES.items()
}


def check_rows(name: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Dict rows of table `name`, checked value by value, as new dicts with `date` and `year`.

    Faster than converting each tick's few rows to Arrow (that happens once per flush, in
    `rows_table`), and as strict: every value is of its column's Python type, NOT NULL
    columns hold a value, closed vocabularies hold one of their words. Column by column, so
    the loops over values run in C (`map`, `filter`, set operations).
    """
    schema, rules = TABLES[name], _RULES[name]
    full = frozenset(schema.names)
    core = full - frozenset(DERIVED)
    for i, row in enumerate(rows):
        if row.keys() not in (core, full):
            _refuse_keys(name, schema, row.keys(), i)
    for column, nullable, rule, accepts, allowed in rules:
        values = [row[column] for row in rows]
        if not nullable and None in values:
            i = values.index(None)
            raise SchemaMismatchError(name, column, "a value (not nullable)", f"None in row {i}")
        present = list(filter(_is_value, values)) if nullable else values
        if not all(map(accepts, present)):
            i, value = next(
                (i, v) for i, v in enumerate(values) if v is not None and not accepts(v)
            )
            found = f"{value!r} ({type(value).__name__}) in row {i}"
            raise SchemaMismatchError(name, column, rule, found)
        if allowed is not None and not allowed.issuperset(present):
            i, value = next(
                (i, v) for i, v in enumerate(values) if _is_value(v) and v not in allowed
            )
            expected = "one of " + ", ".join(CHOICES[name][column])
            raise SchemaMismatchError(name, column, expected, f"{value!r} in row {i}")
    out: list[dict[str, Any]] = []
    last: tuple[Any, date] = (None, date.min)
    for i, row in enumerate(rows):
        time = row["time"]
        day = last[1] if time == last[0] else time.astimezone(EXCHANGE_TZ).date()
        last = (time, day)
        stamped = {**row, "date": day, "year": day.year}
        if len(row) == len(full):  # date and year given: they must agree
            for column in DERIVED:
                if row[column] != stamped[column]:
                    expected = f"{stamped[column]}, the New York date of {time.isoformat()}"
                    raise SchemaMismatchError(name, column, expected, f"{row[column]} in row {i}")
        out.append(stamped)
    return out


_is_value = partial(is_not, None)  # C-level `v is not None`, for filter()


def _refuse_keys(name: str, schema: pa.Schema, keys: Iterable[str], row: int) -> None:
    keys = set(keys)
    extra = sorted(keys - set(schema.names))
    if extra:
        raise SchemaMismatchError(name, extra[0], "no such column", f"a value in row {row}")
    # `date` and `year` may be left out together, not one of them.
    optional = () if keys & set(DERIVED) else DERIVED
    missing = next(n for n in schema.names if n not in keys and n not in optional)
    field = schema.field(missing)
    raise SchemaMismatchError(name, missing, str(field.type), f"no value in row {row}")


def rows_table(name: str, parts: Iterable[Sequence[Mapping[str, Any]] | pa.Table]) -> pa.Table:
    """One Table of `name` from parts already checked: `check_rows` output or `stamp` Tables."""
    schema = TABLES[name]
    tables: list[pa.Table] = []
    rows: list[Mapping[str, Any]] = []
    for part in parts:
        if isinstance(part, pa.Table):
            if rows:
                tables.append(pa.Table.from_pylist(rows, schema=schema))
                rows = []
            tables.append(part)
        else:
            rows.extend(part)
    if rows or not tables:
        tables.append(pa.Table.from_pylist(rows, schema=schema))
    return pa.concat_tables(tables)


def check_choices(name: str, table: pa.Table) -> None:
    """Refuse a value outside a column's closed vocabulary (`CHOICES`), naming row and value."""
    for column, allowed in CHOICES.get(name, {}).items():
        values = table.column(column)
        # Null means "not applicable". A batch holds few distinct values: compare those.
        bad = sorted(set(pc.unique(values).to_pylist()) - set(allowed) - {None})
        if bad:
            row = pc.index(values, bad[0]).as_py()
            found = f"{bad[0]!r} in row {row}"
            raise SchemaMismatchError(name, column, "one of " + ", ".join(allowed), found)
