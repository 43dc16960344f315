"""Snapshot files: every kind of bad input gives a located V6E410 error; overrides."""

from __future__ import annotations

import json
import math
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from engine.dsl.errors import DslError
from engine.dsl.source import Location, display_name
from engine.paths import ROOT
from engine.state import (
    load_document,
    load_snapshot,
    snapshot_from_document,
    with_overrides,
)

RULE_BASES = ROOT / "rules" / "snapshots"

HEADER = """\
format: v6-snapshot/1
time: 2024-03-15T15:45:00-04:00
market:
  session: regular
"""


def write(tmp_path: Path, text: str, name: str = "snap.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path) -> DslError:
    with pytest.raises(DslError) as info:
        load_snapshot(path)
    return info.value


def where(path: Path, line: int, col: int) -> str:
    return f"{display_name(path)}:{line}:{col}: error V6E410"


# --------------------------------------------------------------------------- located errors


def test_syntax_error_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "  vix: [1, 2\nunderlyings: {}\n")
    err = error_of(path)
    assert err.codes == ["V6E410"]
    assert where(path, 6, 12) in err.render() and "syntax error" in err.render()


def test_duplicate_key_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "  vix: 14\n  vix: 15\n")
    assert where(path, 6, 3) in error_of(path).render()


def test_unknown_field_says_did_you_mean(tmp_path: Path) -> None:
    body = """\
          vix: 14.2
        underlyings:
          SPY: {price: 510.2, iv_rnak: 42%}
        """
    path = write(tmp_path, HEADER + textwrap.dedent(body))
    err = error_of(path)
    text = err.render()
    assert where(path, 7, 23) in text
    assert "unknown field 'underlyings.SPY.iv_rnak'" in text
    assert "did you mean 'iv_rank'?" in text
    assert "    7 |   SPY: {price: 510.2, iv_rnak: 42%}" in text  # the line, with a caret under it
    assert "^" in text.splitlines()[2]


def test_top_level_typo(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "portfolo: {net_liq: 1}\n")
    text = error_of(path).render()
    assert where(path, 5, 1) in text and "did you mean 'portfolio'?" in text


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    text = """\
        format: v6-snapshot/1
        time: 2024-03-15T15:45:00-04:00
        market:
          session: regulr
          regime: normal
          vix: high
        underlyings:
          SPY:
            price: -5
        risk:
          state: haltd
        """
    path = write(tmp_path, text)
    err = error_of(path)
    rendered = err.render()
    assert err.codes == ["V6E410"] * 4
    assert [d.location.line for d in err.diagnostics] == [4, 6, 9, 11]
    assert where(path, 4, 12) in rendered and "did you mean 'regular'?" in rendered
    assert where(path, 6, 8) in rendered and "expected a number" in rendered
    assert where(path, 9, 12) in rendered and "must be >= 0" in rendered
    assert where(path, 11, 10) in rendered and "did you mean 'HALTED'?" in rendered


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "format: v6-snapshot/1\ntime: 2024-03-15T15:45:00\nmarket:\n  vix: 14\n")
    text = error_of(path).render()
    assert where(path, 3, 1) in text and "missing required field 'market.session'" in text


def test_unknown_regime_in_position(tmp_path: Path) -> None:
    body = """\
        positions:
          - id: P1
            strategy: iron_condor
            symbol: SPY
            opened_at: 2024-02-01T10:00:00-05:00
            quantity: 1
            entry_regime: calm
            legs:
              - {role: short_put, right: X, strike: 480, expiry: 2024-03-28, quantity: -1}
        """
    path = write(tmp_path, HEADER + textwrap.dedent(body))
    err = error_of(path)
    rendered = err.render()
    assert where(path, 11, 19) in rendered and "unknown regime 'calm'" in rendered
    assert where(path, 13, 34) in rendered and "option right" in rendered


def _chain_file(tmp_path: Path, bid: str, ask: str = "[1.2, 2.2, 3.2]") -> Path:
    body = f"""\
        chains:
          SPY:
            expiry: [2024-04-19, 2024-04-19, 2024-04-19]
            strike: [500, 505, 510]
            right: [P, P, P]
            bid: {bid}
            ask: {ask}
        """
    return write(tmp_path, HEADER + textwrap.dedent(body))


def test_crossed_quote_is_located_at_the_item(tmp_path: Path) -> None:
    path = _chain_file(tmp_path, "[1.0, 2.5, 3.0]")
    err = error_of(path)
    assert len(err.diagnostics) == 1
    assert (
        where(path, 11, 16) in err.render() and "crossed quote: bid 2.5 > ask 2.2" in err.render()
    )


