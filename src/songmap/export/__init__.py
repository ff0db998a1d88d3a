"""Write an :class:`~songmap.schema.AnalysisResult` in the formats other tools read.

Every exporter reads only the result object (no audio, no models), so a saved JSON
result can be converted later. ``EXPORTERS`` maps a format name to an
:class:`Exporter`; the CLI (``songmap export --format``), batch runs and the HTTP API
(``?format=``) all go through it::

    from songmap.export import EXPORTERS, export
    data = export(result, "jams")            # bytes
    EXPORTERS["midi"].extension              # ".mid"

The third-party writers (jams, mido, matplotlib) are imported only when their format
is asked for; ``import songmap.export`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from songmap.errors import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult


@dataclass(frozen=True)
class Exporter:
    """One output format: how to write it and what the file is called."""

    name: str
    extension: str  # with the dot, e.g. ".jams"
    media_type: str  # for HTTP responses
    description: str
    target: str  # "module:function"; the function is (result, **options) -> bytes | str
    requires: tuple[str, ...] = ()  # importable modules it needs
    extra: str = "export"  # the pip extra that installs them
    options: tuple[str, ...] = field(default=())  # keyword options the function accepts

    @property
    def binary(self) -> bool:
        text = self.media_type.startswith("text/") or self.media_type.endswith(("json", "xml"))
        return not text

    def function(self) -> Callable[..., bytes | str]:
        for mod in self.requires:
            try:
                importlib.import_module(mod)
            except ImportError as exc:
                raise MissingDependencyError(
                    f"the {self.name!r} format needs the {mod!r} package, which is not "
                    f"installed; install it with: pip install 'songmap[{self.extra}]'"
                ) from exc
        module_name, func_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), func_name)

    def write(self, result: AnalysisResult, **options: Any) -> bytes | str:
        """The file's content (``str`` for text formats, ``bytes`` for binary ones)."""
        unknown = set(options) - set(self.options)
        if unknown:
            raise InvalidParameterError(
                f"the {self.name!r} format takes no option(s) {sorted(unknown)}; "
                f"it accepts {list(self.options) or 'none'}"
            )
        return self.function()(result, **options)

    def to_bytes(self, result: AnalysisResult, **options: Any) -> bytes:
        data = self.write(result, **options)
        return data.encode("utf-8") if isinstance(data, str) else data


_M = "songmap.export"

EXPORTERS: dict[str, Exporter] = {
    e.name: e
    for e in [
        Exporter("json", ".json", "application/json",
                 "the full songmap result (schema in songmap.schema)",
                 f"{_M}.tables:to_json", extra=""),
        Exporter("jams", ".jams", "application/json",
                 "JAMS: beat, beat_position, chord, key_mode, tempo and onset annotations",
                 f"{_M}.jams:to_jams", requires=("jams",)),
        Exporter("lab", ".lab", "text/plain",
                 "MIREX/Isophonics chord .lab: start<TAB>end<TAB>Harte label",
                 f"{_M}.mirex:to_chord_lab", extra=""),
        Exporter("beats", ".beats", "text/plain",
                 "madmom/MIREX .beats: time<TAB>beat position in the bar",
                 f"{_M}.mirex:to_beats", extra=""),
        Exporter("sv-beats", ".csv", "text/csv",
                 "Sonic Visualiser time-instants layer: time,\"bar.beat\"",
                 f"{_M}.sonic_visualiser:to_sv_beats", extra=""),
        Exporter("sv-chords", ".csv", "text/csv",
                 "Sonic Visualiser time-instants layer: time,chord at every chord change",
                 f"{_M}.sonic_visualiser:to_sv_chords", extra=""),
        Exporter("midi", ".mid", "audio/midi",
                 "Standard MIDI file: tempo map on the beats, bar markers, click track "
                 "(accented downbeats), chord track",
                 f"{_M}.midi:to_midi", requires=("mido",)),
        Exporter("rekordbox", ".xml", "application/xml",
                 "rekordbox collection XML: beat grid (TEMPO), key, memory cue at bar 1",
                 f"{_M}.rekordbox:to_rekordbox_xml", extra="", options=("location",)),
        Exporter("csv", ".csv", "text/csv",
                 "one row per beat (bar, position, time, transient, bar tempo, chord)",
                 f"{_M}.tables:to_csv", extra="", options=("table",)),
        Exporter("jsonl", ".jsonl", "application/x-ndjson",
                 "JSON Lines, one object per beat (same columns as csv)",
                 f"{_M}.tables:to_jsonl", extra="", options=("table",)),
        Exporter("png", ".png", "image/png",
                 "picture: beat ticks, numbered bars, chord per bar (waveform when audio is given)",
                 "songmap.plot:render_png", requires=("matplotlib",), extra="plot",
                 options=("samples", "sr", "width_px", "height_px")),
    ]
}


def get_exporter(fmt: str) -> Exporter:
    """The exporter called ``fmt`` (case-insensitive); a clear error for unknown names."""
    key = fmt.strip().lower()
    if key not in EXPORTERS:
        raise InvalidParameterError(
            f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORTERS)}"
        )
    return EXPORTERS[key]


def export(result: AnalysisResult, fmt: str, **options: Any) -> bytes:
    """``result`` written in format ``fmt``, as bytes."""
    return get_exporter(fmt).to_bytes(result, **options)


def save(result: AnalysisResult, fmt: str, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write ``result`` in format ``fmt`` to ``path`` (atomically) and return the path."""
    from songmap.outputs import write_whole

    write_whole(path, export(result, fmt, **options))
    return Path(path)


__all__ = ["EXPORTERS", "Exporter", "MissingDependencyError", "export", "get_exporter", "save"]
