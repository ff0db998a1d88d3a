"""``LiveAnalyzer``: beats, bars, tempo, chords and key of a signal as it arrives.

Push audio blocks (any size, any sample rate, mono or interleaved channels); each
``push`` returns the events that became known. Two paths run on the stream:

* **beats, tempo**: madmom's online beat LSTMs (``songmap.models.lstm``) on the causal
  front end (``songmap.live.features``), tracked by the forward filter of the beat HMM
  (``songmap.live.beats``), which each analysis below pulls towards its beat grid. While
  that analysis has a steady grid, beats are that grid (a line through its last 4 s of
  committed beats) carried forward past the newest sample, emitted as the stream reaches
  them (``beat_source="grid"``, the default: on fof it lifted beat F of the filter's own
  beats from 0.85 to 0.87 and 0.54 to 0.86 on the two songs tried, where the filter
  jittered or held the off-beat); without one (the first seconds, no steady beat), the
  filter's own beats. Either way a beat is emitted within one block of its time. After a
  tempo step the line runs through the beats since, and a tempo that keeps bending (a
  ritardando) is carried along its curve (``grid_fit="follow"``). The causal filter
  hears a tempo step a second or two before the windows do: from its first beat that
  shows one (``songmap.live.grid.causal_step``) until a window's grid agrees with it,
  its beats are emitted instead (``tempo_step="causal"``). A
  window's grid that disagrees with the one carried (another tempo octave, a jump in
  tempo, the off-beat) is weighed against the windows before it, the decisions of the
  song so far (``grid_choice="song"``, ``songmap.live.grid``).
* **delayed** (downbeats, bar numbers, chords, key): every ``hop_s`` of audio, songmap's
  offline analysis (the bidirectional networks and every offline decision:
  ``Analyzer.analyze_audio``) runs on the last ``window_s`` of audio, and what it says
  about the stretch that ends ``lookahead_s`` before the newest sample is committed:
  downbeats and chord changes there are emitted, each at most ``hop_s + lookahead_s`` late.
  Where the bars start is weighed against the song so far (``bar_phase="song"``,
  ``songmap.live.phase``): the windows' votes on the bar's first beat, summed on a
  running index of the emitted beats. Beats already emitted whose bar or position the
  committed grid contradicts get a ``revise`` event. The key is the running estimate over every window so far.

State is bounded: the audio ring holds ``window_s``, the recent beats a fixed number, the
network and filter states a fixed size; nothing grows with the stream's length
(tests/live/test_stream.py feeds an hour's worth of blocks and checks).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from songmap.config import NETWORK_SR
from songmap.errors import InvalidParameterError
from songmap.live.beats import OnlineBeatTracker, TrackedBeat
from songmap.live.events import (
    BeatEvent,
    ChordEvent,
    DownbeatEvent,
    KeyEvent,
    LiveEvent,
    ReviseEvent,
    TempoEvent,
    WarningEvent,
)
from songmap.live.features import OnlineBeatFeatures
from songmap.live.grid import (
    DRIFT_BEATS,
    LEVEL_SPAN_S,
    METRICAL_TOL,
    RUN_BEATS,
    SAME_TEMPO,
    STEP_WINDOWS,
    GridChooser,
    bent_grid,
    between_beats,
    causal_drift,
    causal_step,
    grid_offset_s,
    level_verdict,
    line_grid,
    same_grid,
    tempo_bend,
    window_step,
)
from songmap.live.phase import BarPhaseEvidence
from songmap.live.ring import SampleRing

#: How much later (s) than the true beat the online networks + forward filter put it:
#: the median over the synthetic dev set's 40 songs of each song's median offset of
#: matched beats was +18.8 ms (exact ground truth); beat times are moved back by this.
BEAT_LAG_S = 0.019
#: Offline analysis window (s), hop between analyses (s) and look-ahead (s) before a
#: downbeat or chord is committed (chosen on the dev set and fof, benchmarks/live.py).
WINDOW_S = 12.0
HOP_S = 1.0
LOOKAHEAD_S = 1.0
#: A beat is emitted only while the beat activation over the last 1.5 s reached this
#: level and this share of its running peak (the offline tracker trims a song's ends
#: the same way): silence and noise get no beats.
_MIN_ACTIVATION = 0.05
_PEAK_SHARE = 0.2
_GATE_PERIODS = 1.5
#: Running peak's decay per second (it forgets a loud passage in ~30 s).
_PEAK_DECAY_PER_S = 0.97
#: Tempo change (relative) that makes a new tempo event.
_TEMPO_CHANGE = 0.03
#: Emitted beats kept for revisions (at 215 BPM, ~17 s: more than window + look-ahead).
_RECENT_BEATS = 64
#: The causal filter's guides (``LiveAnalyzer(prior=...)``): the window's beat grid, its
#: tempo only, or none.
PRIORS = ("grid", "tempo", "none")
#: What the running key is decided from (``LiveAnalyzer(key_from=...)``).
KEY_SOURCES = ("decision", "network", "both", "song")
#: Span (s) of the window's committed beats whose grid is extrapolated, and the largest
#: distance (s) of a beat from their line before only the last 4 are used.
_GRID_SPAN_S = 4.0
_GRID_FIT_S = 0.03
#: Backlog (s of audio that arrived but is not yet analysed) past which the windowed
#: analysis is skipped for a hop: half a hop, so that one slow analysis is absorbed but
#: a stream that stays behind gives up the bars and chords before its beats come late.
MAX_BACKLOG_S = 0.5
#: How a window's beat grid that disagrees with the grid carried so far (another tempo
#: octave, a tempo jump, the off-beat) is taken (``LiveAnalyzer(grid_choice=...)``):
#: "song" weighs it against the windows before (``songmap.live.grid``; chosen on fof,
#: beat F .847 to .890, downbeat F .701 to .715, and checked on dev, .897 to .898 and
#: .925 to .924); "window" always takes it.
GRID_CHOICES = ("song", "window")
#: Where in a window (share of its length, plus half a hop) the beats end whose bar
#: positions are added to the song's bar-phase evidence: about 3 s before the newest
#: sample (chosen on fof and dev: 0.3 / 0.5 / 0.7 / 0.83 of the window gave downbeat F
#: .739 / .745 / .752 / .748 on fof, .912 / .926 / .932 / .931 on dev).
_PHASE_AT = 0.7
#: Where a window's bars start (``LiveAnalyzer(bar_phase=...)``): "song" moves them to
#: the beat the downbeat network favoured over the song so far when that outweighs the
#: window's own (``songmap.live.phase``); "window" keeps the window's.
BAR_PHASES = ("song", "window")
#: How the carried beat grid follows the window's committed beats
#: (``LiveAnalyzer(grid_fit=...)``): "follow" fits a line to the beats since a tempo
#: step (``songmap.live.grid.line_grid``) and carries a tempo that keeps bending (a
#: ritardando, ``tempo_bend``) along its curve; "line" carries the line through the
#: last 4 s of them (the last 4 beats where the tempo moved), as before.
GRID_FITS = ("follow", "line")
#: Who follows a tempo step first (``LiveAnalyzer(tempo_step=...)``): "causal" emits the
#: causal filter's beats from its first beat that shows a step (``causal_step``) until
#: a window's grid agrees with it (at most ``STEP_WINDOWS`` windows; dev beat F .906 to
#: .909, fof .895 unchanged, 2026-11-27); "window" carries the windows' grid throughout.
TEMPO_STEPS = ("causal", "window")
_log = logging.getLogger(__name__)
#: Peak level (linear) under which a window is digital silence (as the offline pipeline).
_SILENCE_PEAK = 1e-5


@dataclass
class _Emitted:
    time: float
    bar: int
    beat: int
    #: running index: advances by the beat periods elapsed since the beat before
    index: int = 0


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """InvalidParameterError naming ``option`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise InvalidParameterError(f"{option} {value!r}: choose one of {', '.join(choices)}")


def _check_options(*, sample_rate: int, channels: int, window_s: float, hop_s: float,
                   lookahead_s: float, prior: str, beat_source: str, key_from: str,
                   max_backlog_s: float, grid_choice: str = "song",
                   bar_phase: str = "song", grid_fit: str = "follow",
                   tempo_step: str = "causal") -> None:
    """InvalidParameterError for a live option out of its range."""
    if not 4_000 <= int(sample_rate) <= 384_000:
        raise InvalidParameterError(f"sample rate {sample_rate} Hz is outside 4000-384000 Hz")
    if not 1 <= int(channels) <= 32:
        raise InvalidParameterError(f"{channels} channels: expected 1 to 32")
    _check_choice("prior", prior, PRIORS)
    if not (0.25 <= hop_s <= 10.0 and 0.0 <= lookahead_s <= window_s / 2
            and 4.0 <= window_s <= 60.0):
        raise InvalidParameterError(
            "live window: need 4 <= window_s <= 60, 0.25 <= hop_s <= 10, "
            "0 <= lookahead_s <= window_s / 2")
    if beat_source not in ("grid", "filter"):
        raise InvalidParameterError(f"beat_source {beat_source!r}: choose grid or filter")
    _check_choice("key_from", key_from, KEY_SOURCES)
    _check_choice("grid_choice", grid_choice, GRID_CHOICES)
    _check_choice("bar_phase", bar_phase, BAR_PHASES)
    _check_choice("grid_fit", grid_fit, GRID_FITS)
    _check_choice("tempo_step", tempo_step, TEMPO_STEPS)
    if not 0.0 < max_backlog_s <= 60.0:
        raise InvalidParameterError(f"max_backlog_s {max_backlog_s}: expected 0 < s <= 60")


class LiveAnalyzer:
    """A streaming analysis. Not thread-safe: one producer pushes blocks in order.

    ``analyzer``: the ``songmap.Analyzer`` whose models and settings the delayed path uses
    (a new one if not given). ``sample_rate``/``channels``: of the blocks pushed.
    """

    def __init__(self, analyzer=None, *, sample_rate: int = NETWORK_SR, channels: int = 1,
                 window_s: float = WINDOW_S, hop_s: float = HOP_S,
                 lookahead_s: float = LOOKAHEAD_S, beat_nets: int | None = None,
                 prior: str = "grid", beat_source: str = "grid",
                 key_from: str = "song", grid_choice: str = "song",
                 bar_phase: str = "song", grid_fit: str = "follow",
                 tempo_step: str = "causal", keep_up: bool = True,
                 max_backlog_s: float = MAX_BACKLOG_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        _check_options(sample_rate=sample_rate, channels=channels, window_s=window_s,
                       hop_s=hop_s, lookahead_s=lookahead_s, prior=prior,
                       beat_source=beat_source, key_from=key_from,
                       max_backlog_s=max_backlog_s, grid_choice=grid_choice,
                       bar_phase=bar_phase, grid_fit=grid_fit, tempo_step=tempo_step)
        if analyzer is None:
            from songmap.pipeline import Analyzer

            analyzer = Analyzer()
        from songmap.models.lstm import OnlineLstm, online_beats_path

        self.analyzer = analyzer
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.window_s, self.hop_s, self.lookahead_s = window_s, hop_s, lookahead_s
        self.prior = prior
        self.beat_source = beat_source
        self.key_from = key_from
        self.grid_choice = grid_choice
        self.bar_phase = bar_phase
        self.grid_fit = grid_fit
        self.tempo_step = tempo_step
        #: a live source (audio arriving at real-time pace): skip the windowed analysis
        #: while the stream is behind (``backlog_s`` > ``max_backlog_s``); False (a file
        #: read as fast as possible): never skip
        self.keep_up = keep_up
        self.max_backlog_s = max_backlog_s
        self._clock = clock
        #: seconds of audio that had arrived (at real-time pace) but were not processed
        #: yet when the last push returned, and the windows skipped to catch up
        self.backlog_s = 0.0
        self.skipped_windows = 0
        self._resampler = None
        if self.sample_rate != NETWORK_SR:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, NETWORK_SR, 1,
                                                  dtype="float32", quality="HQ")
        self._front = OnlineBeatFeatures(sr=NETWORK_SR)
        self._net = OnlineLstm.from_npz(online_beats_path(), nets=beat_nets)
        self._net_state = self._net.new_state()
        self._tracker = OnlineBeatTracker(fps=100.0)
        self._ring = SampleRing(int(window_s * NETWORK_SR))
        self._init_analysis_state()

    def _init_analysis_state(self) -> None:
        """The decisions carried from window to window, empty at the stream's start."""
        self._recent_act: deque[float] = deque(maxlen=150)  # 1.5 s at 100 fps
        #: the causal beat activation of the last ``LEVEL_SPAN_S`` (``level_verdict``)
        self._level_act: deque[float] = deque(maxlen=int(LEVEL_SPAN_S * 100))
        self._peak = 0.0
        self._next_analysis = self.hop_s
        self._committed_until = 0.0
        #: committed downbeats: (time, bar, beats per bar), the last few
        self._downbeats: deque[tuple[float, int, int]] = deque(maxlen=8)
        #: the latest window's downbeats past the committed ones (provisional)
        self._provisional: list[tuple[float, int, int]] = []
        self._beat_period = 0.5
        #: the window's beat grid carried forward: (anchor beat s, period s, confidence,
        #: valid until s); None before the first grid
        self._plan: tuple[float, float, float, float] | None = None
        self._chooser = GridChooser()
        self._phase = BarPhaseEvidence()
        #: the stream's time (s) up to which beats were added to ``_phase``
        self._phase_until = 0.0
        #: the direction the previous window's tempo bent (``tempo_bend``; 0: steady)
        self._bend = 0
        #: whether the latest window's grid was kept out (the carried one outweighed it)
        self._kept_out = False
        self._last_beat = -1.0
        #: whether the beat activation has reached the gate's level yet (the music began)
        self._heard = False
        #: windows analysed since the causal filter's beats replaced the carried grid at
        #: a tempo step (``tempo_step="causal"``); None while the grid is carried
        self._step_windows: int | None = None
        #: the causal filter's latest beats' distances (s) from the carried grid,
        #: newest last (``causal_drift``)
        self._drift: deque[float] = deque(maxlen=DRIFT_BEATS)
        #: whether the filter's beats replaced the grid for a drift rather than a step
        self._drifting = False
        #: the causal filter's latest beat (s), emitted or not
        self._filter_beat = -1.0
        #: the period (s) of the grid carried before the windows last moved to another
        #: tempo (0: none yet)
        self._left_period = 0.0
        self._recent: deque[_Emitted] = deque(maxlen=_RECENT_BEATS)
        self._beat_count = 0
        self._chord = "N"
        self._key = "N"
        self._key_votes = np.zeros(24)
        #: for ``key_from="song"``: the key network's probabilities summed over windows,
        #: seconds of committed chord per label (bounded by the chord vocabulary), and the
        #: first and latest committed chord
        self._key_probs = np.zeros(24)
        self._chord_time: dict[str, float] = {}
        self._first_chord = ""
        self._last_chord = ""
        self._bpm = 0.0
        self._finished = False

    # -- input ---------------------------------------------------------------
    @property
    def time(self) -> float:
        """Seconds of audio analysed so far (at the networks' rate)."""
        return self._ring.written / NETWORK_SR

    def push(self, block: np.ndarray) -> list[LiveEvent]:
        """Feed the next block: ``(samples,)`` mono or ``(samples, channels)``, float
        (-1..1) or integer PCM. Returns the events it completed, in time order per kind."""
        if self._finished:
            raise InvalidParameterError("this live analysis is finished; start a new one")
        mono = self._to_mono(block)
        started = self._clock()
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=False)
        events = self._consume(mono, started=started)
        # the queue of a real-time source served by this analysis (Lindley's recursion):
        # it grows by the time spent past the block's own duration and drains while
        # the analysis waits for audio
        self.backlog_s = max(0.0, self.backlog_s + (self._clock() - started)
                             - len(mono) / NETWORK_SR)
        return events

    def finish(self) -> list[LiveEvent]:
        """End of the stream: the rest of the resampler's samples, then a last analysis
        that commits everything up to the end (no look-ahead is left to wait for)."""
        if self._finished:
            return []
        events: list[LiveEvent] = []
        if self._resampler is not None:
            events += self._consume(self._resampler.resample_chunk(
                np.zeros(0, np.float32), last=True))
        self._finished = True
        if self.time > self._committed_until:
            events += self._analyse_window(final=True)
        return events

    def _to_mono(self, block: np.ndarray) -> np.ndarray:
        x = np.asarray(block)
        if x.ndim == 1 and self.channels > 1:
            if len(x) % self.channels:
                raise InvalidParameterError(
                    f"a block of {len(x)} interleaved samples is not a whole number of "
                    f"{self.channels}-channel frames")
            x = x.reshape(-1, self.channels)
        if x.ndim == 2:
            if x.shape[1] != self.channels:
                raise InvalidParameterError(
                    f"a block with {x.shape[1]} channels; this stream has {self.channels}")
        elif x.ndim != 1:
            raise InvalidParameterError(f"a block must be 1-d or 2-d, got shape {x.shape}")
        if np.issubdtype(x.dtype, np.integer):
            scale = float(2 ** (8 * x.dtype.itemsize - 1))
            x = x.astype(np.float32) / scale
        elif not np.issubdtype(x.dtype, np.floating):
            raise InvalidParameterError(f"samples of type {x.dtype}: expected float or integer PCM")
        x = x.astype(np.float32, copy=False)
        if x.ndim == 2:
            x = x.mean(axis=1, dtype=np.float32)
        if not np.isfinite(x).all():
            raise InvalidParameterError("a block holds NaN or infinite samples")
        return x

    # -- the two paths -------------------------------------------------------
    def _consume(self, mono: np.ndarray, *, started: float | None = None) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        if len(mono) == 0:
            return events
        block_start = self._ring.written
        # the delayed path runs at its hop boundaries, so cut the block there
        while len(mono):
            room = int(round(self._next_analysis * NETWORK_SR)) - self._ring.written
            part, mono = mono[:max(room, 1)], mono[max(room, 1):]
            self._ring.write(part)
            events += self._beats(part)
            if self.time >= self._next_analysis - 1e-9:
                self._next_analysis += self.hop_s
                if started is not None and self._behind(started, block_start):
                    events += self._skip_window()
                else:
                    events += self._analyse_window(final=False)
        return events

    def _behind(self, started: float, block_start: int) -> bool:
        """Whether the stream is more than ``max_backlog_s`` behind real time now: the
        backlog before this block, plus the time spent on it so far, less the audio of
        it already processed."""
        if not self.keep_up:
            return False
        done = self._ring.written - block_start
        backlog = self.backlog_s + (self._clock() - started) - done / NETWORK_SR
        return backlog > self.max_backlog_s

    def _skip_window(self) -> list[LiveEvent]:
        """No windowed analysis this hop (the beats go on from the causal path and the
        last grid); the first time, a warning event says so."""
        self.skipped_windows += 1
        if self.skipped_windows > 1:
            return []
        message = (f"the analysis fell more than {self.max_backlog_s:g} s behind real time: "
                   "bars, chords and key are updated less often until it catches up")
        _log.warning(message)
        return [WarningEvent(time=self.time, delay=0.0, message=message)]

    def _beats(self, samples: np.ndarray) -> list[LiveEvent]:
        """Beats up to the newest sample: from the window's grid extrapolated while there
        is one (``beat_source="grid"``), else from the causal filter."""
        feats = self._front.push(samples)
        if not len(feats):
            return []
        act = self._net.step(feats, self._net_state)
        tracked = self._tracker.step(act)
        self._peak = max(self._peak * _PEAK_DECAY_PER_S ** (len(act) / 100.0), float(act.max()))
        values = act.tolist()
        self._recent_act.extend(values)
        self._level_act.extend(values)
        span = min(len(self._recent_act), int(np.ceil(_GATE_PERIODS * self._beat_period * 100)))
        recent = list(self._recent_act)[-span:] if span > 0 else []
        if max(recent, default=0.0) < max(_MIN_ACTIVATION, _PEAK_SHARE * self._peak):
            if not self._heard:
                # before the music: the filter's tempo starts from nothing when it does
                # (replayed: dev beat F .911 to .915, on-time .912 to .915; fof .897
                # unchanged: its songs start at once; restarting at every pause too lost
                # on both, dev .913, fof .896)
                self._tracker.restart()
            return []  # silence, noise, a pause: no beats
        self._heard = True
        now = self.time
        plan = self._carried(now)
        if tracked:
            self._filter_beat = tracked[-1].time - BEAT_LAG_S
        self._watch_filter(tracked, plan)
        if self._step_windows is not None:
            plan = None
        if plan is not None:
            anchor, period, conf, _ = plan
            k = np.ceil((self._last_beat + 0.5 * period - anchor) / period)
            found = [(anchor + j * period, 60.0 / period, conf)
                     for j in np.arange(k, np.floor((now - anchor) / period) + 1)]
        else:
            found = [(max(b.time - BEAT_LAG_S, 0.0), b.bpm, b.confidence) for b in tracked]
        events: list[LiveEvent] = []
        for t, bpm, conf in found:
            if t < self._last_beat + 0.5 * self._beat_period:
                continue  # the same beat from the other source
            self._last_beat = t
            bar, beat = self._position(t)
            self._beat_count += 1
            index = 0
            if self._recent:
                last = self._recent[-1]
                index = last.index + max(1, int(round((t - last.time) / self._count_period())))
            self._recent.append(_Emitted(t, bar, beat, index))
            events.append(BeatEvent(time=t, delay=max(now - t, 0.0), bar=bar, beat=beat,
                                    confidence=round(float(conf), 4)))
            if self._bpm == 0 or abs(bpm / self._bpm - 1.0) > _TEMPO_CHANGE:
                self._bpm = bpm
                events.append(TempoEvent(time=t, delay=max(now - t, 0.0), bpm=round(bpm, 2),
                                         confidence=round(float(conf), 4)))
        return events

    def _watch_filter(self, tracked: list[TrackedBeat],
                      plan: tuple[float, float, float, float] | None) -> None:
        """Whether the causal filter's new ``tracked`` beats heard a tempo step (or a bend)
        that the windows have not shown yet: its beats are then emitted until a window's
        grid agrees with it (``_step_windows`` counts the windows since)."""
        if plan is None or self._step_windows is not None:
            self._drift.clear()  # measured against a carried grid only
            return
        if self.tempo_step != "causal":
            return
        grid = (plan[0], plan[1])
        for b in tracked:
            stepped = self._filter_stepped(b, grid)
            if stepped or self._filter_drifts(b, grid):
                self._step_windows, self._drifting = 0, not stepped
                return

    def _carried(self, now: float) -> tuple[float, float, float, float] | None:
        """The grid carried from the windows, while it is still valid at ``now`` (s)."""
        return self._plan if self._plan is not None and now <= self._plan[3] else None

    def _filter_stepped(self, beat: TrackedBeat, grid: tuple[float, float]) -> bool:
        """Whether the causal filter's ``beat`` shows a tempo step away from the carried
        ``grid`` (``causal_step``) that the windows have not followed yet: not when its
        tempo is the one the windows just left (the filter lags behind them there:
        dev 0001, where the filter held the old tempo for 3 s after the windows had
        moved on)."""
        period = 60.0 / beat.bpm
        if self._left_period > 0 and abs(period / self._left_period - 1.0) <= SAME_TEMPO:
            return False
        return causal_step(beat.time - BEAT_LAG_S, period, grid)

    def _filter_drifts(self, beat: TrackedBeat, grid: tuple[float, float]) -> bool:
        """Whether the causal filter's ``beat`` and the ones before it drift away from
        the carried ``grid`` (``causal_drift``): a tempo that bends. Dev's closing
        ritardandos (0012, 0018, 0020, 0037, 0039): the filter's beats stayed within
        15-55 ms of the truth while the carried grid's fell 70-230 ms early, the
        windows' line a window behind the curve."""
        self._drift.append(float(grid_offset_s(beat.time - BEAT_LAG_S, grid)))
        return causal_drift(np.array(self._drift), 60.0 / beat.bpm / grid[1] - 1.0,
                            period_s=grid[1])

    def _count_period(self) -> float:
        """The beat period (s) the emitted beats' running index counts at: the carried
        grid's, unless that is a whole multiple (2x, 3x, ...) of the one counted so far
        (a window read the song at a slower level: its beats skip beats the count keeps)."""
        period = self._plan[1] if self._plan is not None else self._beat_period
        counted = self._phase.period_s
        if counted > 0 and period > counted:
            ratio = period / counted
            if round(ratio) >= 2 and abs(ratio / round(ratio) - 1.0) <= METRICAL_TOL:
                return counted
        return period

    def _grid(self) -> list[tuple[float, int, int]]:
        return list(self._downbeats) + self._provisional

    def _position(self, t: float) -> tuple[int, int]:
        """(bar, beat in bar) of a beat at ``t`` on the bar grid known now."""
        grid = self._grid()
        tol = 0.35 * self._beat_period
        before = [g for g in grid if g[0] <= t + tol]
        if before:
            d, bar, bpb = before[-1]
            n = int(round((t - d) / self._beat_period))
            return bar + n // bpb, n % bpb + 1
        if grid:  # a pickup beat before the first downbeat
            d, bar, bpb = grid[0]
            n = int(round((d - t) / self._beat_period))
            return max(bar - 1 - (n - 1) // bpb, 0), bpb - (n - 1) % bpb
        return 0, self._beat_count % 4 + 1

    def _analyse_window(self, *, final: bool) -> list[LiveEvent]:
        from songmap.audio import Audio

        now = self.time
        samples = self._ring.last(int(self.window_s * NETWORK_SR))
        start = now - len(samples) / NETWORK_SR
        commit_until = now if final else now - self.lookahead_s
        min_s = self.analyzer.settings.min_duration_s
        if len(samples) / NETWORK_SR < max(min_s, 2.0) or commit_until <= self._committed_until:
            return []
        if float(np.max(np.abs(samples), initial=0.0)) < _SILENCE_PEAK:
            self._committed_until = commit_until
            self._provisional = []
            return []
        audio = Audio(samples, NETWORK_SR, self.sample_rate, self.channels, "live")
        result, networks = self._analyse(audio)
        events: list[LiveEvent] = []
        # the beat grid first: whether it kept this window's grid out decides its bars
        self._kept_out = False
        self._guide_beats(result, start, now, commit_until)
        self._weigh_bar_phase(result, start, now)
        events += self._commit_bars(result, start, now, commit_until)
        events += self._commit_chords(result, start, now, commit_until)
        events += self._update_key(result, networks.key_probabilities, now)
        self._committed_until = commit_until
        return events

    def _analyse(self, audio):
        """songmap's offline analysis of one window: (result, the networks' outputs)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            networks = self.analyzer.run_networks(audio)
            result = self.analyzer.analyze_audio(audio, networks=networks, filename="live")
        return result, networks

    def _guide_beats(self, result, start: float, now: float, commit_until: float) -> None:
        """Pull the causal beat filter towards the window's offline beats: their tempo
        (``prior="tempo"``), or their grid extrapolated past ``now`` (``"grid"``; before
        the stream's first grid, a window with too few committed beats for one pulls
        the filter towards its tempo)."""
        if self.prior == "none" or result.tempo.bpm <= 0 or result.tempo.confidence < 0.3:
            return
        if self.prior == "tempo":
            self._tracker.favour_tempo(result.tempo.bpm)
            return
        beats = start + result.beat_times()
        # at least 4 beat periods: below 60 BPM 4 s hold 3 beats now and then, too
        # few for a grid (dev 0029 at 55 BPM: no grid from 4 windows in a row, the
        # causal filter's beats at 3x the tempo emitted instead)
        span = max(_GRID_SPAN_S, 4.0 * 60.0 / result.tempo.bpm)
        solid = beats[(beats <= commit_until) & (beats >= commit_until - span)]
        if len(solid) < 4:
            if self._plan is None:
                # a stream's first windows (2-4 s) hold too few committed beats for a
                # grid, but their tempo already keeps the filter off the octaves it
                # wanders to before any grid guides it (replayed: dev beat F on time
                # .915 to .917, 0031 .853 to .941, where the filter doubled at 2.3 s;
                # fof .886 to .887, armygeddon and chaos_god up, no song down)
                self._tracker.favour_tempo(result.tempo.bpm)
            return
        period = float(np.median(np.diff(solid)))
        if period <= 0:
            return
        # a line through the last beats: their steady tempo and phase, carried forward
        # (``grid_fit="follow"``: after a tempo step, also one the window's last second
        # shows, through the beats since; a tempo
        # that bends, a ritardando, in this window and the one before: from where the
        # curve takes the beats past ``now``)
        later = beats[(beats > commit_until) & (beats <= now)]
        follow = self.grid_fit == "follow"
        anchor, period = line_grid(solid, fit_tol_s=_GRID_FIT_S, later_times=later,
                                   run_beats=RUN_BEATS if follow else None)
        bend = 0
        if follow:
            bend = tempo_bend(solid, later, fit_tol_s=_GRID_FIT_S)
            curve = bent_grid(solid, after_s=now) if bend and bend == self._bend else None
            if curve is not None:
                anchor, period = curve
        self._bend = bend
        if self.beat_source == "grid" and 60.0 / 215.0 <= period <= 60.0 / 55.0:
            conf = float(result.grid_confidence or result.tempo.confidence)
            # a window whose own beats show a tempo step inside it is taken at once
            carried = self._carried(now)
            stepped = bool(follow and carried is not None and window_step(
                solid, later, (carried[0], carried[1]), fit_tol_s=_GRID_FIT_S))
            anchor, period, conf = self._choose_grid(anchor, period, conf, now,
                                                     weight=min(1.0, (now - start) / self.window_s),
                                                     stepped=stepped)
            old = self._plan
            if old is None or now > old[3] or not same_grid((old[0], old[1]), (anchor, period),
                                                            at_s=now):
                # another phase or level, or none carried for a while (beats from the
                # causal filter): the running index may have slipped against the bars
                # voted so far (forgetting them at a change lifted dev downbeat F .908 to
                # .926, fof .753 to .745 with the votes' half-life at 20 s; also after
                # an expired grid, dev .933 to .935, fof unchanged)
                self._phase.forget()
            if old is not None and abs(period / old[1] - 1.0) > SAME_TEMPO:
                self._left_period = old[1]  # the causal filter may lag at this tempo
            self._plan = (anchor, period, conf, now + 2 * self.hop_s)
        ahead = anchor + np.ceil((now - anchor) / period) * period
        if self._step_windows is not None:
            self._step_windows += 1
            # after a drift the windows' grids stay behind the bending tempo even where
            # they agree with the filter (dev 0012: 108.7 BPM against the filter's
            # 105.3 at 24 s, 74 ms early a beat later): the filter's beats are kept
            # for ``STEP_WINDOWS`` windows (replayed: dev beat F .920 to .922, fof
            # unchanged, against ending the drift where a window agrees and no longer
            # bends)
            agree = (self._tracker.bpm > 0 and not self._drifting and same_grid(
                (self._filter_beat, 60.0 / self._tracker.bpm), (anchor, period), at_s=now))
            if agree or self._step_windows > STEP_WINDOWS:
                self._step_windows = None  # the windows caught up (or never will)
        # the filter runs on the networks' clock, BEAT_LAG_S behind the audio's
        self._tracker.favour_grid(60.0 / period, ahead + BEAT_LAG_S)

    def _choose_grid(self, anchor: float, period: float, conf: float, now: float, *,
                     weight: float, stepped: bool = False) -> tuple[float, float, float]:
        """The grid to carry: the window's ``(anchor s, period s, confidence)``, or
        (``grid_choice="song"``) the one carried so far while that outweighs it."""
        old = self._carried(now)
        if self.grid_choice == "window":
            return anchor, period, conf
        causal = 60.0 / self._tracker.bpm if self._tracker.bpm > 0 else 0.0
        # a 3:2 between the windows' readings: the causal activation's periodicity
        # decides where it is clear (``level_verdict``)
        if old is not None:
            verdict = level_verdict(np.fromiter(self._level_act, dtype=float), old[1], period)
            if verdict < 0:
                self._kept_out = True
                return old[0], old[1], old[2]
            if verdict > 0:
                self._chooser.restart(weight)
                self._kept_out = False
                return anchor, period, conf
        chosen = self._chooser.choose(None if old is None else (old[0], old[1]),
                                      (anchor, period), now_s=now, weight=weight,
                                      causal_period_s=causal, stepped=stepped)
        if old is not None and chosen == (old[0], old[1]):
            self._kept_out = chosen != (anchor, period)
            return old[0], old[1], old[2]
        return chosen[0], chosen[1], conf

    def _weigh_bar_phase(self, result, start: float, now: float) -> None:
        """Add the window's decision on where its bars start, for its beats about 3 s
        before the newest sample (``_PHASE_AT`` of the window: heard with music after
        them, and recent), to the song's bar-phase evidence: 1 for a bar's first beat,
        0 for the others, at the running index of the emitted beat each falls on. Each
        stretch of the stream is added once. A window kept out of the beat grid
        (``_kept_out``) does not vote: the next window votes on its beats (fof downbeat
        F .752 to .755, dev .932 to .933; skipping its beats altogether: .749, .932)."""
        if self._kept_out:
            return  # its beat grid lost to the song's: the next window votes on its beats
        until = start + _PHASE_AT * (now - start) + 0.5 * self.hop_s
        since, self._phase_until = self._phase_until, max(self._phase_until, until)
        if self._plan is None or until <= since:
            return
        beats = start + result.beat_times()
        first = np.array([b.beat_position == 1 for b in result.beat_transient_markers])
        keep = (beats >= since) & (beats < until)
        hits = [self._nearest_emitted(float(t)) for t in beats[keep]]
        on = [(h.index, float(f)) for h, f in zip(hits, first[keep], strict=True) if h is not None]
        if on:
            idx, votes = zip(*on, strict=True)
            self._phase.add(np.array(idx), np.array(votes), elapsed_s=until - since,
                            period_s=self._count_period())

    def _nearest_emitted(self, t: float) -> _Emitted | None:
        """The emitted beat within 0.3 of a beat period of ``t`` (s), if any."""
        best = min(self._recent, key=lambda e: abs(e.time - t), default=None)
        if best is None or abs(best.time - t) > 0.3 * self._beat_period:
            return None
        return best

    def _bar_shift(self, times: np.ndarray, lengths: list[int], bpb: int, lo: float,
                   now: float) -> int:
        """Beats to move the window's bar lines (``times`` s, ``lengths`` beats each) by
        so that they start where the song so far favours (0: keep them). Judged on
        the window's regular bars from the last committed bar to ``now``."""
        if self.bar_phase == "window":
            return 0
        votes: dict[int, int] = {}
        for t, n in zip(times, lengths, strict=True):
            if n != bpb or not lo - bpb * self._beat_period <= t <= now:
                continue
            hit = self._nearest_emitted(t)
            if hit is not None:
                votes[hit.index % bpb] = votes.get(hit.index % bpb, 0) + 1
        if not votes:
            return 0
        return self._phase.shift(max(votes, key=lambda k: votes[k]), bpb)

    def _move_beats(self, t: float, shift: int) -> float:
        """``t`` (s) moved by ``shift`` beats along the emitted beats (by whole beat
        periods where they do not reach)."""
        hit = self._nearest_emitted(t)
        if hit is not None:
            target = hit.index + shift
            for e in self._recent:
                if e.index == target:
                    return e.time
        return t + shift * self._beat_period

    def _commit_bars(self, result, start: float, now: float, commit_until: float) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        bars = result.downbeat_timeline
        if not bars:
            self._provisional = []
            return events
        bpb = result.time_signature.beats_per_bar
        beats = result.beat_times().tolist()
        if len(beats) >= 2:
            self._beat_period = float(np.median(np.diff(beats)))
        times = np.array([start + bar.timestamp for bar in bars])
        lengths = [bar.beats if bar.beats >= 2 else bpb for bar in bars]
        shift = 0 if self._kept_out else self._bar_shift(times, lengths, bpb,
                                                          self._committed_until, now)
        if shift:
            times = np.array([self._move_beats(t, shift) for t in times])
        changed_from = None
        for bar, t in zip(bars, times, strict=True):
            if not (self._committed_until <= t < commit_until):
                continue
            n_beats = bar.beats if bar.beats >= 2 else bpb
            if self._kept_out and between_beats(t, np.array([e.time for e in self._recent]),
                                                period_s=self._beat_period,
                                                beats_per_bar=n_beats):
                continue  # the window is on the carried grid's off-beat: so are its bars
            if self._downbeats:
                last_t, last_bar, last_bpb = self._downbeats[-1]
                gap = t - last_t
                if gap < 0.5 * self._beat_period:  # the same downbeat seen by two windows
                    continue
                number = last_bar + max(1, int(round(gap / (last_bpb * self._beat_period))))
            else:
                number = 1
            self._downbeats.append((float(t), number, n_beats))
            changed_from = t if changed_from is None else changed_from
            events.append(DownbeatEvent(time=float(t), delay=now - t, bar=number, beats_per_bar=n_beats,
                                        confidence=round(bar.confidence, 4)))
        # the window's later downbeats, numbered on from the committed ones
        self._provisional = []
        if self._downbeats:
            last_t, last_bar, last_bpb = self._downbeats[-1]
            for bar, t in zip(bars, times, strict=True):
                if t >= commit_until and t - last_t >= 0.5 * self._beat_period:
                    number = last_bar + max(1, int(round((t - last_t) / (last_bpb * self._beat_period))))
                    self._provisional.append((float(t), number, bar.beats if bar.beats >= 2 else bpb))
                    last_t, last_bar, last_bpb = self._provisional[-1]
        if changed_from is not None:
            events += self._revise(changed_from - bpb * self._beat_period, now)
        return events

    def _revise(self, since: float, now: float) -> list[LiveEvent]:
        out: list[LiveEvent] = []
        for beat in self._recent:
            if beat.time < since:
                continue
            bar, pos = self._position(beat.time)
            if (bar, pos) != (beat.bar, beat.beat):
                beat.bar, beat.beat = bar, pos
                out.append(ReviseEvent(time=beat.time, delay=now - beat.time, of="beat",
                                       bar=bar, beat=pos))
        return out

    def _commit_chords(self, result, start: float, now: float, commit_until: float) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        if not result.downbeat_timeline:  # no music with a beat here: no chords either
            return events
        lo = self._committed_until
        for seg in result.chord_details:
            s, e = start + seg.start, start + seg.end
            if e <= lo or s >= commit_until:
                continue
            at = max(s, lo)
            if seg.label != "N":
                held = min(e, commit_until) - at
                self._chord_time[seg.label] = self._chord_time.get(seg.label, 0.0) + held
                self._first_chord = self._first_chord or seg.label
                self._last_chord = seg.label
            if seg.label != self._chord:
                self._chord = seg.label
                events.append(ChordEvent(time=at, delay=now - at, label=seg.label,
                                         confidence=round(seg.confidence, 4)))
        return events

    def _update_key(self, result, key_probabilities: np.ndarray, now: float) -> list[LiveEvent]:
        """The running key: every analysis so far votes with its window's key decision
        weighted by its confidence (``key_from="decision"``), or with the key network's
        24 probabilities (``"network"``), or both (the default: on the first 16 dev songs
        key scored 0.825, 0.706 and 0.869; fof has no key labels)."""
        from songmap.harmony.notation import key_label, parse_key

        if result.key.label == "N":
            return []
        if self.key_from == "song":
            return self._song_key(key_probabilities, now)
        if self.key_from in ("decision", "both"):
            tonic, minor = parse_key(result.key.label)
            self._key_votes[tonic + 12 * minor] += result.key.confidence
        if self.key_from in ("network", "both"):
            self._key_votes += np.asarray(key_probabilities, dtype=float)
        best = int(np.argmax(self._key_votes))
        label = key_label(best % 12, best >= 12)
        if label == self._key:
            return []
        self._key = label
        conf = float(self._key_votes[best] / max(self._key_votes.sum(), 1e-9))
        return [KeyEvent(time=now, delay=0.0, label=label, confidence=round(conf, 4))]

    def _song_key(self, key_probabilities: np.ndarray, now: float) -> list[LiveEvent]:
        """The key of everything heard so far, decided as the offline path decides a
        song's key (``estimate_key``: the key network's probabilities with the chords'
        evidence), from the windows' summed key probabilities and the committed chords'
        time per label, ordered so that the first and the latest chord keep their place."""
        from songmap.harmony.key import estimate_key

        self._key_probs += np.asarray(key_probabilities, dtype=float)
        ends = [self._first_chord, self._last_chord]
        rest = [(lab, d) for lab, d in self._chord_time.items() if lab not in ends]
        order = ([(self._first_chord, self._chord_time.get(self._first_chord, 0.0))]
                 if self._first_chord else []) + rest
        if self._last_chord and self._last_chord != self._first_chord:
            order.append((self._last_chord, self._chord_time.get(self._last_chord, 0.0)))
        segments, t = [], 0.0
        for lab, d in order:
            segments.append((t, t + d, lab))
            t += d
        key = estimate_key(self._key_probs, segments)
        if key.label == "N" or key.label == self._key:
            return []
        self._key = key.label
        return [KeyEvent(time=now, delay=0.0, label=key.label, confidence=round(key.confidence, 4))]
