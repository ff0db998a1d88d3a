"""Options shared by the subcommands (the grid overrides) and the settings a command line
makes: ``songmap analyze``, ``export`` and ``batch`` take the same ``--bpm``,
``--time-signature`` and ``--first-downbeat``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from songmap import errors

if TYPE_CHECKING:  # pydantic loads only when settings are made: a typo is answered fast
    from songmap.config import AnalysisSettings


def settings_from_args(args: argparse.Namespace) -> AnalysisSettings:
    """The ``AnalysisSettings`` a command line asks for (``InvalidParameterError`` naming
    the option for a bad value)."""
    from pydantic import ValidationError

    from songmap.config import AnalysisSettings

    values = {}
    if getattr(args, "max_duration", None) is not None:
        values["max_duration_s"] = args.max_duration
    if getattr(args, "vocabulary", None):
        values["chord_vocabulary"] = args.vocabulary
    if getattr(args, "threads", None) is not None:  # (0 was taken for the default)
        values["threads"] = args.threads
    if getattr(args, "descriptors", False):
        values["descriptors"] = True
    for field in OVERRIDE_OPTIONS.values():
        if getattr(args, field, None) is not None:
            values[field] = getattr(args, field)
    try:
        return AnalysisSettings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        what = next((o for o, f in (OVERRIDE_OPTIONS | _OTHER_OPTIONS).items() if f == field),
                    None)
        where = what or f"setting {'.'.join(map(str, first['loc']))}"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise errors.InvalidParameterError(f"invalid {where}: {message}") from None


#: The grid overrides: command-line option -> AnalysisSettings field.
OVERRIDE_OPTIONS = {"--bpm": "bpm", "--time-signature": "time_signature",
                     "--first-downbeat": "first_downbeat_s"}
#: The other options that are settings, named by their option in error messages.
_OTHER_OPTIONS = {"--max-duration": "max_duration_s", "--threads": "threads"}


def add_override_options(p: argparse.ArgumentParser) -> None:
    """``--bpm``, ``--time-signature``, ``--first-downbeat``: fix the grid as a DJ would."""
    group = p.add_argument_group(
        "grid overrides", "what you know about the track; songmap follows it instead of guessing")
    group.add_argument("--bpm", metavar="BPM|LOW-HIGH",
                       help="tempo of the beat: a value (e.g. 128; followed from 0.82x to "
                            "1.22x it) or a range (e.g. 120-130)")
    group.add_argument("--time-signature", metavar="N/D",
                       help="meter of every bar, e.g. 4/4, 3/4, 6/8, 7/4")
    group.add_argument("--first-downbeat", dest="first_downbeat_s", type=float,
                       metavar="SECONDS", help="a downbeat: the beat nearest this time is beat 1")
