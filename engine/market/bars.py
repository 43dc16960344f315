"""The `daily_bars` table of a market store: one Arrow schema shared by every writer and reader.

A store is a folder; `STORE/daily_bars` is a Delta table partitioned by `symbol`, one row per
(symbol, session date) on the XNYS calendar. Prices are as traded (not dividend-adjusted), in
the instrument's own units: USD per share for underlyings, index points for volatility indices
and futures.
"""

from __future__ import annotations

import pyarrow as pa

TABLE = "daily_bars"

# What a symbol is, which decides how it is normalised and what a rule reads it as.
KIND_UNDERLYING = "underlying"  # an optionable ETF or index: SPY, QQQ, IWM, SPX, RUT
KIND_INDEX = "index"  # a volatility or sentiment index: VIX, VIX9D, VIX3M, VVIX, SKEW
KIND_FUTURE = "future"  # a continuous front-month future: ES, NQ, RTY
KINDS = (KIND_UNDERLYING, KIND_INDEX, KIND_FUTURE)

DAILY_BARS = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # one of KINDS
        pa.field("date", pa.date32(), nullable=False),  # exchange session date (America/New_York)
        pa.field("open", pa.float64()),  # null where the source has only a close (VVIX, SKEW)
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64()),  # shares or contracts; null for indices
        pa.field("dividend", pa.float64()),  # cash per share on its ex-date, else 0; null if n/a
        pa.field("source", pa.string(), nullable=False),  # file name, or "synthetic:SEED"
    ]
)
