"""How data text (titles, ids) is shown on a terminal: control characters escaped.

A title is data from a file anyone may have written; printed raw, an ANSI escape in it
can clear the screen, set the window title or hide the text after it, and a newline can
forge a line of output. Every place that prints data text to a terminal (the run
summary, the recommend CLI) passes it through `for_terminal`; the data itself, in
examples, vocabularies, models and JSON files, stays as written.
"""
import unicodedata

# Unicode categories shown escaped: controls (C0, DEL, C1: ESC, BEL, CR, ...), format
# characters (bidirectional overrides, zero-width characters), line and paragraph
# separators, and lone surrogates (undecodable bytes).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
  code = ord(char)
  if code < 0x100:
    return f"\\x{code:02x}"
  return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def for_terminal(text: str) -> str:
  """`text` with every control or format character written as a Python-style escape
  (ESC as `\\x1b`, U+202E as `\\u202e`); other characters, spaces and accents included,
  unchanged. A backslash already in `text` stays a single backslash."""
  if text.isprintable():  # Nearly every title: nothing to escape.
    return text
  return "".join(_escape(char) if unicodedata.category(char) in _ESCAPED_CATEGORIES
                 else char for char in text)
