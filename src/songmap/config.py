"""Analysis settings: one frozen value that travels with every result."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Sample rate the madmom networks were trained on.
NETWORK_SR = 44100


class AnalysisSettings(BaseModel):
    """What an analysis does. Part of the result's provenance and of the store's cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_duration_s: float = Field(
        3 * 3600.0, gt=0, description="Refuse audio longer than this many seconds."
    )
    min_duration_s: float = Field(
        2.0, gt=0, description="Refuse audio shorter than this: too short to find a beat."
    )
    min_bpm: float = Field(55.0, gt=10, description="Slowest beat tempo considered (BPM).")
    max_bpm: float = Field(215.0, gt=20, description="Fastest beat tempo considered (BPM).")
    meters: tuple[int, ...] = Field(
        (2, 3, 4), description="Beats per bar considered when deciding the meter."
    )
    transient_window_s: float = Field(
        0.07, gt=0, le=0.5, description="How far from a beat an onset may lie to be its transient."
    )
    chord_vocabulary: str = Field(
        "sevenths", pattern="^(majmin|sevenths)$", description="Chord labels produced."
    )
    threads: int = Field(2, ge=1, le=64, description="Threads for the network runtime.")
    descriptors: bool = Field(
        False, description="Also compute loudness and track descriptors (docs/descriptors.md)."
    )

    def cache_key(self) -> str:
        """A stable string for the result store: settings that change the result give a
        different key (thread count does not change it, so it is left out)."""
        return self.model_dump_json(exclude={"threads"})
