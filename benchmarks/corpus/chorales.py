#!/usr/bin/env python3
"""Bach chorales from music21's corpus, rendered with FluidSynth, with exact labels.

    python benchmarks/corpus/chorales.py --out DIR [--n 60] [--seed 0]

Real compositions (four-part harmony, pickups, 3/4 and 4/4, cadences) without drums, on
slow and fast attacks: each chorale is rendered on one of church organ, piano, strings
and choir "aahs" (General MIDI 19, 0, 48, 52, in turn) at 60, 72, 84 or 96 BPM.
Labels come from the score: beats on every quarter from the first note to the end of
the last (repeats expanded as the MIDI file plays them), bar lines and the pickup from
its measures, the key from its key signature and its last bass note (the tonic of the
signature's major or relative minor key; chorales ending elsewhere, modal ones, are
left out). Writes ``DIR/chorale_NNN.flac`` (mono), the MIDI file, and
``DIR/manifest.json`` in the format ``benchmarks/accuracy.py`` reads (key, beats,
downbeats, beat positions, tempo, time signature and chords). Needs music21 (the
``eval`` extra), fluidsynth, the FluidR3 GM soundfont and ffmpeg.

Chords (``beat_chords``) are read from the MIDI file, one per beat: the notes sounding in
the beat, each pitch class weighed by how long it sounds there, named by the chord whose
tones hold the most of that weight. A seventh chord only where the seventh sounds for
more than half the beat (a passing eighth makes none); diminished and half-diminished
chords, which mir_eval's majmin and sevenths leave out, are named as such; equal
neighbours are joined. Passing notes and suspensions make these labels approximate where
the harmony moves within a beat.

    python benchmarks/corpus/chorales.py --out DIR --relabel   # add chords to a rendered set
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
PROGRAMS = (19, 0, 48, 52)  # church organ, acoustic piano, strings, choir aahs
#: Tempi (quarters a minute) drawn from: where chorales are sung and played.
TEMPI = (60, 72, 84, 96)
#: FluidSynth's delay (s) from a note-on to its sound, as make_corpus.py corrects it.
LATENCY_S = 0.0022


def chorale_key(score) -> str | None:
    """mir_eval key of a chorale: its signature's major or relative minor, whichever
    tonic its last bass note is; None when it is neither (a modal ending)."""
    from music21 import key as m21key

    signatures = score.recurse().getElementsByClass("KeySignature")
    bass = score.parts[-1].flatten().notes if len(score.parts) >= 4 else []
    if not signatures or not bass:
        return None
    last = bass[-1]
    pc = (last.pitch if hasattr(last, "pitch") else last.pitches[0]).pitchClass
    for mode in ("major", "minor"):
        k = m21key.KeySignature(signatures[0].sharps).asKey(mode)
        if pc == k.tonic.pitchClass:
            return f"{k.tonic.name.replace('-', 'b')} {mode}"
    return None


def beat_grid(score, seconds_per_quarter: float) -> tuple[list[float], list[int], int] | None:
    """Beat times (s), their 1-based positions in the bar and beats per bar of a score
    in 3/4 or 4/4 (None otherwise): one beat per quarter from its first note to the end
    of its last; a pickup's beats take the last positions of a bar."""
    signatures = score.recurse().getElementsByClass("TimeSignature")
    if not signatures or signatures[0].denominator != 4 or signatures[0].numerator not in (3, 4):
        return None
    per_bar = signatures[0].numerator
    notes = score.flatten().notes
    first = min(n.offset for n in notes)
    end = max(n.offset + n.quarterLength for n in notes)
    times, positions = [], []
    for measure in score.parts[0].getElementsByClass("Measure"):
        for q in range(int(round(measure.duration.quarterLength))):
            offset = measure.offset + q
            if first - 1e-6 <= offset < end - 1e-6:
                times.append(float(offset) * seconds_per_quarter + LATENCY_S)
                positions.append(int(round(measure.paddingLeft + q)) % per_bar + 1)
    return times, positions, per_bar


#: Chord qualities (Harte shorthand) and their intervals above the root, triads first.
QUALITIES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "7": (0, 4, 7, 10),
             "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10),
             "dim7": (0, 3, 6, 9)}
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def name_chord(weights: list[float]) -> str:
    """Harte label of 12 pitch-class weights (beats sounding), "N" when silent.

    The chord whose tones hold the most weight, less the weight outside it; the root and
    the third must sound; a seventh chord only where its seventh sounds for more than half
    the beat (a passing eighth makes none)."""
    total = sum(weights)
    if total <= 0:
        return "N"
    best, best_score = "N", -1e9
    for root in range(12):
        if weights[root] <= 0:
            continue
        for quality, intervals in QUALITIES.items():
            tones = {(root + i) % 12 for i in intervals}
            if weights[(root + intervals[1]) % 12] <= 0:
                continue
            if len(intervals) == 4 and weights[(root + intervals[3]) % 12] <= 0.5:
                continue
            inside = sum(weights[p] for p in tones)
            score = inside - (total - inside) - 0.01 * len(intervals)
            if score > best_score:
                best, best_score = f"{NAMES[root]}:{quality}", score
    return best


