"""The risk policies reference page: generated from the rule set, current, and complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.dsl.ruleset import RuleSet, load, load_ruleset, loose_manifest
from engine.risk.policy_docs import DOC, PolicyDocError, main, policy_reference, write_doc
from tests.dsl.conftest import rule_text

REGENERATE = "regenerate with: uv run python -m engine.risk.policy_docs --write"

CUSTOM = """
param max_open: count in [1, 20] = 3
param band: delta in [10, 1000] = 100

limit few_positions "A handful of positions" {
  check portfolio.open_positions <= max_open
  on_breach block_entries
}

breaker loss_stop "Down 5% today" {
  priority 20
  trigger portfolio.day_pnl_pct <= -5%
  then halt
  cooldown 2d
  reset when portfolio.day_pnl_pct > 0%
}

breaker wipeout "Down 25% from the peak" {
  priority 30
  trigger portfolio.drawdown_pct >= 25%
  then flatten
  reset manual
}

breaker vix_watch "VIX above 30" {
  trigger market.vix > 30
  then alert(severity = warning, message = "vix high")
}

hedge es_hedge "Hedge with ES" {
  when portfolio.bw_delta_spy > band
  then hedge(target = 0, instrument = ES)
  reason "delta above the band"
}

rule quick_exit "Ten days left" {
  on exit
  when position.dte <= 10d
  then close
  reason "ten days"
}
"""


@pytest.fixture(scope="module")
def v6() -> RuleSet:
    return load_ruleset("v6")


@pytest.fixture(scope="module")
def v6_page(v6: RuleSet) -> str:
    return policy_reference(v6)


def _custom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str = CUSTOM) -> RuleSet:
    """A small rule set in tmp_path (the working directory, so locations read `x.v6:N`)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.v6"
    path.write_text(rule_text(text), encoding="utf-8")
    return load(loose_manifest([path]))


