"""Assembling stage outputs into bars, beats and chords of the result."""

from songmap.timeline.build import Timeline, build_timeline

__all__ = ["Timeline", "build_timeline"]
