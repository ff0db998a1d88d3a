"""``songmap``: a thin shell over the Analyzer.

Exit codes (the one place they are decided): 0 ok, 1 analysis failed unexpectedly,
2 bad arguments or settings, 3 input missing, 4 not audio / undecodable,
5 too short, 6 too long, 7 past --timeout or --max-memory, 8 model problem,
9 an output or store cannot be written (full disk, read-only, wrong type), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from songmap import errors
from songmap.cli.options import add_override_options, settings_from_args
from songmap.terminal import PrintableFormatter, printable

EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (errors.InvalidParameterError, 2),
    (errors.InputNotFoundError, 3),
    (errors.UndecodableAudioError, 4),  # NotAudioError included
    (errors.AudioTooShortError, 5),
    (errors.AudioTooLongError, 6),
    (errors.ResourceLimitError, 7),  # AnalysisTimeoutError included
    (errors.ModelError, 8),
    (errors.StorageError, 9),  # DiskFullError included
    (errors.OutputBusyError, 10),
    (errors.SongmapError, 1),
]


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


#: Tempo and meter: below the first confidence an answer is shown as uncertain, below
#: the second as a guess (the confidences are shares of the music that carries them).
_SURE, _GUESS = 0.75, 0.5
#: Key: the key network's softmax over 24 keys spreads thinner (dev set: right keys at
#: 0.53-0.97), so a key is uncertain below this or when the runner-up has half its
#: confidence, and a guess below ``_KEY_GUESS``.
_KEY_SURE, _KEY_GUESS = 0.5, 0.25


def _hedge(confidence: float, *, sure: float, guess: float, uncertain_words: str,
           guess_words: str, close_call: bool = False) -> str:
    """The confidence (0..1) in words: nothing added when sure."""
    if confidence < guess:
        return f"  ({guess_words}: confidence {confidence:.2f})"
    if confidence < sure or close_call:
        return f"  ({uncertain_words}: confidence {confidence:.2f})"
    return f"  (confidence {confidence:.2f})"


def format_summary(result) -> str:
    """A few readable lines for a terminal, saying where the answer is uncertain."""
    r = result
    tempo = f"  tempo      {r.tempo.bpm:.1f} BPM"
    if r.tempo.alternative_bpm:
        tempo += f"  (or {r.tempo.alternative_bpm:.1f})"
    if r.total_beats >= 2:
        tempo += _hedge(r.tempo.confidence, sure=_SURE, guess=_GUESS,
                        uncertain_words="uncertain: the beat is weak in places",
                        guess_words="a guess: no steady beat")
    else:
        tempo = "  tempo      none: no steady beat was found"
    meter = (f"  meter      {r.time_signature.label}  ({r.time_signature.beats_per_bar} beats "
             f"per bar)")
    if r.total_beats >= 2:
        meter += _hedge(r.time_signature.confidence, sure=_SURE, guess=_GUESS,
                        uncertain_words="uncertain", guess_words="a guess: bars unclear")
    key = f"  key        {r.key.label}"
    if r.key.camelot:
        key += f"  Camelot {r.key.camelot}  Open Key {r.key.open_key}"
    if r.key.label != "N":
        runner = r.key.runner_up_confidence or 0.0
        key += _hedge(r.key.confidence, sure=_KEY_SURE, guess=_KEY_GUESS,
                      uncertain_words="uncertain", guess_words="a guess",
                      close_call=bool(r.key.runner_up) and 2 * runner > r.key.confidence)
        if r.key.runner_up:
            key += f"; runner-up {r.key.runner_up} ({runner:.2f})"
        key += _tuning_text(r.key.tuning_cents)
    lines = [
        f"{printable(r.filename)}  ({r.audio.duration:.1f} s, {r.audio.sample_rate} Hz, "
        f"{r.audio.channels} ch)",
        tempo,
        meter,
        key,
        f"  bars       {r.total_bars}  (avg {r.average_bar_duration:.2f} s)   beats {r.total_beats}"
        f"   transient accuracy {r.transient_accuracy:.2f}",
    ]
    if r.grid_confidence is not None and r.total_beats >= 2:
        lines.append("  grid       " + _grid_words(r.grid_confidence))
    overrides = r.provenance.settings.overrides()
    if overrides:
        lines.append("  overrides  " + ", ".join(_override_text(k, v) for k, v in overrides.items()))
    if r.chord_progression:
        from songmap.cli.progression import progression_text

        # lead-sheet names spelled in the key, one token per bar (a bar of two chords in
        # brackets: "A/F" would read as a slash chord), repeated patterns once with a count
        bars = [_bar_token(bar.names or bar.chords) for bar in r.chord_progression]
        lines.append("  chords     " + progression_text(bars))
    for w in r.warnings:
        lines.append(f"  warning    {printable(w)}")
    pm = r.performance_metrics
    lines.append(f"  analysed in {pm.analysis_time:.2f} s ({pm.realtime_factor:.0f}x real time)")
    return "\n".join(lines)


def _bar_token(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "[" + " ".join(names) + "]"


def _tuning_text(cents: float | None) -> str:
    """The key line's note on a recording tuned off A440 (from 10 cents, where the key
    and chords are read on the audio retuned), e.g. "; tuned 32 cents flat (A4 = 432.0
    Hz)"; nothing for one in tune or of unknown tuning."""
    from songmap.harmony.tuning import RETUNE_FROM_CENTS, a4_hz

    if cents is None or abs(cents) < RETUNE_FROM_CENTS:
        return ""
    side = "sharp" if cents > 0 else "flat"
    return f"; tuned {abs(cents):.0f} cents {side} (A4 = {a4_hz(cents):.1f} Hz)"


