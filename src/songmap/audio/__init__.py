"""Decoding any common audio file to the mono float32 signal the stages read."""

from songmap.audio.decode import Audio, display_name, load_audio, signal_from_array

__all__ = ["Audio", "display_name", "load_audio", "signal_from_array"]
