"""contracts.terminal.for_terminal: data text made safe to print."""
from contracts import terminal


def test_ansi_escapes_and_line_breaks_are_shown_escaped():
  hostile = "\x1b[2J\x1b]0;owned\x07Title\r\nforged line\x1b[8mhidden\x9b"
  assert terminal.for_terminal(hostile) == (
      "\\x1b[2J\\x1b]0;owned\\x07Title\\x0d\\x0aforged line\\x1b[8mhidden\\x9b")


def test_bidirectional_overrides_and_separators_are_escaped():
  assert terminal.for_terminal("abc\u202edcba\u2028x\u200b") == (
      "abc\\u202edcba\\u2028x\\u200b")


def test_ordinary_titles_are_unchanged():
  for title in ("Misérables, Les (1995)", "Amélie (Fabuleux destin d'Amélie Poulain, "
                "Le) (2001)", "千と千尋の神隠し (2001)", "Tab-free\\x1b text", "a\u00a0b"):
    assert terminal.for_terminal(title) == title


_HOSTILE_TITLE = "Clear \x1b[2J\x1b]0;pwned\x07(1999)"
_SHOWN_TITLE = "Clear \\x1b[2J\\x1b]0;pwned\\x07(1999)"


def test_the_run_summary_shows_titles_and_user_ids_escaped():
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  text = run_summary.format_text({"example_recommendations": {
      "5\x1b[8m": [_HOSTILE_TITLE, "Plain (2000)"]}})
  assert "\x1b" not in text and "\x07" not in text
  assert f"user 5\\x1b[8m: {_SHOWN_TITLE} | Plain (2000)" in text.splitlines()


def test_recommend_prints_titles_and_ids_escaped():
  from trainer_module import recommend  # pylint: disable=g-import-not-at-top
  rows = [[recommend.Recommendation("7\r", _HOSTILE_TITLE, 0.5),
           recommend.Recommendation("8", "Plain (2000)", 0.25, 4.0)]]
  lines = recommend.format_recommendations(["42\x1b[2J"], rows)
  assert lines == ["user 42\\x1b[2J:",
                   f"    1.  0.5000  [7\\x0d] {_SHOWN_TITLE}",
                   "    2.  0.2500  4.00 stars  [8] Plain (2000)"]
