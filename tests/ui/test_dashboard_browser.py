"""The dashboard in Chromium, over two small dry-run journals: every view, the trace, the diff.

What the page must show is read from the journals themselves (operand values, open positions,
version hashes) or from the shipped rule files (rule ids, conditions, file:line), so the tests
state facts about the run rather than copies of the page. Tick labels are matched by their
date only: the label's clock time is the dashboard's choice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from playwright.async_api import Locator, Page, expect

from engine.dsl.trace import fmt_value
from tests.ui.browser import Tab, snap
from tests.ui.conftest import PARAM_AFTER, PARAM_BEFORE, Journals, Scenario

pytestmark = pytest.mark.slow  # a served dashboard and a browser per test: ~40 s in all

Browse = Callable[[Scenario], list[str]]

SHOW_MS = 30_000  # the first render of a view builds its plots on 2 busy cores

# A rule known to fire on the first tick (2018-01-02): the put credit spread entry on SPY,
# rules/entries.v6, whose skew condition sits on line 29.
FIRST_DAY = date(2018, 1, 2)
FIRED_RULE, FIRED_ON = "pcs_entry", "SPY"
FIRED_ACTION = "open put_credit_spread"
SKEW_CONDITION = "underlying.skew_25d_ratio >= put_skew_min"
SKEW_LOCATION = "rules/entries.v6:29:5"
# The iron condor entry did not fire that day: its IV-rank floor failed first.
NEAR_RULE, NEAR_CONDITION = "ic_entry", "underlying.iv_rank >= iv_rank_min"

# Each view: its tab, an element it always shows, and its screenshot's name.
VIEWS = (
    ("Overview", ".v6-overview-plot", "dashboard-overview"),
    ("Trace", ".v6-trace-table", "dashboard-trace"),
    ("Positions & risk", ".v6-limits", "dashboard-risk"),
    ("Rules", ".v6-diff", "dashboard-rules"),
)


# ---- facts from the journals ----------------------------------------------------------------


def _rows(run: Path, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = DeltaTable(str(run / table)).to_pyarrow_table().to_pylist()
    return rows


def operands_shown(run: Path, day: date, rule_id: str, subject: str, cond: str) -> list[str]:
    """`text = value` for each operand of a condition, as the journal's trace recorded it."""
    for row in _rows(run, "decisions"):
        if (row["date"], row["rule_id"], row["subject"]) != (day, rule_id, subject):
            continue
        for c in json.loads(row["trace"])["conditions"]:
            if c["text"] == cond:
                return [f"{o['text']} = {fmt_value(o['value'], o['unit'])}" for o in c["operands"]]
    raise AssertionError(f"{run}: no trace of {rule_id} on {subject} at {day} with {cond!r}")


def open_on(run: Path, day: date) -> frozenset[str]:
    """The ids of the positions open at the end of `day`'s tick."""
    return frozenset(
        r["position_id"]
        for r in _rows(run, "positions")
        if r["date"] == day and r["status"] == "open"
    )


def ruleset_hash(run: Path) -> str:
    return str(json.loads((run / "run.json").read_text())["ruleset"]["hash"])


# ---- driving the page -----------------------------------------------------------------------


async def open_dashboard(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator(".v6-status")).to_contain_text("complete", timeout=SHOW_MS)


async def open_view(page: Page, tab: str, marker: str) -> Locator:
    await page.locator(".bk-tab", has_text=tab).click()
    shown = page.locator(marker).first
    await expect(shown).to_be_visible(timeout=SHOW_MS)
    return shown


def tick_picker(page: Page) -> Locator:
    return page.locator(".v6-tick select").locator("visible=true")


async def offered_days(page: Page) -> list[date]:
    """The days of the ticks the visible picker offers, in its order."""
    labels = await tick_picker(page).locator("option").all_inner_texts()
    return [date.fromisoformat(label[:10]) for label in labels]


async def choose_tick(page: Page, day: date) -> None:
    """Pick the first tick of `day` in the visible tick picker."""
    labels = await tick_picker(page).locator("option").all_inner_texts()
    label = next((x for x in labels if x.startswith(day.isoformat())), None)
    assert label is not None, f"no tick of {day} offered; the picker offers {labels}"
    await tick_picker(page).select_option(label=label)


async def trace_rows(page: Page) -> list[tuple[str, list[str]]]:
    """The trace table as (rule row text, [its condition rows' text]), in page order."""
    cells: list[list[str]] = await page.locator(".v6-trace-table tr").evaluate_all(
        "rows => rows.map(r => [r.className, r.innerText.replace(/\\s+/g, ' ').trim()])"
    )
    out: list[tuple[str, list[str]]] = []
    for cls, text in cells:
        if "v6-rule" in cls.split():
            out.append((text, []))
        elif "v6-condition" in cls.split() and out:
            out[-1][1].append(text)
    return out