def test_crossed_quote_is_found_even_when_another_column_is_bad(tmp_path: Path) -> None:
    path = _chain_file(tmp_path, "[1.0, 2.5, 3.0]")
    path.write_text(path.read_text() + "    iv: [0.1, x, 0.2]\n")
    err = error_of(path)
    assert [(d.location.line, d.location.column) for d in err.diagnostics] == [(11, 16), (12, 15)]


def test_nan_in_chain_is_located_at_the_item(tmp_path: Path) -> None:
    path = _chain_file(tmp_path, "[1.0, 2.0, .nan]")
    err = error_of(path)
    assert where(path, 10, 21) in err.render() and "write null" in err.render()


def test_negative_chain_price_is_located(tmp_path: Path) -> None:
    path = _chain_file(tmp_path, "[1.0, 2.0, 3.0]", ask="[1.2, -2.2, 3.2]")
    assert where(path, 11, 16) in error_of(path).render()


def test_unequal_chain_columns(tmp_path: Path) -> None:
    path = _chain_file(tmp_path, "[1.0, 2.0]")
    text = error_of(path).render()
    assert where(path, 10, 5) in text and "column 'bid' has 2 entries but 'strike' has 3" in text


def test_json_errors_are_located(tmp_path: Path) -> None:
    doc = {
        "format": "v6-snapshot/1",
        "time": "2024-03-15T15:45:00-04:00",
        "market": {"session": "regular"},
        "chains": {
            "SPY": {"expiry": ["2024-04-19"], "strike": [500], "right": ["P"], "iv": [math.nan]}
        },
    }
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # writes a bare NaN
    lines = path.read_text().splitlines()
    line = next(i for i, ln in enumerate(lines, 1) if "NaN" in ln)
    col = lines[line - 1].index("NaN") + 1
    assert where(path, line, col) in error_of(path).render()


def test_bad_format_version(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER.replace("v6-snapshot/1", "v6-snapshot/9"))
    text = error_of(path).render()
    assert where(path, 1, 9) in text and "unknown snapshot format" in text


def test_opened_after_snapshot_and_duplicate_ids(tmp_path: Path) -> None:
    leg = "{role: short_put, right: P, strike: 480, expiry: 2024-04-19, quantity: -1}"
    pos = "{id: %s, strategy: s, symbol: SPY, quantity: 1, opened_at: %s, legs: [%s]}"
    text = HEADER + "positions:\n"
    text += "  - " + pos % ("A", "2024-03-01T10:00:00", leg) + "\n"
    text += "  - " + pos % ("A", "2024-03-20T10:00:00", leg) + "\n"
    path = write(tmp_path, text)
    err = error_of(path)
    assert [(d.location.line, d.location.column) for d in err.diagnostics] == [(7, 10), (7, 63)]
    assert "duplicate position id 'A'" in err.render() and "opened after" in err.render()


