"""The dashboard app: four tabs over one run's journal (and optionally a second run).

Overview (equity, drawdown, regimes, breaker trips and hedges, metrics), Trace (every rule at
a chosen tick, why not, and what the engine did), Positions & risk (open positions, limits
with their headroom, trading state and breaker history) and Rules (the rule set's files and
version, and the differences against a second run). The journal is read incrementally
(ui.journal_reader): a periodic refresh picks up a run still being written without
re-reading what it already has. A journal that cannot be shown gives a message on the page,
never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn

from ui.journal_reader import JournalError, JournalReader
from ui.overview_tab import overview_tab
from ui.risk_tab import risk_tab
from ui.rules_tab import rules_tab
from ui.trace_tab import TickPicker, trace_tab

log = logging.getLogger("v6.dashboard")
REFRESH_MS = 5_000  # a running journal is polled this often; a finished one once


_READERS: dict[Path, JournalReader] = {}


def reader_for(run_dir: Path) -> JournalReader:
    """One reader per run folder, shared by every browser session: a new session costs a
    refresh (a `stat` per table when nothing changed), not a full read of the journal."""
    key = run_dir.resolve()
    reader = _READERS.get(key)
    if reader is None:
        reader = _READERS[key] = JournalReader(key)
    reader.refresh()
    return reader


def message(title: str, text: str) -> pn.viewable.Viewable:
    """A clear message in place of a view."""
    return pn.pane.Alert(f"**{title}**\n\n{text}", alert_type="warning", css_classes=["v6-alert"])


def build_app(journal: Path | None, compare: Path | None = None) -> pn.viewable.Viewable:
    """The page for one browser session."""
    pn.extension("tabulator", sizing_mode="stretch_width")
    header = pn.pane.Markdown("# V6 dashboard", css_classes=["v6-header"])
    if journal is None:
        return pn.Column(
            header,
            message(
                "No journal",
                "Start with `v6 dashboard --journal "
                "RUN_DIR`, e.g. `v6-demo/runs/v6` after `v6 demo`.",
            ),
        )
    try:
        reader = reader_for(journal)
        other = None if compare is None else reader_for(compare)
    except JournalError as exc:
        return pn.Column(header, message("The journal cannot be shown", str(exc)))
    state = reader.state
    notes = [message("Note", n) for n in state.notes]
    status = pn.pane.Markdown(_status_line(reader), css_classes=["v6-status"])
    picker = TickPicker(reader)
    # Each tab is built when first shown, not all four when the page opens.
    tabs = pn.Tabs(
        ("Overview", _lazy(lambda: overview_tab(reader, other))),
        ("Trace", _lazy(lambda: trace_tab(reader, picker))),
        ("Positions & risk", _lazy(lambda: risk_tab(reader, picker))),
        ("Rules", _lazy(lambda: rules_tab(reader, other))),
        dynamic=True,
        css_classes=["v6-tabs"],
    )
    page = pn.Column(header, status, *notes, tabs)
    if state.status == "running":

        def poll() -> None:
            try:
                if reader.refresh():
                    status.object = _status_line(reader)
                    picker.reload()
            except JournalError as exc:  # shown, and the last good data stays
                status.object = f"⚠ {exc}"

        pn.state.add_periodic_callback(poll, period=REFRESH_MS)
    return page


def _lazy(build: Callable[[], pn.viewable.Viewable]) -> pn.viewable.Viewable:
    def safe() -> pn.viewable.Viewable:
        # A view that fails shows a message on the page; the traceback goes to the terminal.
        try:
            return build()
        except Exception as exc:
            log.exception("a dashboard view failed")
            return message("This view failed", f"{type(exc).__name__}: {exc}. The terminal "
                           "running `v6 dashboard` has the details.")

    return pn.param.ParamFunction(safe, lazy=True)


def _status_line(reader: JournalReader) -> str:
    s = reader.state
    first = "—" if s.first_tick is None else f"{s.first_tick:%Y-%m-%d}"
    last = "—" if s.last_tick is None else f"{s.last_tick:%Y-%m-%d %H:%M}"
    return (
        f"**{s.run_dir.name}** · rule set `{s.ruleset}` ({s.ruleset_hash}) · {s.status} · "
        f"{s.ticks_done:,} ticks, {first} → {last}"
    )


def app_factory(journal: Path | None, compare: Path | None) -> Any:
    """What the server calls once per session."""
    return lambda: build_app(journal, compare)


def check_journal(run_dir: Path) -> str | None:
    """Why the journal cannot be shown (for the terminal), or None."""
    try:
        JournalReader(run_dir).refresh()
    except JournalError as exc:
        return str(exc)
    return None
