"""songmap: the map of a recording in time (tempo, key, meter, bars, beats, chords).

``import songmap`` stays cheap: the decoders and model runtimes load on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from songmap._version import __version__

if TYPE_CHECKING:
    from songmap.netcache import NetworkCache
    from songmap.pipeline import Analyzer
    from songmap.schema import AnalysisResult

__all__ = ["AnalysisResult", "Analyzer", "__version__", "analyze"]


def analyze(
    path: str | os.PathLike[str],
    *,
    bpm: float | str | tuple[float, float] | None = None,
    time_signature: str | None = None,
    first_downbeat: float | None = None,
    **settings: Any,
) -> AnalysisResult:
    """Analyse one file with a process-wide Analyzer (models load once).

    The grid overrides: ``bpm`` a tempo (followed from 0.82x to 1.22x it) or a range ``"120-130"``
    / ``(120, 130)``; ``time_signature`` like ``"3/4"``, ``"6/8"``, ``"7/4"``;
    ``first_downbeat`` seconds (the beat nearest it is a downbeat). Other keywords are
    ``AnalysisSettings`` fields. ``songmap.errors.InvalidParameterError`` for a bad value.
    """
    from pydantic import ValidationError

    from songmap.config import AnalysisSettings
    from songmap.errors import InvalidParameterError
    from songmap.pipeline import Analyzer

    overrides = {"bpm": bpm, "time_signature": time_signature, "first_downbeat_s": first_downbeat}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    try:
        chosen = AnalysisSettings(**settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]).replace("first_downbeat_s", "first_downbeat")
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidParameterError(f"invalid {where or 'setting'}: {message}") from None
    return Analyzer(chosen, network_cache=_network_cache()).analyze(path)


def _network_cache() -> NetworkCache:
    """The networks' outputs of ``analyze()``'s recent calls: a second call on the same
    audio (with other overrides) skips the networks."""
    global _NETWORK_CACHE
    if _NETWORK_CACHE is None:
        from songmap.netcache import NetworkCache

        _NETWORK_CACHE = NetworkCache()
    return _NETWORK_CACHE


_NETWORK_CACHE: NetworkCache | None = None


def __getattr__(name: str) -> Any:
    if name == "Analyzer":
        from songmap.pipeline import Analyzer

        return Analyzer
    if name == "AnalysisResult":
        from songmap.schema import AnalysisResult

        return AnalysisResult
    raise AttributeError(name)
