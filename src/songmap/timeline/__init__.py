"""Assembling stage outputs into bars, beats and chords of the result."""

from songmap.timeline.build import Timeline, TimelineBeats, build_timeline

__all__ = ["Timeline", "TimelineBeats", "build_timeline"]
