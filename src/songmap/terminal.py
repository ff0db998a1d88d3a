"""Text that goes to a terminal: user-given names with their control characters escaped.

A file name (or an upload's name, a batch path) may hold ESC sequences, CR, BEL or other
control characters; printed as they are, they move the cursor, recolour or clear the
screen, or forge a line of output. Every message a person reads (the CLI's errors and
summaries, progress lines, batch lines, the log) passes through :func:`printable` once,
where it is written; what a program reads (JSON, the result store, HTTP error bodies)
keeps the exact name, since JSON escapes control characters itself.
"""

from __future__ import annotations

import logging
import re

#: C0 controls (newline and tab included: a message is one line), DEL, C1 controls, and
#: the lone surrogates ``os.fsdecode`` gives for a name's bytes that are not UTF-8 (a
#: terminal would get them raw, or the write would fail).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNPRINTABLE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]  # as Python writes it in a repr: \x1b, \r, \udcff


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``str(text)`` with every control character written as Python's repr writes it
    (``\\x1b``, ``\\r``, ``\\n``, ``\\x9b``, ``\\udcff``); other text, backslashes
    included, is left as it is, so text already escaped comes back unchanged.

    ``keep_newlines`` leaves line breaks alone, for text whose lines are songmap's own
    (a log message with a traceback)."""
    pattern = _UNPRINTABLE_BUT_NEWLINE if keep_newlines else _UNPRINTABLE
    return pattern.sub(_escape, str(text))


class PrintableFormatter(logging.Formatter):
    """A log formatter whose messages show control characters escaped (a logged file
    name cannot drive the terminal); the line breaks of a multi-line message stay."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record), keep_newlines=True)
