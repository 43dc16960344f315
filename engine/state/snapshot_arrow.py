"""Snapshots to and from Arrow: the `snapshots` journal table, one row per tick, chains columnar.

Columns: `time` (the instant, timestamp[us, UTC]), `tz` (the snapshot's time zone, so a replay
gives back the same wall time), `date` (the exchange date in that zone; the partition), the
MarketState fields flattened (`session`, `regime`, `vix`, ..., `futures`), then `underlyings`,
`chains`, `positions`, `portfolio` and `risk`.

Everything is typed Arrow, none of it JSON text: the positions, portfolio and risk parts are
small, but they are what a report reads over time (equity curve, drawdown, breakers), and typed
structs keep them queryable (`portfolio.net_liq`) and checked by the journal's schema
validation. The types are derived from the dataclasses' own annotations, so a field added to
the Snapshot model appears in the table (or fails loudly here, for a type not mapped yet).

Chains are columnar: per tick a list of one struct per chain whose fields are lists (expiry,
strike, is_call, bid, ..., theta), built and read with whole-array operations. NaN in a chain
is stored as NaN; an unknown scalar (None) as null.

Datetimes inside positions (`opened_at`) are stored as instants and come back in the snapshot's
time zone, which is the zone every loaded snapshot uses (America/New_York).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Union, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from engine.state.snapshot import (
    Chain,
    MarketState,
    PortfolioState,
    Position,
    RiskState,
    Snapshot,
    UnderlyingState,
)

TABLE = "snapshots"
PARTITION_BY = ("date",)
CHAIN_COLUMNS = tuple(
    f.name for f in dataclasses.fields(Chain) if f.name != "symbol"
)  # expiry, strike, is_call, bid, ... theta


class SnapshotEncodingError(ValueError):
    """A snapshot the table cannot hold exactly (an unsupported time zone, a mis-keyed chain)."""


# ----------------------------------------------------------------------------- time zones


def tz_name(tz: tzinfo | None, when: str = "snapshot") -> str:
    """An IANA key ("America/New_York") or a fixed offset ("+05:30"; "+00:00" is UTC)."""
    if isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    if isinstance(tz, timezone):
        seconds = int(tz.utcoffset(None).total_seconds())
        sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
        text = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
        return text + (f":{seconds % 60:02d}" if seconds % 60 else "")
    raise SnapshotEncodingError(
        f"{when}: time zone {tz!r} cannot be recorded; use a zoneinfo.ZoneInfo "
        "(America/New_York) or a fixed datetime.timezone offset"
    )


_TZ_CACHE: dict[str, tzinfo] = {}


def tz_from_name(name: str) -> tzinfo:
    """The inverse of `tz_name`."""
    tz = _TZ_CACHE.get(name)
    if tz is None:
        if name[:1] in "+-":
            sign = -1 if name[0] == "-" else 1
            parts = [int(p) for p in name[1:].split(":")] + [0]
            offset = timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])
            tz = timezone(sign * offset)  # timezone(timedelta(0)) is timezone.utc
        else:
            tz = ZoneInfo(name)
        _TZ_CACHE[name] = tz
    return tz


# ----------------------------------------------------------------------------- dataclass codec

Encode = Callable[[Any], Any]
Decode = Callable[[Any, tzinfo], Any]


def _optional(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) for `X | None`."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


_SCALARS: dict[Any, pa.DataType] = {
    float: pa.float64(),
    int: pa.int64(),
    bool: pa.bool_(),
    str: pa.string(),
    date: pa.date32(),
    datetime: pa.timestamp("us", tz="UTC"),
}


def _same(value: Any, tz: tzinfo | None = None) -> Any:
    return value


def _exact_int(where: str) -> Encode:
    def encode(value: Any) -> Any:
        # pyarrow would truncate a float put in an int field by mistake (1.5 -> 1).
        if type(value) is not int:
            raise SnapshotEncodingError(f"{where}: expected a whole number, got {value!r}")
        return value

    return encode


def _codec(hint: Any, where: str) -> tuple[pa.DataType, bool, Encode, Decode]:
    """Arrow type, nullability, encoder (object -> Python value for Arrow) and decoder (Arrow's
    Python value -> object) for one annotated dataclass field."""
    tp, nullable = _optional(hint)
    t, enc, dec = _codec_of(tp, where)
    if nullable and dec is not _same:

        def dec_or_none(v: Any, tz: tzinfo) -> Any:
            return None if v is None else dec(v, tz)

        return t, True, enc, dec_or_none
    return t, nullable, enc, dec


def _codec_of(tp: Any, where: str) -> tuple[pa.DataType, Encode, Decode]:
    origin, args = get_origin(tp), get_args(tp)
    if tp is datetime:
        return _SCALARS[datetime], _same, lambda v, tz: v.astimezone(tz)
    if tp is int:
        return _SCALARS[int], _exact_int(where), _same
    if tp in _SCALARS:
        return _SCALARS[tp], _same, _same
    if dataclasses.is_dataclass(tp):
        return _struct_codec(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item_t, item_null, enc_i, dec_i = _codec(args[0], where)
        return (
            pa.list_(pa.field("item", item_t, nullable=item_null)),
            lambda v: [enc_i(x) for x in v],
            lambda v, tz: tuple(dec_i(x, tz) for x in v),
        )
    if origin is Mapping and args[0] is str:
        # A map keeps the entries' order and is queryable by key (underlyings['SPY'].price).
        val_t, val_null, enc_v, dec_v = _codec(args[1], where)
        return (
            pa.map_(pa.string(), pa.field("value", val_t, nullable=val_null)),
            lambda v: [(k, enc_v(x)) for k, x in v.items()],
            lambda v, tz: {k: dec_v(x, tz) for k, x in v},
        )
    raise TypeError(f"{where}: no Arrow mapping for the annotation {tp!r}; add one here")


def _field_codecs(cls: Any) -> list[tuple[pa.Field, Encode, Decode]]:
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        t, nullable, enc, dec = _codec(hints[f.name], f"{cls.__name__}.{f.name}")
        out.append((pa.field(f.name, t, nullable=nullable), enc, dec))
    return out


def _struct_codec(cls: Any) -> tuple[pa.StructType, Encode, Decode]:
    codecs = _field_codecs(cls)
    encoders = [(f.name, enc) for f, enc, _ in codecs]
    decoders = [(f.name, dec) for f, _, dec in codecs]

    def encode(obj: Any) -> dict[str, Any]:
        return {name: enc(getattr(obj, name)) for name, enc in encoders}

    def decode(value: Mapping[str, Any], tz: tzinfo) -> Any:
        return cls(**{name: dec(value[name], tz) for name, dec in decoders})

    return pa.struct([f for f, _, _ in codecs]), encode, decode


# ----------------------------------------------------------------------------- the schema

_MARKET = _field_codecs(MarketState)
_PARTS: list[tuple[str, Any]] = [
    ("underlyings", Mapping[str, UnderlyingState]),
    ("positions", tuple[Position, ...]),
    ("portfolio", PortfolioState),
    ("risk", RiskState),
]


def _part(name: str, hint: Any) -> tuple[pa.Field, Encode, Decode]:
    t, _, enc, dec = _codec(hint, f"Snapshot.{name}")
    return pa.field(name, t, nullable=False), enc, dec


_OTHER = [_part(name, hint) for name, hint in _PARTS]


def _list_of(t: pa.DataType) -> pa.ListType:
    return pa.list_(pa.field("item", t, nullable=False))


_CHAIN_ITEMS = {"expiry": pa.date32(), "is_call": pa.bool_()}  # every other column: float64
CHAIN_TYPE = pa.struct(
    [pa.field("symbol", pa.string(), nullable=False)]
    + [
        pa.field(name, _list_of(_CHAIN_ITEMS.get(name, pa.float64())), nullable=False)
        for name in CHAIN_COLUMNS
    ]
)
_CHAINS = pa.field("chains", _list_of(CHAIN_TYPE), nullable=False)

SNAPSHOTS = pa.schema(
    [
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),  # the instant
        pa.field("date", pa.date32(), nullable=False),  # exchange date in `tz`; the partition
        pa.field("tz", pa.string(), nullable=False),  # IANA key or fixed offset, see tz_name
        *[f for f, _, _ in _MARKET],
        _OTHER[0][0],  # underlyings
        _CHAINS,
        *[f for f, _, _ in _OTHER[1:]],
    ]
)
assert len(set(SNAPSHOTS.names)) == len(SNAPSHOTS.names), "a market field shadows a column"
_ROW_PARTS = _MARKET + _OTHER  # every column built from Python values (all but time and chains)
_ROW_SCHEMA = pa.schema([f for f, _, _ in _ROW_PARTS])


# ----------------------------------------------------------------------------- Snapshot -> Arrow


def _row(snap: Snapshot) -> dict[str, Any]:
    """The Python values of every column but time and chains; checks what Arrow would not."""
    when = f"snapshot at {snap.time.isoformat()}"
    tz_name(snap.time.tzinfo, when)
    for key, chain in snap.chains.items():
        if key != chain.symbol:
            raise SnapshotEncodingError(f"{when}: chain keyed {key!r} has symbol {chain.symbol!r}")
    try:
        row = {f.name: enc(getattr(snap.market, f.name)) for f, enc, _ in _MARKET}
        row |= {f.name: enc(getattr(snap, f.name)) for f, enc, _ in _OTHER}
    except SnapshotEncodingError as exc:
        raise SnapshotEncodingError(f"{when}: {exc}") from None
    return row


def check_encodable(snap: Snapshot) -> None:
    """Raise SnapshotEncodingError if `snap` cannot be stored exactly (an unsupported time
    zone, a chain keyed by another symbol, a float in a whole-number field)."""
    _row(snap)


def _chains_array(snaps: Sequence[Snapshot]) -> pa.Array:
    """The `chains` column: list<struct<symbol, expiry: list, strike: list, ...>>, built from
    the concatenated chain arrays and their offsets (no per-contract Python work)."""
    outer = [0]
    chains: list[Chain] = []
    for snap in snaps:
        chains.extend(snap.chains.values())
        outer.append(len(chains))
    lengths = np.fromiter((len(c) for c in chains), dtype=np.int64, count=len(chains))
    ends = np.concatenate([[0], np.cumsum(lengths)])
    if ends[-1] > np.iinfo(np.int32).max:  # list offsets are int32
        raise SnapshotEncodingError(f"{ends[-1]:,} contracts in one batch; convert fewer ticks")
    inner = pa.array(ends, type=pa.int32())
    children: list[pa.Array] = [pa.array([c.symbol for c in chains], type=pa.string())]
    for field in list(CHAIN_TYPE)[1:]:
        item_type = field.type.value_type
        parts = [getattr(c, field.name) for c in chains]
        values = pa.array(np.concatenate(parts) if parts else [], type=item_type)
        children.append(pa.ListArray.from_arrays(inner, values, type=field.type))
    structs = pa.StructArray.from_arrays(children, fields=list(CHAIN_TYPE))
    return pa.ListArray.from_arrays(pa.array(outer, type=pa.int32()), structs, type=_CHAINS.type)


def snapshots_to_table(snaps: Iterable[Snapshot]) -> pa.Table:
    """One row per snapshot, in the given order, with exactly the SNAPSHOTS schema."""
    snaps = list(snaps)
    rows = pa.Table.from_pylist([_row(s) for s in snaps], schema=_ROW_SCHEMA)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "time": pa.array([s.time for s in snaps], type=SNAPSHOTS.field("time").type),
        "date": pa.array([s.time.date() for s in snaps], type=pa.date32()),
        "tz": pa.array([tz_name(s.time.tzinfo) for s in snaps], type=pa.string()),
        "chains": _chains_array(snaps),
    }
    return pa.Table.from_arrays(
        [columns[n] if n in columns else rows.column(n) for n in SNAPSHOTS.names],
        schema=SNAPSHOTS,
    )


# ----------------------------------------------------------------------------- Arrow -> Snapshot


def _decode_chains(column: pa.ListArray) -> list[dict[str, Chain]]:
    """Per row, the chains by symbol; each column a slice of one flat numpy array."""
    outer = column.offsets.to_numpy()
    structs = column.values
    symbols = structs.field("symbol").to_pylist()
    flat: list[tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
    for name in CHAIN_COLUMNS:
        lists = structs.field(name)
        flat.append((name, lists.offsets.to_numpy(), lists.values.to_numpy(zero_copy_only=False)))
    out = []
    for i in range(len(column)):
        chains = {}
        for j in range(outer[i], outer[i + 1]):
            columns = {name: values[off[j] : off[j + 1]] for name, off, values in flat}
            chains[symbols[j]] = Chain(symbol=symbols[j], **columns)
        out.append(chains)
    return out


def _batch_snapshots(batch: pa.RecordBatch) -> Iterator[Snapshot]:
    tzs = [tz_from_name(n) for n in batch.column("tz").to_pylist()]
    times = batch.column("time").to_pylist()
    chains = _decode_chains(batch.column("chains"))
    parts = [(f.name, dec, batch.column(f.name).to_pylist()) for f, _, dec in _ROW_PARTS]
    n_market = len(_MARKET)
    for i, tz in enumerate(tzs):
        values = {name: dec(col[i], tz) for name, dec, col in parts}
        market = MarketState(**{f.name: values[f.name] for f, _, _ in _MARKET})
        yield Snapshot(
            time=times[i].astimezone(tz),
            market=market,
            chains=chains[i],
            **{name: values[name] for name, _, _ in parts[n_market:]},
        )


def iter_snapshots(table: pa.Table | pa.RecordBatch) -> Iterator[Snapshot]:
    """The snapshots of a `snapshots` table (or batch), in row order, one batch at a time."""
    missing = [n for n in SNAPSHOTS.names if n not in table.schema.names]
    if missing:
        raise SnapshotEncodingError(f"not a snapshots table: no column {missing[0]!r}")
    batches = [table] if isinstance(table, pa.RecordBatch) else table.to_batches()
    for batch in batches:
        yield from _batch_snapshots(batch)


def table_to_snapshots(table: pa.Table | pa.RecordBatch) -> list[Snapshot]:
    """The inverse of `snapshots_to_table`: equal snapshots, same wall times and zones."""
    return list(iter_snapshots(table))
