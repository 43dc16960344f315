"""`v6 import-history` without the CLI framework: option parsing, default files, the run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.market.importer import ImportReport, ImportSpecError, import_history
from engine.paths import shared_data_dir

# The shared data files (../shared/data/daily), by symbol, as glob patterns. Each pattern must
# match one file: `vix_cboe_*` does not match `vix3m_cboe_*`, so the VIX family stays apart.
DEFAULT_UNDERLYINGS = {
    "SPY": "spy_unadjusted_*.csv",
    "QQQ": "qqq_unadjusted_*.csv",
    "IWM": "iwm_unadjusted_*.csv",
    "SPX": "spx_index_*.csv",
    "RUT": "rut_index_*.csv",
}
DEFAULT_INDICES = {
    "VIX": "vix_cboe_*.csv",
    "VIX9D": "vix9d_cboe_*.csv",
    "VIX3M": "vix3m_cboe_*.csv",
    "VVIX": "vvix_cboe_*.csv",
    "SKEW": "skew_cboe_*.csv",
}
DEFAULT_FUTURES = {
    "ES": "es_front_month_*.csv",
    "NQ": "nq_front_month_*.csv",
    "RTY": "rty_front_month_*.csv",
}

Sources = dict[str, Path]


def parse_assignments(values: Sequence[str], option: str) -> dict[str, Path]:
    """["SPY=path", …] -> {"SPY": Path}; ImportSpecError on bad syntax, a repeat or no file."""
    out: dict[str, Path] = {}
    for value in values:
        symbol, sep, file = value.partition("=")
        symbol, file = symbol.strip().upper(), file.strip()
        if not sep or not symbol or not file:
            raise ImportSpecError(f"{option} {value!r}: expected SYMBOL=FILE, e.g. SPY=spy.csv")
        if symbol in out:
            raise ImportSpecError(f"{option} {symbol} is given twice")
        path = Path(file).expanduser()
        if not path.is_file():
            raise ImportSpecError(f"{option} {symbol}: no such file {path}")
        out[symbol] = path
    return out


def _find(daily: Path, patterns: dict[str, str]) -> Sources:
    found: Sources = {}
    for symbol, pattern in patterns.items():
        matches = sorted(daily.glob(pattern))
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            raise ImportSpecError(f"{symbol}: several files match {daily / pattern}: {names}")
        if matches:
            found[symbol] = matches[0]
    return found


def default_sources(data_dir: Path) -> tuple[Sources, Sources, Sources]:
    """(underlyings, indices, futures) found in `data_dir/daily`; absent files are left out."""
    daily = Path(data_dir) / "daily"
    if not daily.is_dir():
        raise ImportSpecError(f"no daily data folder at {daily}")
    return (
        _find(daily, DEFAULT_UNDERLYINGS),
        _find(daily, DEFAULT_INDICES),
        _find(daily, DEFAULT_FUTURES),
    )


def run_import_history(
    out: Path,
    underlying: Sequence[str] = (),
    index: Sequence[str] = (),
    future: Sequence[str] = (),
    data_dir: Path | None = None,
) -> ImportReport:
    """The `v6 import-history` command.

    With no --underlying/--index/--future at all, imports every shared data file found in
    `data_dir` (default: $V6_DATA or ../shared/data). Raises ImportSpecError or
    HistoryFormatError (both ValueError) for a user's mistake; the store is then unchanged.
    """
    underlyings = parse_assignments(underlying, "--underlying")
    indices = parse_assignments(index, "--index")
    futures = parse_assignments(future, "--future")
    if not (underlyings or indices or futures):
        underlyings, indices, futures = default_sources(data_dir or shared_data_dir())
    return import_history(Path(out), underlyings, indices, futures)
