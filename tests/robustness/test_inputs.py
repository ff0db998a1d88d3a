"""Issue 7: every hostile input gives its exact outcome: a named error or a valid result.

The inputs are generated here (``cases.py``); none is a fixture file. A wrong outcome
is any other error class, a message without the expected words, a crash, or a result
that breaks the case's stated properties.
"""

from __future__ import annotations

import time
import warnings

import pytest

from songmap.config import AnalysisSettings
from songmap.pipeline import Analyzer
from tests.robustness.cases import CASES, Case

pytestmark = pytest.mark.slow


def _analyzer(case: Case, shared: Analyzer) -> Analyzer:
    if case.max_duration_s is None:
        return shared
    return Analyzer(AnalysisSettings(max_duration_s=case.max_duration_s), shared.registry)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_input_outcome(case: Case, tmp_path, analyzer):
    path = case.make(tmp_path)
    an = _analyzer(case, analyzer)
    if case.error is not None:
        t0 = time.perf_counter()
        with pytest.raises(case.error) as info:
            an.analyze(path)
        assert type(info.value) is case.error, repr(info.value)
        assert case.message in str(info.value)
        # refused at the door: no error case may decode for long (the bombs hold hours)
        assert time.perf_counter() - t0 < 5.0
    else:
        with warnings.catch_warnings(record=True):  # silence and a lone click warn
            result = an.analyze(path)
        case.check(result)


def test_every_issue_input_is_covered():
    names = " | ".join(c.name for c in CASES)
    for word in ("empty", "text", "ID3", "truncated OGG", "truncated MP3", "truncated FLAC",
                 "garbage", "WAV header", "bomb", "video with audio", "video without audio",
                 "0.2 s", "silence", "white noise", "click", "DC offset", "NaN", "square",
                 "8 kHz", "192 kHz", "6 channels", "32 channels", "unicode", "spaces", "long"):
        assert word in names, word
