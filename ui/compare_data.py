"""Two runs' decisions side by side: the ticks and rules where they differ (pure)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

_KEY = ["time", "rule_id", "subject"]


def changed_decisions(a: pa.Table, b: pa.Table, limit: int = 2_000) -> pd.DataFrame:
    """Rules that fired (acted) in one run and not the other, or with another action, per
    tick: time, rule, subject, action in A, action in B. Regimes are left out (they are
    market facts, the same in both); at most `limit` rows, earliest first."""
    cols = [*_KEY, "kind", "fired", "action"]
    da = a.select(cols).to_pandas()
    db = b.select(cols).to_pandas()
    da, db = (d[(d["kind"] != "regime") & d["fired"]] for d in (da, db))
    merged = da.merge(db, on=_KEY, how="outer", suffixes=("_a", "_b"))
    differ = merged[merged["action_a"].fillna("—") != merged["action_b"].fillna("—")]
    out = differ[[*_KEY, "action_a", "action_b"]].fillna(
        {"action_a": "— (not fired)", "action_b": "— (not fired)"}
    )
    out = out.sort_values(_KEY).head(limit).reset_index(drop=True)
    out["time"] = out["time"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d %H:%M")
    return out.rename(columns={"action_a": "A", "action_b": "B", "rule_id": "rule"})
