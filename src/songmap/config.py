"""Analysis settings: one frozen value that travels with every result."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Sample rate the madmom networks were trained on.
NETWORK_SR = 44100

#: Tempo an override may name (BPM): wider than the tracker's default range, so a slow
#: ballad or a drum-and-bass track can be pinned, narrow enough to reject typos (1280).
BPM_OVERRIDE_LIMITS = (30.0, 300.0)
#: A single BPM override lets the beat tracker follow the music between these factors of
#: it: the tempi nearer (in log tempo) to the value than to its neighbouring metrical
#: levels x2/3 and x3/2 (the geometric midpoints sqrt(2/3) and sqrt(3/2)), so the level is
#: the user's and the tempo may still drift, ramp or step within it. Measured with the
#: true tempo as the override (beat F): +-5 % lost the tempo-changing songs (dev .948,
#: seed 7 .944, fof .965), this range kept them (dev .998, seed 7 .992, fof .961).
BPM_OVERRIDE_FACTORS = (math.sqrt(2.0 / 3.0), math.sqrt(3.0 / 2.0))

_TIME_SIGNATURE = re.compile(r"^\s*(\d{1,2})\s*/\s*(1|2|4|8|16)\s*$")
_BPM_TEXT = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(?:-\s*(\d+(?:\.\d*)?)\s*)?$")


def parse_bpm(value: Any) -> tuple[float, float] | None:
    """A BPM override as ``(low, high)``: ``128``, ``"128"``, ``"120-130"`` or ``(120, 130)``.

    Raises ``ValueError`` naming the accepted forms for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):  # ValueError: pydantic reports it as a validation error
        raise ValueError("bpm must be a number like 128 or a range like 120-130")
    if isinstance(value, (int, float)):
        lo = hi = float(value)
    elif isinstance(value, str):
        match = _BPM_TEXT.match(value)
        if match is None:
            raise ValueError(f"bpm {value!r} is neither a number like 128 nor a range like 120-130")
        lo = float(match.group(1))
        hi = float(match.group(2)) if match.group(2) is not None else lo
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = (float(v) for v in value)
    else:
        raise ValueError("bpm must be a number like 128 or a range like 120-130")
    low_limit, high_limit = BPM_OVERRIDE_LIMITS
    if not (low_limit <= lo <= high_limit and low_limit <= hi <= high_limit):
        raise ValueError(f"bpm must lie between {low_limit:g} and {high_limit:g}")
    if lo > hi:
        raise ValueError(f"bpm range {lo:g}-{hi:g} runs backwards; write {hi:g}-{lo:g}")
    return lo, hi


def parse_time_signature(value: str) -> tuple[int, int]:
    """``"7/4"`` -> ``(7, 4)``; ``ValueError`` for anything that is not N/D with D 1..16."""
    match = _TIME_SIGNATURE.match(str(value))
    if match is None:
        raise ValueError(f"time signature {value!r} is not like 4/4, 3/4, 6/8 or 7/4")
    num, den = int(match.group(1)), int(match.group(2))
    if not 1 <= num <= 16:
        raise ValueError(f"time signature {value!r}: 1 to 16 beats per bar")
    return num, den


def counted_beats(time_signature: str) -> int:
    """Beats a listener counts in a bar of this signature: compound metres (6/8, 9/8,
    12/8, 6/16, ...) count dotted beats (a third of the numerator), others the numerator."""
    num, den = parse_time_signature(time_signature)
    return num // 3 if den >= 8 and num % 3 == 0 and num > 3 else num


