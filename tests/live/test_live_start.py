"""songmap.live: the first seconds of a stream (no networks: the front end and the beat
networks are stand-ins that give a made activation; the causal filter is the real one)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from songmap.live.beats import OnlineBeatTracker
from songmap.live.grid import GridChooser, same_grid
from songmap.live.stream import BEAT_LAG_S, LiveAnalyzer

#: 10 ms blocks: one frame of the 100 fps activation each
_BLOCK = 441


def _activation(*, silence_s: float, period_s: float, seconds: float) -> np.ndarray:
    """A beat activation at 100 fps: ``silence_s`` of silence (0.005, as the online
    networks give it), then music with a beat every ``period_s`` (a 3-frame peak of
    0.5 on the networks' clock, ``BEAT_LAG_S`` late, over 0.02 between beats)."""
    act = np.full(int(round(seconds * 100)), 0.005)
    act[int(round(silence_s * 100)):] = 0.02
    for t in np.arange(silence_s, seconds, period_s):
        k = int(round((t + BEAT_LAG_S) * 100))
        act[k - 1:k + 2] = [0.3, 0.5, 0.3]
    return act


def _stream_beats(act: np.ndarray) -> np.ndarray:
    """The beats a stream emits for ``act`` (no window analysis runs)."""
    live = LiveAnalyzer(object())
    frames = iter(act)
    live._front = SimpleNamespace(push=lambda x: np.zeros((len(x) // _BLOCK, 1)))
    live._net = SimpleNamespace(step=lambda feats, state: np.array([next(frames)]))
    live._next_analysis = 1e9  # no windows: the causal filter's beats only
    events = []
    for _ in range(len(act)):
        events += live.push(np.zeros(_BLOCK, np.float32))
    return np.array([e.time for e in events if e.type == "beat"])


def test_silence_before_the_music_leaves_the_filter_at_the_slowest_tempo():
    """Why the stream restarts the filter until the music begins."""
    tracker = OnlineBeatTracker()
    tracker.step(np.full(300, 0.005))
    assert tracker.bpm < 60.0
    tracker.restart()
    assert np.allclose(tracker.alpha, OnlineBeatTracker().alpha)


def test_a_song_s_first_beat_in_its_first_quarter_second_is_reported():
    act = _activation(silence_s=0.1, period_s=0.5, seconds=1.5)
    beats = [b.time - BEAT_LAG_S for b in OnlineBeatTracker().step(act)]
    assert beats and abs(beats[0] - 0.1) <= 0.02, beats


def test_after_seconds_of_silence_the_first_beats_are_at_the_music_s_tempo():
    truth = np.arange(3.0, 7.0, 0.5)  # 120 BPM from 3 s
    beats = _stream_beats(_activation(silence_s=3.0, period_s=0.5, seconds=7.0))
    assert not np.any(beats < 2.9)  # nothing in the silence
    early = truth[(truth > 3.4) & (truth < 5.1)]  # the 2nd to the 5th beat
    hit = np.min(np.abs(early[:, None] - beats[None, :]), axis=1) <= 0.07
    assert hit.all(), (early, beats)
    # and no beat between them (the filter does not beat at twice the tempo either)
    assert np.sum((beats > 3.3) & (beats < 5.2)) == len(early)


def test_a_short_first_window_s_tempo_level_is_outweighed_by_longer_ones():
    chooser = GridChooser()
    double = (0.0, 0.25)  # a 3 s window hears twice the tempo
    carried = chooser.choose(None, double, now_s=3.0, weight=0.25)
    taken = chooser.choose(carried, (0.0, 0.5), now_s=4.0, weight=1 / 3)
    assert taken == (0.0, 0.5)  # the 4 s window outweighs the 3 s one
    # a level carried on a full window's support still needs confirming
    chooser = GridChooser()
    carried = chooser.choose(None, double, now_s=12.0, weight=1.0)
    assert same_grid(chooser.choose(carried, (12.0, 0.5), now_s=13.0, weight=1.0),
                     double, at_s=13.0)


class _Pulls:
    """A causal filter that records the pulls towards a tempo or a grid (BPM)."""

    def __init__(self) -> None:
        self.bpm, self.tempo_pulls, self.grid_pulls = 0.0, [], []

    def favour_tempo(self, bpm: float) -> None:
        self.tempo_pulls.append(bpm)

    def favour_grid(self, bpm: float, next_beat_s: float) -> None:
        self.grid_pulls.append(bpm)


def _window(bpm: float, beats: list[float]) -> SimpleNamespace:
    """A window analysis' result: its tempo and beats (s from the window's start)."""
    return SimpleNamespace(tempo=SimpleNamespace(bpm=bpm, confidence=0.9),
                           beat_times=lambda: np.array(beats), grid_confidence=0.9)


def test_the_first_windows_tempo_guides_the_filter_before_a_grid_can():
    live = LiveAnalyzer(object())
    live._tracker = pulls = _Pulls()
    # a 2 s window: two beats committed (up to 1 s), too few for a grid
    live._guide_beats(_window(96.0, [0.3, 0.925, 1.55]), 0.0, 2.0, 1.0)
    assert pulls.tempo_pulls == [96.0] and live._plan is None
    # 5 s: enough beats for the first grid, which guides the filter from then on
    live._guide_beats(_window(96.0, list(0.3 + 0.625 * np.arange(8))), 0.0, 5.0, 4.0)
    assert live._plan is not None and len(pulls.grid_pulls) == 1
    # a later window with too few committed beats (a pause) leaves the filter alone
    live._guide_beats(_window(120.0, [4.6, 5.1]), 0.0, 6.0, 5.0)
    assert pulls.tempo_pulls == [96.0]
