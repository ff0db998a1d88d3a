"""Once per CLI process, before the first analysis: numba's kernel cache, the kernels
loaded while the first file decodes.

songmap's kernels are compiled by numba on first use and cached on disk (``cache=True``),
so only the first run after an install or an upgrade compiles them (~20 s, silent but for
the notice below); later runs load them in a fraction of a second.

Where numba caches: next to the module (``__pycache__``) when that folder is writable,
else in the user's cache folder (``~/.cache/numba``), else (``$NUMBA_CACHE_DIR`` unset)
nowhere: it then refuses to compile a ``cache=True`` function at all. A wheel installed
in a read-only site-packages therefore caches in the user's folder;
``ensure_numba_cache_dir`` covers the last case (no writable home either, as for some
service accounts and containers) with a folder in the temp directory.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from songmap.audio import Audio
    from songmap.config import AnalysisSettings

log = logging.getLogger("songmap")

#: Modules that define songmap's numba kernels (imported to look at their caches).
KERNEL_MODULES = ("songmap.models._kernels", "songmap.rhythm.viterbi")

#: The kernels songmap calls from Python (the others are compiled into these and need no
#: loading of their own), loaded before the first analysis.
ENTRY_KERNELS = ("songmap.models._kernels.lstm_recurrence", "songmap.rhythm.viterbi._viterbi",
                 "songmap.rhythm.viterbi._trace_back")

COMPILE_NOTICE = "compiling its kernels once (~20 s); later runs start at once"


def _writable_dir(path: Path) -> bool:
    """Whether a file can be created in ``path`` or, if it does not exist yet, in the
    nearest existing folder above it."""
    for folder in (path, *path.parents):
        if folder.exists():
            return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
    return False


def _user_cache_dir() -> Path:
    """numba's user-wide cache folder on this platform (its ``appdirs`` rule)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "numba" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def ensure_numba_cache_dir(*, package_dir: Path | None = None) -> Path | None:
    """Set ``NUMBA_CACHE_DIR`` to a temp-dir folder when numba would have nowhere to cache
    songmap's kernels (``package_dir`` and the user's cache folder not writable) and
    return it; None when numba's own choice works or the variable is already set.

    Must run before numba is imported (it reads the variable once).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    package_dir = package_dir or Path(__file__).resolve().parents[1]
    try:
        user_dir = _user_cache_dir()
    except (RuntimeError, KeyError):  # no home directory at all
        user_dir = None
    if _writable_dir(package_dir / "models" / "__pycache__") or (
        user_dir is not None and _writable_dir(user_dir)
    ):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"songmap-numba-cache-{uid}"
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # too late for numba's import-time read; reread it
        from numba.core import config

        config.reload_config()
    log.info("numba caches songmap's kernels in %s (site-packages and the home folder "
             "are read-only)", folder)
    return folder


def _signatures_here(dispatcher: object, cached: dict) -> list | None:
    """The signatures in numba's cache index ``cached`` of ``dispatcher`` that hold code
    for this machine (CPU and features) and this bytecode; None when that cannot be told."""
    try:
        magic = dispatcher.targetctx.codegen().magic_tuple()  # type: ignore[attr-defined]
        code = hashlib.sha256(dispatcher.py_func.__code__.co_code).hexdigest()  # type: ignore[attr-defined]
    except (AttributeError, TypeError, RuntimeError) as exc:
        log.debug("cannot tell numba's target: %s", exc)
        return None
    return [key[0] for key in cached if len(key) == 3 and key[1] == magic and key[2][0] == code]


def _compiled_here(dispatcher: object, cached: dict) -> bool:
    """Whether numba's cache index ``cached`` of ``dispatcher`` holds code for this
    machine and this bytecode; True when that cannot be told."""
    signatures = _signatures_here(dispatcher, cached)
    return signatures is None or bool(signatures)


def _cached_kernels(modules: tuple[str, ...]) -> Iterator[tuple[str, Any, dict]]:
    """``(name, dispatcher, cache index)`` of every numba kernel in ``modules`` that numba
    caches on disk; the index is ``{}`` when absent, stale or of another numba.

    Kernels inlined into others (``inline="always"``) have no cache of their own and are
    left out, and so are modules that cannot be imported (the analysis reports them).
    """
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, obj in sorted(vars(module).items()):
            cache = getattr(obj, "_cache", None)
            options = getattr(obj, "targetoptions", None)
            if cache is None or options is None or options.get("inline") == "always":
                continue
            index = getattr(cache, "_cache_file", None)
            if index is None:  # numba.core.caching.NullCache: cache=False
                continue
            try:
                cached = index._load_index()
            except (OSError, EOFError, ValueError, AttributeError, ImportError) as exc:
                log.debug("cannot read numba's cache index of %s.%s: %s", name, attr, exc)
                continue
            yield f"{name}.{attr}", obj, cached


def kernels_to_compile(modules: tuple[str, ...] = KERNEL_MODULES) -> list[str]:
    """Names of the cached numba kernels in ``modules`` that have nothing in numba's disk
    cache for this source and this machine (never compiled here, the source changed
    since, or the cache was filled on another CPU).
    """
    return [name for name, kernel, cached in _cached_kernels(modules)
            if not cached or not _compiled_here(kernel, cached)]


#: numba releases whose cached-kernel loading ``_linking_only_refresh`` was checked
#: against (first, last minor; the CI's, 0.68): its target context's ``refresh`` imports
#: every lowering module but only the runtime's symbols are needed to link cached code.
#: Outside this range numba's own ``refresh`` runs (slower, never wrong).
LEAN_LOAD_NUMBA = ((0, 68), (0, 68))
#: Platforms it was checked on (the CI's); elsewhere numba's own ``refresh`` runs.
LEAN_LOAD_PLATFORMS = ("linux",)


def _numba_version() -> tuple[int, int]:
    import numba

    major, minor = (int(part) for part in numba.__version__.split(".")[:2])
    return major, minor


def lean_load_checked() -> bool:
    """Whether this platform and numba release are ones the lean kernel load was
    checked on (``LEAN_LOAD_PLATFORMS``, ``LEAN_LOAD_NUMBA``)."""
    first, last = LEAN_LOAD_NUMBA
    return sys.platform.startswith(LEAN_LOAD_PLATFORMS) and first <= _numba_version() <= last


@contextmanager
def _linking_only_refresh() -> Iterator[bool]:
    """While kernels load from numba's disk cache, let its CPU target context's
    ``refresh`` only start the runtime (NRT) and register its symbols, which linking the
    cached code needs, instead of also importing every lowering module and scanning the
    installed packages' entry points (~0.1 s of a cold start, needed to compile, not to
    load). Yields whether it did; numba's ``refresh`` is back on leaving, and a later
    compile (any kernel not cached) runs it in full.
    """
    try:
        if not lean_load_checked():
            raise ImportError("platform or numba release not checked for a lean load")
        from numba.core.cpu import CPUContext
        from numba.core.runtime import rtsys
    except (ImportError, ValueError, AttributeError) as exc:
        log.debug("kernels load with numba's full refresh: %s", exc)
        yield False
        return
    full = CPUContext.refresh

    def start_runtime(context: object) -> None:
        rtsys.initialize(context)

    CPUContext.refresh = start_runtime  # type: ignore[method-assign,assignment]
    try:
        yield True
    finally:
        CPUContext.refresh = full  # type: ignore[method-assign]


def load_cached_kernels(kernels: tuple[str, ...] = ENTRY_KERNELS) -> int:
    """Load every signature of ``kernels`` (``module.name``) that numba's disk cache holds
    for this machine and this source, as their first call would; returns how many.

    Nothing is compiled here: a kernel that is not cached yet is compiled by its first
    call, for the types of that call.
    """
    wanted = set(kernels)
    modules = tuple(dict.fromkeys(name.rsplit(".", 1)[0] for name in kernels))
    loaded = 0
    with _linking_only_refresh():
        for name, kernel, cached in _cached_kernels(modules):
            if name not in wanted:
                continue
            for signature in _signatures_here(kernel, cached) or ():
                kernel.compile(signature)  # found in the cache: loaded, not compiled
                loaded += 1
    return loaded


def announce_kernel_compile() -> bool:
    """Say on stderr (one line, logging) that the kernels are about to be compiled, when
    they are; returns whether it did."""
    try:
        missing = kernels_to_compile()
    except Exception as exc:  # noqa: BLE001 - a notice must never stop an analysis
        log.debug("could not inspect numba's cache: %s", exc)
        return False
    if missing:
        log.warning(COMPILE_NOTICE)
        log.info("not in numba's cache yet: %s", ", ".join(missing))
    return bool(missing)


def import_numpy_one_blas_thread() -> None:
    """Import numpy with OpenBLAS started on one thread (``OPENBLAS_NUM_THREADS=1`` while
    it loads; the variable is restored after, so child processes are not affected).

    Every analysis holds BLAS to one thread anyway (``songmap.models.blas``); OpenBLAS
    starting its thread pool at load costs ~40 ms of a cold start for nothing. Nothing
    changes when numpy is imported already or the variable is set by the user.
    """
    if "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


@functools.cache
def announce_compiles() -> bool:
    """From now on in this process, say on stderr (one line, logging, once) when numba
    starts compiling one of songmap's kernels: the first run after an install or an
    upgrade is not silent for its ~20 s, and a run that compiles nothing (every kernel
    it calls cached, or the networks' outputs cached so the BLSTM kernel is not called)
    says nothing. Listens to numba's ``numba:compile`` event, sent only when a kernel
    is not found in its disk cache. Returns whether the listener is in place (one per
    process, however often this is called)."""
    from numba.core import event

    class CompileNotice(event.Listener):
        said = False

        def on_start(self, ev: event.Event) -> None:
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if not self.said and module.startswith("songmap."):
                self.said = True
                log.warning(COMPILE_NOTICE)

        def on_end(self, ev: event.Event) -> None:
            return

    event.register("numba:compile", CompileNotice())
    return True


def load_kernels() -> None:
    """Import numba and load songmap's kernels from its disk cache now; any kernel
    compiled later in this process is announced once (``announce_compiles``).

    ~0.3 s of Python at every start, done before the analysis (the first file's
    kernel-free stages run on its decoding thread meanwhile). A kernel not cached yet
    is compiled by its first call; a failure here is left for the analysis to report.
    """
    try:
        announce_compiles()
        load_cached_kernels()
    except Exception as exc:  # noqa: BLE001 - the analysis loads them itself and reports
        log.debug("could not load the kernels ahead: %s", exc)


def decode_ahead(path: str, settings: AnalysisSettings, *,
                 then: Callable[[Audio], None] | None = None) -> Future[Audio]:
    """Start decoding ``path`` on a thread and return its future; ``then(audio)`` runs
    on that thread once the future holds the audio (``Analyzer.start_ahead``: the
    stages that need no kernel, run while the main thread loads them).

    The decoders (libsndfile, FFmpeg) and soxr run in C without the GIL, so the decoding
    proceeds while this thread imports the pipeline and loads the models, which is
    Python work: a 270 s FLAC's 0.2 s of decoding disappears from the start-up.
    """
    import threading

    import soundfile  # noqa: F401 - imported here, not beside the pipeline's imports

    from songmap.audio import load_audio

    future: Future[Audio] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            audio = load_audio(path, max_duration_s=settings.max_duration_s,
                               min_duration_s=settings.min_duration_s)
        except BaseException as exc:  # noqa: BLE001 - delivered to the analysis through the future
            future.set_exception(exc)
            return
        future.set_result(audio)
        if then is not None:
            try:
                then(audio)
            except Exception as exc:  # noqa: BLE001 - the analysis runs what did not
                log.debug("could not start the analysis ahead: %s", exc)

    threading.Thread(target=run, name="songmap-decode-ahead", daemon=True).start()
    return future