class AnalysisSettings(BaseModel):
    """What an analysis does. Part of the result's provenance and of the store's cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_duration_s: float = Field(
        3 * 3600.0, gt=0, allow_inf_nan=False,
        description="Refuse audio longer than this many seconds.",
    )
    min_duration_s: float = Field(
        2.0, gt=0, allow_inf_nan=False,
        description="Refuse audio shorter than this: too short to find a beat.",
    )
    min_bpm: float = Field(55.0, gt=10, allow_inf_nan=False,
                           description="Slowest beat tempo considered (BPM).")
    max_bpm: float = Field(215.0, gt=20, allow_inf_nan=False,
                           description="Fastest beat tempo considered (BPM).")
    meters: tuple[int, ...] = Field(
        (2, 3, 4), description="Beats per bar considered when deciding the meter."
    )
    transient_window_s: float = Field(
        0.07, gt=0, le=0.5, allow_inf_nan=False,
        description="How far from a beat an onset may lie to be its transient.",
    )
    chord_vocabulary: str = Field(
        "sevenths", pattern="^(majmin|sevenths)$", description="Chord labels produced."
    )
    threads: int = Field(
        2, ge=1, le=64,
        description="Threads one analysis uses: the network runtime's, and with more than 1 "
        "the independent stages run side by side. Not the number of worker processes "
        "(see songmap.workers). Does not change the result.",
    )
    descriptors: bool = Field(
        False, description="Also compute loudness and track descriptors (docs/descriptors.md)."
    )
    # -- overrides: what the user knows about the track (None: songmap decides) --------
    bpm: tuple[float, float] | None = Field(
        None, description="Tempo override (BPM): a value (the beat tracker follows the music "
        "from 0.82x to 1.22x it: that metrical level, never half, double, 2/3 or 3/2) or a "
        "range low-high (within it). Accepts 128, '128', '120-130' or [120, 130].",
    )
    time_signature: str | None = Field(
        None, description='Meter override, e.g. "4/4", "3/4", "6/8", "7/4": every bar gets '
        "that many counted beats (6/8, 9/8, 12/8 count dotted beats: 2, 3, 4).",
    )
    first_downbeat_s: float | None = Field(
        None, ge=0, allow_inf_nan=False,
        description="Bar-phase override (s): the beat nearest this time is the first beat "
        "of a bar, and the bar lines follow from it.",
    )

    @field_validator("bpm", mode="before")
    @classmethod
    def _parse_bpm(cls, value: Any) -> tuple[float, float] | None:
        return parse_bpm(value)

    @field_validator("time_signature")
    @classmethod
    def _normalise_time_signature(cls, value: str | None) -> str | None:
        if value is None:
            return None
        num, den = parse_time_signature(value)
        return f"{num}/{den}"

    @model_validator(mode="after")
    def _check_tempo_range(self) -> AnalysisSettings:
        if self.min_bpm >= self.max_bpm:
            raise ValueError(f"min_bpm {self.min_bpm:g} must be below max_bpm {self.max_bpm:g}")
        return self

    def beat_tempo_range(self) -> tuple[float, float]:
        """The tempo range (BPM) the beat tracker searches: the override's if one is set."""
        if self.bpm is None:
            return self.min_bpm, self.max_bpm
        lo, hi = self.bpm
        if lo == hi:
            return lo * BPM_OVERRIDE_FACTORS[0], hi * BPM_OVERRIDE_FACTORS[1]
        return lo, hi

    def overrides(self) -> dict[str, Any]:
        """The override fields that are set (JSON-ready), e.g. ``{"bpm": [128.0, 128.0]}``."""
        return self.model_dump(mode="json", include=set(OVERRIDE_FIELDS), exclude_none=True)

    def cache_key(self) -> str:
        """A stable string for the result store: settings that change the result give a
        different key (thread count does not change it, so it is left out). Overrides
        that are not set are left out too, so results stored before they existed are
        found under the same key."""
        unset = {name for name in OVERRIDE_FIELDS if getattr(self, name) is None}
        return self.model_dump_json(exclude={"threads"} | unset)


#: The AnalysisSettings fields a user sets to correct the grid (``songmap analyze --bpm``).
OVERRIDE_FIELDS = ("bpm", "time_signature", "first_downbeat_s")
