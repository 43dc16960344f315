"""The rule set a run used: its files and version hash; against a second run, the text diff of
the files and the ticks where the two runs decided differently."""

from __future__ import annotations

import difflib
import html
import json
from pathlib import Path

import pandas as pd
import panel as pn

from ui.compare_data import changed_decisions
from ui.journal_reader import JournalReader
from ui.tables import table


def rules_tab(reader: JournalReader, other: JournalReader | None) -> pn.viewable.Viewable:
    files = _files(reader.state.run_dir)
    parts: list[pn.viewable.Viewable] = [
        pn.pane.Markdown(
            f"### Rule set `{reader.state.ruleset}` · version `{reader.state.ruleset_hash}`",
            css_classes=["v6-ruleset"],
        ),
    ]
    # <pre>, not Markdown: rule text holds `$5` and `%`, which Markdown would typeset as math.
    tabs = pn.Tabs(
        *[(p.name, pn.pane.HTML(f"<pre>{html.escape(_read(p))}</pre>")) for p in files],
        css_classes=["v6-rule-files"],
    )
    parts.append(tabs)
    if other is not None:
        parts += [
            pn.pane.Markdown(
                f"### Against `{other.state.run_dir.name}` (version `{other.state.ruleset_hash}`)"
            ),
            pn.pane.HTML(_diff_html(files, _files(other.state.run_dir)), css_classes=["v6-diff"]),
            pn.pane.Markdown("### Decisions that changed"),
        ]
        changed = changed_decisions(reader.table("decisions"), other.table("decisions"))
        parts.append(_changes(changed))
    else:
        parts.append(
            pn.pane.Markdown(
                "Start with `--compare RUN_DIR2` to see the differences "
                "against another run (another version of the rules)."
            )
        )
    return pn.Column(*parts)


def _files(run_dir: Path) -> list[Path]:
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return [Path(f) for f in (info.get("ruleset") or {}).get("files", [])]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"


def _diff_html(a: list[Path], b: list[Path]) -> str:
    by_name = {p.name: p for p in b}
    out = []
    for p in a:
        q = by_name.get(p.name)
        if q is None:
            out.append(f"<p><b>{html.escape(p.name)}</b>: only in the first run</p>")
            continue
        diff = list(
            difflib.unified_diff(
                _read(p).splitlines(),
                _read(q).splitlines(),
                str(p.name),
                str(q.name),
                lineterm="",
                n=1,
            )
        )
        if diff:
            body = "\n".join(html.escape(line) for line in diff)
            out.append(f'<pre class="v6-diff-file">{body}</pre>')
    return "".join(out) or "<p>The rule files are identical.</p>"


def _changes(df: pd.DataFrame) -> pn.viewable.Viewable:
    return table(df, "v6-changes", "No decision differs.", pagination="local", page_size=25)
