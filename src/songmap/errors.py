"""The exception tree. Every error a user can cause is a ``SongmapError``.

The CLI maps these to exit codes (``songmap.cli.main``) and the service to HTTP
statuses (``songmap.api.errors``); nothing else decides either.
"""

from __future__ import annotations


class SongmapError(Exception):
    """Root of every error songmap raises on purpose."""


class InvalidParameterError(SongmapError, ValueError):
    """A setting or argument is out of range or of the wrong kind."""


class InputNotFoundError(SongmapError, FileNotFoundError):
    """The input path does not exist or is not a readable file."""


class UndecodableAudioError(SongmapError):
    """The input looks like media but could not be decoded (truncated, corrupt)."""


class NotAudioError(UndecodableAudioError):
    """The input is not audio at all, or a container with no audio stream."""


class UnsupportedAudioError(UndecodableAudioError):
    """The input is audio songmap will not decode: a sample rate outside the sane range, or
    more samples than the decoding budget allows (what decoding costs is decided first)."""


class AudioTooShortError(SongmapError):
    """The audio is too short to find beats in."""


class AudioTooLongError(SongmapError):
    """The audio is longer than the configured limit."""


class ResourceLimitError(SongmapError):
    """An analysis ran past a resource limit (wall time, memory)."""


class AnalysisTimeoutError(ResourceLimitError):
    """An analysis ran past its wall-time limit."""


class ModelError(SongmapError):
    """A network could not be loaded or run (a broken installation, not bad input)."""


class MissingDependencyError(SongmapError, ImportError):
    """A format or table needs an optional package that is not installed."""


class StoreCorruptError(SongmapError):
    """A SQLite file of songmap (result store, jobs) is damaged or not a database.

    songmap never overwrites or recreates such a file: the message names it and says to
    move it aside, after which a new one is created.
    """
