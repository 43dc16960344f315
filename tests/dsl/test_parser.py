"""Parser: every syntax-error kind, located exactly and worded for a trader; valid constructs."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from engine.dsl import ast
from engine.dsl.build import build
from engine.dsl.errors import DslError
from engine.dsl.parser import decode_source, parse
from engine.dsl.source import MAX_SOURCE_BYTES, Source


def errors_of(text: str, name: str = "x.v6") -> DslError:
    with pytest.raises(DslError) as info:
        build(Source(name, text))
    return info.value


def decode_errors(raw: bytes, name: str = "x.v6") -> DslError:
    with pytest.raises(DslError) as info:
        decode_source(name, raw)
    return info.value


def only(err: DslError) -> tuple[str, str]:
    """The single diagnostic's code and file:line:col."""
    assert len(err.diagnostics) == 1, err.render()
    d = err.diagnostics[0]
    return d.code.value, str(d.location)


RULE_OK = "rule r {\n  on exit\n  then close\n}\n"

# (id, text, code, file:line:col)
SYNTAX_CASES = [
    ("missing_version", RULE_OK, "V6E020", "x.v6:1:1"),
    ("missing_version_bad_char", "@@@\n", "V6E020", "x.v6:1:1"),
    ("bad_version", "version 2\n" + RULE_OK, "V6E020", "x.v6:1:1"),
    ("bad_version_later_line", "\n# header\nversion 7\n", "V6E020", "x.v6:3:1"),
    ("unexpected_token", "version 1\nrule r {\n  on exit\n  when position.dte > > 1d\n}\n",
     "V6E010", "x.v6:4:23"),
    ("unexpected_keyword", "version 1\nrule r {\n  on exit then close\n}\n", "V6E010", "x.v6:3:11"),
    ("missing_brace", "version 1\nrule r\n  on exit\n", "V6E010", "x.v6:2:7"),
    ("unclosed_paren",
     "version 1\nrule r {\n  on exit\n  when (position.dte > 1d\n  then close\n}\n",
     "V6E010", "x.v6:4:26"),
    ("unexpected_character", "version 1\nrule r {\n  on exit @\n}\n", "V6E012", "x.v6:3:11"),
    ("unterminated_string", 'version 1\nrule r "abc {\n}\n', "V6E012", "x.v6:2:8"),
    ("unterminated_block", "version 1\nrule r {\n  on exit\n  then close\n", "V6E011", "x.v6:4:13"),
    ("unterminated_block_trailing_blank", "version 1\nrule r {\n  on exit\n\n\n", "V6E011",
     "x.v6:3:10"),
    ("unterminated_match", "version 1\nparam p: percent = 5%\nrule r {\n  on exit\n"
     "  let t = match market.regime { crash => 1%", "V6E011", "x.v6:5:44"),
    ("empty", "", "V6E003", "x.v6:1:1"),
    ("whitespace_only", "  \n\t\n", "V6E003", "x.v6:1:1"),
    ("comment_only", "# just a note\n\n   # another\n", "V6E003", "x.v6:1:1"),
    ("nul_byte", "version 1\nrule r {\x00\n", "V6E012", "x.v6:2:9"),
]


@pytest.mark.parametrize(("text", "code", "where"),
                         [c[1:] for c in SYNTAX_CASES], ids=[c[0] for c in SYNTAX_CASES])
def test_syntax_error_code_and_location(text: str, code: str, where: str) -> None:
    assert only(errors_of(text)) == (code, where)


def test_missing_version_after_header_comment_is_a_version_error() -> None:
    # Most rule files open with a comment; a missing header must still say "missing version",
    # as it does when the comment is absent (RULE_OK) or the first token is a bad character.
    err = errors_of("# my exits\n" + RULE_OK)
    assert err.codes == ["V6E020"]


def test_non_utf8_is_located_at_the_bad_byte() -> None:
    err = decode_errors(b"version 1\nrule r {\n  reason \"caf\xe9\"\n")
    assert only(err) == ("V6E001", "x.v6:3:14")
    assert err.diagnostics[0].hint == "save the file as UTF-8"


def test_non_utf8_after_a_bom_is_located_at_the_bad_byte() -> None:
    err = decode_errors(b"\xef\xbb\xbfversion 1\n\n\x80# note\n")
    assert only(err) == ("V6E001", "x.v6:3:1")
    assert err.diagnostics[0].message == "file is not UTF-8 text (byte 0x80)"


def test_non_utf8_column_counts_characters_not_bytes() -> None:
    # "# café " is 7 characters (8 bytes): the bad byte is at column 8, like every other column.
    assert only(decode_errors(b"version 1\n# caf\xc3\xa9 \xff\n")) == ("V6E001", "x.v6:2:8")


