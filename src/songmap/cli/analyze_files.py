"""The inputs and outputs of one ``songmap analyze`` call, checked before anything heavy loads.

Several files are analysed by one process with the models loaded once. Where results go:

* no ``-o``: on a terminal a summary per file; otherwise the JSON result on stdout (one
  file: indented JSON as before; several: one JSON line per file, in the given order);
* ``-o FILE.json`` (one input only): the result, written atomically;
* ``-o DIR/`` (an existing folder, or any path ending in ``/``; created if needed):
  ``DIR/<input stem>.json`` per input (two inputs with the same stem are refused);
* ``-o FILE.jsonl``: one line per input, in the given order, each written and flushed when
  its file is done, in ``songmap batch``'s line format: ``{"path", "name", "status": "ok",
  "result"}`` or ``{"path", "name", "status": "failed", "error": {"type", "message",
  "exit_code"}}``.

``--export FMT`` files go beside the JSON: ``DIR/<stem><ext>``, ``<output stem><ext>``,
beside the ``.jsonl`` file, or in the current folder without ``-o``.

Nothing here imports numpy, pydantic or the models: a missing file, an unknown export
format or an unusable ``-o`` is answered in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from songmap.errors import (
    InputNotFoundError,
    InvalidParameterError,
    SongmapError,
    StorageError,
    storage_error,
)
from songmap.terminal import printable

if TYPE_CHECKING:
    from songmap.export import Exporter
    from songmap.schema import AnalysisResult


#: The longest --timeout (s): about 31 years, within what the watchdogs' clocks hold.
_MAX_TIMEOUT_S = 1e9


@dataclass
class Plan:
    """What one ``songmap analyze`` call reads and writes."""

    #: every input in the order given, with the error that already rules it out (or None)
    inputs: list[tuple[str, SongmapError | None]]
    #: "none", "file", "dir" or "jsonl"
    mode: str
    output: Path | None
    exporters: list[Exporter]
    stdout_json: bool
    several: bool
    _jsonl: IO[str] | None = field(default=None, repr=False)
    #: why the JSON-lines output stopped taking lines (a full disk), said for every later file
    _jsonl_error: StorageError | None = field(default=None, repr=False)

    def open(self) -> None:
        """Create the output folder / JSON-lines file (after every check passed)."""
        try:
            if self.mode == "dir" and self.output is not None:
                self.output.mkdir(parents=True, exist_ok=True)
            elif self.mode == "jsonl" and self.output is not None:
                self._jsonl = open(self.output, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise storage_error(f"-o {self.output}", exc) from exc

    def close(self) -> None:
        if self._jsonl is not None:
            jsonl, self._jsonl = self._jsonl, None
            try:
                jsonl.close()
            except OSError:  # its lines were flushed one by one; the failure was reported
                pass

    def record_failure(self, path: str, exc: BaseException, exit_code: int) -> None:
        """The failed file's line in the JSON-lines output (nothing for other modes, nor
        when that output is what failed)."""
        if self._jsonl is not None and self._jsonl_error is None:
            error = {"type": type(exc).__name__, "message": str(exc), "exit_code": exit_code}
            self._line({"path": path, "name": Path(path).name, "status": "failed",
                        "error": error})

    def write_outputs(self, result: AnalysisResult, path: str) -> None:
        """The result of ``path`` to ``-o`` and every ``--export`` format."""
        if self.mode == "file" and self.output is not None:
            _write_atomic(self.output, result.model_dump_json(indent=2) + "\n")
        elif self.mode == "dir" and self.output is not None:
            _write_atomic(self.output / f"{Path(path).stem}.json",
                          result.model_dump_json(indent=2) + "\n")
        elif self.mode == "jsonl":
            head = json.dumps({"path": path, "name": Path(path).name, "status": "ok"},
                              ensure_ascii=False, separators=(",", ":"))
            self._write_line(head[:-1] + ',"result":' + result.model_dump_json() + "}\n")
        if not self.exporters:
            return
        from songmap.export import save

        base = self._export_base(path)
        for exporter in self.exporters:
            target = base.with_name(base.name + exporter.extension)
            options = {"location": str(Path(path).resolve())} if "location" in exporter.options else {}
            try:
                save(result, exporter.name, target, **options)
            except OSError as exc:  # a full disk: this file's error, not a crash
                raise storage_error(str(target), exc) from exc
            print(f"songmap: wrote {printable(target)}", file=sys.stderr)

    def write_stdout(self, result: AnalysisResult) -> None:
        """The JSON result on stdout: indented for one file, one line per file for several."""
        text = result.model_dump_json() if self.several else result.model_dump_json(indent=2)
        to_stdout(text + "\n")

    def _export_base(self, path: str) -> Path:
        stem = Path(path).stem
        if self.mode == "file" and self.output is not None:
            return self.output.with_suffix("")
        if self.mode == "dir" and self.output is not None:
            return self.output / stem
        if self.mode == "jsonl" and self.output is not None:
            return self.output.parent / stem
        return Path(stem)

    def _line(self, record: dict[str, Any]) -> None:
        if self._jsonl is None:
            return
        self._write_line(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def _write_line(self, line: str) -> None:
        """One whole line to the JSON-lines output, or ``StorageError`` (a full disk)."""
        if self._jsonl_error is not None:
            raise self._jsonl_error
        if self._jsonl is None:
            return
        try:
            self._jsonl.write(line)
            self._jsonl.flush()
        except OSError as exc:
            self._jsonl_error = storage_error(f"-o {self.output}", exc)
            raise self._jsonl_error from exc


def _write_atomic(path: Path, text: str) -> None:
    from songmap.outputs import write_whole

    try:
        write_whole(path, text.encode("utf-8"))
    except OSError as exc:  # a full disk, a read-only folder: this file's error, not a crash
        raise storage_error(str(path), exc) from exc


def to_stdout(data: str | bytes) -> None:
    """``data`` on stdout, flushed; ``StorageError`` (exit 9) when stdout cannot take it: a
    pipe whose reader went away, a full disk, a closed stdout (``songmap ... >&-``)."""
    out = sys.stdout
    try:
        if isinstance(data, bytes):
            out.buffer.write(data)
        else:
            out.write(data)
        out.flush()
    except OSError as exc:
        _stdout_to_devnull()
        raise storage_error("stdout", exc) from exc


def release_stdout() -> None:
    """After a write to stdout failed: flush what is left, and where that fails too, point
    stdout at /dev/null, so that the interpreter's flush at exit has nowhere to fail."""
    try:
        sys.stdout.flush()
    except OSError:
        _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    """Point stdout's descriptor at /dev/null: what is still buffered would otherwise fail
    again when the interpreter flushes at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def check_output_file(output: str) -> Path:
    """The path of ``-o FILE`` once its folder is known to exist and take files: an
    unusable ``-o`` is said before the analysis (exit 2 or 9), not after it."""
    p = Path(output)
    try:
        if p.is_dir():
            raise StorageError(f"-o {output}: is a folder, not a file; give a file path inside it")
        if not p.parent.is_dir():
            raise InvalidParameterError(f"-o {output}: the folder {p.parent} does not exist")
        check_writable(output, p.parent)
    except OSError as exc:  # a name too long, a loop of links
        raise storage_error(f"-o {output}", exc) from exc
    return p


def check_writable(output: str, folder: Path) -> None:
    """``StorageError`` when nothing can be created in ``folder`` (or, if it does not exist
    yet, in the nearest existing folder above it): said before the analysis, not after."""
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                raise StorageError(f"-o {output}: {existing} is not a folder")
            if not os.access(existing, os.W_OK | os.X_OK):
                raise StorageError(f"-o {output}: the folder {existing} is not writable "
                                   "(read-only or no permission); choose another location")
            return


def check_input(path: str) -> InputNotFoundError | None:
    """Why ``path`` cannot be read as a file (the decoder's own messages), or None."""
    p = Path(path)
    if not p.exists():
        return InputNotFoundError(f"{p}: no such file")
    if p.is_dir():
        return InputNotFoundError(f"{p}: is a folder, not a file")
    if not p.is_file():  # /dev/null, a pipe: no length, nothing to seek in
        return InputNotFoundError(f"{p}: not a regular file (a device or a pipe); "
                                  "save the audio to a file first")
    if not os.access(p, os.R_OK):
        return InputNotFoundError(f"{p}: cannot be read (permission denied)")
    return None


def export_formats(groups: list[str] | None) -> list[Exporter]:
    """The exporters named in ``--export`` (repeated or comma-separated), checked by name
    and for their optional packages without importing those (matplotlib takes ~0.5 s)."""
    from songmap.export import MissingDependencyError, get_exporter

    names = [f for group in groups or [] for f in group.split(",") if f.strip()]
    exporters = [get_exporter(name) for name in names]
    for e in exporters:
        for module in e.requires:
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError(
                    f"the {e.name!r} format needs the {module!r} package, which is not "
                    f"installed; install it with: pip install 'songmap[{e.extra}]'"
                )
    return exporters


def output_mode(output: str | None, n_inputs: int) -> tuple[str, Path | None]:
    """("none" | "file" | "dir" | "jsonl", path) for ``-o``; a clear error when it cannot work.
    ``-o -`` is stdout, as for ``songmap export`` (it wrote a file called "-")."""
    if not output or output == "-":
        return "none", None
    p = Path(output)
    try:
        is_dir = p.is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise storage_error(f"-o {output}", exc) from exc
    if output.endswith(("/", os.sep)) or is_dir:
        if p.exists() and not p.is_dir():
            raise InvalidParameterError(f"-o {output}: exists and is not a folder")
        check_writable(output, p)
        return "dir", p
    check_output_file(output)
    if p.suffix.lower() == ".jsonl":
        return "jsonl", p
    if n_inputs > 1:
        raise InvalidParameterError(
            f"-o {output}: {n_inputs} files cannot share one JSON file; give a folder "
            "(-o results/) or a JSON-lines file (-o results.jsonl)"
        )
    return "file", p


def plan(args: argparse.Namespace) -> Plan:
    """Check the command line of ``songmap analyze`` (exit 2 on a bad option) and find
    which inputs exist, importing nothing heavy."""
    if args.timeout is not None and not 0 < args.timeout < _MAX_TIMEOUT_S:
        raise InvalidParameterError("--timeout must be a positive number of seconds "
                                    f"(below {_MAX_TIMEOUT_S:g})")
    if args.max_memory is not None and not 0 < args.max_memory < math.inf:
        raise InvalidParameterError("--max-memory must be a positive number of MB")
    exporters = export_formats(args.export)
    files = list(args.files)
    mode, output = output_mode(args.output, len(files))
    if mode == "dir" and output is not None:
        seen: dict[str, str] = {}
        for f in files:
            name = f"{Path(f).stem}.json"
            if name in seen:
                raise InvalidParameterError(
                    f"{seen[name]} and {f} would both be written to {output / name}; "
                    "analyse them in separate calls or use -o results.jsonl"
                )
            seen[name] = f
    stdout_json = bool(args.json) or args.output == "-" or (
        mode == "none" and not args.summary and not sys.stdout.isatty()
    )
    result = Plan(inputs=[(f, check_input(f)) for f in files], mode=mode, output=output,
                  exporters=exporters, stdout_json=stdout_json, several=len(files) > 1)
    result.open()
    return result
