"""Where spread attacks (a strum's strings) start, read from the beat-averaged flux."""

import numpy as np
import pytest

from songmap.rhythm.attacks import flux_around, spread_attack_start

SR = 22050
#: Open strings of a guitar (Hz), low to high, and how loud each sounds in a strum.
STRINGS = (82.4, 110.0, 146.8, 196.0, 246.9, 329.6)
LOUDNESS = (0.5, 0.7, 1.0, 0.8, 0.6, 0.5)


def tone(f0: float, seconds: float) -> np.ndarray:
    """A plucked string: harmonics with a 1 ms attack and a decay."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 10))
    env = np.minimum(t / 0.001, 1.0) * np.exp(-t / 0.25)
    return wave * env * np.minimum((t[-1] - t) / 0.02, 1.0)


def strums(onsets: np.ndarray, *, spacing: float, seconds: float, noise: float = 0.01,
           jitter: float = 0.0) -> np.ndarray:
    """Down-strums: string i sounds ``spacing`` * i after each onset (s), in white noise."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, noise, int(seconds * SR))
    for t in onsets + rng.normal(0.0, jitter, len(onsets)):
        for i, (f0, gain) in enumerate(zip(STRINGS, LOUDNESS)):
            n0 = int(round((t + spacing * i) * SR))
            note = 0.15 * gain * tone(f0, 0.4)
            x[n0:n0 + len(note)] += note[:len(x) - n0]
    return x


ONSETS = 0.5 + 0.5 * np.arange(24)


def start_at(audio: np.ndarray, beats: np.ndarray) -> float:
    return spread_attack_start(flux_around(audio.astype(np.float32), SR, beats), SR)


def test_a_strum_heard_late_starts_at_its_first_string():
    audio = strums(ONSETS, spacing=0.012, seconds=13.0)
    # beats heard 24 ms into each strum, at its third string
    start = start_at(audio, ONSETS + 0.024)
    assert abs(start + 0.024) < 0.003


def test_one_attack_however_uneven_is_not_spread():
    # every string at once, each strum up to ~10 ms off the beat
    audio = strums(ONSETS, spacing=0.0, seconds=13.0, jitter=0.005)
    assert np.isnan(start_at(audio, ONSETS))


def hits(onsets: np.ndarray, *, gain: float, seconds: float) -> np.ndarray:
    """A short noise hit (a drum's grace stroke) at each onset (s)."""
    rng = np.random.default_rng(5)
    x, n = np.zeros(int(seconds * SR)), int(0.05 * SR)
    decay = np.exp(-np.arange(n) / (0.005 * SR))
    for t in onsets:
        n0 = int(round(t * SR))
        x[n0:n0 + n] += gain * rng.normal(0.0, 1.0, n) * decay
    return x


def test_a_grace_stroke_well_before_the_beat_is_not_part_of_its_attack():
    audio = strums(ONSETS, spacing=0.0, seconds=13.0)
    # a soft hit 30 ms before each strum (a flam): too far to be part of its attack
    assert np.isnan(start_at(audio + hits(ONSETS - 0.03, gain=0.02, seconds=13.0), ONSETS))
    # 12 ms before it, it is the attack's first part
    close = start_at(audio + hits(ONSETS - 0.012, gain=0.02, seconds=13.0), ONSETS)
    assert abs(close + 0.012) < 0.004


def test_a_texture_faster_than_the_beat_is_not_a_spread_attack():
    # a buzz of clicks every 12 ms under sharp strums: its bumps precede every beat alike
    audio = strums(ONSETS, spacing=0.0, seconds=13.0)
    clicks = np.zeros_like(audio)
    clicks[(np.arange(0.0, 13.0, 0.012) * SR).astype(int)] = 0.3
    kernel = np.exp(-np.arange(int(0.004 * SR)) / (0.001 * SR))
    audio = audio + np.convolve(clicks, kernel)[:len(audio)]
    assert np.isnan(start_at(audio, ONSETS))


def test_too_few_beats_say_nothing():
    audio = strums(ONSETS, spacing=0.012, seconds=13.0)
    assert np.isnan(start_at(audio, ONSETS[:4] + 0.024))


def test_a_grid_heard_late_in_its_strums_moves_onto_their_first_strings():
    from songmap.rhythm.beats import grid_beat_times

    heard = ONSETS + 0.024
    act = np.zeros(1300)
    act[np.round(heard * 100).astype(int)] = 0.9
    act = np.maximum(act, 0.5 * (np.roll(act, 1) + np.roll(act, -1)))
    audio = strums(ONSETS, spacing=0.012, seconds=13.0)
    without, _, _ = grid_beat_times(heard, act, 100.0, duration=13.0)
    beats, segs, _ = grid_beat_times(heard, act, 100.0, duration=13.0, samples=audio, sr=SR)
    assert np.median(without - ONSETS) > 0.015
    assert abs(np.median(beats - ONSETS)) < 0.004
    assert segs[0].times() == pytest.approx(beats)