def test_truncated_utf8_sequence() -> None:
    assert only(decode_errors(b"version 1\n# \xc3")) == ("V6E001", "x.v6:2:3")


def test_too_large_input() -> None:
    raw = b"version 1\n" + b"#" * MAX_SOURCE_BYTES
    err = decode_errors(raw)
    assert only(err) == ("V6E002", "x.v6:1:1")
    assert err.diagnostics[0].message == (
        f"file is {len(raw):,} bytes; rule files are limited to {MAX_SOURCE_BYTES:,}")


def test_input_at_the_size_limit_is_accepted() -> None:
    raw = b"version 1\n" + b"#" * (MAX_SOURCE_BYTES - len(b"version 1\n"))
    assert len(raw) == MAX_SOURCE_BYTES
    assert decode_source("x.v6", raw).text.startswith("version 1\n")


def test_utf8_bom_is_stripped() -> None:
    src = decode_source("x.v6", b"\xef\xbb\xbfversion 1\n")
    assert src.text == "version 1\n"
    assert build(src).version == 1


@pytest.mark.parametrize("digits", ["version " + "9" * 5000, "version 1\nrule r {\n  on exit\n"
                                    "  priority " + "9" * 5000 + "\n  then close\n}\n"])
def test_huge_integer_literal_is_a_diagnostic_not_a_crash(digits: str) -> None:
    # int() refuses strings over 4300 digits; the parser must still answer with a DslError.
    err = errors_of(digits)
    assert all(c.startswith("V6E") for c in err.codes)


def test_rendered_line_is_the_line_lark_counted() -> None:
    # U+2028 in a comment is not a line break for the grammar (which counts "\n" only);
    # the caret line shown must be the one at the reported line number.
    text = "version 1\n# note\u2028more\nrule r {\n  on exit @\n}\n"
    err = errors_of(text)
    assert only(err) == ("V6E012", "x.v6:4:11")
    assert err.render().splitlines()[1] == "    4 |   on exit @"


def test_errors_render_line_and_caret() -> None:
    err = errors_of("version 1\nrule r {\n  on exit\n  when position.dte > > 1d\n}\n")
    assert err.render() == (
        "x.v6:4:23: error V6E010: unexpected '>'\n"
        "    4 |   when position.dte > > 1d\n"
        "      |                       ^\n"
        "  = expected '(', '-', 'false', 'match', 'true', 'unknown', a dollar amount like $5, "
        "a name, …"
    )


RENDER_CASES = {
    "missing_version": RULE_OK,
    "bad_version": "version 2\n" + RULE_OK,
    "unexpected_token": "version 1\nparam p: percent = 5%\nrule r {\n  on exit\n"
                        "  when position.pnl_pct_of_credit >= p p\n  then close\n}\n",
    "unexpected_character": "version 1\nrule r {\n  on exit\n  when position.dte ~ 1d\n}\n",
    "unterminated_block": "version 1\nrule r {\n  on exit\n  then close\n",
    "empty": "",
    "comment_only": "# nothing here yet\n",
    "nul_byte": "version 1\n\x00\n",
    "crlf_error": "version 1\r\nrule r {\r\n  on exit\r\n  then close,\r\n}\r\n",
}


@pytest.mark.parametrize("case", sorted(RENDER_CASES))
def test_rendered_syntax_messages(case: str, snapshot: SnapshotAssertion) -> None:
    # A NUL is shown as \x00 so the snapshot file stays plain text.
    assert errors_of(RENDER_CASES[case]).render().replace("\x00", "\\x00") == snapshot


@pytest.mark.parametrize("raw", [b"version 1\nrule \xff r {\n", b"x" * (MAX_SOURCE_BYTES + 1)],
                         ids=["non_utf8", "too_large"])
def test_rendered_reading_messages(raw: bytes, snapshot: SnapshotAssertion) -> None:
    assert decode_errors(raw).render() == snapshot


# ------------------------------------------------------------------ valid constructs
def one_rule(text: str) -> ast.Block:
    f = build(Source("x.v6", text))
    assert len(f.blocks) == 1
    return f.blocks[0]


def test_chained_comparison() -> None:
    b = one_rule("version 1\nlimit l {\n  check -250 <= portfolio.bw_delta_spy < 250\n"
                 "  on_breach block_entries\n}\n")
    (c,) = b.conditions
    assert isinstance(c, ast.Compare)
    assert c.ops == ("<=", "<")
    assert [type(o).__name__ for o in c.operands] == ["Literal", "Path", "Literal"]
    assert c.operands[0] == ast.Literal(c.operands[0].loc, -250.0, "number", "-250")
    assert str(c.loc) == "x.v6:3:9"