def _grid_words(confidence: float) -> str:
    if confidence >= _SURE:
        return f"steady beat and bars (confidence {confidence:.2f})"
    fix = "--bpm, --time-signature and --first-downbeat fix them"
    if confidence >= _GUESS:
        return f"partly steady (confidence {confidence:.2f}): check the beats and bars; {fix}"
    if confidence >= _KEY_GUESS:
        return (f"weak or unsteady beat (confidence {confidence:.2f}): the beats and bars "
                f"are partly a guess; {fix}")
    return (f"no steady beat (confidence {confidence:.2f}): free time, rubato or no "
            "pulse; the beats and bars are a guess")


def _override_text(field: str, value: object) -> str:
    if field == "bpm" and isinstance(value, (list, tuple)):
        lo, hi = value
        return f"--bpm {lo:g}" if lo == hi else f"--bpm {lo:g}-{hi:g}"
    if field == "first_downbeat_s":
        return f"--first-downbeat {value}"
    return f"--time-signature {value}"


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyse every file of ``args.files`` with one Analyzer (models load once).

    The command line is checked before anything heavy is imported (exit 2; 3 when no
    input exists). A file that cannot be analysed gets its one-line error and the others
    are still analysed; the exit status is then that of the first failure.
    """
    from songmap.cli import analyze_files

    plan = analyze_files.plan(args)  # cheap: options, export formats, outputs, paths
    try:
        missing_inputs = [(path, why) for path, why in plan.inputs if why is not None]
        if len(missing_inputs) == len(plan.inputs):
            for path, why in missing_inputs:
                _report(plan, path, why)
            return exit_code_for(missing_inputs[0][1])
        settings = settings_from_args(args)
        from songmap.cli.startup import (
            decode_ahead,
            ensure_numba_cache_dir,
            import_numpy_one_blas_thread,
            load_kernels,
        )

        import_numpy_one_blas_thread()
        ensure_numba_cache_dir()
        first = next(i for i, (_, missing) in enumerate(plan.inputs) if missing is None)
        decoded = head = None
        if args.max_memory:  # decoding is part of the capped work, the kernels are not
            load_kernels()
            analyzer = _analyzer(args, settings)
        else:
            from songmap.pipeline import HeadStart

            analyzer = _analyzer(args, settings)
            # decoded, then (short audio) the stages that need no kernel run, while the
            # kernels load
            head = HeadStart()
            decoded = decode_ahead(plan.inputs[first][0], settings,
                                   then=lambda audio: analyzer.start_ahead(audio, head))
            load_kernels()
        from songmap.cli.progress import ProgressLine, wants_progress

        show_progress = wants_progress(sys.stderr, json_output=plan.stdout_json,
                                       quiet=args.quiet or bool(getattr(args, "verbose", 0)))
        first_failure = 0
        for i, (path, missing) in enumerate(plan.inputs):
            try:
                if missing is not None:
                    raise missing
                with ProgressLine(str(path).rsplit("/", 1)[-1], enabled=show_progress) as line:
                    result = _analyze_one(analyzer, path, args, decoded if i == first else None,
                                          progress=line, head=head if i == first else None)
                plan.write_outputs(result, path)
            except errors.SongmapError as exc:
                _report(plan, path, exc)
                first_failure = first_failure or exit_code_for(exc)
                continue
            if plan.stdout_json:
                plan.write_stdout(result)
            elif not args.quiet:
                analyze_files.to_stdout(format_summary(result) + ("\n\n" if plan.several else "\n"))
        return first_failure
    finally:
        plan.close()


def _report(plan, path: str, exc: BaseException) -> None:
    print(f"songmap: error: {printable(exc)}", file=sys.stderr, flush=True)
    plan.record_failure(path, exc, exit_code_for(exc))


def _analyzer(args: argparse.Namespace, settings):
    """The Analyzer for ``settings`` (its models load on first use)."""
    from songmap.netcache import NetworkCache, default_cache_dir
    from songmap.pipeline import Analyzer

    # networks' outputs kept on disk: analysing a file again with an override is quick
    analyzer = Analyzer(settings, network_cache=NetworkCache(directory=default_cache_dir()))
    if args.max_memory:
        # load what every analysis needs first: the cap is for the analysis itself
        from songmap.limits import limit_memory, map_blas_buffers
        from songmap.workers.memory import address_space_mb, load_before_cap

        load_before_cap(analyzer)
        map_blas_buffers()  # OpenBLAS ends the process when it cannot map one under the cap
        loaded_mb = address_space_mb()
        if args.max_memory <= loaded_mb:
            # a cap below what is already mapped fails every allocation, and a thread that
            # cannot start its first frame leaves Thread.start() waiting for ever
            raise errors.ResourceLimitError(
                f"the analysis needs more than --max-memory {args.max_memory:g} MB: songmap "
                f"with its networks loaded already takes {loaded_mb:.0f} MB of address "
                "space; raise the limit"
            )
        limit_memory(args.max_memory)
    return analyzer


def _analyze_one(analyzer, path: str, args: argparse.Namespace,
                 decoded=None,
                 progress=None, head=None):
    from songmap.limits import wall_time_limit

    timeout_code = exit_code_for(errors.AnalysisTimeoutError())
    with wall_time_limit(
        args.timeout, exit_code=timeout_code,
        message=f"songmap: error: {printable(path)}: the analysis took longer than {args.timeout} s "
                "and was stopped (a stuck decoder or a very long file?); raise --timeout",
    ):
        try:
            return analyzer.analyze(path, decoded=decoded, progress=progress, head_start=head)
        except errors.SongmapError:
            raise
        except (MemoryError, ImportError, OSError, RuntimeError) as exc:
            if not args.max_memory:
                raise
            # under an address-space cap, allocation failures surface from C code in
            # many shapes (MemoryError, failed mmap, failed thread creation)
            raise errors.ResourceLimitError(
                f"{path}: the analysis needs more than --max-memory {args.max_memory:g} MB "
                f"({type(exc).__name__}); raise the limit or analyse a shorter file"
            ) from exc


def cmd_example(args: argparse.Namespace) -> int:
    import shutil

    from songmap.examples import example_path

    src = example_path()
    if args.output:
        try:
            shutil.copyfile(src, args.output)
        except OSError as exc:
            raise errors.storage_error(args.output, exc) from exc
        print(printable(args.output))
    else:
        print(src)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``songmap analyze: error: ...``, exit 2), like every
    other songmap error, instead of the usage block."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from songmap._version import __version__

    parser = _Parser(
        prog="songmap",
        description="Map a recording in time: tempo, key, meter, bars, beats, chords.",
    )
    parser.add_argument("--version", action="version", version=f"songmap {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="analyse audio files (models load once)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="audio files (WAV, FLAC, MP3, OGG, Opus, M4A, AIFF, ...)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="write the JSON result here (FILE.json; - for stdout); with several "
                        "files a folder (DIR/: one <name>.json each) or FILE.jsonl (one line "
                        "each)")
    p.add_argument("--json", action="store_true",
                   help="print the JSON result on stdout (default when stdout is not a terminal)")
    p.add_argument("--summary", action="store_true",
                   help="print the readable summary even when stdout is not a terminal")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary")
    p.add_argument("--max-duration", type=float, metavar="SECONDS",
                   help="refuse longer audio (default 3 hours)")
    p.add_argument("--vocabulary", choices=["majmin", "sevenths"], help="chord labels")
    p.add_argument("--threads", type=int, help="network runtime threads (default 2)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="stop an analysis after this many seconds (exit 7; ends the run)")
    p.add_argument("--max-memory", type=float, metavar="MB",
                   help="cap the process's memory; beyond it the analysis fails cleanly")
    p.add_argument("--export", action="append", metavar="FMT",
                   help="also write FMT next to the output (jams, lab, beats, midi, rekordbox, "
                        "csv, jsonl, png, ...; repeat or comma-separate)")
    p.add_argument("--descriptors", action="store_true",
                   help="also measure loudness (LUFS, LRA, true peak) and track descriptors")
    add_override_options(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("example", help="print (or copy) the bundled example recording")
    p.add_argument("-o", "--output", help="copy it here")
    p.set_defaults(func=cmd_example)
    return parser


#: The commands ``build_parser`` defines itself (the others come from ``_load_extras``).
_BUILT_IN_COMMANDS = frozenset({"analyze", "example"})


def _load_extras(parser: argparse.ArgumentParser) -> None:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for mod in ("songmap.cli.batch_cmd", "songmap.cli.serve_cmd", "songmap.cli.export_cmd",
                "songmap.cli.live_cmd"):
        try:
            module = __import__(mod, fromlist=["register"])
        except ImportError:
            continue
        module.register(sub)


#: Commands after which a command-line process ends at once (``os._exit``) once its
#: outputs are flushed: tearing down numba/LLVM, onnxruntime and the BLAS thread pools
#: at interpreter exit took 0.2-0.5 s after every analysis and serves nothing.
_FAST_EXIT_COMMANDS = frozenset({"analyze", "export", "plot", "descriptors"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Called without ``argv`` (the ``songmap`` script, ``python -m songmap.cli.main``), an
    ``analyze``, ``export``, ``plot`` or ``descriptors`` process ends right after its
    outputs are flushed, skipping the interpreter's teardown; called with ``argv``
    (tests, other programs) it returns.
    """
    import os

    # onnxruntime's telemetry leaves a session file in $TMPDIR; inherited by every worker.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    _stand_in_for_closed_streams()
    parser = build_parser()
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    if not words or words[0] not in _BUILT_IN_COMMANDS:
        # the other commands' modules (export registry, batch, service) cost ~20 ms of
        # every start; `analyze` and `example` do without them
        _load_extras(parser)
    args = parser.parse_args(argv)
    log_handler = logging.StreamHandler()
    log_handler.setFormatter(PrintableFormatter("songmap: %(message)s"))  # names in the log
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        handlers=[log_handler])
    if not args.verbose:
        warnings.filterwarnings("ignore")
    code = _run(args)
    if argv is None and args.command in _FAST_EXIT_COMMANDS:
        _exit_now(code)
    return code