def find_rule(rows: list[tuple[str, list[str]]], rule_id: str, subject: str) -> tuple[str, ...]:
    for head, conditions in rows:
        words = head.split()
        if rule_id in words and subject in words:
            return (head, *conditions)
    raise AssertionError(f"{rule_id} on {subject} is not in the trace table: {rows}")


# ---- tests ----------------------------------------------------------------------------------


def test_every_view_loads_without_console_errors(dashboard: str, browse: Browse) -> None:
    async def scenario(tab: Tab) -> None:
        await open_dashboard(tab.page, dashboard)
        await expect(tab.page.locator(".v6-status")).to_contain_text("v6")
        for name, marker, shot in VIEWS:
            await open_view(tab.page, name, marker)
            await snap(tab.page, shot)
        assert await tab.page.get_by_text("Traceback").count() == 0

    assert browse(scenario) == []


def test_the_trace_explorer_shows_a_fired_rule_with_its_condition_values(
    dashboard: str, journals: Journals, browse: Browse
) -> None:
    operands = operands_shown(journals.run, FIRST_DAY, FIRED_RULE, FIRED_ON, SKEW_CONDITION)

    async def scenario(tab: Tab) -> None:
        await open_dashboard(tab.page, dashboard)
        table = await open_view(tab.page, "Trace", ".v6-trace-table")
        await choose_tick(tab.page, FIRST_DAY)
        await expect(table).to_contain_text(operands[0], timeout=SHOW_MS)
        head, *conditions = find_rule(await trace_rows(tab.page), FIRED_RULE, FIRED_ON)
        assert "fired" in head.split() and FIRED_ACTION in head, head
        skew = next((c for c in conditions if SKEW_CONDITION in c), None)
        assert skew is not None, conditions
        assert SKEW_LOCATION in skew and all(o in skew for o in operands), (skew, operands)
        await snap(tab.page, "dashboard-trace-fired-rule")
        # "Why not": the condor entry that did not fire, with its first failing condition.
        await tab.page.locator(".v6-trace-filter button", has_text="why not").click()
        near = tab.page.locator(".v6-why-not tr", has_text=NEAR_RULE).first
        await expect(near).to_contain_text(NEAR_CONDITION, timeout=SHOW_MS)
        await snap(tab.page, "dashboard-trace-why-not")

    assert browse(scenario) == []


def test_choosing_a_tick_updates_the_views(
    dashboard: str, journals: Journals, browse: Browse
) -> None:
    def skew(day: date) -> str:
        return operands_shown(journals.run, day, FIRED_RULE, FIRED_ON, SKEW_CONDITION)[0]

    async def scenario(tab: Tab) -> None:
        page = tab.page
        await open_dashboard(page, dashboard)
        positions = await open_view(page, "Positions & risk", ".v6-positions")
        last = (await offered_days(page))[-1]
        early, late = open_on(journals.run, FIRST_DAY), open_on(journals.run, last)
        assert early and late and not early & late, "the run no longer turns its book over"
        await choose_tick(page, last)
        for pid in late:
            await expect(positions).to_contain_text(pid, timeout=SHOW_MS)
        # The tick is shared: the trace explorer shows the risk view's choice, and back.
        table = await open_view(page, "Trace", ".v6-trace-table")
        await expect(table).to_contain_text(skew(last), timeout=SHOW_MS)
        await choose_tick(page, FIRST_DAY)
        await expect(table).to_contain_text(skew(FIRST_DAY), timeout=SHOW_MS)
        await expect(table).not_to_contain_text(skew(last))
        positions = await open_view(page, "Positions & risk", ".v6-positions")
        for pid in early:
            await expect(positions).to_contain_text(pid, timeout=SHOW_MS)
        for pid in late:
            await expect(positions).not_to_contain_text(pid)

    assert browse(scenario) == []


def test_the_diff_view_shows_the_changed_parameter(
    dashboard: str, journals: Journals, browse: Browse
) -> None:
    hashes = ruleset_hash(journals.run), ruleset_hash(journals.edited)
    assert hashes[0] != hashes[1]

    async def scenario(tab: Tab) -> None:
        page = tab.page
        await open_dashboard(page, dashboard)
        diff = await open_view(page, "Rules", ".v6-diff")
        await expect(diff).to_contain_text(f"-{PARAM_BEFORE}")
        await expect(diff).to_contain_text(f"+{PARAM_AFTER}")
        for h in hashes:
            await expect(page.get_by_text(h).first).to_be_visible()
        # With the floor at 1% the condor enters on IWM on 2018-02-05, where the shipped 30%
        # holds it back (`v6 diff` agrees: the first of its differences).
        changes = page.locator(".v6-changes")
        await expect(changes).to_contain_text("2018-02-05")
        await expect(changes).to_contain_text("ic_entry")

    assert browse(scenario) == []
