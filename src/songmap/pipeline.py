"""The Analyzer: configuration plus loaded models; configure once, call many times."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from songmap._version import __version__
from songmap.audio import Audio, display_name, load_audio
from songmap.audio.blocks import peak_level
from songmap.config import AnalysisSettings
from songmap.harmony.analysis import Harmony, analyze_harmony, describe_chord, key_at
from songmap.harmony.chords import ChordSegment
from songmap.harmony.key import KeyEstimate, KeySection, madmom_key_order_to_chromatic
from songmap.harmony.notation import camelot, open_key, spell_key
from songmap.harmony.tuning import (
    MIN_STRENGTH,
    Tuning,
    correction_cents,
    estimate_tuning,
    frequency_ratio,
    retune,
)
from songmap.limits import give_back_free_memory
from songmap.models import ModelRegistry, get_registry
from songmap.netcache import NetworkCache, audio_key
from songmap.onsets import (
    detect_onsets,
    loudness_curve,
    music_span,
    nearest_transients,
    onset_envelope,
    onto_attack_starts,
)
from songmap.rhythm.bar_phase import BarEvidence, downbeat_probability
from songmap.rhythm.bars import describe_sections
from songmap.rhythm.beats import beat_probability, grid_beat_times, sample_at, track_beats
from songmap.rhythm.meter import COMPOUND_MIN_BPM, track_bars
from songmap.rhythm.overrides import apply_time_signature, rephase_bars
from songmap.rhythm.steadiness import GridAssessment, assess_grid
from songmap.rhythm.tempo import TempoEstimate, estimate_tempo
from songmap.rhythm.tempo_map import (
    TempoSegmentFit,
    beat_tempi,
    segment_confidence,
    track_bpm,
)
from songmap.schema import (
    AnalysisResult,
    AudioInfo,
    BarChord,
    ChordDetail,
    Descriptors,
    KeyInfo,
    KeySegment,
    MeterSection,
    ModelInfo,
    PerformanceMetrics,
    Provenance,
    TempoInfo,
    TempoSegment,
    TimeSignature,
)
from songmap.signals import Activations, NetworkOutputs
from songmap.timeline import Timeline, TimelineBeats, build_timeline

#: Peak level (linear) under which a recording counts as digital silence (-100 dBFS).
_SILENCE_PEAK = 1e-5
#: Above this duration (s) the networks run one after another, and the onset envelope
#: after them: the key CNN's working memory grows with the input (~450 MB for an hour),
#: and run beside the beat network it put a 60-minute file at 1.64 GB peak RSS.
_CONCURRENT_NETWORKS_MAX_S = 600.0


#: Share of a typical analysis's CPU time per stage (measured on a 270 s song), so that
#: progress reports move roughly with the work done.
_STAGE_WEIGHTS = {"decode": 0.07, "beat_network": 0.55, "key_chroma_network": 0.12,
                  "onsets": 0.12, "beat_tracking": 0.06, "bars": 0.02, "chords": 0.02, "key": 0.01,
                  "timeline": 0.03}

ProgressCallback = Callable[[float], None]


class _Timer:
    """Wall seconds per stage; reports progress (0..1) after each stage if asked."""

    def __init__(self, progress: ProgressCallback | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._progress = progress
        self._done = 0.0
        self._lock = threading.Lock()  # stages finish on two threads
        #: a long recording: the allocator's free memory is given back after each stage
        self.give_back_memory = False

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.give_back_memory:
                give_back_free_memory()
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
                self._done += _STAGE_WEIGHTS.get(name, 0.0)
                if self._progress is not None:
                    self._progress(min(self._done, 0.99))

    def report_to(self, progress: ProgressCallback | None) -> None:
        """Report progress to ``progress`` from the next stage on (stages timed already,
        as those of a ``HeadStart``, count as done)."""
        with self._lock:
            self._progress = progress

    def skip(self, *names: str) -> None:
        """Stages not run this time (their outputs were cached) count as done from the
        next report on (one report per stage that ran)."""
        with self._lock:
            self._done += sum(_STAGE_WEIGHTS.get(name, 0.0) for name in names)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    # shared with the models' stages: threadpoolctl's limit is process-wide
    from songmap.models.blas import one_blas_thread

    with one_blas_thread():
        yield


def _peak_rss_mb() -> float | None:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return None


class _InlineExecutor:
    """The part of ``ThreadPoolExecutor`` the pipeline uses, running each task at once on
    the calling thread."""

    def submit(self, fn: Callable[..., object], *args: object) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _spelled_harmony(
    bars: list[BarChord], segments: list[ChordSegment], sections: list[KeySection], key: str
) -> tuple[list[BarChord], list[ChordDetail], list[KeySegment]]:
    """Bars with spelled names and Roman numerals, chord details and key segments, each
    chord read in the key section holding its start."""
    out_bars = []
    for bar in bars:
        here = key_at(sections, bar.timestamp, key)
        views = [describe_chord(c, here) for c in bar.chords]
        out_bars.append(bar.model_copy(update={
            "names": [name for name, _ in views],
            "numerals": [f.numeral if f else None for _, f in views]}))
    details = []
    for seg in segments:
        here = key_at(sections, seg.start, key)
        name, func = describe_chord(seg.label, here)
        details.append(ChordDetail(
            start=round(seg.start, 4), end=round(seg.end, 4), label=seg.label, name=name,
            numeral=func.numeral if func else None, borrowed=bool(func and func.borrowed),
            secondary=bool(func and func.secondary), key=None if here == "N" else here,
            confidence=round(seg.confidence, 4)))
    key_segments = [KeySegment(start=round(x.start, 4), end=round(x.end, 4), key=x.label,
                               confidence=x.confidence, name=spell_key(x.label)) for x in sections]
    return out_bars, details, key_segments


#: Longest audio (s) whose kernel-free stages start on its decoding thread before its
#: analysis (``HeadStart``): longer, they would run past numba's kernel load and slow it.
HEAD_START_MAX_S = 60.0


class HeadStart:
    """The stages of one signal that need no compiled kernel (the beat network's
    features, the key and chroma networks, the onsets), run on the thread that decoded
    it before its analysis starts: the command line runs them while the main thread
    loads numba's kernels, on the core that would otherwise wait.

    ``Analyzer.start_ahead`` fills it (on the decoding thread); ``Analyzer.analyze``
    takes its outputs for the same signal and runs any stage it did not start.
    """

    #: seconds ``Analyzer.analyze`` waits for the decision to start them (it is taken
    #: as soon as the signal is decoded; a thread that died never takes it)
    DECISION_TIMEOUT_S = 10.0

    def __init__(self) -> None:
        self._decided = threading.Event()
        self._samples: np.ndarray | None = None
        self.onsets: Future[tuple[Activations, np.ndarray, Activations]] | None = None
        self.harmony: Future[tuple[np.ndarray, Activations, Tuning]] | None = None
        #: the stages' wall seconds, reported with the analysis's own
        self.timer = _Timer()

    def decide(self, samples: np.ndarray | None, *, onsets: bool, harmony: bool) -> None:
        """Record which stages start for ``samples`` (None: none)."""
        self._samples = samples
        self.onsets = Future() if onsets and samples is not None else None
        self.harmony = Future() if harmony and samples is not None else None
        self._decided.set()

    def started(self, audio: Audio) -> tuple[Future | None, Future | None]:
        """``(onsets, harmony)``: the futures of the stages started for ``audio``'s
        samples (None for a stage not started here, or for other samples)."""
        if not self._decided.wait(self.DECISION_TIMEOUT_S) or self._samples is not audio.samples:
            return None, None
        return self.onsets, self.harmony


def _run_into(future: Future | None, stage: Callable[[], object]) -> None:
    """Run ``stage`` into ``future`` (its result or its exception)."""
    if future is None or not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(stage())
    except BaseException as exc:  # noqa: BLE001 - raised again where the result is taken
        future.set_exception(exc)


class Analyzer:
    """Runs the whole analysis. Thread-safe; share one per process."""

    def __init__(
        self, settings: AnalysisSettings | None = None, registry: ModelRegistry | None = None,
        network_cache: NetworkCache | None = None,
    ) -> None:
        self.settings = settings or AnalysisSettings()
        self.registry = registry or get_registry(self.settings.threads)
        #: the networks' outputs of recent signals: a re-analysis with an override is quick
        self.network_cache = network_cache if network_cache is not None else NetworkCache()

    def with_settings(self, **changes: object) -> Analyzer:
        """An Analyzer with some settings changed (e.g. the overrides ``bpm``,
        ``time_signature``, ``first_downbeat_s``) sharing this one's models and network
        cache. ``pydantic.ValidationError`` for a bad value."""
        settings = AnalysisSettings.model_validate({**self.settings.model_dump(), **changes})
        return Analyzer(settings, self.registry, self.network_cache)

    def start_ahead(self, audio: Audio, head: HeadStart) -> None:
        """Run the kernel-free stages of ``audio`` into ``head`` on this thread (the
        command line's decoding thread): the beat network's features and the key and
        chroma networks unless their outputs are cached, then the onsets. Only for audio
        up to ``HEAD_START_MAX_S`` long, when the settings allow a second thread.
        """
        short = networks = False
        try:
            short = (audio.duration <= HEAD_START_MAX_S and self.settings.threads > 1
                     and audio.duration >= self.settings.min_duration_s
                     and peak_level(audio.samples) >= _SILENCE_PEAK)
            networks = short and self.network_cache.get(audio_key(audio)) is None
        finally:  # decided even if a check failed: the analysis waits for the decision
            head.decide(audio.samples, onsets=short, harmony=networks)
        if head.harmony is not None:
            self.registry.prepare_beat_features(audio.samples)
        _run_into(head.harmony, lambda: self._harmony_networks(audio, head.timer))
        _run_into(head.onsets, lambda: self._onsets(audio, head.timer))

    def analyze(
        self, path: str | os.PathLike[str], *, filename: str | None = None,
        progress: ProgressCallback | None = None, decoded: Future[Audio] | None = None,
        head_start: HeadStart | None = None,
    ) -> AnalysisResult:
        """Decode ``path`` and analyse it; ``progress(fraction)`` is called after each stage
        (from the thread that ran it; calls are serialised). ``decoded``: ``path`` being
        decoded already (``songmap.cli.startup.decode_ahead``); the decode stage is then
        the wait for it. ``head_start``: stages of that audio started on the decoding
        thread (``start_ahead``), taken over here."""
        timer = head_start.timer if head_start is not None else _Timer()
        timer.report_to(progress)
        t0 = time.perf_counter()
        with timer.stage("decode"):
            audio = decoded.result() if decoded is not None else load_audio(
                path, max_duration_s=self.settings.max_duration_s,
                min_duration_s=self.settings.min_duration_s,
            )
        result = self.analyze_audio(audio, filename=filename or display_name(path), _timer=timer,
                                    _t0=t0, _head=head_start)
        if self.settings.descriptors:
            result = self.add_descriptors(result, audio, path)
        return result

    def add_descriptors(self, result: AnalysisResult, audio: Audio,
                        path: str | os.PathLike[str] | None = None) -> AnalysisResult:
        """The result with ``descriptors`` filled, loudness on the file's own channels."""
        from songmap.audio.decode import load_channels
        from songmap.descriptors import compute_descriptors

        native = load_channels(path) if path is not None else None
        samples, sr = native if native is not None else (audio.samples, audio.sr)
        descriptors = Descriptors.model_validate(compute_descriptors(samples, sr, result))
        return result.model_copy(update={"descriptors": descriptors})

    def warm_up(self) -> None:
        """Run every stage once on a few seconds of a rendered song: the networks, the
        compiled kernels and the FFT load on first use, and after this call an analysis
        loads nothing more (a worker caps its memory after it, so the cap is the
        analysis's own). The network cache is not touched."""
        from songmap.audio.decode import signal_from_array
        from songmap.examples import render_song

        song = render_song(bars=2, bpm=120.0)
        audio = signal_from_array(song.samples, song.sr)
        self.analyze_audio(audio, filename="<warm-up>", networks=self.run_networks(audio))

    def run_networks(
        self, audio: Audio, timer: _Timer | None = None, *,
        pool: ThreadPoolExecutor | _InlineExecutor | None = None,
        harmony: Future[tuple[np.ndarray, Activations, Tuning]] | None = None,
    ) -> NetworkOutputs:
        """The beat network on this thread, the key and chroma networks meanwhile on
        ``pool`` (a second thread if none is given): they share nothing but the samples,
        and numpy, the BLSTM kernel and onnxruntime release the GIL. ``harmony``: the
        key and chroma networks of this audio started elsewhere (``HeadStart``)."""
        timer = timer or _Timer()
        if audio.duration > _CONCURRENT_NETWORKS_MAX_S:
            # long input: one network at a time, so their working memories do not add up
            with timer.stage("beat_network"):
                beats = self.registry.beat_activations(audio.samples)
            key, chroma, tuning = self._harmony_networks(audio, timer)
            return NetworkOutputs(beats, key, chroma, tuning.cents, tuning.strength)
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(ThreadPoolExecutor(1))
            if harmony is None:
                harmony = pool.submit(self._harmony_networks, audio, timer)
            with timer.stage("beat_network"):
                beats = self.registry.beat_activations(audio.samples)
            key, chroma, tuning = harmony.result()
        return NetworkOutputs(beats, key, chroma, tuning.cents, tuning.strength)

    def _harmony_networks(self, audio: Audio, timer: _Timer,
                          ) -> tuple[np.ndarray, Activations, Tuning]:
        """The key and chroma networks on the audio moved onto A440 where it is tuned off
        it (``harmony.tuning``); the chroma's frame rate is that of the original's time."""
        with timer.stage("key_chroma_network"):
            tuning = estimate_tuning(audio.samples, audio.sr)
            cents = correction_cents(tuning)
            samples = retune(audio.samples, audio.sr, cents) if cents else audio.samples
            key, chroma = self.registry.key_and_chroma(samples)
            if cents:  # a frame of the retuned audio at t s holds the original's t * 2 ** (-c/1200)
                chroma = Activations(chroma.values, chroma.fps * frequency_ratio(cents))
        return madmom_key_order_to_chromatic(key), chroma, tuning

    def _onsets(self, audio: Audio, timer: _Timer) -> tuple[Activations, np.ndarray, Activations]:
        with timer.stage("onsets"):
            env = onset_envelope(audio.samples, audio.sr)
            return env, detect_onsets(env), loudness_curve(audio.samples, audio.sr)

    def analyze_audio(
        self,
        audio: Audio,
        *,
        filename: str = "<array>",
        networks: NetworkOutputs | None = None,
        progress: ProgressCallback | None = None,
        _timer: _Timer | None = None,
        _t0: float | None = None,
        _head: HeadStart | None = None,
    ) -> AnalysisResult:
        """Analyse decoded audio (``networks`` may be given to skip the networks)."""
        timer = _timer or _Timer(progress)
        t0 = _t0 if _t0 is not None else time.perf_counter()
        s = self.settings
        notes: list[str] = []
        if audio.duration < s.min_duration_s:
            from songmap.errors import AudioTooShortError

            raise AudioTooShortError(
                f"{filename}: {audio.duration:.2f} s of audio is too short to analyse; "
                f"songmap needs at least {s.min_duration_s:g} s to find beats"
            )
        if s.first_downbeat_s is not None and s.first_downbeat_s > audio.duration:
            from songmap.errors import InvalidParameterError

            # no beat of the music lies there: most likely milliseconds given for seconds
            raise InvalidParameterError(
                f"{filename}: a first downbeat at {s.first_downbeat_s:g} s lies after the end "
                f"of the audio ({audio.duration:.2f} s); give a time within it, in seconds"
            )
        silent = peak_level(audio.samples) < _SILENCE_PEAK  # no full-length temporary
        # Stages that do not depend on each other run on two threads (the beat network
        # here, onsets then the harmony networks on the pool); BLAS stays on one thread
        # per stage so the two do not fight over the cores.
        long_input = audio.duration > _CONCURRENT_NETWORKS_MAX_S
        timer.give_back_memory = long_input  # issue 15: peak memory flat with length
        # threads=1 (a batch worker sharing the cores with others): everything in turn
        executor = ThreadPoolExecutor(1) if s.threads > 1 else _InlineExecutor()
        onsets_ahead, harmony_ahead = _head.started(audio) if _head is not None else (None, None)
        with executor as pool, _one_blas_thread():
            onsets_job = None if silent or long_input else (
                onsets_ahead or pool.submit(self._onsets, audio, timer))
            if silent:
                notes.append("the recording is digital silence: no beats, bars, key or chords")
            elif networks is None:
                key = audio_key(audio)
                networks = self.network_cache.get(key)
                if networks is None:
                    networks = self.run_networks(audio, timer, pool=pool, harmony=harmony_ahead)
                    self.network_cache.put(key, networks)
                else:
                    timer.skip("beat_network", "key_chroma_network")
            if long_input and not silent:  # beside beat tracking, after the networks' memory
                onsets_job = pool.submit(self._onsets, audio, timer)
            return self._decide(audio, networks, onsets_job, notes, filename, timer, t0)

    def _decide(self, audio: Audio, networks: NetworkOutputs | None, onsets_job: Future | None,
                notes: list[str], filename: str, timer: _Timer, t0: float) -> AnalysisResult:
        """Every decision from the networks' and the onsets' outputs: the grid, then the
        harmony on it, then the timeline and the result (digital silence: empty ones)."""
        onsets = _NO_ONSETS
        grid = _EMPTY_GRID
        harmony = _NO_HARMONY
        key_info = KeyInfo(label="N", confidence=0.0)
        beat_act: np.ndarray | None = None
        if networks is not None:
            beat_act = beat_probability(networks.beats)
            tempo_range = self.settings.beat_tempo_range()  # narrowed by a BPM override
            with timer.stage("beat_tracking"):
                # beats while the onsets stage may still run; bars need its envelope
                tracked = track_beats(networks.beats, min_bpm=tempo_range[0],
                                      max_bpm=tempo_range[1])
            if onsets_job is not None:
                onsets = _Onsets(*onsets_job.result())
            with timer.stage("bars"):
                grid = self._bar_grid(audio, networks, tracked, onsets, beat_act, tempo_range)
            if len(grid.beat_times) < 2:
                notes.append("no steady beat was found")
            with timer.stage("chords"):
                # chords, global key and key sections decided together (harmony.analysis)
                harmony = self._harmony(audio, networks, grid)
            with timer.stage("key"):
                key_info = _key_info(harmony.key, _tuning(networks))
        with timer.stage("timeline"):
            timeline, tempo, transient_accuracy = self._timeline(
                audio, networks, onsets, grid, harmony, beat_act)
        tempo_conf, grid_conf = _grid_confidences(grid, tempo)
        chords, chord_details, key_segments = _spelled_harmony(
            timeline.chords, harmony.chords, harmony.key_sections, key_info.label)
        elapsed = time.perf_counter() - t0
        for note in notes:
            warnings.warn(f"{filename}: {note}", stacklevel=2)
        return AnalysisResult(
            filename=filename,
            audio=AudioInfo(duration=round(audio.duration, 4), sample_rate=audio.source_sr,
                            channels=audio.channels, decoder=audio.decoder),
            tempo=_tempo_info(tempo, tempo_conf),
            tempo_map=_tempo_map(grid.tempo_fit, grid.beat_times),
            time_signature=TimeSignature(beats_per_bar=grid.beats_per_bar, label=grid.label,
                                         confidence=round(grid.meter_confidence, 4)),
            meter_sections=[MeterSection(**x) for x in grid.sections],
            grid_confidence=grid_conf,
            key=key_info,
            downbeat_timeline=timeline.downbeats,
            beat_transient_markers=timeline.beats,
            transient_accuracy=transient_accuracy,
            chord_progression=chords,
            chord_segments=[(round(x.start, 4), round(x.end, 4), x.label) for x in harmony.chords],
            chord_details=chord_details,
            key_segments=key_segments,
            onset_times=[round(float(t), 4) for t in onsets.times],
            warnings=notes,
            performance_metrics=_performance(audio.duration, elapsed, timer),
            provenance=Provenance(
                songmap_version=__version__,
                models=[ModelInfo(**m) for m in self.registry.describe()],
                settings=self.settings,
            ),
        )

    def _bar_grid(self, audio: Audio, networks: NetworkOutputs, tracked: np.ndarray,
                  onsets: _Onsets, beat_act: np.ndarray, tempo_range: tuple[float, float]) -> _Grid:
        """Bars on the tracked beats (or the user's meter and bar phase), the beats placed
        between frames and on the tempo map, and how far the music carries the grid."""
        s, act = self.settings, networks.beats
        bar_evidence = _bar_evidence(audio)
        meter = track_bars(act, meters=s.meters, min_bpm=tempo_range[0], max_bpm=tempo_range[1],
                           chroma=networks.chroma, onset_envelope=onsets.envelope,
                           loudness=onsets.loudness, tracked=tracked, bar_evidence=bar_evidence,
                           tempo_evidence=_tempo_evidence(audio),
                           slowest_compound_bpm=COMPOUND_MIN_BPM if s.bpm is None else None)
        if s.time_signature is not None:  # override: the user's meter
            meter = apply_time_signature(meter, act, tracked, time_signature=s.time_signature,
                                         min_bpm=s.min_bpm, chroma=networks.chroma,
                                         loudness=onsets.loudness, bar_evidence=bar_evidence)
        beat_times, positions = meter.beat_times, meter.positions
        keep = (beat_times >= 0) & (beat_times <= audio.duration)
        beat_times, positions = beat_times[keep], positions[keep]
        if s.first_downbeat_s is not None:  # override: the user's bar phase
            positions = rephase_bars(beat_times, positions, beats_per_bar=meter.beats_per_bar,
                                     first_downbeat_s=s.first_downbeat_s)
        # between frames, and on the tempo map's lines where the music is steady
        followed = beat_times
        beat_times, tempo_fit, attack_starts = grid_beat_times(
            beat_times, beat_act, act.fps, duration=audio.duration, samples=audio.samples,
            sr=audio.sr)
        beat_conf = sample_at(beat_act, beat_times, act.fps)
        down_conf = downbeat_probability(beat_times, act.values[:, 0], act.values[:, 1], act.fps)
        # how far the music carries this grid: "no steady beat" is an answer; a beat is
        # heard where the tracker followed it (one a grid line moved off its accent, as
        # through a breakdown, is no less heard)
        music = music_span(onsets.loudness, beat_times, audio.duration)
        assessment = assess_grid(
            beat_times=followed, beat_activation=beat_act, fps=act.fps, music=music,
            meter_confidence=meter.confidence, onset_envelope=onsets.envelope.values,
            onset_fps=onsets.envelope.fps, meter_fixed=s.time_signature is not None)
        sections = describe_sections(
            beat_times, positions, down_conf, beats_per_bar=meter.beats_per_bar,
            label=meter.label, confidence=assessment.meter_confidence)
        return _Grid(beat_times=beat_times, positions=positions,
                     beats_per_bar=meter.beats_per_bar, label=meter.label,
                     meter_confidence=assessment.meter_confidence,
                     beat_confidence=beat_conf,
                     downbeat_confidence=down_conf, tempo_fit=tempo_fit, sections=sections,
                     assessment=assessment, music=music, attack_starts=attack_starts)

    def _harmony(self, audio: Audio, networks: NetworkOutputs, grid: _Grid) -> Harmony:
        """Chords, the global key and key sections on the grid's beats; the key network
        is asked again about the spans a key change is proposed for."""
        return analyze_harmony(
            networks.chroma, networks.key_probabilities, grid.beat_times, grid.positions,
            duration=audio.duration, vocabulary=self.settings.chord_vocabulary,
            music_span=grid.music,
            span_key_probabilities=lambda spans: np.array([
                madmom_key_order_to_chromatic(p)
                for p in self.registry.span_key_probabilities(
                    audio.samples, spans, prepare=_retuning(audio, networks))]),
        )

    def _timeline(self, audio: Audio, networks: NetworkOutputs | None, onsets: _Onsets,
                  grid: _Grid, harmony: Harmony, beat_act: np.ndarray | None,
                  ) -> tuple[Timeline, TempoEstimate, float]:
        """Bars, beats with their transients and bar chords; the global tempo; the mean
        transient accuracy (beats without a transient count 0)."""
        # (their accuracy follows from where they end up, below)
        t_times, t_strength, _ = nearest_transients(
            grid.beat_times, onsets.times, onsets.envelope,
            window_s=self.settings.transient_window_s)
        # each transient at its attack's start where that was measured (2 ms steps)
        t_times, t_acc = onto_attack_starts(grid.beat_times, t_times, grid.attack_starts,
                                            duration=audio.duration,
                                            window_s=self.settings.transient_window_s)
        timeline = build_timeline(
            TimelineBeats(
                beat_times=grid.beat_times, positions=grid.positions,
                beat_confidence=grid.beat_confidence,
                downbeat_confidence=grid.downbeat_confidence, transient_times=t_times,
                transient_strength=t_strength, transient_accuracy=t_acc,
                beat_tempo_bpm=beat_tempi(grid.tempo_fit, len(grid.beat_times))),
            chord_segments=harmony.chords, chroma=networks.chroma if networks else None,
            duration_s=audio.duration,
        )
        tempo = estimate_tempo(grid.beat_times, bar_tempi=timeline.bar_tempi,
                               beat_activation=beat_act,
                               bpm=track_bpm(grid.tempo_fit, grid.beat_times) or None)
        accuracy = round(float(np.nan_to_num(t_acc).mean()), 4) if len(t_acc) else 0.0
        return timeline, tempo, accuracy


@dataclass(frozen=True)
class _Onsets:
    """The onsets stage's outputs (empty for digital silence)."""

    envelope: Activations  # onset envelope, with its fps
    times: np.ndarray  # onset times (s)
    loudness: Activations  # loudness curve, with its fps


_NO_ONSETS = _Onsets(Activations(np.zeros(0, np.float32), 100.0), np.zeros(0),
                     Activations(np.zeros(0, np.float32), 100.0))


@dataclass(frozen=True)
class _Grid:
    """The beat/bar grid and what was measured on it (empty: no networks, silence)."""

    beat_times: np.ndarray  # s, increasing
    positions: np.ndarray  # 1-based beat position in the bar
    beats_per_bar: int = 4
    label: str = "4/4"
    meter_confidence: float = 0.0
    beat_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    downbeat_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tempo_fit: list[TempoSegmentFit] = field(default_factory=list)
    sections: list[dict] = field(default_factory=list)
    assessment: GridAssessment | None = None
    music: tuple[float, float] | None = None  # span (s) the song sounds in
    #: each beat's attack start (s; NaN: none found), ``rhythm.attacks``
    attack_starts: np.ndarray = field(default_factory=lambda: np.zeros(0))


_EMPTY_GRID = _Grid(beat_times=np.zeros(0), positions=np.zeros(0, dtype=int))
#: no chords, no key (digital silence); only its empty lists are read
_NO_HARMONY = Harmony(chords=[], key=KeyEstimate("N", 0.0, None, None, np.zeros(24)),
                      key_sections=[])


def _tuning(networks: NetworkOutputs) -> Tuning:
    """The signal's tuning as its networks' outputs recorded it."""
    return Tuning(networks.tuning_cents, networks.tuning_strength, 0)


def _retuning(audio: Audio, networks: NetworkOutputs) -> Callable[[np.ndarray], np.ndarray] | None:
    """What a stretch of ``audio``'s samples goes through before the key network, as the
    whole did (``_harmony_networks``): retuning by the networks' correction, or None."""
    cents = correction_cents(_tuning(networks))
    if not cents:
        return None
    return lambda samples: retune(samples, audio.sr, cents)


def _key_info(key: KeyEstimate, tuning: Tuning | None = None) -> KeyInfo:
    """The result's key: the estimate with its wheel codes and spelling, and the tuning
    where it is trusted (``MIN_STRENGTH``); ``N`` undecided."""
    if key.label == "N":
        return KeyInfo(label="N", confidence=0.0)
    trusted = tuning is not None and tuning.strength >= MIN_STRENGTH
    return KeyInfo(
        label=key.label, confidence=round(key.confidence, 4),
        camelot=camelot(key.label), open_key=open_key(key.label), runner_up=key.runner_up,
        runner_up_confidence=round(key.runner_up_confidence or 0.0, 4), name=spell_key(key.label),
        tuning_cents=round(tuning.cents, 1) if tuning is not None and trusted else None,
    )


def _grid_confidences(grid: _Grid, tempo: TempoEstimate) -> tuple[float, float | None]:
    """The tempo's confidence as the grid's evidence allows, and the grid's own (None
    without a grid assessment: no networks)."""
    if grid.assessment is None:
        return tempo.confidence, None
    tempo_conf = grid.assessment.tempo_confidence(tempo.confidence)
    return tempo_conf, round(grid.assessment.grid_confidence(tempo_conf), 4)


#: Longest audio (s) the beat-synchronous downbeat networks read: their frame features
#: are held for the whole song (45 floats a frame at 100 fps, 32 MB at 30 minutes).
_BAR_EVIDENCE_MAX_S = 1800.0
#: Shortest: on the live stream's 12 s windows (about 24 beats of context for networks
#: that read the whole beat sequence both ways) they cost fof's live downbeat F .756 ->
#: .693, while whole songs were unchanged there.
_BAR_EVIDENCE_MIN_S = 30.0


def _bar_evidence(audio: Audio) -> BarEvidence | None:
    """P(downbeat) per beat from the beat-synchronous downbeat networks
    (``songmap.models.bar_gru``) on the song's audio, for the bar phase; their features
    are computed on the first call. None for audio they cannot read (not at 44.1 kHz,
    shorter than ``_BAR_EVIDENCE_MIN_S`` or longer than ``_BAR_EVIDENCE_MAX_S``)."""
    from songmap.models.bar_gru import bar_downbeat_probability, rhythmic_features

    if audio.sr != 44100 or not _BAR_EVIDENCE_MIN_S <= audio.duration <= _BAR_EVIDENCE_MAX_S:
        return None

    @cache
    def features() -> np.ndarray:
        return rhythmic_features(audio.samples, audio.sr)

    return lambda beat_times: bar_downbeat_probability(features(), beat_times)


#: Longest audio (s) the tempo networks hear: the middle this long of a longer recording
#: (their tempo head averages over time; 300 s take ~3.5 s on one core).
_TEMPO_EVIDENCE_MAX_S = 300.0


def _tempo_evidence(audio: Audio) -> Callable[[], np.ndarray | None]:
    """The tempo networks' distribution over 0-299 BPM (``songmap.models.tcn_tempo``)
    for ``rhythm.meter.track_bars``, computed when first asked; None for audio not at
    their 44.1 kHz."""
    from songmap.models.tcn_tempo import tempo_distribution

    @cache
    def distribution() -> np.ndarray | None:
        if audio.sr != 44100:
            return None
        keep = int(_TEMPO_EVIDENCE_MAX_S * audio.sr)
        start = max(0, (len(audio.samples) - keep) // 2)
        return tempo_distribution(audio.samples[start:start + keep], audio.sr)

    return distribution


def _tempo_info(tempo: TempoEstimate, confidence: float) -> TempoInfo:
    """The result's tempo: BPM to 2 decimals, confidences and stability to 4."""
    alt_bpm, alt_conf = tempo.alternative_bpm, tempo.alternative_confidence
    return TempoInfo(
        bpm=round(tempo.bpm, 2), confidence=round(confidence, 4),
        alternative_bpm=None if alt_bpm is None else round(alt_bpm, 2),
        alternative_confidence=None if alt_conf is None else round(alt_conf, 4),
        stability=round(tempo.stability, 4),
    )


def _tempo_map(tempo_fit: list[TempoSegmentFit], beat_times: np.ndarray) -> list[TempoSegment]:
    """The tempo map's segments, their ends at their first and last beats (s)."""
    return [TempoSegment(start=round(float(beat_times[x.first]), 4),
                         end=round(float(beat_times[x.last]), 4), bpm=x.bpm,
                         confidence=round(segment_confidence(x), 4),
                         first_beat=x.first + 1, beats=x.beats) for x in tempo_fit]


def _performance(duration_s: float, elapsed_s: float, timer: _Timer) -> PerformanceMetrics:
    """Wall time, speed (audio seconds per wall second), per-stage seconds, peak RSS."""
    return PerformanceMetrics(
        analysis_time=round(elapsed_s, 4),
        realtime_factor=round(duration_s / elapsed_s, 2) if elapsed_s > 0 else 0.0,
        stage_seconds={k: round(v, 4) for k, v in timer.seconds.items()},
        peak_rss_mb=_peak_rss_mb(),
    )
