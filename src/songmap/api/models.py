"""Typed answers of the service (the analysis result itself is ``songmap.schema``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from songmap.api.errors import ErrorDetail
from songmap.schema import (
    AudioInfo,
    BarChord,
    BeatMarker,
    Downbeat,
    KeyInfo,
    PerformanceMetrics,
    TempoInfo,
    TimeSignature,
)


class TimelineFeatures(BaseModel):
    """``songmap.api.views.timeline_features(result)``: the bar/beat/chord timeline."""

    downbeat_timeline: list[Downbeat]
    total_bars: int
    average_bar_duration: float
    tempo_stability: float
    beat_transient_markers: list[BeatMarker]
    total_beats: int
    transient_accuracy: float
    chord_progression: list[BarChord]
    total_chord_changes: int
    harmonic_rhythm: float
    chord_segments: list[tuple[float, float, str]]
    tempo: TempoInfo
    tempo_curve: list[tuple[float, float]]
    time_signature: TimeSignature
    key: KeyInfo


class TimelineResponse(BaseModel):
    """The answer of ``POST /analyze-timeline``."""

    filename: str
    timeline_features: TimelineFeatures
    performance_metrics: PerformanceMetrics
    audio: AudioInfo
    cached: bool = Field(description="True when a result of the same audio was reused (stored, "
                                     "or analysed once for simultaneous identical uploads).")


class JobInfo(BaseModel):
    """A job's state. ``progress`` runs 0..1; ``error`` is set when it failed."""

    id: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float
    filename: str
    error: ErrorDetail | None = None
    error_status: int | None = Field(None, description="HTTP status the failure maps to.")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result_url: str | None = Field(None, description="Where the result is, once done.")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: Literal["ready", "starting", "failed"]
    workers: int
    workers_ready: int
    detail: str | None = None


class VersionInfo(BaseModel):
    songmap: str
    schema_version: str
    analysis_settings: dict[str, object]
    models: list[dict[str, str]]
