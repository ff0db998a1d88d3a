#!/usr/bin/env python3
"""Beat offsets on synthetic songs measured from where their notes are heard to start.

    python benchmarks/audible_onsets.py MANIFEST PRED_DIR

``make_corpus.py`` annotates every beat at its MIDI note-on. A soundfont's sample does
not always sound at full strength from its first sample: FluidR3's guitars and strings
ramp up over 10-25 ms, so their attack is heard several ms after the note-on, and an
annotator (or a detector) places the beat there. For every instrument the drumless
constant-tempo songs of MANIFEST comp with, this renders isolated notes through the
corpus' own FluidSynth call and latency trim and reads where songmap's attack detector
(``songmap.rhythm.attacks.attack_feet``) puts their start, together with the first
sample and the time to half level. It then prints the pooled beat offset of the
predictions in PRED_DIR (``benchmarks/accuracy.py --out``) both ways: from the note-on,
as ``accuracy.py`` does, and from the comp instrument's audible start on drumless songs
(songs with drums keep the note-on: a drum hit starts at once).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "corpus"))


def attack_of(program: int) -> dict[str, float]:
    """Where isolated notes of a General MIDI ``program`` start (s after the note-on):
    first sample, half of the note's level, songmap's attack foot (medians of 20 notes)."""
    import make_corpus as mc
    import pretty_midi
    import soundfile as sf

    from songmap.rhythm.attacks import attack_feet

    pm = pretty_midi.PrettyMIDI(resolution=960)
    inst = pretty_midi.Instrument(program=program)
    onsets = 0.5 + 0.8 * np.arange(20)
    for i, t in enumerate(onsets):
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=52 + i % 8, start=float(t),
                                           end=float(t) + 0.4))
    pm.instruments.append(inst)
    with tempfile.TemporaryDirectory() as tmp:
        pm.write(f"{tmp}/n.mid")
        mc.render_fluidsynth(f"{tmp}/n.mid", f"{tmp}/n.wav", mc.find_soundfont())
        audio, sr = sf.read(f"{tmp}/n.wav", always_2d=True)
    mono = audio.mean(axis=1)
    starts = onsets + mc.ENGINE_LATENCY_S
    first, half = [], []
    for t in starts:
        seg = np.abs(mono[int(t * sr):int((t + 0.15) * sr)])
        level = np.maximum.accumulate(seg)
        first.append(np.argmax(seg > 1e-4) / sr)
        half.append(np.argmax(level >= 0.5 * level[-1]) / sr)
    feet = attack_feet(mono.astype(np.float32), sr, starts) - starts
    return {"first": float(np.median(first)), "half": float(np.median(half)),
            "foot": float(np.nanmedian(feet))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("pred_dir", help="one prediction JSON per clip (accuracy.py --out .../songmap)")
    args = ap.parse_args()
    from accuracy import grid_row

    clips = json.loads(Path(args.manifest).read_text())["clips"]
    attacks: dict[int, dict[str, float]] = {}
    from_note, from_heard = [], []
    print("| clip | comp program | style | offset from note-on (ms) | comp attack foot (ms) "
          "| offset from audible start (ms) |\n|---|---|---|---|---|---|")
    for clip in clips:
        pred = json.loads((Path(args.pred_dir) / f"{clip['id']}.json").read_text())
        row = grid_row(clip["ground_truth"], pred)
        if not row.get("constant") or not row.get("offsets"):
            continue
        offsets = np.asarray(row["offsets"]) * 1000.0
        gen = clip.get("generator", {})
        late = 0.0
        if not gen.get("drums", True):
            program = int(gen["comp_prog"])
            if program not in attacks:
                attacks[program] = attack_of(program)
            late = attacks[program]["foot"] * 1000.0
            print(f"| {clip['id']} | {program} | {gen.get('comp_style')} | {offsets.mean():.2f} "
                  f"| {late:.1f} | {offsets.mean() - late:.2f} |")
        from_note.append(offsets)
        from_heard.append(offsets - late)
    print("\n| program | first sample (ms) | half level (ms) | attack foot (ms) |\n|---|---|---|---|")
    for program, a in sorted(attacks.items()):
        print(f"| {program} | {a['first'] * 1000:.1f} | {a['half'] * 1000:.1f} "
              f"| {a['foot'] * 1000:.1f} |")
    if from_note:
        print(f"\nconstant-tempo clips {len(from_note)}: mean beat offset from the note-on "
              f"{np.concatenate(from_note).mean():.2f} ms, from the audible start "
              f"{np.concatenate(from_heard).mean():.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
