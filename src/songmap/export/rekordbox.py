"""rekordbox collection XML (``File > Import > Import Collection (XML)`` / the XML bridge).

Follows rekordbox's published "xml format list" (``DJ_PLAYLISTS`` > ``PRODUCT``,
``COLLECTION`` > ``TRACK`` with ``TEMPO`` and ``POSITION_MARK`` children, ``PLAYLISTS``):

- ``TRACK``: ``Name``, ``Kind``, ``TotalTime`` (whole seconds), ``AverageBpm``, ``SampleRate``,
  ``Tonality`` (rekordbox's classic notation: ``Am``, ``C``, ``F#m``, ``Bb``), ``Location``
  (``file://localhost/`` URI; pass ``location=`` the audio path, otherwise the bare file name
  is written and rekordbox will ask where the file is), ``Comments`` (Camelot / Open Key).
- ``TEMPO``: the beat grid. ``Inizio`` = start of a grid segment (s), ``Bpm``, ``Metro``
  (``"4/4"``), ``Battito`` = position in the bar of the beat at ``Inizio``. Beats inside a
  segment are at ``Inizio + k * 60 / Bpm``. A new segment starts wherever that prediction
  would miss a tracked beat by 1 ms or more (with the written, rounded values), or where the
  bar count breaks, so steady tracks get a few entries and drifting ones one per beat.
- ``POSITION_MARK``: a memory cue (``Type="0"``, ``Num="-1"``) at the first downbeat.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING
from urllib.parse import quote
from xml.etree import ElementTree as ET

import numpy as np

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult

#: Largest miss (s) allowed between a written grid and a tracked beat: under the 5 ms
#: a DJ grid is checked against, with the written rounding (Inizio to 1 ms) inside it.
GRID_TOLERANCE_S = 0.004
_KINDS = {".mp3": "MP3 File", ".m4a": "M4A File", ".aac": "M4A File", ".mp4": "M4A File",
          ".wav": "WAV File", ".aif": "AIFF File", ".aiff": "AIFF File", ".flac": "FLAC File"}


def tonality(label: str) -> str | None:
    """``"A minor"`` -> ``"Am"``, ``"Bb major"`` -> ``"Bb"``; None when undecided."""
    if label == "N":
        return None
    tonic, mode = label.split()
    return tonic + ("m" if mode == "minor" else "")


def location_uri(path: str | os.PathLike[str]) -> str:
    """``file://localhost/...`` URI as rekordbox writes it (percent-encoded, ``/`` separators)."""
    p = PurePath(path)
    if p.is_absolute() or p.drive:
        text = p.as_posix()
    else:
        text = Path(p).as_posix()  # relative: kept relative, rekordbox will ask to relocate
    if not text.startswith("/"):
        text = "/" + text
    return "file://localhost" + quote(text, safe="/:")


def _fmt_bpm(bpm: float) -> str:
    return f"{bpm:.2f}"


def _fmt_s(t: float) -> str:
    return f"{t:.3f}"


def _bpm_candidates(start_s: float, end_s: float, n_beats: int) -> list[float]:
    """Bpm values with 2 decimals (as written) near the mean tempo from ``start_s`` to ``end_s``."""
    exact = 60.0 * n_beats / (end_s - start_s)
    down = math.floor(exact * 100.0) / 100.0
    return [round(exact, 2), down, round(down + 0.01, 2)]


def _fits(starts: np.ndarray, times: np.ndarray, i: int, j: int, bpm: float) -> bool:
    """Does the entry (``starts[i]``, ``bpm``) predict beats ``i+1..j`` within tolerance?"""
    k = np.arange(1, j - i + 1)
    return bool(np.all(np.abs(starts[i] + k * 60.0 / bpm - times[i + 1:j + 1]) < GRID_TOLERANCE_S))


