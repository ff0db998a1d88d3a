"""The override options exist on every command that takes analysis options, and they
become AnalysisSettings fields (so the store key includes them)."""

from __future__ import annotations

import pytest

from songmap.cli.main import _load_extras, build_parser
from songmap.cli.options import settings_from_args


@pytest.mark.parametrize("command", [["analyze", "x.wav"], ["batch", "music/"],
                                     ["export", "x.wav"], ["plot", "x.wav"],
                                     ["descriptors", "x.wav"]])
def test_every_analysing_command_takes_the_overrides(command):
    parser = build_parser()
    _load_extras(parser)
    args = parser.parse_args([*command, "--bpm", "120-130", "--time-signature", "6/8",
                              "--first-downbeat", "0.25"])
    if command[0] == "batch":
        args.threads = None
    settings = settings_from_args(args)
    assert settings.bpm == (120.0, 130.0)
    assert settings.time_signature == "6/8" and settings.first_downbeat_s == 0.25
    assert '"bpm":[120.0,130.0]' in settings.cache_key()


def test_no_override_leaves_the_settings_alone():
    parser = build_parser()
    args = parser.parse_args(["analyze", "x.wav"])
    assert settings_from_args(args).overrides() == {}


@pytest.mark.parametrize("option, value", [
    ("--first-downbeat", "inf"), ("--first-downbeat", "1e400"), ("--first-downbeat", "nan"),
    ("--max-duration", "inf"), ("--max-duration", "nan"),
    ("--threads", "0"),  # was taken silently as the default
])
def test_non_finite_values_are_refused_naming_the_option(option, value):
    """inf reached the analysis and crashed it (OverflowError: a traceback on the command
    line, a 500 from the service, a failure per file in a batch)."""
    from songmap.errors import InvalidParameterError

    parser = build_parser()
    args = parser.parse_args(["analyze", "x.wav", option, value])
    with pytest.raises(InvalidParameterError, match=f"invalid {option}: "):
        settings_from_args(args)


@pytest.mark.parametrize("option, value", [
    ("--timeout", "inf"), ("--timeout", "nan"), ("--timeout", "1e12"),
    ("--max-memory", "inf"), ("--max-memory", "nan"),
])
def test_analyze_limits_must_be_finite(option, value):
    """--timeout inf crashed the watchdog, nan stopped every analysis at once ("took longer
    than nan s"), --max-memory nan/inf crashed setrlimit."""
    from songmap.cli import analyze_files
    from songmap.errors import InvalidParameterError

    args = build_parser().parse_args(["analyze", "x.wav", option, value])
    with pytest.raises(InvalidParameterError, match=option):
        analyze_files.plan(args)


@pytest.mark.parametrize("kw, option", [
    ({"timeout_s": float("nan")}, "--timeout"), ({"timeout_s": float("inf")}, "--timeout"),
    ({"memory_mb": float("nan")}, "--max-memory"), ({"memory_mb": float("inf")}, "--max-memory"),
])
def test_batch_limits_must_be_finite(kw, option):
    """A batch with --max-memory nan killed every worker ("a batch worker died") and
    retried each file; --timeout nan never stopped a stuck analysis."""
    from songmap.batch.run import _run_options
    from songmap.config import AnalysisSettings
    from songmap.errors import InvalidParameterError

    values = {"timeout_s": 900.0, "memory_mb": None, **kw}
    with pytest.raises(InvalidParameterError, match=option):
        _run_options(AnalysisSettings(), workers=1, scheduler=None, upload=False,
                     threads=None, **values)


def test_a_memory_cap_beyond_any_address_space_caps_nothing():
    """--max-memory 1e20 overflowed setrlimit (a traceback); it now sets the largest cap."""
    resource = pytest.importorskip("resource")
    import subprocess
    import sys

    code = ("import resource; from songmap.limits import limit_memory; limit_memory(1e20); "
            "print(resource.getrlimit(resource.RLIMIT_AS)[0])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 2**62 or int(proc.stdout) == resource.RLIM_INFINITY


def test_an_unparsable_scheduler_address_is_a_bad_argument():
    pytest.importorskip("distributed")
    from songmap.errors import InvalidParameterError
    from songmap.workers.dask import connect

    with pytest.raises(InvalidParameterError, match="not a Dask scheduler address"):
        connect("junk://")