def test_doc_is_current(v6_page: str) -> None:
    """docs/risk/policies.md holds policy_reference(v6) verbatim between its markers."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- policies:begin -->\n(.*)<!-- policies:end -->", text, re.S)
    assert found, f"{DOC} lacks the <!-- policies:begin/end --> markers"
    assert found.group(1) == v6_page, f"{DOC} is out of date with the policies; {REGENERATE}"


def test_every_v6_policy_is_listed_with_its_source(v6: RuleSet, v6_page: str) -> None:
    kinds = {"limit", "breaker", "hedge", "regime"}
    policies = [b for b in v6.blocks if b.kind in kinds or b.phase in ("exit", "take_profit")]
    assert {b.kind for b in policies} == kinds | {"rule"}
    assert len([b for b in policies if b.kind == "limit"]) >= 8
    for b in policies:
        heading = f"### `{b.id}`"
        assert v6_page.count(heading) == 1, b.id
        section = v6_page.split(heading, 1)[1].split("\n### ", 1)[0]
        file, line, _ = b.location.rsplit(":", 2)
        assert f"`{file}:{line}`" in section, b.id
        for c in b.conditions:  # the compiler's condition text, as the traces show it
            assert f"`{c.text}`" in section, (b.id, c.text)
        assert "- **Journal**: `rule_id` " + b.id in section


def test_v6_page_names_journal_values_and_operator_commands(v6_page: str) -> None:
    for needle in (
        "`v6 halt RUN_DIR [--flatten]`", "`v6 resume RUN_DIR`", "`v6 audit RUN_DIR`",
        '"would breach limit max_positions: `portfolio.open_positions <= max_positions`',
        '"entries blocked (REDUCING) by vix_spike"',
        '"trading HALTED by daily_loss: only closing orders pass"',
        "`risk_events` trip `wants HALTED`",
        "`orders.intent` flatten for every open position, `positions.close_rule` drawdown",
        "`orders.intent` hedge, `symbol` SPY, `position_id` hedge-SPY, `fills.kind` stock",
        "`equity.hedge_shares`",
        "`max_positions` = `6` (count, range [1, 50]; risk_policies/limits.v6:",
        "manual: stays tripped until an operator runs `v6 resume RUN_DIR`",
        "`positions.close_rule` dte_exit",
    ):  # fmt: skip
        assert needle in v6_page, needle


def test_custom_rule_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = policy_reference(_custom(tmp_path, monkeypatch))
    assert "Rule set `(files)`: the policies of `x.v6`." in page
    for heading in ("## Limits (1)", "## Circuit breakers (3)", "## Hedges (1)",
                    "## Regimes (0)", "## Exits (1)"):  # fmt: skip
        assert heading in page
    assert page.count("None in this rule set.") == 1
    limit = page.split("### `few_positions` — A handful of positions", 1)[1].split("###")[0]
    assert "- **Where**: `x.v6:5`, priority 0" in limit
    assert "- **Check**: `portfolio.open_positions <= max_open`" in limit
    assert "`max_open` = `3` (count, range [1, 20]; x.v6:2)" in limit
    assert "[x.v6:6:9]" in limit and "`band`" not in limit
    # breakers in priority order, with their resets and the state they want
    assert page.index("`wipeout`") < page.index("`loss_stop`") < page.index("`vix_watch`")
    assert (
        "released once 2d has passed since it last fired and when "
        "`portfolio.day_pnl_pct > 0%` holds (unknown keeps it tripped); `HALTED` itself is "
        "left only by `v6 resume`"
    ) in page
    assert '"trading HALTED by loss_stop: only closing orders pass"' in page
    assert "`orders.intent` flatten for every open position, `positions.close_rule` wipeout" in page
    watch = page.split("### `vix_watch`", 1)[1].split("###")[0]
    assert "released as soon as the trigger stops holding" in watch
    assert "no `risk_events`" in watch and "equity.risk_state" not in watch
    hedge = page.split("### `es_hedge`", 1)[1].split("###")[0]
    assert "`symbol` ES, `position_id` hedge-ES, `fills.kind` future" in hedge
    assert "`band` = `100` (delta, range [10, 1000]; x.v6:3)" in hedge
    exit_ = page.split("### `quick_exit`", 1)[1]
    assert "- **Phase**: `exit`" in exit_ and '`close_reason` "ten days"' in exit_


def test_page_follows_the_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = policy_reference(_custom(tmp_path, monkeypatch))
    after = policy_reference(_custom(tmp_path, monkeypatch, CUSTOM.replace("= 3", "= 4")))
    assert before != after
    assert "`max_open` = `4`" in after and "`max_open` = `3`" not in after


def test_write_doc_replaces_only_between_markers(tmp_path: Path) -> None:
    page = tmp_path / "policies.md"
    page.write_text("# Title\nkept\n<!-- policies:begin -->\nold\n<!-- policies:end -->\ntail\n")
    write_doc("new text\n", page)
    assert page.read_text() == (
        "# Title\nkept\n<!-- policies:begin -->\nnew text\n<!-- policies:end -->\ntail\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["policies.md"]  # no temporary left behind


def test_write_doc_refuses_a_page_without_markers(tmp_path: Path) -> None:
    page = tmp_path / "policies.md"
    page.write_text("# hand-written only\n")
    with pytest.raises(PolicyDocError, match=r"policies\.md: no '<!-- policies:begin -->'"):
        write_doc("x\n", page)
    assert page.read_text() == "# hand-written only\n"
    with pytest.raises(PolicyDocError, match=r"missing\.md: cannot read it"):
        write_doc("x\n", tmp_path / "missing.md")


def test_main_prints_the_page_or_a_readable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _custom(tmp_path, monkeypatch)
    assert main(["x.v6"]) == 0
    assert "### `few_positions` — A handful of positions" in capsys.readouterr().out
    (tmp_path / "bad.v6").write_text(rule_text("limit broken {\n  check portfolio.nope < 1\n}\n"))
    assert main(["bad.v6"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bad.v6:3:" in captured.err and "portfolio.nope" in captured.err
