"""Views of a result that the service answers with (the result itself is ``songmap.schema``)."""

from __future__ import annotations

from songmap.api.models import TimelineFeatures
from songmap.schema import AnalysisResult


def timeline_features(result: AnalysisResult) -> TimelineFeatures:
    """The ``timeline_features`` block of ``POST /analyze-timeline``: the bar/beat/chord
    timeline with tempo, meter and key, taken from the result's JSON form."""
    data = result.model_dump(mode="json", include=set(TimelineFeatures.model_fields))
    return TimelineFeatures.model_validate(data)
