"""One way to show a table on the dashboard: read-only, sized to its rows, or a line saying it
is empty."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

ROW_PX, HEAD_PX = 32, 80


def table(
    df: pd.DataFrame | None, css: str, empty: str = "—", max_height: int = 400, **extra: Any
) -> pn.viewable.Viewable:
    if df is None or len(df) == 0:
        return pn.pane.Markdown(empty, css_classes=[css])
    return pn.widgets.Tabulator(
        df, disabled=True, show_index=False, layout="fit_data_table", css_classes=[css],
        height=min(HEAD_PX + ROW_PX * len(df), max_height), **extra,
    )  # fmt: skip
