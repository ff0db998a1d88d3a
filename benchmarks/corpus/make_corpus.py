#!/usr/bin/env python3
"""Synthetic music corpus with exact ground truth (beats, downbeats, tempo, meter, key, chords).

Copied from the project's shared eval script (/work/shared/eval/make_corpus.py, 2026-11-26) and
extended with --irregular: 4/4 songs whose bars are not all equal (an inserted 2- or 3-beat
bar, a 3/4 bridge, a 7/4 passage), for the bar tracker's meter changes. Without --irregular
(and --modulate) it writes exactly what the shared script writes.

Also extended with --modulate SHARE, for the harmony work (issue 18; merged here from the
former benchmarks/corpus/make_harmony_corpus.py, itself a copy of the shared script): that
share of the songs changes key once or twice, at a bar line between sections (up a semitone
or a whole tone, to the dominant or subdominant, to the relative or the parallel key). Every
chord, the melody and the ground-truth labels follow the key of their section. With
--modulate every song is at least 60 s long so that each key holds for 8+ bars, song ids
start with "harm_" instead of "synth_" (when SHARE > 0), and the ground truth has
``key_segments`` [[start, end, key]] (one segment when the key never changes) and
``key_change_bars`` (0-based bar index of each change); ``key`` is then the key that lasts
longest (--modulate 0: these fields, but no key changes and "synth_" ids, as the old script
did). Without --modulate none of this happens. The share now reaches the worker processes
as an argument (the old script set a module global, which only --jobs under fork saw).

The two options combine: --irregular --modulate gives irregular-bar songs of which SHARE
change key (the change bars count the inserted bars; the key draws then use other random
streams than the irregular bars, so the two are independent). Each option alone writes
exactly what the script it came from wrote.

Also extended with --meter M (2026-11-28): every song in meter M, one of 4/4, 3/4, 6/8 and
the compound 9/8 and 12/8 (three and four dotted-quarter beats, each of three eighths; a
backbeat on 2 and 4 in 12/8), its tempo drawn from its own random stream (dotted quarters
at 50-100 BPM in compound meters, quarters at 70-180 otherwise), no swing in compound
meters. The rest of each song's plan is drawn as without the option.

Deterministic from --seed: song i uses numpy Generator seeded with (seed, i).
Each song is written as MIDI (pretty_midi), rendered with the FluidSynth command line
(Debian packages `fluidsynth` + `fluid-soundfont-gm`), post-processed (mono mix, engine
latency correction, optional reverb / noise, gain) and saved as 16-bit FLAC at 44.1 kHz,
plus <id>.json ground truth and a manifest.json in the same common form as the real set.

Usage:
  python make_corpus.py --seed 1 --n 40 --out dev            # dev set
  python make_corpus.py --seed 2 --n 200 --out test --jobs 2  # bigger set
  python make_corpus.py --seed 1 --n 40 --out dev --verify    # + onset/beat alignment check
  python make_corpus.py --seed 11 --n 16 --out irregular --irregular mixed --long-every 0
  python make_corpus.py --seed 18 --n 40 --out keychange --modulate 0.75  # key changes
  python make_corpus.py --seed 21 --n 16 --out c128 --meter 12/8 --long-every 0  # 12/8 feels

Ground-truth conventions
  beats      every beat (quarter note in 4/4 and 3/4, dotted quarter in 6/8, 9/8, 12/8), incl.
             pickup beats
  downbeats  first beat of every complete bar (pickup beats are not downbeats)
  meter_sections  [[start_s, first_bar (1-based), bars, beats_per_bar], ...] runs of equal bars
  tempo      median of 60/IBI over the song (beat level above); `tempo_curve` has per-beat BPM
  key        global key, "C major" / "A minor" (mir_eval key syntax)
  key_segments, key_change_bars  (--modulate) key sections and the bars where the key changes
  chords     [[start, end, label]] Harte syntax, contiguous, "N" before the first and after the last bar
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SR = 44100
SOUNDFONT_CANDIDATES = ['/usr/share/sounds/sf2/FluidR3_GM.sf2', '/usr/share/sounds/sf2/default-GM.sf2']
# Engine latency of FluidSynth 2.3 fast-render (-F): note-ons are applied at the start of the next
# 64-sample block plus ~1.5 ms.  Measured on isolated hi-hat/piano hits (first sample above the
# noise floor, mean over 30 random onsets, sd 0.5 ms): 2.2 ms.  We drop this many samples from
# the start of every render so that audio event times == MIDI times (see calibrate()).
ENGINE_LATENCY_S = 0.0022

PC_SHARP = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B']
PC_FLAT = ['C', 'Db', 'D', 'Eb', 'E', 'F', 'Gb', 'G', 'Ab', 'A', 'Bb', 'B']
MAJOR_KEY_NAMES = ['C', 'Db', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B']
MINOR_KEY_NAMES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'G#', 'A', 'Bb', 'B']
FLAT_MAJOR_TONICS = {1, 3, 5, 8, 10}      # Db Eb F Ab Bb
FLAT_MINOR_TONICS = {0, 2, 3, 5, 7, 10}   # c d eb f g bb

QUAL_INTERVALS = {
    'maj': [0, 4, 7], 'min': [0, 3, 7], 'dim': [0, 3, 6], 'aug': [0, 4, 8], 'sus4': [0, 5, 7],
    'sus2': [0, 2, 7], 'maj7': [0, 4, 7, 11], 'min7': [0, 3, 7, 10], '7': [0, 4, 7, 10],
    'hdim7': [0, 3, 6, 10], 'dim7': [0, 3, 6, 9],
}
# interval name (Harte) of a chord tone above the root, for slash-bass inversions
INTERVAL_NAME = {3: 'b3', 4: '3', 5: '4', 6: 'b5', 7: '5', 10: 'b7', 11: '7', 2: '2'}

MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11]
MINOR_SCALE = [0, 2, 3, 5, 7, 8, 10]
MAJOR_TRIADS = ['maj', 'min', 'min', 'maj', 'maj', 'min', 'dim']
MAJOR_SEVENTHS = ['maj7', 'min7', 'min7', 'maj7', '7', 'min7', 'hdim7']
MINOR_TRIADS = ['min', 'dim', 'maj', 'min', 'maj', 'maj', 'maj']     # V major (harmonic minor)
MINOR_SEVENTHS = ['min7', 'hdim7', 'maj7', 'min7', '7', 'maj7', '7']

# diatonic progressions as scale-degree indices (0 = I / i)
MAJOR_PROGS = [
    [0, 4, 5, 3], [0, 3, 4, 0], [1, 4, 0, 0], [0, 5, 3, 4], [5, 3, 0, 4], [0, 2, 3, 4],
    [0, 3, 5, 4], [0, 5, 1, 4], [0, 3, 0, 4], [3, 4, 2, 5], [0, 4, 3, 4],
    [0, 3, 6, 2, 5, 1, 4, 0], [0, 5, 3, 4, 0, 5, 1, 4], [0, 0, 3, 3, 4, 4, 0, 0],
]
MINOR_PROGS = [
    [0, 3, 4, 0], [0, 5, 2, 6], [0, 3, 6, 2], [0, 6, 5, 4], [0, 5, 3, 4], [1, 4, 0, 0],
    [0, 3, 0, 4], [0, 6, 5, 6], [0, 3, 6, 2, 5, 1, 4, 0], [0, 0, 3, 3, 4, 4, 0, 0],
]

COMP_PROGRAMS = {'piano': [0, 1, 4], 'guitar': [24, 25, 26, 27], 'organ': [16, 17, 19],
                 'strings': [48, 49], 'epiano': [4, 5]}
BASS_PROGRAMS = [32, 33, 34, 35]
MELODY_PROGRAMS = [73, 40, 65, 71, 56, 11, 80, 68]


# ----------------------------------------------------------------------------- helpers
def key_name(tonic, mode):
    return f"{(MAJOR_KEY_NAMES if mode == 'major' else MINOR_KEY_NAMES)[tonic]} {mode}"


def root_name(pc, tonic, mode):
    flat = tonic in (FLAT_MAJOR_TONICS if mode == 'major' else FLAT_MINOR_TONICS)
    return (PC_FLAT if flat else PC_SHARP)[pc % 12]


class Chord:
    def __init__(self, root, qual, bass_interval=0):
        self.root, self.qual, self.bass_interval = root % 12, qual, bass_interval

    def pcs(self):
        return [(self.root + i) % 12 for i in QUAL_INTERVALS[self.qual]]

    def bass_pc(self):
        return (self.root + self.bass_interval) % 12

    def label(self, tonic, mode):
        s = f'{root_name(self.root, tonic, mode)}:{self.qual}'
        if self.bass_interval:
            s += '/' + INTERVAL_NAME[self.bass_interval]
        return s


def voice(chord, prev, lo=52, hi=76):
    """close voicing of chord pcs inside [lo, hi], nearest to the previous voicing."""
    pcs = chord.pcs()
    cands = []
    for base in range(lo, lo + 12):
        if base % 12 not in pcs:
            continue
        # stack remaining chord tones above base
        v = [base]
        for pc in pcs:
            if pc == base % 12:
                continue
            p = base + ((pc - base) % 12)
            v.append(p)
        v = sorted(v)
        if v[-1] <= hi:
            cands.append(v)
    if not cands:
        cands = [sorted(lo + ((pc - lo) % 12) for pc in pcs)]
    if prev is None:
        return cands[len(cands) // 2]
    pm = np.mean(prev)
    return min(cands, key=lambda v: abs(np.mean(v) - pm))


# ----------------------------------------------------------------------------- song plan
IRREGULAR_KINDS = ('insert2', 'insert3', 'bridge34', 'passage74')


#: Beats per bar of each meter --meter can set; compound meters count dotted quarters.
METER_BEATS = {'4/4': 4, '3/4': 3, '6/8': 2, '9/8': 3, '12/8': 4}
COMPOUND = ('6/8', '9/8', '12/8')


def plan_song(seed, idx, n_total, long_every=20, irregular=None, modulate=None, meter_override=None):
    rng = np.random.default_rng([seed, idx])
    # keys: a seeded permutation of the 24 keys cycles through the set -> every key appears
    perm = np.random.default_rng([seed, 10 ** 6]).permutation(24)
    k = int(perm[idx % 24])
    tonic, mode = k % 12, ('major' if k < 12 else 'minor')

    meter = rng.choice(['4/4', '3/4', '6/8'], p=[0.6, 0.2, 0.2])
    bpb = {'4/4': 4, '3/4': 3, '6/8': 2}[meter]       # beats per bar (6/8: dotted quarters)
    sub = 3 if meter == '6/8' else 2                    # eighth-note subdivisions per beat
    if meter == '6/8':
        bpm0 = float(np.exp(rng.uniform(np.log(55), np.log(110))))
    else:
        bpm0 = float(np.exp(rng.uniform(np.log(70), np.log(180))))

    # duration: every `long_every`-th song is long (~270 s, speed tests); otherwise 20..220 s,
    # skewed short (85 % log-uniform 20-100 s, 15 % uniform 100-220 s) to keep the set small
    if long_every and idx % long_every == long_every - 1:
        target = float(rng.uniform(255, 290))
    else:
        target = float(np.exp(rng.uniform(np.log(20), np.log(100)))) if rng.random() < 0.85 \
            else float(rng.uniform(100, 220))

    tempo_profile = rng.choice(['constant', 'rit', 'step', 'ramp'], p=[0.6, 0.15, 0.125, 0.125])
    swing = 0.5
    if meter != '6/8' and rng.random() < 0.25:
        swing = float(rng.uniform(0.58, 0.67))
    chords_per_bar = 1 if meter == '3/4' else int(rng.choice([1, 2], p=[0.6, 0.4]))
    vocab = rng.choice(['triads', 'sevenths', 'mixed'], p=[0.4, 0.3, 0.3])
    pickup = int(rng.choice([0, 0, 0, 1, 2])) if bpb > 2 else int(rng.choice([0, 0, 0, 1]))
    lead_sil = float(rng.uniform(0.5, 4.0)) if rng.random() < 0.4 else float(rng.uniform(0.02, 0.3))
    drums = bool(rng.random() < 0.7)
    drums_enter_bar = int(rng.choice([0, 0, 0, 4, 8])) if drums else None
    comp_kind = rng.choice(list(COMP_PROGRAMS), p=[0.35, 0.3, 0.12, 0.1, 0.13])
    comp_prog = int(rng.choice(COMP_PROGRAMS[comp_kind]))
    comp_style = rng.choice(['block', 'sustain', 'arpeggio', 'strum', 'offbeat'],
                            p=[0.3, 0.15, 0.25, 0.2, 0.1])
    if comp_kind in ('strings', 'organ') and comp_style in ('strum',):
        comp_style = 'sustain'
    if comp_kind == 'guitar' and rng.random() < 0.6:
        comp_style = 'strum'
    if comp_style == 'offbeat' and not drums:
        comp_style = 'block'
    pad = bool(rng.random() < 0.3 and comp_kind not in ('strings',))
    bass = bool(rng.random() < 0.85)
    bass_prog = int(rng.choice(BASS_PROGRAMS))
    bass_style = rng.choice(['root', 'root_fifth', 'walking', 'pulse'], p=[0.3, 0.3, 0.2, 0.2])
    melody = bool(rng.random() < 0.5)
    mel_prog = int(rng.choice(MELODY_PROGRAMS))
    reverb = None
    if rng.random() < 0.35:
        reverb = {'rt60': float(rng.uniform(0.4, 1.8)), 'wet': float(rng.uniform(0.12, 0.35))}
    noise = None
    if rng.random() < 0.35:
        noise = {'snr_db': float(rng.uniform(15, 35)), 'color': str(rng.choice(['white', 'pink']))}
    humanize_ms = float(rng.choice([0.0, 0.0, 3.0, 6.0]))
    gain_db = float(rng.uniform(-12, -1))
    if meter_override:
        # every song in the given meter; tempo from its own generator, so the rest of the
        # plan is drawn as for the standard set
        meter = meter_override
        bpb, sub = METER_BEATS[meter], 3 if meter in COMPOUND else 2
        lo, hi = (50, 100) if meter in COMPOUND else (70, 180)
        bpm0 = float(np.exp(np.random.default_rng([seed, idx, 7]).uniform(np.log(lo), np.log(hi))))
        if meter in COMPOUND:
            swing = 0.5
        if bpb == 3:
            chords_per_bar = 1
    kind = None
    if irregular:
        # a 4/4 song with irregular bars; its own generator, so regular songs stay as they were
        irng = np.random.default_rng([seed, idx, 3])
        kind = str(irng.choice(IRREGULAR_KINDS)) if irregular == 'mixed' else irregular
        meter, bpb, sub = '4/4', 4, 2
        bpm0 = float(np.exp(irng.uniform(np.log(75), np.log(170))))
        target = float(irng.uniform(45, 110))
    modulations = None
    if modulate is not None:
        # key changes from their own generators; with --irregular as well, from other streams
        # than the irregular bars' (3, 4), so that the two draws are not tied together
        s_keys, s_len = (5, 6) if kind else (3, 4)
        modulations = plan_modulations(seed, idx, tonic, mode, modulate, s_keys)
        if modulations is not None:
            target = max(target, float(np.random.default_rng([seed, idx, s_len]).uniform(60, 150)))
    return dict(irregular=kind, modulate=modulate, modulations=modulations or [], seed=seed, index=idx, tonic=int(tonic), mode=mode, meter=str(meter), bpb=bpb, sub=sub,
                bpm0=bpm0, target=target, tempo_profile=str(tempo_profile), swing=swing,
                chords_per_bar=chords_per_bar, vocab=str(vocab), pickup=pickup, lead_sil=lead_sil,
                drums=drums, drums_enter_bar=drums_enter_bar, comp_kind=str(comp_kind),
                comp_prog=comp_prog, comp_style=str(comp_style), pad=pad, bass=bass,
                bass_prog=bass_prog, bass_style=str(bass_style), melody=melody, mel_prog=mel_prog,
                reverb=reverb, noise=noise, humanize_ms=humanize_ms, gain_db=gain_db)


#: key changes (semitones the tonic moves up, or relative / parallel key) with their weights
KEY_CHANGES = [(1, 0.2), (2, 0.25), (7, 0.15), (5, 0.15), ('relative', 0.15), ('parallel', 0.1)]


def plan_modulations(seed, idx, tonic, mode, share, stream=3):
    """None (share 0: no key changes), [] (this song keeps its key) or [(fraction, tonic, mode)]:
    the song's keys after each change, the change at that fraction of the song's bars."""
    if share <= 0:
        return None
    rng = np.random.default_rng([seed, idx, stream])
    if rng.random() >= share:
        return []
    n_changes = 1 if rng.random() < 0.7 else 2
    fractions = [float(rng.uniform(0.35, 0.65))] if n_changes == 1 else \
        [float(rng.uniform(0.25, 0.4)), float(rng.uniform(0.6, 0.75))]
    out = []
    for f in fractions:
        i = rng.choice(len(KEY_CHANGES), p=[w for _, w in KEY_CHANGES])
        step = KEY_CHANGES[i][0]
        if step == 'relative':
            tonic, mode = ((tonic + 9) % 12, 'minor') if mode == 'major' else ((tonic + 3) % 12, 'major')
        elif step == 'parallel':
            mode = 'minor' if mode == 'major' else 'major'
        else:
            tonic = (tonic + int(step)) % 12
        out.append((f, int(tonic), mode))
    return out


def key_change_bars(plan, n_bars):
    """0-based bars where the key changes (multiples of 4, inside the song), with the new key."""
    out, last = [], 0
    for f, tonic, mode in plan.get('modulations') or []:
        bar = int(round(f * n_bars / 4)) * 4
        if last + 8 <= bar <= n_bars - 8:
            out.append((bar, tonic, mode))
            last = bar
    return out


def key_at_bar(plan, n_bars, bar):
    tonic, mode = plan['tonic'], plan['mode']
    for b, t, m in key_change_bars(plan, n_bars):
        if bar >= b:
            tonic, mode = t, m
    return tonic, mode


def bar_layout(plan, n_bars):
    """beats in each bar: all equal, or the plan's irregular bars placed at phrase ends.

    insert2/insert3: one or two bars of 2 (3) beats after the last bar of a 4- or 8-bar
    phrase; bridge34: 4 or 8 bars of 3/4 from a phrase start in the song's middle third;
    passage74: 2 or 4 bars of 7/4 likewise. The odd bars are added to the song's bars.
    """
    bpb, kind = plan['bpb'], plan.get('irregular')
    if not kind:
        return [bpb] * n_bars
    irng = np.random.default_rng([plan['seed'], plan['index'], 4])
    phrase = 8 if n_bars >= 24 else 4
    starts = [b for b in range(phrase, n_bars - phrase + 1, phrase)] or [n_bars // 2]
    if kind in ('insert2', 'insert3'):
        k = 2 if kind == 'insert2' else 3
        where = sorted(irng.choice(starts, size=min(len(starts), int(irng.integers(1, 3))), replace=False))
        layout = [bpb] * n_bars
        for w in reversed(where):
            layout.insert(int(w), k)
        return layout
    mid = [b for b in starts if n_bars / 3 <= b <= 2 * n_bars / 3] or starts
    at = int(irng.choice(mid))
    if kind == 'bridge34':
        n_odd, k = int(irng.choice([4, 8])), 3
    else:
        n_odd, k = int(irng.choice([2, 4])), 7
    return [bpb] * at + [k] * n_odd + [bpb] * (n_bars - at)


def meter_sections(layout, downbeat_times):
    """[[start_s, first_bar (1-based), bars, beats_per_bar], ...] for runs of equal bars."""
    out = []
    for b, (n, t) in enumerate(zip(layout, downbeat_times)):
        if out and out[-1][3] == n:
            out[-1][2] += 1
        else:
            out.append([round(float(t), 6), b + 1, 1, int(n)])
    return out


def beat_times(plan, n_bars, rng, layout=None):
    """times of every beat (pickup beats first), per-beat bpm."""
    bpb, bpm0 = plan['bpb'], plan['bpm0']
    layout = [bpb] * n_bars if layout is None else layout
    bar_start = np.concatenate([[0], np.cumsum(layout)]).astype(int)
    n_beats = plan['pickup'] + int(bar_start[-1]) + 1      # +1: closing beat after last bar
    bpm = np.full(n_beats, bpm0)
    prof = plan['tempo_profile']
    if prof == 'rit':
        r = min(n_beats - 1, bpb * int(rng.integers(2, 5)))
        end_ratio = rng.uniform(0.7, 0.85)
        bpm[-r:] = bpm0 * np.linspace(1.0, end_ratio, r)
    elif prof == 'step':
        lo, hi = (55, 110) if plan['meter'] in COMPOUND else (70, 180)
        f = rng.choice([rng.uniform(0.78, 0.9), rng.uniform(1.1, 1.25)])
        bar = max(2, int(n_bars * rng.uniform(0.35, 0.65)) // 4 * 4)
        b = plan['pickup'] + int(bar_start[min(bar, len(layout))])
        bpm[b:] = np.clip(bpm0 * f, lo, hi)
        plan['step_at_bar'] = bar
    elif prof == 'ramp':
        f = rng.uniform(0.85, 1.15)
        bpm = bpm0 * np.linspace(1.0, f, n_beats)
    t = np.zeros(n_beats)
    t[0] = plan['lead_sil']
    for i in range(1, n_beats):
        t[i] = t[i - 1] + 60.0 / bpm[i - 1]
    return t, bpm


class Timeline:
    """maps a position measured in beats (float, 0 = first beat incl. pickup) to seconds."""

    def __init__(self, times, swing, sub):
        self.t, self.swing, self.sub = times, swing, sub

    def __call__(self, pos):
        k = int(np.floor(pos + 1e-9))
        k = min(max(k, 0), len(self.t) - 2)
        frac = pos - k
        if self.sub == 2 and self.swing != 0.5:          # swing maps 0.5 -> swing ratio
            frac = frac / 0.5 * self.swing if frac <= 0.5 else \
                self.swing + (frac - 0.5) / 0.5 * (1 - self.swing)
        return float(self.t[k] + frac * (self.t[k + 1] - self.t[k]))


def build_progression(plan, n_bars, rng):
    """list of (bar_index, beat_offset_in_bar, Chord, (tonic, mode) of its bar) covering all bars."""
    tonic, mode = plan['tonic'], plan['mode']
    scale = MAJOR_SCALE if mode == 'major' else MINOR_SCALE
    triads = MAJOR_TRIADS if mode == 'major' else MINOR_TRIADS
    sevenths = MAJOR_SEVENTHS if mode == 'major' else MINOR_SEVENTHS
    progs = MAJOR_PROGS if mode == 'major' else MINOR_PROGS
    cpb = plan['chords_per_bar']
    a, b = rng.choice(len(progs), 2, replace=False)
    sections = []
    sec_bars = 8 if n_bars >= 16 else 4
    form = ['A', 'A', 'B', 'A'] if n_bars >= 32 else ['A', 'B']
    slots = n_bars * cpb
    out = []
    si = 0
    while len(out) < slots:
        prog = progs[a] if form[si % len(form)] == 'A' else progs[b]
        per_sec = sec_bars * cpb
        for j in range(per_sec):
            if len(out) >= slots:
                break
            out.append(prog[j % len(prog)])
        si += 1
    out[-1] = 0                      # end on the tonic
    chords = []
    for s, deg in enumerate(out):
        tonic, mode = key_at_bar(plan, n_bars, s // cpb)
        scale = MAJOR_SCALE if mode == 'major' else MINOR_SCALE
        triads = MAJOR_TRIADS if mode == 'major' else MINOR_TRIADS
        sevenths = MAJOR_SEVENTHS if mode == 'major' else MINOR_SEVENTHS
        if mode != plan['mode']:     # degrees come from the home mode's progressions
            deg = int(deg)
        root = (tonic + scale[deg]) % 12
        vocab = plan['vocab']
        qual = triads[deg]
        if vocab == 'sevenths' or (vocab == 'mixed' and rng.random() < 0.35):
            qual = sevenths[deg]
        inv = 0
        if vocab == 'mixed' and s != len(out) - 1:
            r = rng.random()
            if qual in ('maj', 'min') and r < 0.15:
                inv = QUAL_INTERVALS[qual][1]            # first inversion (/3 or /b3)
            elif qual in ('maj', 'min') and r < 0.22:
                inv = 7                                  # second inversion (/5)
            elif qual == 'maj' and deg == 4 and r < 0.45:
                qual = 'sus4'
        if vocab == 'triads' and qual == 'maj' and deg == 4 and rng.random() < 0.15 and s != len(out) - 1:
            qual = 'sus4'
        bar, half = divmod(s, cpb)
        bar_bpb = plan['layout'][bar] if plan.get('layout') else plan['bpb']
        off = 0 if half == 0 else bar_bpb // 2 if bar_bpb >= 2 else 0
        if plan['meter'] == '6/8' and half == 1:
            off = 1
        chords.append((bar, off, Chord(root, qual, inv), (tonic, mode)))
    return chords


# ----------------------------------------------------------------------------- MIDI writing
def make_midi(plan, rng):
    import pretty_midi
    bpb, sub = plan['bpb'], plan['sub']
    bar_s = 60.0 / plan['bpm0'] * bpb
    n_bars = max(4, int(round((plan['target'] - plan['lead_sil'] - 1.5) / bar_s)))
    n_bars = int(np.ceil(n_bars / 2) * 2)
    layout = bar_layout(plan, n_bars)
    n_bars = len(layout)
    if plan.get('irregular'):
        plan['layout'] = layout
    bar_start = np.concatenate([[0], np.cumsum(layout)]).astype(int)
    times, bpm = beat_times(plan, n_bars, rng, layout)
    tl = Timeline(times, plan['swing'], sub)
    P = plan['pickup']
    chords = build_progression(plan, n_bars, rng)
    hum = plan['humanize_ms'] / 1000.0

    def jit():
        return float(rng.normal(0, hum)) if hum > 0 else 0.0

    def bpos(bar, beat):                         # beat position (in beats) of bar/beat
        return P + int(bar_start[bar]) + beat

    bar_lines = {P + int(s) for s in bar_start}

    def on_bar_line(pos):                        # is this beat position a downbeat?
        return abs(pos - round(pos)) < 1e-6 and int(round(pos)) in bar_lines

    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    insts = []
    # chord spans in beat positions
    spans = []
    keys = []                                    # (tonic, mode) of each span (--modulate)
    for i, (bar, off, ch, key) in enumerate(chords):
        st = bpos(bar, off)
        en = bpos(*chords[i + 1][:2]) if i + 1 < len(chords) else bpos(n_bars, 0)
        spans.append((st, en, ch))
        keys.append(key)

    def add(inst, pitch, p0, p1, vel, shift=0.0):
        s = tl(p0) + shift
        e = max(s + 0.03, tl(p1) - 0.01)
        inst.notes.append(pretty_midi.Note(velocity=int(np.clip(vel, 1, 127)), pitch=int(np.clip(pitch, 0, 127)),
                                           start=max(0.0, s), end=e))

    # ---- comping
    comp = pretty_midi.Instrument(program=plan['comp_prog'])
    prev = None
    style = plan['comp_style']
    for st, en, ch in spans:
        v = voice(ch, prev)
        prev = v
        nb = int(round(en - st))
        if style == 'sustain':
            for p in v:
                add(comp, p, st, en, 70 + rng.integers(-8, 8), jit())
        elif style == 'block':
            for k in range(nb):
                acc = 12 if on_bar_line(st + k) else 0
                for p in v:
                    add(comp, p, st + k, st + k + 0.8, 68 + acc + rng.integers(-6, 6), jit())
        elif style == 'offbeat':
            for k in range(nb):
                for p in v:
                    add(comp, p, st + k + (1.0 / sub) * (sub - 1) if sub == 2 else st + k + 1 / 3,
                        st + k + 0.95, 64 + rng.integers(-6, 6), jit())
                for p in v[:1]:
                    add(comp, p - 12, st + k, st + k + 0.5, 50, jit())
        elif style == 'arpeggio':
            tones = v + [v[0] + 12]
            steps = int(round(nb * sub))
            for k in range(steps):
                p0 = st + k / sub
                acc = 14 if on_bar_line(p0) else (6 if abs(p0 - round(p0)) < 1e-6 else 0)
                pitch = tones[k % len(tones)] if (k // len(tones)) % 2 == 0 else tones[-1 - (k % len(tones))]
                add(comp, pitch, p0, p0 + 1.0 / sub + 0.3, 62 + acc + rng.integers(-5, 5), jit())
        elif style == 'strum':
            gv = sorted(set([v[0] - 12] + v + [v[0] + 12]))
            for k in range(nb):
                for up, frac in ((False, 0.0), (True, 0.5)) if sub == 2 else ((False, 0.0), (True, 2 / 3)):
                    if up and rng.random() < 0.4:
                        continue
                    p0 = st + k + frac
                    order = gv[::-1] if up else gv
                    acc = 14 if (not up and on_bar_line(st + k)) else 0
                    spread = 0.012 if not up else 0.008
                    for j, p in enumerate(order):
                        add(comp, p, p0, p0 + (0.45 if up else 0.9), (60 if up else 72) + acc + rng.integers(-5, 5),
                            j * spread + jit())
    insts.append(comp)

    # ---- pad
    if plan['pad']:
        padi = pretty_midi.Instrument(program=int(rng.choice([48, 49, 89, 52])))
        prev = None
        for st, en, ch in spans:
            v = voice(ch, prev, 55, 79)
            prev = v
            for p in v:
                add(padi, p, st, en, 45)
        insts.append(padi)

    # ---- bass
    if plan['bass']:
        bi = pretty_midi.Instrument(program=plan['bass_prog'])
        for st, en, ch in spans:
            root = 36 + (ch.bass_pc() - 36) % 12
            fifth = 36 + (ch.root + 7 - 36) % 12
            nb = int(round(en - st))
            bs = plan['bass_style']
            if bs == 'root' or nb < 2:
                add(bi, root, st, en - 0.1, 92, jit())
            elif bs == 'root_fifth':
                h = max(1, nb // 2)
                add(bi, root, st, st + h - 0.1, 92, jit())
                add(bi, fifth if fifth - root < 8 else fifth - 12, st + h, en - 0.1, 82, jit())
            elif bs == 'walking':
                tones = [root] + [36 + (pc - 36) % 12 for pc in ch.pcs()[1:]]
                for k in range(nb):
                    add(bi, tones[k % len(tones)], st + k, st + k + 0.9, 88 if k == 0 else 78, jit())
            else:  # pulse (eighths)
                for k in range(int(nb * sub)):
                    add(bi, root, st + k / sub, st + (k + 0.8) / sub, 90 if k == 0 else 72, jit())
        insts.append(bi)

    # ---- melody (chord tones on beats, scale tones between); also plays the pickup
    def scale_pitches(tonic, mode):
        scale = MAJOR_SCALE if mode == 'major' else MINOR_SCALE
        return [p for p in range(64, 86) if p % 12 in [(tonic + s) % 12 for s in scale]]

    if plan['melody'] or P > 0:
        mi = pretty_midi.Instrument(program=plan['mel_prog'])
        mel_pitches = scale_pitches(plan['tonic'], plan['mode'])
        cur = int(rng.choice(mel_pitches[4:10]))
        # pickup notes
        for k in range(P):
            add(mi, cur, k, k + 0.9, 80, jit())
            cur = mel_pitches[int(np.clip(mel_pitches.index(cur) + rng.integers(-1, 2), 0, len(mel_pitches) - 1))]
        if plan['melody']:
            for (st, en, ch), key in zip(spans, keys):
                mel_pitches = scale_pitches(*key)
                pos = st
                while pos < en - 1e-6:
                    dur = float(rng.choice([1.0, 0.5, 2.0, 1.5], p=[0.45, 0.3, 0.15, 0.1])) if sub == 2 \
                        else float(rng.choice([1 / 3, 2 / 3, 1.0], p=[0.3, 0.3, 0.4]))
                    dur = min(dur, en - pos)
                    on_beat = abs(pos - round(pos)) < 1e-6
                    cands = [p for p in mel_pitches if (p % 12 in ch.pcs()) or not on_beat]
                    cands.sort(key=lambda p: abs(p - cur))
                    cur = int(cands[int(rng.integers(0, min(3, len(cands))))])
                    if rng.random() > 0.1:
                        add(mi, cur, pos, pos + dur * 0.95, 78 + (8 if on_beat else 0) + rng.integers(-6, 6), jit())
                    pos += dur
        insts.append(mi)

    # ---- drums
    if plan['drums']:
        di = pretty_midi.Instrument(program=0, is_drum=True)
        start_bar = plan['drums_enter_bar'] or 0
        for bar in range(start_bar, n_bars):
            b0 = bpos(bar, 0)
            last_in_phrase = (bar % 8 == 7)
            nbar = layout[bar]
            if nbar != bpb:                                 # an irregular bar: its own groove
                kicks = {2: [0], 3: [0], 5: [0, 3], 7: [0, 2, 4]}.get(nbar, [0])
                snares = {2: [1], 3: [1, 2], 5: [1, 2, 4], 7: [1, 3, 5, 6]}.get(nbar, [1])
            elif plan['meter'] == '4/4':
                kicks, snares = [0, 2] + ([2.5] if rng.random() < 0.3 else []), [1, 3]
            elif plan['meter'] == '12/8':  # four dotted-quarter beats, backbeat on 2 and 4
                kicks, snares = [0, 2], [1, 3]
            elif plan['meter'] in ('3/4', '9/8'):
                kicks, snares = [0], [1, 2]
            else:  # 6/8: two dotted-quarter beats
                kicks, snares = [0], [1]
            for k in kicks:
                add(di, 36, b0 + k, b0 + k + 0.2, 100 if k == 0 else 88)
            for s in snares:
                add(di, 38, b0 + s, b0 + s + 0.2, 92 if plan['meter'] != '3/4' else 70)
            for h in range(nbar * sub):
                p0 = b0 + h / sub
                if last_in_phrase and p0 >= b0 + nbar - 1:
                    continue
                add(di, 42, p0, p0 + 0.1, 75 if h % sub == 0 else 55)
            if last_in_phrase:                              # fill on the last beat
                for f in range(sub * 2):
                    p0 = b0 + nbar - 1 + f / (sub * 2)
                    add(di, 38 if f % 2 == 0 else 45, p0, p0 + 0.1, 70 + 4 * f)
            if bar % 8 == 0 or bar == start_bar:
                add(di, 49, b0, b0 + 0.5, 90)
        # pickup fill
        if P > 0 and start_bar == 0:
            for k in range(P):
                add(di, 38, k, k + 0.2, 80)
        insts.append(di)

    pm.instruments.extend(insts)
    end_t = tl(bpos(n_bars, 0))
    # keep the player running for the release tail
    tail = 2.0 + (plan['reverb']['rt60'] if plan['reverb'] else 0)
    pm.instruments[0].control_changes.append(pretty_midi.ControlChange(number=7, value=100, time=end_t + tail))

    # ---- ground truth
    n_beats_total = P + int(bar_start[-1])
    beats = times[:n_beats_total]
    positions = [((i - P) % bpb) + 1 for i in range(P)] + [k + 1 for n in layout for k in range(n)]
    downbeats = [float(times[P + int(bar_start[b])]) for b in range(n_bars)]
    chord_segs = []
    first = tl(P)
    if first > 0:
        chord_segs.append([0.0, round(first, 6), 'N'])
    for (st, en, ch), key in zip(spans, keys):
        chord_segs.append([round(tl(st), 6), round(tl(en), 6), ch.label(*key)])
    ibi = np.diff(times[:n_beats_total + 1])
    gt = {
        'beats': [round(float(t), 6) for t in beats],
        'beat_positions': positions,
        'downbeats': [round(t, 6) for t in downbeats],
        'tempo': round(float(np.median(60.0 / ibi)), 3),
        'tempo_curve': [[round(float(t), 4), round(float(60.0 / d), 3)] for t, d in zip(times[:n_beats_total], ibi)],
        'time_signature': plan['meter'],
        'beats_per_bar': bpb,
        'beat_unit': 'dotted quarter' if plan['meter'] in COMPOUND else 'quarter',
        'key': key_name(plan['tonic'], plan['mode']),
    }
    if plan.get('modulate') is not None:
        changes = key_change_bars(plan, n_bars)
        key_bounds = [0] + [b for b, _, _ in changes] + [n_bars]
        key_list = [(plan['tonic'], plan['mode'])] + [(t, m) for _, t, m in changes]
        key_segments = [[round(tl(bpos(a, 0)), 6), round(tl(bpos(b, 0)), 6), key_name(*k)]
                        for a, b, k in zip(key_bounds, key_bounds[1:], key_list)]
        gt['key'] = max(key_segments, key=lambda seg: seg[1] - seg[0])[2]    # the longest-held key
        gt['key_segments'] = key_segments
        gt['key_change_bars'] = [b for b, _, _ in changes]
    gt['chords'] = chord_segs
    if plan.get('irregular'):
        gt['meter_sections'] = meter_sections(layout, downbeats)
    return pm, gt, end_t, n_bars


# ----------------------------------------------------------------------------- audio
def find_soundfont():
    for s in SOUNDFONT_CANDIDATES:
        if os.path.exists(s):
            return s
    sys.exit('no GM soundfont found: apt-get install fluid-soundfont-gm')


def render_fluidsynth(mid_path, wav_path, sf2):
    if not shutil.which('fluidsynth'):
        sys.exit('fluidsynth not found: apt-get install fluidsynth fluid-soundfont-gm')
    subprocess.run(['fluidsynth', '-ni', '-q', '-R', '0', '-C', '0', '-g', '0.5', '-r', str(SR),
                    '-F', str(wav_path), sf2, str(mid_path)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def postprocess(y, plan, rng, total_len):
    from scipy.signal import fftconvolve
    y = y.mean(axis=1) if y.ndim == 2 else y
    lat = int(round(ENGINE_LATENCY_S * SR))
    y = y[lat:]
    if len(y) < total_len:
        y = np.pad(y, (0, total_len - len(y)))
    y = y[:total_len].astype(np.float64)
    if plan['reverb']:
        rt = plan['reverb']['rt60']
        n = int(rt * SR)
        tt = np.arange(n) / SR
        ir = rng.standard_normal(n) * np.exp(-6.9 * tt / rt)
        ir[: int(0.01 * SR)] *= np.linspace(0, 1, int(0.01 * SR))   # 10 ms pre-delay ramp
        ir /= np.sqrt(np.sum(ir ** 2))
        wet = fftconvolve(y, ir)[: len(y)]
        w = plan['reverb']['wet']
        y = (1 - w) * y + w * wet * (np.std(y) / (np.std(wet) + 1e-12))
    if plan['noise']:
        nz = rng.standard_normal(len(y))
        if plan['noise']['color'] == 'pink':
            X = np.fft.rfft(nz)
            f = np.arange(len(X)); f[0] = 1
            nz = np.fft.irfft(X / np.sqrt(f), n=len(y))
        sig_rms = np.sqrt(np.mean(y[y != 0] ** 2)) if np.any(y) else 1e-3
        nz *= sig_rms / (np.sqrt(np.mean(nz ** 2)) + 1e-12) * 10 ** (-plan['noise']['snr_db'] / 20)
        y = y + nz
    peak = np.max(np.abs(y)) + 1e-12
    y = y / peak * 10 ** (plan['gain_db'] / 20)
    return y.astype(np.float32)


def make_song(seed, idx, n_total, outdir, sf2, fmt='flac', long_every=20, irregular=None, modulate=None,
              meter=None):
    import soundfile as sf
    t0 = time.time()
    plan = plan_song(seed, idx, n_total, long_every, irregular, modulate, meter)
    rng = np.random.default_rng([seed, idx, 1])
    pm, gt, end_t, n_bars = make_midi(plan, rng)
    sid = f'{"harm" if modulate and modulate > 0 else "synth"}_s{seed}_{idx:04d}'
    outdir = Path(outdir)
    mid = outdir / f'{sid}.mid'
    pm.write(str(mid))
    tail = 2.0 + (plan['reverb']['rt60'] if plan['reverb'] else 0)
    total_len = int(round((end_t + tail) * SR))
    with tempfile.TemporaryDirectory() as td:
        wav = Path(td) / 'r.wav'
        t1 = time.time()
        render_fluidsynth(mid, wav, sf2)
        t_render = time.time() - t1
        y, sr = sf.read(str(wav), always_2d=True)
    assert sr == SR
    y = postprocess(y, plan, np.random.default_rng([seed, idx, 2]), total_len)
    dur = len(y) / SR
    if gt['chords'][-1][1] < dur:
        gt['chords'].append([gt['chords'][-1][1], round(dur, 6), 'N'])
    audio_name = f'{sid}.{fmt}'
    if fmt == 'flac':
        sf.write(str(outdir / audio_name), y, SR, subtype='PCM_16', format='FLAC')
    elif fmt == 'ogg':
        sf.write(str(outdir / audio_name), y, SR, format='OGG', subtype='VORBIS')
    else:
        sf.write(str(outdir / audio_name), y, SR, subtype='PCM_16')
    meta = {k: plan[k] for k in ('seed', 'index', 'tempo_profile', 'swing', 'chords_per_bar', 'vocab', 'pickup',
                                 'lead_sil', 'drums', 'drums_enter_bar', 'comp_kind', 'comp_prog', 'comp_style',
                                 'pad', 'bass', 'bass_prog', 'bass_style', 'melody', 'mel_prog', 'reverb', 'noise',
                                 'humanize_ms', 'gain_db')}
    meta['bpm_start'] = round(plan['bpm0'], 3)
    meta['n_bars'] = n_bars
    if plan.get('irregular'):
        meta['irregular'] = plan['irregular']
    if 'step_at_bar' in plan:
        meta['step_at_bar'] = plan['step_at_bar']
    entry = {
        'id': sid, 'source': f"synth-{plan['irregular']}" if plan.get('irregular')
        else f"synth-{gt['time_signature']}", 'audio': audio_name, 'midi': mid.name,
        'duration': round(dur, 3), 'sample_rate': SR, 'channels': 1,
        'licence': 'generated (FluidR3_GM soundfont: MIT licence)', 'redistributable': True,
        'ground_truth': gt, 'generator': meta,
        'render': {'engine': 'fluidsynth (CLI, -F fast render, reverb/chorus off)', 'soundfont': os.path.basename(sf2),
                   'engine_latency_corrected_s': ENGINE_LATENCY_S},
    }
    (outdir / f'{sid}.json').write_text(json.dumps(entry, indent=1))
    return entry, {'id': sid, 'audio_s': dur, 'render_s': t_render, 'total_s': time.time() - t0}


# ----------------------------------------------------------------------------- verification
def verify(outdir, entries):
    """onset-vs-beat alignment: signed distance from each annotated beat that carries a note onset
    to the nearest detected onset; plus a global lag estimate by cross-correlating the onset
    envelope with the beat impulse train."""
    import librosa
    hop = 128
    rows = []
    all_d = []
    for e in entries:
        y, sr = librosa.load(str(Path(outdir) / e['audio']), sr=SR)
        env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_mels=128, lag=1, max_size=1)
        on = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, units='time', backtrack=False)
        # librosa's onset_strength frame n is centred at n*hop; spectral-flux peaks lag the true
        # attack by about half a window -> compare relative to a percussive reference (drums-only
        # songs identical method), so report raw numbers and the median.
        beats = np.array(e['ground_truth']['beats'])
        if len(on) == 0:
            continue
        idx = np.searchsorted(on, beats)
        d = []
        for b, i in zip(beats, idx):
            c = [on[j] - b for j in (i - 1, i) if 0 <= j < len(on)]
            if c:
                d.append(min(c, key=abs))
        d = np.array(d)
        near = d[np.abs(d) < 0.05]
        all_d.extend(near.tolist())
        # global lag via cross-correlation of env with beat impulses (+-50 ms)
        imp = np.zeros_like(env)
        fi = np.round(beats * sr / hop).astype(int)
        imp[fi[fi < len(imp)]] = 1
        lags = np.arange(-int(0.05 * sr / hop), int(0.05 * sr / hop) + 1)
        xc = [np.dot(np.roll(imp, L), env) for L in lags]
        lag = lags[int(np.argmax(xc))] * hop / sr
        rows.append((e['id'], len(beats), float(np.mean(np.abs(d) < 0.02)), float(np.mean(np.abs(d) < 0.05)),
                     float(np.median(near) * 1000) if len(near) else float('nan'), lag * 1000))
    print(f"{'id':22s} {'beats':>5s} {'<20ms':>6s} {'<50ms':>6s} {'med_off_ms':>10s} {'xcorr_lag_ms':>12s}")
    for r in rows:
        print(f'{r[0]:22s} {r[1]:5d} {r[2]:6.2f} {r[3]:6.2f} {r[4]:10.1f} {r[5]:12.1f}')
    a = np.array(all_d) * 1000
    print(f'ALL beats with an onset within 50 ms: median offset {np.median(a):.1f} ms, '
          f'IQR [{np.percentile(a, 25):.1f}, {np.percentile(a, 75):.1f}] ms, '
          f'mean frac<20ms {np.mean([r[2] for r in rows]):.3f}, mean frac<50ms {np.mean([r[3] for r in rows]):.3f}')
    return rows


def click_check(outdir, entries, sf2, n=5):
    """exactness check of the render path: a claves click on every annotated beat is rendered
    through the same FluidSynth call and latency trim as the songs; the first sample of each click
    must coincide with the annotated beat (+ the instrument's ~1 ms attack)."""
    import pretty_midi
    import soundfile as sf
    errs = []
    for e in entries[:n]:
        beats = np.array(e['ground_truth']['beats'])
        pm = pretty_midi.PrettyMIDI(resolution=960)
        di = pretty_midi.Instrument(program=0, is_drum=True)
        for b in beats:
            di.notes.append(pretty_midi.Note(velocity=110, pitch=75, start=float(b), end=float(b) + 0.05))
        pm.instruments.append(di)
        with tempfile.TemporaryDirectory() as td:
            pm.write(f'{td}/c.mid')
            render_fluidsynth(f'{td}/c.mid', f'{td}/c.wav', sf2)
            y, sr = sf.read(f'{td}/c.wav', always_2d=True)
        y = np.abs(y.mean(1))[int(round(ENGINE_LATENCY_S * SR)):]
        for i, b in enumerate(beats):
            lo = int((b - 0.02) * sr)
            seg = y[lo: int((b + 0.03) * sr)]
            thr = max(seg[: int(0.015 * sr)].max() * 3, 1e-4)
            errs.append((np.argmax(seg > thr) + lo) / sr - b)
    errs = np.array(errs) * 1000
    print(f'click-track check ({len(errs)} beats, {n} songs): first-sample minus annotated beat: '
          f'mean {errs.mean():.2f} ms, sd {errs.std():.2f}, min {errs.min():.2f}, max {errs.max():.2f}')
    return errs


def calibrate(sf2):
    """measure FluidSynth engine latency with isolated hi-hat hits (fast attack)."""
    import pretty_midi
    import soundfile as sf
    rng = np.random.default_rng(0)
    pm = pretty_midi.PrettyMIDI(resolution=960)
    di = pretty_midi.Instrument(program=0, is_drum=True)
    ts = 0.5 + np.arange(40) * 0.8 + rng.uniform(0, 0.2, 40)
    for t in ts:
        di.notes.append(pretty_midi.Note(velocity=100, pitch=42, start=float(t), end=float(t) + 0.1))
    pm.instruments.append(di)
    with tempfile.TemporaryDirectory() as td:
        pm.write(f'{td}/c.mid')
        render_fluidsynth(f'{td}/c.mid', f'{td}/c.wav', sf2)
        y, sr = sf.read(f'{td}/c.wav', always_2d=True)
    y = np.abs(y.mean(1))
    offs = []
    for t in ts:
        seg = y[int((t - 0.1) * sr): int((t + 0.2) * sr)]
        thr = max(seg[: int(0.09 * sr)].max() * 3, 1e-5)
        offs.append(np.argmax(seg > thr) / sr - 0.1)
    offs = np.array(offs) * 1000
    print(f'engine latency (hi-hat first sample): mean {offs.mean():.2f} ms, sd {offs.std():.2f}, '
          f'min {offs.min():.2f}, max {offs.max():.2f}; correction in use: {ENGINE_LATENCY_S * 1000:.1f} ms')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--n', type=int, default=40)
    ap.add_argument('--out', default='dev')
    ap.add_argument('--format', default='flac', choices=['flac', 'ogg', 'wav'])
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--long-every', type=int, default=20, help='every k-th song is ~270 s (0 = never)')
    ap.add_argument('--irregular', choices=('mixed',) + IRREGULAR_KINDS,
                    help='4/4 songs with irregular bars: one kind, or a mix of all kinds')
    ap.add_argument('--modulate', type=float, metavar='SHARE',
                    help='share (0-1) of songs that change key once or twice; adds key_segments and '
                         'key_change_bars to the ground truth (given as 0: those fields, no key changes)')
    ap.add_argument('--meter', choices=sorted(METER_BEATS),
                    help='every song in this meter (12/8 and 9/8: four and three dotted-quarter '
                         'beats, each of three eighths); default: 4/4, 3/4 or 6/8 as drawn')
    ap.add_argument('--verify', action='store_true')
    ap.add_argument('--calibrate', action='store_true')
    args = ap.parse_args()
    if args.modulate is not None and not 0 <= args.modulate <= 1:
        ap.error(f'--modulate: a share between 0 and 1, not {args.modulate}')
    sf2 = find_soundfont()
    if args.calibrate:
        calibrate(sf2)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            res = list(ex.map(make_song, [args.seed] * args.n, range(args.n), [args.n] * args.n, [out] * args.n,
                              [sf2] * args.n, [args.format] * args.n, [args.long_every] * args.n,
                              [args.irregular] * args.n, [args.modulate] * args.n,
                              [args.meter] * args.n))
    else:
        res = [make_song(args.seed, i, args.n, out, sf2, args.format, args.long_every, args.irregular,
                         args.modulate, args.meter) for i in range(args.n)]
    wall = time.time() - t0
    entries = [r[0] for r in res]
    stats = [r[1] for r in res]
    manifest = {'description': f'synthetic corpus, seed {args.seed}, {args.n} songs (make_corpus.py)',
                'seed': args.seed, 'clips': entries}
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=1))
    audio_s = sum(s['audio_s'] for s in stats)
    render_s = sum(s['render_s'] for s in stats)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    asize = sum((out / e['audio']).stat().st_size for e in entries)
    print(f'{args.n} songs, {audio_s / 60:.1f} min audio, wall {wall:.1f} s ({audio_s / wall:.1f}x realtime, '
          f'fluidsynth alone {audio_s / render_s:.1f}x), disk {size / 2 ** 20:.1f} MiB (audio {asize / 2 ** 20:.1f} MiB)')
    if args.verify:
        click_check(out, entries, sf2)
        verify(out, entries)


if __name__ == '__main__':
    main()
