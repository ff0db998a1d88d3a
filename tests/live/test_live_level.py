"""songmap.live: a 3:2 between the carried grid and a window's (a bar of three beats
read as two, or the reverse) is settled by the periodicity of the causal beat
activation. No networks: the stream's stand-ins of tests/live/replay.py, with a beat
activation that pulses at a given period."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from songmap.live.grid import LEVEL_MIN_S, level_verdict, periodicity
from tests.live.replay import emitted_beats, replay_stream


def _pulses(period_s: float, seconds: float, *, fps: float = 100.0) -> np.ndarray:
    """A beat activation of ``seconds`` at ``fps``: 0.9 on the frame of every beat
    ``period_s`` apart (off the frame grid: the pulses fall between frames by turns),
    0.02 elsewhere."""
    act = np.full(int(seconds * fps), 0.02)
    act[np.round(np.arange(0.0, seconds, period_s) * fps).astype(int)[:-1]] = 0.9
    return act


def test_a_pulse_repeats_at_its_period_and_not_at_one_and_a_half_times_it():
    act = _pulses(0.463, 20.0)  # 129.6 BPM
    assert periodicity(act, 0.463) > 0.5
    assert abs(periodicity(act, 1.5 * 0.463)) < 0.2
    # too short to say (under three periods), or flat
    assert periodicity(act[:100], 0.463) == 0.0
    assert periodicity(np.full(2000, 0.3), 0.463) == 0.0


def test_the_verdict_takes_the_period_the_activation_repeats_at():
    act = _pulses(0.5, 20.0)
    assert level_verdict(act, 0.5, 0.75) == -1  # keep the carried 120 BPM
    assert level_verdict(act, 0.75, 0.5) == 1  # take the window's 120 BPM
    # not for octaves: a pulse repeats at twice its period too
    assert level_verdict(act, 1.0, 0.5) == 0
    assert level_verdict(act, 0.5, 1.0) == 0
    # nor for unrelated tempi, nor on less than LEVEL_MIN_S of activation
    assert level_verdict(act, 0.5, 0.6) == 0
    assert level_verdict(act[:int(LEVEL_MIN_S * 100) - 1], 0.75, 0.5) == 0
    # nor where the activation shows no pulse at either period
    flat = np.random.default_rng(0).uniform(0.0, 0.1, 2000)
    assert level_verdict(flat, 0.75, 0.5) == 0


def _stream_pulsing_at(period_s: float, carried_period_s: float):
    """A stream carrying a grid of ``carried_period_s`` whose causal network pulses every
    ``period_s``, after 12 s of audio."""
    live = replay_stream([])
    live._plan = (0.0, carried_period_s, 1.0, 1e9)
    pulses = _pulses(period_s, 60.0)
    frame = {"at": 0}

    def step(feats, state):
        out = pulses[frame["at"]:frame["at"] + len(feats)]
        frame["at"] += len(feats)
        return out

    live._net = SimpleNamespace(step=step)
    emitted_beats(live, 12.0)
    return live


def test_a_window_at_the_pulse_s_level_is_taken_at_once_and_one_off_it_kept_out():
    # carried at 80 BPM while the music pulses at 120: the window's 120 is taken at once
    # (without the verdict an unrelated tempo waits for a second window)
    live = _stream_pulsing_at(0.5, 0.75)
    anchor, period, _ = live._choose_grid(12.0, 0.5, 0.9, 12.0, weight=1.0)
    assert (anchor, period) == (12.0, 0.5)
    # carried at 120 BPM, the music pulsing at 120: windows at 80 are kept out, however
    # many say so
    live = _stream_pulsing_at(0.5, 0.5)
    for k in range(4):
        anchor, period, _ = live._choose_grid(12.0 + k, 0.75, 0.9, 12.0 + k, weight=1.0)
        assert period == 0.5
