"""``songmap export``, ``songmap plot`` and ``songmap descriptors``.

The input is an audio file (analysed first) or a result JSON written by
``songmap analyze -o``; every format comes from ``songmap.export.EXPORTERS``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from songmap.terminal import printable

if TYPE_CHECKING:
    from songmap.export import Exporter

log = logging.getLogger("songmap")


def _analysis_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-duration", type=float, metavar="SECONDS",
                   help="refuse longer audio (default 3 hours)")
    p.add_argument("--vocabulary", choices=["majmin", "sevenths"], help="chord labels")
    p.add_argument("--threads", type=int, help="network runtime threads (default 2)")
    from songmap.cli.options import add_override_options

    add_override_options(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    from songmap.export import EXPORTERS

    names = ", ".join(EXPORTERS)
    p = subparsers.add_parser(
        "export", help="write a result as JAMS, MIDI, .lab, rekordbox XML, CSV, ...",
        description=f"Write the analysis of AUDIO (or a saved RESULT.json) in other tools' "
                    f"formats: {names}.",
    )
    p.add_argument("input", nargs="?", metavar="RESULT.json|AUDIO")
    p.add_argument("-f", "--format", action="append", default=[], metavar="FORMAT",
                   help="format name (repeatable or comma-separated)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="output file ('-' for stdout); a folder when several formats are asked "
                        "(default: INPUT's name with the format's extension, here)")
    p.add_argument("--table", choices=["beats", "bars", "chords", "onsets"],
                   help="csv/jsonl: which table (default beats)")
    p.add_argument("--location", metavar="AUDIO",
                   help="rekordbox: path of the audio file (default: the analysed file)")
    p.add_argument("--audio", metavar="AUDIO",
                   help="png from a RESULT.json: draw this file's waveform")
    p.add_argument("--list", action="store_true", help="list the formats and exit")
    _analysis_args(p)
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "plot", help="draw waveform, beats, numbered bars and chords to a PNG",
        description="Picture of AUDIO's analysis (or of a saved RESULT.json; give --audio "
                    "to draw the waveform then): beat ticks, numbered bars, the chord of "
                    "each bar, key / BPM / meter in the title.",
    )
    p.add_argument("input", metavar="AUDIO|RESULT.json")
    p.add_argument("-o", "--output", metavar="FILE.png",
                   help="default: INPUT's name with .png, here")
    p.add_argument("--audio", metavar="AUDIO", help="with a RESULT.json: the audio to draw")
    p.add_argument("--width", type=int, default=1600, help="pixels (default 1600)")
    p.add_argument("--height", type=int, default=None,
                   help="pixels (default: grows with the length, one row per 32 bars)")
    _analysis_args(p)
    p.set_defaults(func=cmd_plot)

    p = subparsers.add_parser(
        "descriptors", help="loudness (LUFS, LRA, true peak), energy, danceability, ...",
        description="Track descriptors of AUDIO: EBU R128 loudness, ReplayGain, key in "
                    "Camelot/Open Key, tempo and its alternative, and 0..1 scores whose "
                    "formulas are in songmap.descriptors.",
    )
    p.add_argument("input", metavar="AUDIO")
    p.add_argument("-o", "--output", metavar="FILE.json", help="write the JSON here")
    _analysis_args(p)
    p.set_defaults(func=cmd_descriptors)


def _check_input(path: str) -> Path:
    from songmap.errors import InputNotFoundError

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    return p


def _check_inputs(args: argparse.Namespace) -> None:
    """A missing INPUT or --audio is said at once, before anything heavy loads."""
    _check_input(args.input)
    if getattr(args, "audio", None):
        _check_input(args.audio)


def _is_result_json(p: Path) -> bool:
    return p.suffix.lower() == ".json"


def _load_result(p: Path):
    from pydantic import ValidationError

    from songmap.errors import InvalidParameterError
    from songmap.schema import AnalysisResult

    try:
        return AnalysisResult.model_validate_json(p.read_bytes())
    except ValidationError as exc:
        raise InvalidParameterError(
            f"{p}: not a songmap result ({exc.error_count()} problems, first: "
            f"{exc.errors()[0]['msg']}); write one with `songmap analyze AUDIO -o {p.name}`"
        ) from None


def _analyse(p: Path, args: argparse.Namespace):
    from songmap.audio import load_audio
    from songmap.cli.options import settings_from_args
    from songmap.cli.startup import announce_compiles, ensure_numba_cache_dir

    settings = settings_from_args(args)
    ensure_numba_cache_dir()
    from songmap.pipeline import Analyzer

    announce_compiles()  # in this process: said when a kernel really compiles
    audio = load_audio(p, max_duration_s=settings.max_duration_s,
                       min_duration_s=settings.min_duration_s)
    return Analyzer(settings).analyze_audio(audio, filename=p.name), audio


def _result_and_audio(args: argparse.Namespace) -> tuple[Any, Any, Path]:
    p = _check_input(args.input)
    if _is_result_json(p):
        audio = None
        if getattr(args, "audio", None):
            from songmap.audio import load_audio

            audio = load_audio(_check_input(args.audio))
        return _load_result(p), audio, p
    result, audio = _analyse(p, args)
    return result, audio, p


def _write(data: bytes, target: str | Path) -> None:
    from songmap.cli.analyze_files import to_stdout
    from songmap.errors import storage_error
    from songmap.outputs import write_whole

    if str(target) == "-":
        to_stdout(data)
        return
    try:
        write_whole(target, data)
    except OSError as exc:  # a full disk, a read-only folder: one line, exit 9
        raise storage_error(str(target), exc) from exc


def _check_output(output: str | None, *, folder: bool = False) -> None:
    """An ``-o`` that cannot be written is said before the analysis, not after it: its
    folder must exist (a folder of several formats is made now); without ``-o`` the files
    go to the current folder, which must take them."""
    from songmap.cli.analyze_files import check_output_file, check_writable
    from songmap.errors import storage_error

    if output == "-":
        return
    if not output:
        check_writable(".", Path("."))
    elif folder:
        try:
            Path(output).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(f"-o {output}", exc) from exc
        check_writable(output, Path(output))
    else:
        check_output_file(output)


def _chosen_exporters(args: argparse.Namespace) -> list[Exporter]:
    """The exporters ``--format`` names (comma-separated, repeatable); a clear error
    without an input or a format."""
    from songmap.errors import InvalidParameterError
    from songmap.export import EXPORTERS, get_exporter

    if not args.input:
        raise InvalidParameterError("give RESULT.json or AUDIO to export (or --list)")
    formats = [f for spec in args.format for f in spec.split(",") if f.strip()]
    if not formats:
        raise InvalidParameterError(f"give --format, one of: {', '.join(EXPORTERS)}")
    return [get_exporter(f) for f in formats]


def _export_options(exporter: Exporter, args: argparse.Namespace, src: Path,
                    audio: Any) -> dict[str, Any]:
    """The options ``exporter`` takes, from the command line and the input."""
    options: dict[str, Any] = {}
    if "location" in exporter.options:
        location = args.location or (None if _is_result_json(src) else str(src.resolve()))
        if location:
            options["location"] = location
    if "table" in exporter.options and args.table:
        options["table"] = args.table
    if exporter.name == "png" and audio is not None:
        options.update(samples=audio.samples, sr=audio.sr)
    return options


def cmd_export(args: argparse.Namespace) -> int:
    from songmap.errors import InvalidParameterError
    from songmap.export import EXPORTERS

    if args.list:
        for e in EXPORTERS.values():
            print(f"{e.name:10s} {e.extension:7s} {e.description}")
        return 0
    exporters = _chosen_exporters(args)
    _check_inputs(args)  # before the writers' packages load (matplotlib: ~0.5 s)

    several = len(exporters) > 1
    if several and args.output == "-":
        raise InvalidParameterError("several formats cannot all go to stdout; give a folder")
    _check_output(args.output, folder=several)
    for e in exporters:
        e.function()  # a missing package fails before a long analysis
    result, audio, src = _result_and_audio(args)
    out_dir = Path(args.output) if several and args.output else Path(".")
    exts = [e.extension for e in exporters]
    for e in exporters:
        data = e.to_bytes(result, **_export_options(e, args, src, audio))
        tag = f".{e.name}" if exts.count(e.extension) > 1 else ""
        if not several and args.output:
            target: str | Path = args.output
        else:
            target = out_dir / f"{src.stem}{tag}{e.extension}"
        _write(data, target)
        if str(target) != "-":
            print(printable(target))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from songmap.errors import InvalidParameterError
    from songmap.export import get_exporter

    if not (100 <= args.width <= 20000 and (args.height is None or 100 <= args.height <= 20000)):
        raise InvalidParameterError("--width and --height must be 100..20000 pixels")
    png = get_exporter("png")
    _check_inputs(args)
    _check_output(args.output)
    png.function()
    result, audio, src = _result_and_audio(args)
    options: dict[str, Any] = {"width_px": args.width, "height_px": args.height}
    if audio is not None:
        options.update(samples=audio.samples, sr=audio.sr)
    target = args.output or f"{src.stem}.png"
    _write(png.to_bytes(result, **options), target)
    if target != "-":
        print(printable(target))
    return 0


def read_channels(p: Path):
    """The file's own channels at its own rate when libsndfile reads it (loudness is
    defined on them), else the analyser's mono signal."""
    import soundfile as sf

    try:
        data, sr = sf.read(p, dtype="float32", always_2d=True)
        return data, int(sr)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None


def cmd_descriptors(args: argparse.Namespace) -> int:
    p = _check_input(args.input)
    if args.output:
        _check_output(args.output)
    from songmap.descriptors import compute_descriptors

    result, audio = _analyse(p, args)
    native = read_channels(p)
    if native is None:
        log.warning("%s: loudness measured on the mono downmix (libsndfile cannot read it)", p)
        samples, sr = audio.samples, audio.sr
    else:
        samples, sr = native
    data = {"filename": result.filename, **compute_descriptors(samples, sr, result)}
    text = json.dumps(data, indent=2) + "\n"
    _write(text.encode(), args.output or "-")
    return 0