def test_match_with_arms_on_several_lines() -> None:
    b = one_rule("version 1\nrule r {\n  on exit\n  let t = match market.regime {\n"
                 "    crash => 40%  # comment after an arm\n    high_vol => 50%\n"
                 "    else => 80%\n  }\n  when position.pnl_pct_of_credit >= t\n  then close\n}\n")
    (let,) = b.lets
    assert isinstance(let.value, ast.Match)
    assert [a.name for a in let.value.arms] == ["crash", "high_vol", None]
    assert [a.value.value for a in let.value.arms] == [0.4, 0.5, 0.8]  # type: ignore[union-attr]


def test_multi_line_action_arguments() -> None:
    b = one_rule('version 1\nbreaker b {\n  trigger market.vix > 40\n'
                 '  then halt,\n     alert(severity = critical,\n'
                 '           message = "two lines")\n}\n')
    assert [a.verb for a in b.actions] == ["halt", "alert"]
    assert [arg.name for arg in b.actions[1].args] == ["severity", "message"]
    assert str(b.actions[1].args[1].loc) == "x.v6:6:12"


def test_comments_everywhere() -> None:
    text = ("# header\n\nversion 1  # v\n# before param\nparam p: percent = 5%  # p\n"
            "rule r \"t\" {  # open\n  # inside\n  on exit  # phase\n\n  when {  # w\n"
            "    # first\n    position.pnl_pct_of_credit >= p  # c1\n    # between\n"
            "    position.dte > 1d\n  }  # end when\n  then close  # act\n}  # close\n# tail")
    f = build(Source("x.v6", text))
    (b,) = f.blocks
    assert f.params[0].name == "p"
    assert len(b.conditions) == 2
    assert str(b.conditions[1].loc) == "x.v6:14:5"
    assert b.title == "t"


def test_crlf_line_endings_parse_with_the_same_locations() -> None:
    lf = ("version 1\nrule r {\n  on exit\n  when {\n    position.dte < 5d\n"
          "    position.pnl > $0\n  }\n  then close\n}\n")
    a, b = build(Source("x.v6", lf)), build(Source("x.v6", lf.replace("\n", "\r\n")))
    assert [str(c.loc) for c in a.blocks[0].conditions] == ["x.v6:5:5", "x.v6:6:5"]
    assert [str(c.loc) for c in b.blocks[0].conditions] == ["x.v6:5:5", "x.v6:6:5"]
    assert b.blocks[0].conditions[0].operands[1].value == 5.0  # type: ignore[union-attr]


def test_literals_carry_units() -> None:
    b = one_rule("version 1\nrule r {\n  on entry\n  then open iron_condor(short_delta = 0.16, "
                 "wing_width = $1,000.50, dte = 45d, quantity = 2)\n}\n")
    lits = [a.value for a in b.actions[0].args]
    assert [(x.kind, x.value) for x in lits] == [  # type: ignore[union-attr]
        ("number", 0.16), ("money", 1000.5), ("days", 45.0), ("number", 2.0)]


def test_percent_is_stored_as_a_fraction_and_negatives_fold() -> None:
    b = one_rule("version 1\nrule r {\n  on exit\n  when position.pnl_pct_of_credit <= -150%\n"
                 "  then close\n}\n")
    lit = b.conditions[0].operands[1]  # type: ignore[union-attr]
    assert (lit.kind, lit.value, lit.text) == ("percent", -1.5, "-150%")


def test_negative_priority() -> None:
    b = one_rule("version 1\nrule r {\n  on exit\n  priority -100\n  then close\n}\n")
    assert b.priority == -100


def test_line_continuation_with_backslash() -> None:
    b = one_rule("version 1\nrule r {\n  on exit\n  when position.dte < \\\n    5d\n"
                 "  then close\n}\n")
    assert b.conditions[0].loc.end_line == 5


def test_version_without_trailing_newline() -> None:
    f = build(Source("x.v6", "version 1"))
    assert (f.version, f.blocks, f.params) == (1, (), ())


def test_parsing_is_deterministic() -> None:
    src = Source("x.v6", "version 1\n" + RULE_OK)
    assert parse(src) == parse(src)


@pytest.mark.parametrize(("written", "value"), [
    ('a\\"b', 'a"b'), ("line1\\nline2", "line1\nline2"), ("back\\\\slash", "back\\slash"),
    ("end\\\\", "end\\"), ("C:\\\\new", "C:\\new"), ("\\\\\\n", "\\\n"),
])
def test_string_escapes(written: str, value: str) -> None:
    # Escapes are read left to right: `\\n` is a backslash then "n", not a line break.
    b = one_rule(f'version 1\nrule r {{\n  on exit\n  then close\n  reason "{written}"\n}}\n')
    assert b.reason == value