@pytest.mark.parametrize(
    ("content", "line", "col", "message"),
    [
        (b"", 1, 1, "empty"),
        (b"# only a comment\n", 1, 1, "empty"),
        (b"format: v6-snapshot/1\ntime: \xff\n", 2, 7, "not UTF-8"),
        (b"- a\n- b\n", 1, 1, "must be a mapping"),
        (b"format: v6-snapshot/1\n\ttime: x\n", 2, 1, "syntax error"),
        (b"format: v6-snapshot/1\ntime: x\x07y\n", 2, 8, "special characters"),
        (b"format: v6-snapshot/1\n---\nformat: v6-snapshot/1\n", 2, 1, "single document"),
        (b"format: v6-snapshot/1\ntime: !!int x\n", 1, 1, "cannot read the document"),
    ],
)
def test_unreadable_files_are_located(
    tmp_path: Path, content: bytes, line: int, col: int, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    err = error_of(path)
    assert err.codes == ["V6E410"]
    assert where(path, line, col) in err.render() and message in err.render()


def test_wrong_shapes_are_described_in_file_terms(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "underlyings: {SPY: 5}\npositions: {a: 1}\n")
    err = error_of(path)
    text = err.render()
    assert where(path, 5, 20) in text and "underlyings.SPY: expected a mapping of fields" in text
    assert where(path, 6, 1) in text and "positions: expected a list" in text
    assert "UnderlyingDoc" not in text


def test_missing_file() -> None:
    with pytest.raises(DslError) as info:
        load_snapshot(Path("no/such/snapshot.yaml"))
    assert info.value.codes == ["V6E401"]


# --------------------------------------------------------------------------- overrides


def test_overrides_set_values_and_create_maps() -> None:
    doc, source = load_document(RULE_BASES / "ic_open.yaml")
    new = with_overrides(
        doc,
        {
            "underlyings.SPY.iv_rank": "70%",
            "market.vix": 30,
            "market.regime": None,
            "positions.0.pnl_pct_of_credit": 0.8,
            "underlyings.TSLA.price": 180,
            "market.futures.ES.change_pct": "-2%",
        },
    )
    snap = snapshot_from_document(new, source)
    assert snap.underlyings["SPY"].iv_rank == 0.7 and snap.market.vix == 30
    assert snap.market.regime is None and snap.positions[0].pnl_pct_of_credit == 0.8
    assert snap.underlyings["TSLA"].price == 180
    assert snap.market.futures["ES"].change_pct == -0.02
    assert snap.market.futures["NQ"].price is not None  # siblings untouched
    # the base document is unchanged
    base = snapshot_from_document(doc, source)
    assert base.underlyings["SPY"].iv_rank == 0.38 and "TSLA" not in base.underlyings


def test_override_list_index_out_of_range() -> None:
    doc, _ = load_document(RULE_BASES / "calm.yaml")
    written = Location("rules/calm_test.yaml", 12, 5)
    with pytest.raises(DslError) as info:
        with_overrides(doc, {"positions.0.pnl": 10}, locations={"positions.0.pnl": written})
    text = info.value.render()
    assert "rules/calm_test.yaml:12:5: error V6E410" in text and "no index 0" in text
    with pytest.raises(DslError, match="not a mapping"):
        with_overrides(doc, {"market.vix.level": 1})
    with pytest.raises(DslError, match="empty name"):
        with_overrides(doc, {"market..vix": 1})


def test_errors_after_overrides_keep_file_locations(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "  vix: 14\n  vvix: lots\nunderlyings:\n  SPY: {price: 510}\n")
    doc, source = load_document(path)
    new = with_overrides(doc, {"underlyings.SPY.price": "cheap", "market.vix": 15})
    with pytest.raises(DslError) as info:
        snapshot_from_document(new, source)
    err = info.value
    lines = [(d.location.line, d.location.column) for d in err.diagnostics]
    # vvix is untouched: its own position; the overridden price points at its parent entry
    assert lines == [(6, 9), (8, 3)]
    assert "(value set by an override)" in err.diagnostics[1].message


def test_override_a_chain_entry(tmp_path: Path) -> None:
    path = _chain_file(tmp_path, "[1.0, 2.0, 3.0]")
    doc, source = load_document(path)
    snap = snapshot_from_document(with_overrides(doc, {"chains.SPY.bid.2": 3.1}), source)
    assert snap.chains["SPY"].bid.tolist() == [1.0, 2.0, 3.1]
    crossed = with_overrides(doc, {"chains.SPY.bid.1": 9})
    with pytest.raises(DslError, match="crossed quote"):
        snapshot_from_document(crossed, source)


def test_time_override_shifts_derived_fields() -> None:
    doc, source = load_document(RULE_BASES / "ic_open.yaml")
    base = snapshot_from_document(doc, source)
    later = base.time + timedelta(days=7)
    snap = snapshot_from_document(with_overrides(doc, {"time": later.isoformat()}), source)
    assert snap.positions[0].dte == 14.0


def test_underlying_quote_and_ohlc(tmp_path: Path) -> None:
    body = """\
        underlyings:
          SPY: {price: 510.2, bid: 510.19, ask: 510.21, open: 505, high: 511, low: 504.5}
        """
    snap = load_snapshot(write(tmp_path, HEADER + textwrap.dedent(body)))
    spy = snap.underlyings["SPY"]
    assert (spy.bid, spy.ask, spy.open, spy.high, spy.low) == (510.19, 510.21, 505, 511, 504.5)


@pytest.mark.parametrize(
    ("fields", "col", "message"),
    [
        ("bid: 510.3, ask: 510.2", 40, "crossed quote: bid 510.3 > ask 510.2"),
        ("high: 500, low: 501", 39, "low 501 is above high 500"),
    ],
)
def test_underlying_crossed_quote_and_inverted_range_are_located(
    tmp_path: Path, fields: str, col: int, message: str
) -> None:
    body = f"""\
        underlyings:
          SPY: {{price: 510.2, {fields}}}
        """
    path = write(tmp_path, HEADER + textwrap.dedent(body))
    rendered = error_of(path).render()
    assert where(path, 6, col) in rendered and message in rendered
