#!/usr/bin/env python3
"""The beat grid on real recordings without labels (issue 12), as a DJ would load it.

    python benchmarks/grid_checks.py TRACKS_DIR [--cache DIR] [--json FILE]

TRACKS_DIR holds ``manifest.json`` and the audio (``benchmarks/corpus/realmusic/
get_tracks.sh``). Per track: the BPM, how sure songmap is of the tempo, the meter and the
grid, the tempo map's segments, the ``TEMPO`` entries of its rekordbox XML and how far the
grid a player rebuilds from them (read back with pyrekordbox, an independent reader, when
it is installed; else ElementTree) lies from songmap's beats from the first bar to the
last (at most 5 ms is what the exports are held to), and the bars of another length than
the song's meter. The manifest's ``beat`` impression ("steady", "weak", "none") is shown
beside them: a steady electronic track should get one or two segments and a high tempo
confidence, a drone a low one. Network outputs are cached in --cache (one ``.npz`` per
decoded audio), so decisions are re-run in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

warnings.filterwarnings("ignore")


def tempo_entries(xml_path: Path) -> list[tuple[float, float]]:
    """(Inizio s, Bpm) of the first track's TEMPO entries."""
    try:
        from pyrekordbox.rbxml import RekordboxXml
    except ImportError:
        track = ET.parse(xml_path).getroot().find("COLLECTION/TRACK")
        return [(float(t.get("Inizio")), float(t.get("Bpm"))) for t in track.findall("TEMPO")]
    return [(float(t.Inizio), float(t.Bpm)) for t in RekordboxXml(str(xml_path)).get_track(0).tempos]


def rebuilt_grid_error(entries: list[tuple[float, float]], beats: np.ndarray,
                       first_bar_s: float) -> float:
    """Largest distance (s) from a beat (from ``first_bar_s`` on) to the nearest beat of
    the grid a player lays from ``entries``: each entry's beats run at its tempo from its
    start until the next entry starts (its start is written to the millisecond), the
    last one on past the last beat."""
    starts = [s for s, _ in entries] + [float(beats[-1]) + 1.0]
    grid = np.concatenate([
        np.arange(start, stop - 0.001, 60.0 / bpm)
        for (start, bpm), stop in zip(entries, starts[1:], strict=True)])
    kept = beats[beats >= first_bar_s - 1e-6]
    if len(kept) == 0 or len(grid) == 0:
        return 0.0
    i = np.clip(np.searchsorted(grid, kept), 1, len(grid) - 1)
    return float(np.max(np.minimum(np.abs(kept - grid[i - 1]), np.abs(kept - grid[i]))))


def track_row(result, xml_path: Path) -> dict:
    """What a DJ sees of one analysed track."""
    from songmap.export import save

    save(result, "rekordbox", xml_path)
    entries = tempo_entries(xml_path)
    beats = result.beat_times()
    first_bar = result.downbeat_timeline[0].timestamp if result.downbeat_timeline else 0.0
    main = result.time_signature.label
    return {
        "bpm": result.tempo.bpm,
        "tempo_confidence": result.tempo.confidence,
        "meter": main,
        "meter_confidence": result.time_signature.confidence,
        "grid_confidence": result.grid_confidence,
        "segments": len(result.tempo_map),
        "tempo_entries": len(entries),
        "grid_error_ms": 1000.0 * rebuilt_grid_error(entries, beats, first_bar) if entries else None,
        "odd_bars": sum(s.bars for s in result.meter_sections if s.label != main),
    }


def markdown_row(track_id: str, r: dict) -> str:
    """One track's row of the printed table."""
    grid = "-" if r["grid_confidence"] is None else f"{r['grid_confidence']:.2f}"
    err = "-" if r["grid_error_ms"] is None else f"{r['grid_error_ms']:.1f}"
    return (f"| {track_id} | {r['beat']} | {r['bpm']:.2f} | {r['tempo_confidence']:.2f} "
            f"| {r['meter']} ({r['meter_confidence']:.2f}) | {grid} | {r['segments']} "
            f"| {r['tempo_entries']} | {err} | {r['odd_bars']} |")


def check_tracks(root: Path, cache: str | None) -> dict:
    """Every track of ``root``'s manifest analysed and exported, its row printed."""
    from songmap.audio import load_audio
    from songmap.netcache import NetworkCache
    from songmap.pipeline import Analyzer

    manifest = json.loads((root / "manifest.json").read_text())
    analyzer = Analyzer(network_cache=NetworkCache(directory=cache, max_files=1000)
                        if cache else None)
    print("| track | beat (manifest) | BPM | tempo conf | meter (conf) | grid conf | segments "
          "| rekordbox TEMPO entries | rebuilt grid max off (ms) | odd bars |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for track in manifest["tracks"]:
            result = analyzer.analyze_audio(load_audio(root / track["file"]), filename=track["file"])
            rows[track["id"]] = {**track_row(result, Path(tmp) / f"{track['id']}.xml"),
                                 "beat": track.get("beat", "")}
            print(markdown_row(track["id"], rows[track["id"]]), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tracks", help="folder with manifest.json (benchmarks/corpus/realmusic)")
    ap.add_argument("--cache", help="network outputs, one .npz per decoded audio")
    ap.add_argument("--json", help="per-track rows here")
    args = ap.parse_args()
    rows = check_tracks(Path(args.tracks), args.cache)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
