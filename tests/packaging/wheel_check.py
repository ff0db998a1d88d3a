"""Build songmap's wheel, install it into a fresh venv from wheels only, map the example.

Used by tests/packaging/test_wheel.py (this interpreter) and by .ci/run (each Python the
machine carries):

    python -m tests.packaging.wheel_check --wheel dist/songmap-0.1.0-py3-none-any.whl \\
        --python /root/.pyenv/versions/3.13.0/bin/python --venv .ci-venv/3.13 --extras all \\
        --expect example.json

makes a fresh venv (``--venv``, else a temporary one), installs the wheel there with
``pip install --only-binary=:all:`` (so no dependency may need a compiler), runs
``songmap analyze "$(songmap example)"`` with it, outside the checkout, and compares the
result's map (tempo, meter, key, bars, beats, chords) with ``--expect`` (a map or a whole
result as JSON); ``--write`` stores this run's map. Exit 0 when equal, 1 with the
differences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the result's map; timings and provenance (versions, paths) may differ
MAP_FIELDS = ("tempo", "time_signature", "key", "downbeat_timeline", "beat_transient_markers",
              "chord_progression", "chord_segments", "total_bars", "total_beats")
#: numbers are written rounded (times to 0.1 ms, confidences to 1e-4); another numpy or
#: scipy may round a last digit the other way
FLOAT_TOLERANCE = 1e-3


def build_wheel(outdir: Path) -> Path:
    """``python -m build --wheel`` of the checkout into ``outdir``; the wheel's path."""
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL, timeout=600)
    (wheel,) = sorted(outdir.glob("songmap-*-py3-none-any.whl"))
    return wheel


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def install(wheel: Path, venv: Path, *, python: str = sys.executable, extras: str = "") -> Path:
    """A fresh venv at ``venv`` with ``wheel`` (and ``extras``) from wheels only; its
    ``bin`` folder."""
    venv = venv.resolve()  # the venv's programs run from another folder
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    spec = f"{wheel}[{extras}]" if extras else str(wheel)
    done = subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q",
                           "--only-binary=:all:", spec], env=_clean_env(), check=False,
                          capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"pip install --only-binary=:all: {spec} failed:\n{done.stderr}")
    return bindir


def analyze_example(bindir: Path) -> dict:
    """``songmap analyze "$(songmap example)" --json`` with the venv's songmap, run from a
    folder outside the checkout; the result's map."""
    songmap = str(bindir / "songmap")
    with tempfile.TemporaryDirectory() as cwd:
        example = subprocess.run([songmap, "example"], cwd=cwd, env=_clean_env(), check=True,
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        if example.startswith(str(ROOT / "src")):
            raise RuntimeError(f"the venv's songmap is the checkout's ({example})")
        out = subprocess.run([songmap, "analyze", example, "--json"], cwd=cwd, env=_clean_env(),
                             check=True, capture_output=True, text=True, timeout=600).stdout
    return map_of(json.loads(out))


def map_of(result: dict) -> dict:
    """The fields of a result (as JSON) that must not depend on where songmap runs."""
    return {k: result[k] for k in MAP_FIELDS}


def differences(ours, expected, path: str = "") -> list[str]:
    """Where two JSON values differ (floats within ``FLOAT_TOLERANCE``)."""
    if isinstance(expected, dict) and isinstance(ours, dict):
        if ours.keys() != expected.keys():
            return [f"{path}: keys {sorted(ours)} != {sorted(expected)}"]
        return [d for k in expected for d in differences(ours[k], expected[k], f"{path}.{k}")]
    if isinstance(expected, list) and isinstance(ours, list):
        if len(ours) != len(expected):
            return [f"{path}: {len(ours)} items != {len(expected)}"]
        return [d for i, (a, b) in enumerate(zip(ours, expected))
                for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(ours, (int, float)) and not isinstance(ours, bool):
        return [] if abs(ours - expected) <= FLOAT_TOLERANCE else [f"{path}: {ours} != {expected}"]
    return [] if ours == expected else [f"{path}: {ours!r} != {expected!r}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="the wheel (default: build one)")
    ap.add_argument("--python", default=sys.executable, help="the venv's interpreter")
    ap.add_argument("--venv", type=Path, help="make the venv here and keep it")
    ap.add_argument("--extras", default="", help="extras to install with the wheel, e.g. all")
    ap.add_argument("--expect", type=Path, help="the map to compare with (JSON)")
    ap.add_argument("--write", type=Path, help="write this run's map here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or build_wheel(Path(tmp) / "dist")
        bindir = install(wheel.resolve(), args.venv or Path(tmp) / "venv", python=args.python,
                         extras=args.extras)
        found = analyze_example(bindir)
    if args.write:
        args.write.write_text(json.dumps(found, indent=1) + "\n")
    if args.expect:
        expected = json.loads(args.expect.read_text())
        if set(MAP_FIELDS) < expected.keys():  # a whole result
            expected = map_of(expected)
        diffs = differences(found, expected)
        for d in diffs[:20]:
            print(f"wheel_check: {d}", file=sys.stderr)
        if diffs:
            return 1
    print(f"wheel_check: {args.python}: {wheel.name} installed from wheels only; "
          f"{found['total_beats']} beats, {found['total_bars']} bars, {found['key']['label']}"
          + (", same map as expected" if args.expect else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
