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


class MemoryLimitError(ResourceLimitError):
    """An analysis needed more memory than its worker's cap (or the machine) allows."""


class WorkerCrashedError(SongmapError):
    """The worker process died during an analysis (it is restarted)."""


class AnalysisFailedError(SongmapError):
    """The analysis raised something unexpected in the worker (a bug, not bad input)."""


class ModelError(SongmapError):
    """A network could not be loaded or run (a broken installation, not bad input)."""


class MissingDependencyError(SongmapError, ImportError):
    """A format or table needs an optional package that is not installed."""


class StorageError(SongmapError):
    """A file songmap writes (``-o`` output, result store, jobs database) cannot be written:
    a read-only or missing folder, a folder where a file should be."""


class DiskFullError(StorageError):
    """The disk (or quota) holding a file songmap writes is full (ENOSPC, EDQUOT)."""


class OutputBusyError(SongmapError):
    """Another run holds an output this run would write, and cannot share it (on a
    platform without shared file locks)."""


class StoreCorruptError(SongmapError):
    """A SQLite file of songmap (result store, jobs) is damaged or not a database.

    songmap never overwrites or recreates such a file: the message names it and says to
    move it aside, after which a new one is created.
    """


def storage_error(what: str, exc: OSError) -> StorageError:
    """The one-line error for an ``OSError`` raised while writing ``what`` (a phrase naming
    the file, e.g. "the result store /srv/results.sqlite"): ``DiskFullError`` for a full
    disk or quota, ``StorageError`` otherwise, with the likely fix."""
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{what}: cannot be written, the disk is full ({reason}); "
                             "free some space and run again")
    if exc.errno in (errno.EISDIR,):
        return StorageError(f"{what}: is a folder, not a file; give a file path inside it")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(f"{what}: cannot be written ({reason}); choose a writable location")
    if exc.errno in (errno.ENOTDIR, errno.ENOENT, errno.EEXIST):
        return StorageError(f"{what}: a folder on its path does not exist or is a file "
                            f"({reason})")
    return StorageError(f"{what}: cannot be written ({reason})")
