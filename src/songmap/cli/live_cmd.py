"""``songmap live FILE|-``: follow a signal as it plays (``songmap.live``).

A file is decoded and fed at real-time pace (``--speed N``: N times faster; 0: as fast
as possible); ``-`` reads WAV (``ffmpeg -i x -f wav - | songmap live -``) or, with
``--raw``, headerless PCM from stdin, at the pace it arrives. ``--json`` prints one event
per line; otherwise a terminal gets one line updated in place (bar.beat, BPM, chord,
key) and a pipe one readable line per event.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from songmap.errors import InvalidParameterError

if TYPE_CHECKING:  # numpy loads with the analysis, not with the command line
    import numpy as np

#: What a write to stdout fails with when stdout cannot take it (a full disk or quota, a
#: closed stdout); reading the input fails otherwise.
_STDOUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EBADF, errno.EIO})

#: Block fed per step (s of audio): beats are emitted at most this late, plus the
#: networks' own lag.
_BLOCK_S = 0.02


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "live", help="beats, bars, tempo, chords and key of a signal as it plays",
        description="Analyse FILE (or - for WAV / --raw PCM on stdin) as a stream and print "
                    "events as they become known: beat, downbeat, tempo, chord, key, and "
                    "revise for corrections. Each has time (s of audio) and delay (s of "
                    "audio read past time when it was emitted).")
    p.add_argument("input", metavar="FILE|-", help="an audio file, or - for stdin")
    p.add_argument("--speed", type=float, default=None,
                   help="pace: 1 = real time (default for a file), N = N times faster, "
                        "0 = as fast as possible (default for stdin: its own pace)")
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    p.add_argument("--raw", action="store_true",
                   help="stdin is headerless PCM (give --rate, --channels, --format)")
    p.add_argument("--rate", type=int, default=44100, help="raw PCM sample rate (Hz)")
    p.add_argument("--channels", type=int, default=2, help="raw PCM channels")
    p.add_argument("--format", dest="pcm_format", default="s16le",
                   help="raw PCM sample format: s16le, s32le, f32le, f64le, u8")
    p.add_argument("--lookahead", type=float, default=None, metavar="SECONDS",
                   help="audio waited for before a downbeat or chord is committed "
                        "(default 1; more is surer and later)")
    p.set_defaults(func=cmd_live)


def _blocks_from_file(path: str, settings) -> tuple[int, int, Iterator[np.ndarray]]:
    from songmap.audio import load_audio

    audio = load_audio(path, max_duration_s=settings.max_duration_s,
                       min_duration_s=settings.min_duration_s)  # as analyze: exit 5
    step = int(_BLOCK_S * audio.sr)
    return audio.sr, 1, (audio.samples[i:i + step] for i in range(0, len(audio.samples), step))


def _blocks_from_stdin(stream: BinaryIO, args) -> tuple[int, int, Iterator[np.ndarray]]:
    from songmap.live.pcm import raw_format, read_wav_header

    fmt = (raw_format(args.pcm_format, sample_rate=args.rate, channels=args.channels)
           if args.raw else read_wav_header(stream))
    size = max(1, int(_BLOCK_S * fmt.sample_rate)) * fmt.frame_bytes

    def blocks() -> Iterator[np.ndarray]:
        pending = b""
        while True:
            data = stream.read(size - len(pending))
            if not data:
                break
            pending += data
            whole = len(pending) - len(pending) % fmt.frame_bytes
            if whole:
                yield fmt.decode(pending[:whole])
                pending = pending[whole:]

    return fmt.sample_rate, fmt.channels, blocks()


class _Display:
    """One terminal line, rewritten in place: position, tempo, chord, key, time."""

    def __init__(self, out) -> None:
        self.out = out
        self.state = {"bar": 0, "beat": 0, "bpm": 0.0, "chord": "N", "key": "N"}

    def show(self, event: dict, now: float) -> None:
        kind = event["type"]
        if kind == "beat":
            self.state.update(bar=event["bar"], beat=event["beat"])
        elif kind == "tempo":
            self.state["bpm"] = event["bpm"]
        elif kind in ("chord", "key"):
            self.state[kind] = event["label"]
        s = self.state
        line = (f"bar {s['bar']:>4}.{s['beat']}  {s['bpm']:6.1f} BPM  {s['chord']:<10} "
                f"{s['key']:<9} {int(now // 60)}:{now % 60:04.1f}")
        self.out.write("\r" + line + "\x1b[K")
        self.out.flush()


def _text(event: dict) -> str:
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("type", "time", "delay"))
    return f"{event['time']:9.3f} {event['type']:<8} {rest} (delay {event['delay']:.3f})"


def cmd_live(args: argparse.Namespace) -> int:
    from songmap.cli.options import settings_from_args

    if args.speed is not None and not (args.speed >= 0 and math.isfinite(args.speed)):
        raise InvalidParameterError(f"--speed {args.speed}: expected 0 (no pacing) or more")
    if args.raw and args.input != "-":
        raise InvalidParameterError("--raw reads stdin: give - as the input")
    settings = settings_from_args(args)
    if args.input == "-":
        sr, channels, blocks = _blocks_from_stdin(sys.stdin.buffer, args)
        speed = args.speed if args.speed is not None else 0.0
    else:
        sr, channels, blocks = _blocks_from_file(args.input, settings)
        speed = args.speed if args.speed is not None else 1.0
    from songmap.live import LiveAnalyzer
    from songmap.pipeline import Analyzer

    kwargs = {} if args.lookahead is None else {"lookahead_s": args.lookahead}
    # a file read as fast as possible has no real time to keep up with; stdin may be a
    # sound card
    kwargs["keep_up"] = not (args.input != "-" and speed == 0)
    live = LiveAnalyzer(Analyzer(settings), sample_rate=sr, channels=channels, **kwargs)
    out = sys.stdout
    display = _Display(out) if not args.json and out.isatty() else None
    t0 = time.monotonic()
    fed = 0
    try:
        for block in blocks:
            fed += len(block)
            if speed > 0:  # the block has been "played" when its last sample is due
                wait = t0 + fed / (sr * speed) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            _emit(live.push(block), args.json, display, out, live.time)
        if fed == 0:  # a WAV header and nothing after it: say so, not a silent exit 0
            from songmap.errors import UndecodableAudioError

            raise UndecodableAudioError("the stream ended before any audio arrived")
        _emit(live.finish(), args.json, display, out, live.time)
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        return 0
    except OSError as exc:  # stdout cannot take the events (a full disk, a closed stdout)
        if exc.errno not in _STDOUT_ERRNOS:
            raise
        from songmap.cli.analyze_files import release_stdout
        from songmap.errors import storage_error

        release_stdout()

        raise storage_error("stdout", exc) from exc
    if display is not None:
        out.write("\n")
    return 0


def _emit(events, as_json: bool, display: _Display | None, out, now: float) -> None:
    for event in events:
        d = event.to_dict()
        if display is not None:
            display.show(d, now)
        elif as_json:
            out.write(json.dumps(d) + "\n")
        else:
            out.write(_text(d) + "\n")
    if events and display is None:
        out.flush()