def grid_segments(result: AnalysisResult) -> list[tuple[float, float, int, int, str]]:
    """``(inizio_s, bpm, battito, n_beats, metro)`` per ``TEMPO`` entry, as written (rounded).

    An entry starts at every tempo-map segment and every meter section (``Metro`` of that
    section, ``Battito`` the position of its first beat). From there it grows greedily
    while one (Inizio, Bpm) pair predicts every beat in it within ``GRID_TOLERANCE_S``
    (the segment's own tempo tried first) and the bar count runs on regularly; where it
    cannot, a new entry starts. A steady segment is one entry; beats that wander off any
    line get as many as they need. Where a new entry starts, its ``Inizio`` may not fall after
    the old entry's own prediction for that beat, or a player would draw the beat twice.
    """
    from songmap.export.grid import section_of_beats, section_start_beats, tempo_segment_starts

    beats = result.beat_transient_markers
    times = result.beat_times()
    starts = np.round(times, 3)  # Inizio is written with millisecond resolution
    pos = [b.beat_position for b in beats]
    section = section_of_beats(result)
    hints = tempo_segment_starts(result)
    breaks = sorted(set(hints) | set(section_start_beats(result)))
    out: list[tuple[float, float, int, int, str]] = []
    i, n = 0, len(times)
    while i < n:
        sec = section[i]
        bpb = sec.beats_per_bar if sec is not None else result.time_signature.beats_per_bar
        metro = sec.label if sec is not None else result.time_signature.label
        stop = next((b for b in breaks if b > i), n)  # the next forced entry (or the end)
        hint = hints.get(i)
        if hint is None:  # inside a segment: its tempo is still the best first guess
            hint = next((hints[b] for b in sorted(hints, reverse=True) if b <= i), None)
        if i == n - 1:
            bpm = out[-1][1] if out else (round(result.tempo.bpm, 2) or 120.0)
            out.append((float(starts[i]), bpm, pos[i], 1, metro))
            break
        # one beat always works: the Bpm rounded down puts the next beat at or after its Inizio
        one = math.floor(6000.0 * (1 - 1e-12) / (starts[i + 1] - starts[i])) / 100.0
        best = (i + 1, one, False, float(starts[i + 1]))
        for j in range(i + 1, min(stop, n - 1) + 1):
            forced = j == stop  # beat j starts the next entry: this one must reach it cleanly
            if not forced and pos[j] != (pos[i] - 1 + (j - i)) % bpb + 1:
                break  # bar counting must continue regularly from beat i
            last = j - 1 if forced else j  # the last beat this entry has to predict
            if last == i:
                continue  # one beat before a forced entry: the initial one-beat entry
            candidates = ([hint] if hint else []) + _bpm_candidates(starts[i], starts[last], last - i)
            fits = [float(b) for b in candidates if b > 0 and _fits(starts, times, i, last, b)]
            if not fits:
                break
            if j == n - 1 and not forced:
                best = (j, fits[0], True, 0.0)  # reaches the last beat: no next Inizio to respect
                continue
            for b in fits:
                # the next Inizio may not come after this entry's own beat j (a player would
                # draw both): written at that beat, rounded down to the ms, when that is
                # still within tolerance of the tracked beat
                pred = starts[i] + (j - i) * 60.0 / b
                nxt = min(float(starts[j]), math.floor(pred * 1000.0 + 1e-6) / 1000.0)
                if abs(nxt - times[j]) < GRID_TOLERANCE_S:
                    best = (j, b, False, nxt)
                    break
        j, bpm, to_end, nxt = best
        out.append((float(starts[i]), bpm, pos[i], j - i + (1 if to_end else 0), metro))
        if to_end:
            break
        starts[j] = nxt
        i = j
    return out


def _track_element(parent: ET.Element, result: AnalysisResult, track_id: int,
                   location: str | os.PathLike[str] | None) -> ET.Element:
    r = result
    name = PurePath(r.filename).stem
    attrs = {
        "TrackID": str(track_id),
        "Name": name,
        "Kind": _KINDS.get(PurePath(r.filename).suffix.lower(), "Audio File"),
        "TotalTime": str(int(round(r.audio.duration))),
        "AverageBpm": _fmt_bpm(r.tempo.bpm),
        "SampleRate": str(r.audio.sample_rate),
        "Location": location_uri(location if location is not None else r.filename),
    }
    tone = tonality(r.key.label)
    if tone:
        attrs["Tonality"] = tone
        attrs["Comments"] = (f"{r.key.camelot} / {r.key.open_key} - "
                             f"{r.time_signature.label} (songmap)")
    track = ET.SubElement(parent, "TRACK", attrs)
    for inizio, bpm, battito, _n, metro in grid_segments(r):
        ET.SubElement(track, "TEMPO", {"Inizio": _fmt_s(inizio), "Bpm": _fmt_bpm(bpm),
                                       "Metro": metro, "Battito": str(battito)})
    if r.downbeat_timeline:
        ET.SubElement(track, "POSITION_MARK", {
            "Name": "Bar 1", "Type": "0", "Start": _fmt_s(r.downbeat_timeline[0].timestamp),
            "Num": "-1"})
    return track


def collection_xml(results: Sequence[AnalysisResult],
                   locations: Sequence[str | os.PathLike[str] | None] | None = None) -> str:
    """One collection holding several analysed tracks (for batch runs)."""
    from songmap._version import __version__

    locs = list(locations) if locations is not None else [None] * len(results)
    if len(locs) != len(results):
        from songmap.errors import InvalidParameterError

        raise InvalidParameterError(
            f"{len(results)} results but {len(locs)} locations; give one location per result")
    root = ET.Element("DJ_PLAYLISTS", {"Version": "1.0.0"})
    ET.SubElement(root, "PRODUCT",
                  {"Name": "songmap", "Version": __version__, "Company": "songmap"})
    coll = ET.SubElement(root, "COLLECTION", {"Entries": str(len(results))})
    for i, (res, loc) in enumerate(zip(results, locs, strict=True), start=1):
        _track_element(coll, res, i, loc)
    playlists = ET.SubElement(root, "PLAYLISTS")
    ET.SubElement(playlists, "NODE", {"Type": "0", "Name": "ROOT", "Count": "0"})
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_rekordbox_xml(result: AnalysisResult,
                     location: str | os.PathLike[str] | None = None) -> str:
    """A collection with this one track; ``location`` is the audio file's path."""
    return collection_xml([result], [location])
