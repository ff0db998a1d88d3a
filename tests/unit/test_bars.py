"""Bars that change length where the music does, on inputs with known answers."""

import numpy as np
import pytest

from songmap.rhythm.bars import (
    decode_bar_lengths,
    describe_sections,
    merge_short_bars,
    rank_evidence,
    renumber,
    sections_of,
)
from songmap.signals import Activations


def bar_pattern(layout, hi=0.8, lo=0.05):
    """P(downbeat | beat) for bars of the given lengths, with the truth's positions."""
    p = np.concatenate([[hi] + [lo] * (n - 1) for n in layout])
    positions = np.concatenate([np.arange(1, n + 1) for n in layout])
    return p, positions


@pytest.mark.parametrize("layout", [
    [4] * 8 + [2] + [4] * 8,            # an inserted 2-beat bar
    [4] * 8 + [3] + [4] * 8,            # an inserted 3-beat bar
    [4] * 8 + [3] * 8 + [4] * 8,        # a 3/4 bridge
    [4] * 8 + [7] * 2 + [4] * 8,        # a 7/4 passage
    [3] * 8 + [4] * 2 + [3] * 8,        # a 4/4 passage in a 3/4 song
])
def test_irregular_bars_are_followed(layout):
    p, truth = bar_pattern(layout)
    main = layout[0]
    assert (decode_bar_lengths(p, beats_per_bar=main) == truth).all()


def test_a_steady_song_with_a_noisy_network_keeps_one_grid():
    rng = np.random.default_rng(3)
    p, truth = bar_pattern([4] * 40, hi=0.6, lo=0.15)
    noisy = np.clip(p + rng.normal(0, 0.12, len(p)), 0.0, 1.0)
    assert (decode_bar_lengths(noisy, beats_per_bar=4) == truth).all()


def test_half_bars_need_more_than_a_network_that_hears_beat_three():
    """Beat 3 at p 0.45 beside beat 1 at 0.8 is the usual network, not 2/4."""
    p = np.tile([0.8, 0.05, 0.45, 0.05], 30)
    assert (decode_bar_lengths(p, beats_per_bar=4) == np.tile([1, 2, 3, 4], 30)).all()


def test_an_intro_out_of_step_stays_in_step_with_the_song():
    """Six bars of an intro whose network output marks beat 2, then the song: with the
    song's steady grid as reference the intro keeps the song's phase; without it, the
    intro (one change away from the song) is followed."""
    intro = np.tile([0.2, 0.6, 0.05, 0.05], 6)
    body = np.tile([0.8, 0.05, 0.05, 0.05], 30)
    p = np.concatenate([intro, body])
    steady = np.tile([1, 2, 3, 4], 36)
    assert (decode_bar_lengths(p, beats_per_bar=4, reference=steady) == steady).all()
    assert not (decode_bar_lengths(p, beats_per_bar=4) == steady).all()


def test_pickup_beats_end_a_bar():
    p, _ = bar_pattern([4] * 10)
    positions = decode_bar_lengths(p[2:], beats_per_bar=4)
    assert list(positions[:3]) == [3, 4, 1]


def test_chord_changes_move_a_bar_line_the_network_cannot_place():
    """The network marks every beat alike; the chords change on the bar lines of 4/4
    with one inserted 2-beat bar, twelve bars before the song ends."""
    layout = [4] * 8 + [2] + [4] * 12
    _, truth = bar_pattern(layout)
    p = np.full(len(truth), 0.3)
    change = np.where(truth == 1, 0.6, 0.05)
    cue = rank_evidence(change, weight=1.0)
    assert (decode_bar_lengths(p, beats_per_bar=4, bar_line_evidence=cue) == truth).all()


def test_rank_evidence_is_bounded_and_scale_free():
    x = np.array([0.1, 5.0, 0.2, 0.3])
    e = rank_evidence(x, weight=1.5)
    assert e.max() == pytest.approx(1.5) and e.min() == pytest.approx(-1.5)
    assert (rank_evidence(x * 100, weight=1.5) == e).all()
    assert (rank_evidence(np.ones(5), weight=1.0) == 0).all()