def _stand_in_for_closed_streams() -> None:
    """Give a closed stdin, stdout or stderr (``songmap ... >&-``) a stand-in: an empty
    stdin; a stdout whose writes fail with EBADF, said as an error (exit 9) instead of a
    crash; a stderr that discards (nowhere to say anything, but the exit status still
    tells). A descriptor Python left closed is held by the stand-in, so a file opened later
    cannot land on it and receive what was meant for the terminal; one that Python's own
    start-up reused for a file of its own (seen for stderr) is left to that file."""
    import os

    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is not None and (name == "stdin" or _writable(fd)):
            continue
        try:
            held = os.open(os.devnull, os.O_WRONLY if name == "stderr" else os.O_RDONLY)
            if stream is None and held != fd:
                os.dup2(held, fd)
                os.close(held)
                held = fd
        except OSError:
            continue
        setattr(sys, name, open(held, "r" if name == "stdin" else "w",  # noqa: SIM115 - for the process's life
                                encoding="utf-8", closefd=stream is not None))


def _writable(fd: int) -> bool:
    """Whether ``fd`` is open for writing (a write of nothing checks that much; a full
    device or a closed pipe still is)."""
    import errno
    import os

    try:
        os.write(fd, b"")
    except OSError as exc:
        return exc.errno != errno.EBADF
    return True


def _exit_now(code: int) -> NoReturn:
    """End the process with ``code`` once stdout, stderr and the log are flushed."""
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("songmap: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:  # a write to stdout other than the results' (to_stdout)
        from songmap.cli.analyze_files import release_stdout

        release_stdout()
        print(f"songmap: error: {errors.storage_error('stdout', exc)}", file=sys.stderr)
        return exit_code_for(errors.StorageError())
    except errors.SongmapError as exc:
        print(f"songmap: error: {printable(exc)}", file=sys.stderr)
        return exit_code_for(exc)
    except MemoryError:
        print("songmap: error: out of memory (the --max-memory limit or the machine's); "
              "try a shorter file, --max-duration, or more --max-memory", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
