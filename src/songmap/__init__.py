"""songmap: the map of a recording in time (tempo, key, meter, bars, beats, chords).

``import songmap`` stays cheap: the decoders and model runtimes load on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from songmap.pipeline import Analyzer
    from songmap.schema import AnalysisResult

__all__ = ["Analyzer", "AnalysisResult", "analyze", "__version__"]


def analyze(path: str | os.PathLike[str], **settings: Any) -> "AnalysisResult":
    """Analyse one file with a process-wide Analyzer (models load once)."""
    from songmap.config import AnalysisSettings
    from songmap.pipeline import Analyzer

    return Analyzer(AnalysisSettings(**settings)).analyze(path)


def __getattr__(name: str) -> Any:
    if name == "Analyzer":
        from songmap.pipeline import Analyzer

        return Analyzer
    if name == "AnalysisResult":
        from songmap.schema import AnalysisResult

        return AnalysisResult
    raise AttributeError(name)
