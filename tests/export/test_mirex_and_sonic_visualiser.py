""".lab / .beats / Sonic Visualiser CSV, read back with mir_eval and madmom's own readers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from songmap.export import save

mir_eval = pytest.importorskip("mir_eval")


def test_lab_round_trip_with_mir_eval(tmp_path, any_result):
    r = any_result
    path = save(r, "lab", tmp_path / "x.lab")
    intervals, labels = mir_eval.io.load_labeled_intervals(str(path))
    np.testing.assert_allclose(intervals, [[s, e] for s, e, _ in r.chord_segments], atol=1e-3)
    assert labels == [c for _, _, c in r.chord_segments]
    for label in labels:
        mir_eval.chord.encode(label)  # every label is valid Harte syntax


def test_lab_lines_are_tab_separated_triples(golden_result):
    from songmap.export import export

    lines = export(golden_result, "lab").decode().splitlines()
    assert all(len(line.split("\t")) == 3 for line in lines)


def test_beats_round_trip_with_mir_eval_and_madmom(tmp_path, any_result):
    r = any_result
    path = save(r, "beats", tmp_path / "x.beats")
    times, positions = mir_eval.io.load_delimited(str(path), [float, int], delimiter="\t")
    np.testing.assert_allclose(times, r.beat_times(), atol=1e-3)
    assert list(positions) == [b.beat_position for b in r.beat_transient_markers]

    madmom_io = pytest.importorskip("madmom.io")
    beats = madmom_io.load_beats(str(path))  # beat times (first column)
    np.testing.assert_allclose(beats, times, atol=1e-6)
    down = madmom_io.load_beats(str(path), downbeats=True)
    expected = [b.beat_time for b in r.beat_transient_markers if b.beat_position == 1]
    np.testing.assert_allclose(down, expected, atol=1e-3)


def test_sv_beats_round_trip(tmp_path, any_result):
    r = any_result
    path = save(r, "sv-beats", tmp_path / "beats.csv")
    times, labels = mir_eval.io.load_labeled_events(str(path), delimiter=",")
    np.testing.assert_allclose(times, r.beat_times(), atol=1e-3)
    assert labels == [f"{b.bar}.{b.beat_position}" for b in r.beat_transient_markers]


def test_sv_chords_mark_every_change(tmp_path, any_result):
    r = any_result
    path = save(r, "sv-chords", tmp_path / "chords.csv")
    times, labels = mir_eval.io.load_labeled_events(str(path), delimiter=",")
    expected = []
    for s, _e, c in r.chord_segments:
        if not expected or expected[-1][1] != c:
            expected.append((s, c))
    np.testing.assert_allclose(times, [t for t, _ in expected], atol=1e-3)
    assert labels == [c for _, c in expected]
    assert all(a != b for a, b in itertools.pairwise(labels))


def test_sv_chords_close_a_gap_with_no_chord():
    from songmap.export.sonic_visualiser import to_sv_chords
    from tests.export.helpers import make_result

    r = make_result([1.0, 1.5, 2.0, 2.5], [1, 2, 3, 4], duration=6.0,
                    chords=[(1.0, 2.0, "C:maj"), (3.0, 4.0, "C:maj")])
    assert to_sv_chords(r).splitlines() == ["1.000000,C:maj", "2.000000,N", "3.000000,C:maj"]
