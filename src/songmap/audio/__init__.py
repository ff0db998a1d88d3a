"""Decoding any common audio file to the mono float32 signal the stages read."""

from songmap.audio.decode import Audio, load_audio, signal_from_array

__all__ = ["Audio", "load_audio", "signal_from_array"]
