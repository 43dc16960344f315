"""A small synthetic market store shared by the runtime tests (one quarter of 2018)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.market.generator import generate_market
from engine.market.store import MarketStore
from engine.runtime.dry_run import synthetic_begin

START, END = date(2018, 1, 1), date(2018, 3, 31)


@pytest.fixture(scope="session")
def bars() -> pa.Table:
    return generate_market(6, synthetic_begin(START), END)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, bars: pa.Table) -> Path:
    path = tmp_path_factory.mktemp("market") / "store"
    MarketStore(path).write_bars(bars)
    return path


@pytest.fixture(scope="session")
def store_without(tmp_path_factory: pytest.TempPathFactory, bars: pa.Table) -> Callable[..., Path]:
    """A store like `store` but without the given symbols."""

    def make(*symbols: str) -> Path:
        keep = pc.invert(pc.is_in(bars.column("symbol"), value_set=pa.array(symbols)))
        path = tmp_path_factory.mktemp("market") / "store"
        MarketStore(path).write_bars(bars.filter(keep))
        return path

    return make