def beat_chords(midi: Path, beat_times: list[float]) -> list[list]:
    """Chord segments ``[start, end, label]`` (s), one chord per beat of ``beat_times``
    (the last beat as long as the one before it), from the notes of ``midi``."""
    import pretty_midi

    notes = [n for inst in pretty_midi.PrettyMIDI(str(midi)).instruments for n in inst.notes]
    bounds = list(beat_times) + [2 * beat_times[-1] - beat_times[-2]]
    segments: list[list] = []
    for start, end in itertools.pairwise(bounds):
        weights = [0.0] * 12
        for n in notes:
            # note times are the score's; beat times carry FluidSynth's latency
            overlap = min(end, n.end + LATENCY_S) - max(start, n.start + LATENCY_S)
            if overlap > 0:
                weights[n.pitch % 12] += overlap / (end - start)
        label = name_chord(weights)
        if segments and segments[-1][2] == label:
            segments[-1][1] = end
        else:
            segments.append([start, end, label])
    return segments


def relabel(out: Path) -> int:
    """Add ``beat_chords`` to every clip of ``out``/manifest.json from its MIDI file."""
    manifest = json.loads((out / "manifest.json").read_text())
    for clip in manifest["clips"]:
        truth = clip["ground_truth"]
        truth["chords"] = beat_chords(out / f"{clip['id']}.mid", truth["beats"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"chords for {len(manifest['clips'])} chorales in {out}", file=sys.stderr)
    return 0


def render(score, program: int, bpm: float, stem: Path) -> float:
    """Write ``stem``.mid and a mono ``stem``.flac of the score on one GM program at
    ``bpm`` quarters a minute; returns the MIDI file's tempo (BPM)."""
    import pretty_midi
    from music21 import instrument, tempo

    for old in list(score.recurse().getElementsByClass(("Instrument", "MetronomeMark"))):
        score.remove(old, recurse=True)
    for part in score.parts:
        part.insert(0, instrument.instrumentFromMidiProgram(program))
        part.insert(0, tempo.MetronomeMark(number=bpm))
    midi = stem.with_suffix(".mid")
    score.write("midi", fp=str(midi))
    # rewritten by pretty_midi, which pairs every note-on with its note-off: music21's
    # file can leave a repeated note sounding at a repeat's seam (an organ then holds it
    # for ever and FluidSynth never stops writing)
    pm = pretty_midi.PrettyMIDI(str(midi))
    tempi = pm.get_tempo_changes()[1]
    if len(tempi) != 1:
        raise ValueError(f"{len(tempi)} tempi")
    pm.write(str(midi))
    wav = stem.with_suffix(".wav")
    # reverb and chorus off, as make_corpus.py renders; bounded in time all the same
    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-F", str(wav), "-r", "44100",
                    SOUNDFONT, str(midi)], check=True, capture_output=True,
                   timeout=60 + 4 * pm.get_end_time())
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), "-ac", "1",
                    str(stem.with_suffix(".flac"))], check=True)
    wav.unlink()
    return float(tempi[0])


def main() -> int:
    from music21 import corpus

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--relabel", action="store_true",
                    help="only add chords to the set already in --out")
    args = ap.parse_args()
    out = Path(args.out)
    if args.relabel:
        return relabel(out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(str(f) for f in corpus.chorales.Iterator(
        numberingSystem="riemenschneider", returnType="filename"))
    rng = random.Random(args.seed)
    rng.shuffle(names)
    clips = []
    for index, name in enumerate(names):
        if len(clips) >= args.n:
            break
        try:
            score = corpus.parse(name).expandRepeats()
        except Exception:  # noqa: BLE001 - a chorale music21 cannot read or unfold is skipped
            continue
        key = chorale_key(score)
        if key is None or len(score.flatten().notes) < 40:
            continue
        stem = out / f"chorale_{index:03d}"
        program = PROGRAMS[len(clips) % len(PROGRAMS)]
        try:
            bpm = render(score, program, rng.choice(TEMPI), stem)
        except (ValueError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
            stem.with_suffix(".wav").unlink(missing_ok=True)
            continue
        grid = beat_grid(score, 60.0 / bpm)
        if grid is None:
            continue
        times, positions, per_bar = grid
        chords = beat_chords(stem.with_suffix(".mid"), times)
        clips.append({
            "id": stem.name, "audio": f"{stem.name}.flac", "source": "chorale",
            "music21": name.split("/")[-1], "program": program,
            "generator": {"tempo_profile": "constant", "pickup": int(positions[0] != 1)},
            "ground_truth": {
                "key": key, "tempo": bpm, "beats": times, "beat_positions": positions,
                "downbeats": [t for t, p in zip(times, positions) if p == 1],
                "time_signature": f"{per_bar}/4", "beats_per_bar": per_bar, "chords": chords},
        })
        print(f"{stem.name} {name.split('/')[-1]:12s} {key:9s} {per_bar}/4 {bpm:5.1f} BPM "
              f"program {program}", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps({"clips": clips}, indent=1))
    print(f"{len(clips)} chorales in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