def test_renumber_and_merge_short_bars():
    mask = np.array([0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0], dtype=bool)
    assert list(renumber(mask, pickup_bar=4)) == [4, 1, 2, 3, 4, 1, 1, 2, 3, 4, 1, 2]
    merged = merge_short_bars(renumber(mask, pickup_bar=4))
    assert list(merged) == [4, 1, 2, 3, 4, 5, 1, 2, 3, 4, 1, 2]


def test_sections_of_a_song_with_an_inserted_bar():
    layout = [4] * 8 + [2] + [4] * 7 + [3]  # the song ends inside its last bar
    _, positions = bar_pattern(layout)
    positions = np.concatenate([[4], positions])  # one pickup beat
    secs = sections_of(positions, main=4)
    assert [(s.first_bar, s.bars, s.beats_per_bar) for s in secs] == [(1, 8, 4), (9, 1, 2), (10, 8, 4)]
    assert secs[1].first_beat == 1 + 32
    one = sections_of(bar_pattern([4] * 12)[1], main=4)
    assert [(s.first_bar, s.bars, s.beats_per_bar) for s in one] == [(1, 12, 4)]


def test_describe_sections_labels_and_times():
    layout = [4] * 4 + [7] * 2 + [4] * 4
    p, positions = bar_pattern(layout)
    times = 0.5 * np.arange(len(positions)) + 1.0
    secs = describe_sections(times, positions, p, beats_per_bar=4, label="4/4", confidence=0.9)
    assert [(s["label"], s["first_bar"], s["bars"]) for s in secs] == [
        ("4/4", 1, 4), ("7/4", 5, 2), ("4/4", 7, 4)]
    assert secs[1]["start"] == pytest.approx(1.0 + 0.5 * 16)
    assert secs[0]["confidence"] == 0.9 and 0.5 < secs[1]["confidence"] <= 1.0
    assert describe_sections(np.zeros(0), np.zeros(0, int), np.zeros(0), beats_per_bar=4,
                             label="4/4", confidence=0.0) == []


def _activations(beat_times, downbeat_times, seconds, fps=100.0):
    n = int(seconds * fps)
    act = np.zeros((n, 2), dtype=np.float32)
    for t in beat_times:
        act[round(t * fps), 0] = 0.8
    for t in downbeat_times:
        i = round(t * fps)
        act[i, 0], act[i, 1] = 0.1, 0.8
    from scipy.ndimage import gaussian_filter1d

    act = gaussian_filter1d(act, 1.0, axis=0) * 2.5
    return Activations(np.clip(act, 0, 1).astype(np.float32), fps)


def test_track_bars_keeps_the_bar_line_after_an_inserted_bar():
    """120 BPM 4/4 with a 2-beat bar after bar 8: every later "one" stays on its beat."""
    from songmap.rhythm.meter import track_bars

    layout = [4] * 8 + [2] + [4] * 8
    beats = 1.0 + 0.5 * np.arange(sum(layout))
    lines = np.cumsum([0, *layout[:-1]])
    grid = track_bars(_activations(beats, beats[lines], beats[-1] + 2.0))
    found = grid.beat_times[grid.positions == 1]
    assert len(found) == len(lines)
    assert np.abs(found - beats[lines]).max() < 0.03
    assert grid.label == "4/4"


