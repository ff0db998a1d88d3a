"""Frame-wise signals: means over spans of time."""

import numpy as np

from songmap.signals import Activations, segment_means


def _ramp(frames: int, fps: float = 10.0) -> Activations:
    """A one-dimensional signal whose value is its frame's index."""
    return Activations(np.arange(frames, dtype=float)[:, None], fps)


def test_a_span_takes_the_frames_whose_centres_lie_in_it():
    # frames centred at 0.0, 0.1, ... s; a beat from 0.34 to 0.66 s holds centres 0.4, 0.5
    # and 0.6 (frames 4-6), not frame 3 (0.3 s, before it) that rounding 0.34 would take
    means = segment_means(_ramp(20), np.array([0.34, 0.66]))
    assert means[:, 0].tolist() == [5.0]


def test_spans_share_no_frame_and_miss_none():
    bounds = np.array([0.0, 0.26, 0.55, 1.04, 1.5])
    means = segment_means(_ramp(20), bounds)
    # [0, .26): 0-2; [.26, .55): 3-5; [.55, 1.04): 6-10; [1.04, 1.5): 11-14
    assert means[:, 0].tolist() == [1.0, 4.0, 8.0, 12.5]


def test_a_boundary_on_a_frame_centre_starts_with_that_frame():
    means = segment_means(_ramp(20), np.array([0.3, 0.5, 0.7]))
    assert means[:, 0].tolist() == [3.5, 5.5]


def test_a_span_between_two_centres_takes_the_nearest_frame():
    means = segment_means(_ramp(20), np.array([0.31, 0.37, 0.42, 0.44]))
    assert means[:, 0].tolist() == [3.0, 4.0, 4.0]


def test_spans_past_the_signal_take_its_last_frame():
    means = segment_means(_ramp(5), np.array([0.2, 0.45, 2.0, 3.0]))
    assert means[:, 0].tolist() == [3.0, 4.0, 4.0]
