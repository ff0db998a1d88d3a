"""Locks that let batch runs share one result store and one JSONL output.

Two kinds, both advisory locks on small files the kernel releases when their holder dies
(``flock`` on POSIX, ``msvcrt.locking`` on Windows), however it dies: a run killed with
SIGKILL never blocks the next one, and there are no pid files to go stale.

- A **claim** (``ClaimDir``): one lock file per (audio, settings) in a folder beside the
  store, held exclusively while a run analyses that file. Another run that finds it held
  leaves the file to its holder and picks up the holder's result from the store.
- The **output lock** (``OutputLock``): a lock file beside the JSONL output. Every run
  writing the output holds it shared; only the last one to leave (or a run alone) holds it
  exclusively, to repair a torn tail or compact the file, so no writer ever appends to a
  file that compaction has replaced. Windows has no shared lock: there a second run on the
  same output is refused at once (``OutputBusyError``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from songmap.errors import OutputBusyError

log = logging.getLogger("songmap.batch")

#: Whether this platform has shared locks (flock); without them the output lock is
#: exclusive and a second run on the same output is refused.
SHARED_LOCKS = sys.platform != "win32"

#: errno values meaning "this file system does not lock" (an old NFS mount, some FUSE).
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _flock(fd: int, *, exclusive: bool, blocking: bool) -> bool:
    """Lock ``fd``; False when ``blocking`` is off and another holder has it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def claim_name(audio_hash: str, settings_key: str) -> str:
    """The claim file's name for one file analysed with one set of settings."""
    settings = hashlib.sha256(settings_key.encode("utf-8")).hexdigest()[:16]
    return f"{audio_hash or 'nohash'}-{settings}.lock"


def _still_there(path: Path, fd: int) -> bool:
    """Whether ``path`` is still the file open as ``fd``. Its last holder removes a lock
    file before it unlocks it: a lock taken on the removed file in between guards nothing,
    and the path must be opened again."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class Claim:
    """This run's exclusive hold on one file's analysis; ``release`` when it is recorded."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd < 0:
            return
        # Removed while still locked: whoever opened it meanwhile sees it is gone (below).
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = -1


class ClaimDir:
    """Claims on files being analysed, in ``folder`` (created on first use)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.working = True  # False once the folder turned out not to lock

    def try_claim(self, audio_hash: str, settings_key: str) -> Claim | None:
        """This run's claim on the file, or None when another live run holds it.

        Where claims cannot be made (a file system without locks, a read-only folder) every
        file is this run's, as before there were claims: one warning, no failure."""
        if not self.working:
            return Claim(self.folder, -1)
        path = self.folder / claim_name(audio_hash, settings_key)
        for _ in range(8):
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue  # the folder was removed by a run that ended (close): make it again
            except OSError as exc:
                return self._give_up(exc)
            try:
                if not _flock(fd, exclusive=True, blocking=False):
                    os.close(fd)
                    return None
            except OSError as exc:
                os.close(fd)
                return self._give_up(exc)
            if _still_there(path, fd):
                return Claim(path, fd)
            os.close(fd)
        return None  # pragma: no cover - eight removals in a row: someone else is busy

    def close(self) -> None:
        """Remove the folder if no claim is left in it (a run beside this one may have
        one, or make one right after: ``try_claim`` then makes the folder again)."""
        with contextlib.suppress(OSError):
            self.folder.rmdir()

    def _give_up(self, exc: OSError) -> Claim:
        log.warning("cannot claim files in %s (%s); another batch run on the same store may "
                    "analyse the same files", self.folder, exc.strerror or exc)
        self.working = False
        return Claim(self.folder, -1)


class OutputLock:
    """Shared hold on a JSONL output for one run; see the module's description.

    ``enter(repair)`` waits while another run compacts the file, then holds it shared;
    ``repair()`` runs first when this run is the only one (a torn tail may be cut only
    then: another run might be in the middle of a line). ``leave(compact, dirty)``: the
    last run to leave calls ``compact()`` if it or any earlier run rewrote a line
    (``dirty``); the others leave the note for it.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = output.with_name(f".{output.name}.lock")
        self._fd = -1
        self._exclusive = False

    def enter(self, repair: Callable[[], object]) -> None:
        for _ in range(64):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                from songmap.errors import storage_error

                raise storage_error(f"the output {self.output}", exc) from exc
            try:
                alone = _flock(fd, exclusive=True, blocking=False)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in _NO_LOCKING:
                    raise
                log.warning("%s cannot be locked (%s); do not run two batches on it at once",
                            self.output, exc.strerror or exc)
                self._fd = -2  # no locking here: leave() compacts as a lone run would
                repair()
                return
            if not alone and not SHARED_LOCKS:
                os.close(fd)
                raise OutputBusyError(
                    f"another songmap batch is writing {self.output}; wait for it to finish "
                    "or give this one another -o")
            if not alone:
                _flock(fd, exclusive=False, blocking=True)  # waits while a run compacts
            if alone and _still_there(self.path, fd):
                repair()
                if SHARED_LOCKS:
                    # (not atomic: a run that ends meanwhile may remove the file; seen below)
                    _flock(fd, exclusive=False, blocking=True)
                else:  # pragma: no cover - Windows: exclusive for the whole run
                    self._exclusive = True
            if _still_there(self.path, fd):
                self._fd = fd
                return
            os.close(fd)
        raise OutputBusyError(f"{self.output} is locked and unlocked too often to join; "
                              "is something else removing its lock file?")  # pragma: no cover

    def leave(self, compact: Callable[[], object], *, dirty: bool) -> None:
        if self._fd == -2:
            if dirty:
                compact()
            return
        if self._fd < 0:
            return
        try:
            if dirty:
                os.lseek(self._fd, 0, os.SEEK_SET)
                os.write(self._fd, b"compact\n")
            if not self._exclusive:
                # Unlock, then try: of two runs leaving at once at least one gets it.
                _unlock(self._fd)
                if not _flock(self._fd, exclusive=True, blocking=False):
                    return  # another run still writes; the last one compacts
                if not _still_there(self.path, self._fd):
                    return  # the last one left between our unlock and our lock: all done
            os.lseek(self._fd, 0, os.SEEK_SET)
            if os.read(self._fd, 16).startswith(b"compact"):
                compact()
                os.ftruncate(self._fd, 0)
            # The last one out removes the lock file, before unlocking (see _still_there).
            with contextlib.suppress(OSError):
                self.path.unlink()
        finally:
            os.close(self._fd)
            self._fd = -1