def test_a_song_heard_in_half_time_is_counted_at_its_beat():
    """190 BPM 4/4 whose network answers on every other beat at 0.5 of its answer on the
    others: the tracker settles on 95 BPM; the network's answer halfway says 190."""
    from songmap.rhythm.meter import midpoint_peak, track_bars

    beats = 1.0 + 60 / 190 * np.arange(240)
    act = _activations(beats[::2], beats[::4], beats[-1] + 2.0)
    values = act.values.copy()
    for t in beats[1::2]:  # the network also hears the beats between
        i = round(t * act.fps)
        values[i - 1:i + 2, 0] = np.maximum(values[i - 1:i + 2, 0], [0.27, 0.5, 0.27])
    assert midpoint_peak(beats[::2], values.sum(axis=1), act.fps) >= 3.0  # peaks halfway
    grid = track_bars(Activations(values, act.fps))
    bpm = 60.0 / float(np.median(np.diff(grid.beat_times)))
    assert abs(bpm - 190.0) < 5.0
    # weaker answers halfway (a fifth of those on the beat) are eighths, not beats
    values = act.values.copy()
    for t in beats[1::2]:
        i = round(t * act.fps)
        values[i - 1:i + 2, 0] = np.maximum(values[i - 1:i + 2, 0], [0.1, 0.2, 0.1])
    grid = track_bars(Activations(values, act.fps))
    assert abs(60.0 / float(np.median(np.diff(grid.beat_times))) - 95.0) < 3.0


def test_the_tempo_networks_decide_a_weaker_beat_halfway():
    """190 BPM whose network answers on every other beat at 0.3 of its answer on the
    others, peaking there: too weak to count as beats alone, strong enough to ask the
    tempo networks, which decide; a tenth is an off-beat eighth and is not asked about."""
    from songmap.rhythm.meter import track_bars

    beats = 1.0 + 60 / 190 * np.arange(240)
    act = _activations(beats[::2], beats[::4], beats[-1] + 2.0)

    def with_answer_between(height):
        values = act.values.copy()
        for t in beats[1::2]:
            i = round(t * act.fps)
            values[i - 1:i + 2, 0] = np.maximum(values[i - 1:i + 2, 0],
                                                [height / 2, height, height / 2])
        return Activations(values, act.fps)

    def evidence_at(bpm):
        asked = []

        def distribution():
            asked.append(bpm)
            d = np.zeros(300)
            d[int(bpm)] = 1.0
            return d
        return distribution, asked

    def tracked_bpm(grid):
        return 60.0 / float(np.median(np.diff(grid.beat_times)))

    heard = with_answer_between(0.3)
    for says, expected in ((190, 190.0), (95, 95.0)):
        evidence, asked = evidence_at(says)
        assert abs(tracked_bpm(track_bars(heard, tempo_evidence=evidence)) - expected) < 4.0
        assert asked == [says]
    assert abs(tracked_bpm(track_bars(heard)) - 95.0) < 3.0  # no tempo networks: as tracked
    evidence, asked = evidence_at(190)
    grid = track_bars(with_answer_between(0.08), tempo_evidence=evidence)
    assert abs(tracked_bpm(grid) - 95.0) < 3.0 and asked == []


def test_a_slow_compound_beat_is_counted_below_the_trackers_range():
    """A slow 12/8: eighths at 150 BPM are what the tracker follows, every third heard
    more strongly, bars every 12. Its dotted beat (50 BPM) lies below the tracker's 55;
    allowed down to 40 it is counted, otherwise the eighths stay the beats."""
    from songmap.rhythm.meter import COMPOUND_MIN_BPM, track_bars

    eighths = 1.0 + 0.4 * np.arange(240)
    act = _activations(eighths, eighths[::12], eighths[-1] + 2.0)
    values = act.values.copy()
    for t in eighths[3::3]:
        i = round(t * act.fps)
        values[i - 1:i + 2, 0] = np.maximum(values[i - 1:i + 2, 0], [0.5, 1.0, 0.5])
    heard = Activations(values, act.fps)
    grid = track_bars(heard, tracked=eighths, slowest_compound_bpm=COMPOUND_MIN_BPM)
    assert 60.0 / float(np.median(np.diff(grid.beat_times))) == pytest.approx(50.0, abs=0.5)
    assert grid.label == "6/8" and grid.tracked_per_beat == 3
    assert set(np.round(grid.beat_times, 6)) <= set(np.round(eighths, 6))  # on its eighths
    as_before = track_bars(heard, tracked=eighths)
    assert 60.0 / float(np.median(np.diff(as_before.beat_times))) == pytest.approx(150.0, abs=1)


def test_an_answer_spread_over_the_beat_is_no_beat_halfway():
    """60 BPM 4/4 on slow attacks (a choir), tracked at 60: the network's answer spreads
    over the whole beat, as high halfway as on the beat's flanks, with a ripple where
    passing eighths sound. No peak stands there: the song stays at 60, where the answer
    halfway alone would have it tracked again at 120."""
    from songmap.rhythm.meter import midpoint_peak, midpoint_ratio, track_bars

    beats = 1.0 + np.arange(64)
    act = _activations(beats, beats[::4], beats[-1] + 2.0)
    frames = np.arange(len(act.values)) / act.fps
    since = frames - beats[np.clip(np.searchsorted(beats, frames, side="right") - 1, 0, None)]
    values = act.values.copy()
    values[:, 0] = np.maximum(values[:, 0], np.where(frames >= beats[0], 0.5 * np.exp(-since / 4.0), 0.0))
    for t in beats[:-1] + 0.5:
        i = round(t * act.fps)
        values[i - 1:i + 2, 0] += [0.15, 0.3, 0.15]
    b = values[:, 0] + values[:, 1]
    assert midpoint_ratio(beats, b, act.fps) >= 0.4  # as high halfway as half time reads
    assert midpoint_peak(beats, b, act.fps) < 2.0  # a ripple, as on sung chorales (1.0-2.8)
    grid = track_bars(Activations(values, act.fps), tracked=beats)
    assert abs(60.0 / float(np.median(np.diff(grid.beat_times))) - 60.0) < 2.0


def test_the_result_lists_meter_sections():
    """The pipeline on given network outputs (4/4 with a 2-beat bar after bar 8, clicks
    as audio): three sections, the middle one a single 2/4 bar, each bar its own count."""
    from songmap.audio.decode import signal_from_array
    from songmap.pipeline import Analyzer
    from songmap.signals import NetworkOutputs

    layout = [4] * 8 + [2] + [4] * 8
    beats = 1.0 + 0.5 * np.arange(sum(layout))
    lines = np.cumsum([0, *layout[:-1]])
    seconds = beats[-1] + 2.0
    sr = 22050
    samples = np.zeros(int(seconds * sr), np.float32)
    for t in beats:
        samples[int(t * sr):int(t * sr) + 200] = 0.5
    audio = signal_from_array(samples, sr, target_sr=sr)
    chroma = Activations(np.full((int(seconds * 10), 12), 0.1, np.float32), 10.0)
    networks = NetworkOutputs(_activations(beats, beats[lines], seconds), np.full(24, 1 / 24), chroma)
    result = Analyzer().analyze_audio(audio, networks=networks)
    sections = [(s.first_bar, s.bars, s.beats_per_bar, s.label) for s in result.meter_sections]
    assert sections == [(1, 8, 4, "4/4"), (9, 1, 2, "2/4"), (10, 8, 4, "4/4")]
    assert result.meter_sections[1].start == pytest.approx(beats[lines[8]], abs=0.02)
    assert result.time_signature.label == "4/4"
    assert [d.beats for d in result.downbeat_timeline][7:10] == [4, 2, 4]


def test_the_body_is_the_longest_run_of_the_meter():
    from songmap.rhythm.bar_phase import body_grid

    # 3 bars, a 3-beat bar, 6 bars: the body starts at beat 15
    positions = np.concatenate([np.tile([1, 2, 3, 4], 3), [1, 2, 3], np.tile([1, 2, 3, 4], 6)])
    body = body_grid(positions, 4)
    assert (np.flatnonzero(body == 1) % 4 == 15 % 4).all() and body[15] == 1
    assert list(body_grid(np.array([1, 2, 3, 1, 2, 3]), 4)[:4]) == [1, 2, 3, 4]
