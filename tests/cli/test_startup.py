"""`songmap analyze` answers a bad command line before anything heavy is imported, and
says when numba's kernels are about to be compiled (fast: no networks run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from pathlib import Path

import pytest

from songmap.cli.analyze_files import output_mode
from songmap.errors import InvalidParameterError

HEAVY = ("numpy", "pydantic", "numba", "scipy", "songmap.pipeline", "songmap.models")

#: Runs the CLI in a fresh interpreter and reports which heavy modules it imported.
PROBE = textwrap.dedent("""
    import json, sys
    from songmap.cli.main import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    sys.stdout.write(json.dumps({{"code": code, "heavy": heavy}}))
""").format(heavy=HEAVY)


def probe(cwd: Path, *argv: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.flac"
    path.write_bytes(b"not decoded: every case below fails before decoding")
    return path


@pytest.mark.parametrize("argv, code, message", [
    (["analyze", "missing.mp3"], 3, "songmap: error: missing.mp3: no such file"),
    (["analyze", "missing.mp3", "gone.flac"], 3, "songmap: error: gone.flac: no such file"),
    (["analyze", "{clip}", "--export", "wav"], 2, "unknown export format 'wav'"),
    (["analyze", "{clip}", "--timeout", "0"], 2, "--timeout must be a positive"),
    (["analyze", "{clip}", "--max-memory", "-5"], 2, "--max-memory must be a positive"),
    (["analyze", "{clip}", "-o", "no/such/folder/out.json"], 2, "does not exist"),
    (["analyze", "{clip}", "{clip}", "-o", "one.json"], 2, "cannot share one JSON file"),
    (["analyze", "{clip}", "sub/clip.wav", "-o", "outdir/"], 2, "would both be written"),
    (["analyze", "{clip}", "--threads", "two"], 2, "argument --threads: invalid int value"),
    (["analyze"], 2, "the following arguments are required: FILE"),
    (["export", "missing.mp3", "-f", "midi"], 3, "missing.mp3: no such file"),
    (["plot", "missing.mp3"], 3, "missing.mp3: no such file"),
    (["descriptors", "missing.mp3"], 3, "missing.mp3: no such file"),
    (["batch", "{clip}", "--export", "wav"], 2, "unknown export format 'wav'"),
])
def test_bad_command_line_answers_in_one_line_without_heavy_imports(argv, code, message,
                                                                     clip, tmp_path):
    got, err = probe(tmp_path, *[a.format(clip=clip) for a in argv])
    assert got["code"] == code, err
    assert message in err and "Traceback" not in err and "usage:" not in err
    assert all(line.startswith("songmap") for line in err.strip().splitlines()), err
    assert got["heavy"] == [], f"imported {got['heavy']} before answering"


def test_argparse_errors_are_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "songmap.cli.main", "analyze", "x.wav",
                           "--vocabulary", "jazz"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("songmap analyze: error: argument --vocabulary: invalid choice")


def test_output_modes(tmp_path):
    (tmp_path / "existing").mkdir()
    assert output_mode(None, 3) == ("none", None)
    assert output_mode(str(tmp_path / "a.json"), 1) == ("file", tmp_path / "a.json")
    assert output_mode(str(tmp_path / "r.jsonl"), 5) == ("jsonl", tmp_path / "r.jsonl")
    assert output_mode(str(tmp_path / "existing"), 2) == ("dir", tmp_path / "existing")
    assert output_mode(str(tmp_path / "new") + "/", 2) == ("dir", tmp_path / "new")
    with pytest.raises(InvalidParameterError, match="cannot share one JSON file"):
        output_mode(str(tmp_path / "a.json"), 2)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        output_mode(str(tmp_path / "nope" / "a.json"), 1)


# ---------------------------------------------------------------- numba's cache
KERNEL_MODULE = textwrap.dedent("""
    import numba

    @numba.njit(cache=True)
    def twice(x):
        return 2 * x

    @numba.njit(cache=True, inline="always")
    def inlined(x):
        return x + 1
""")


def run_python(code: str, *, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_kernels_to_compile_sees_an_empty_cache_and_then_a_filled_one(tmp_path):
    (tmp_path / "tiny_kernels.py").write_text(KERNEL_MODULE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    check = """
        from songmap.cli.startup import kernels_to_compile
        print(kernels_to_compile(("tiny_kernels",)))
    """
    assert run_python(check, cwd=tmp_path, env=env) == "['tiny_kernels.twice']"
    run_python("import tiny_kernels; tiny_kernels.twice(3)", cwd=tmp_path, env=env)
    assert run_python(check, cwd=tmp_path, env=env) == "[]"
    # the source changed: its cache no longer counts
    (tmp_path / "tiny_kernels.py").write_text(KERNEL_MODULE + "\n# edited\n")
    assert run_python(check, cwd=tmp_path, env=env) == "['tiny_kernels.twice']"


def test_cached_kernels_are_loaded_ahead_and_missing_ones_left_to_their_first_call(tmp_path):
    (tmp_path / "tiny_kernels.py").write_text(KERNEL_MODULE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    check = """
        import tiny_kernels
        from songmap.cli.startup import load_cached_kernels
        loaded = load_cached_kernels(("tiny_kernels.twice",))
        print(loaded, len(tiny_kernels.twice.signatures), tiny_kernels.twice.stats.cache_hits)
    """
    # nothing cached: nothing loaded and nothing compiled ahead
    assert run_python(check, cwd=tmp_path, env=env) == "0 0 Counter()"
    run_python("import tiny_kernels; tiny_kernels.twice(3)", cwd=tmp_path, env=env)
    out = run_python(check, cwd=tmp_path, env=env).split(" ", 2)
    assert out[:2] == ["1", "1"] and "int64" in out[2]  # loaded from the cache


ALLOCATING_KERNEL = textwrap.dedent("""
    import numba
    import numpy as np

    @numba.njit(cache=True, nogil=True)
    def cumulative(x):
        out = np.empty(len(x))  # allocates: the runtime (NRT) must be linked
        total = 0.0
        for i in range(len(x)):
            total += x[i]
            out[i] = total
        return out
""")


def test_cached_kernels_load_without_numbas_lowering_modules_and_run(tmp_path):
    (tmp_path / "alloc_kernels.py").write_text(ALLOCATING_KERNEL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run_python("import numpy as np, alloc_kernels; alloc_kernels.cumulative(np.ones(3))",
               cwd=tmp_path, env=env)
    out = run_python("""
        import sys
        import numpy as np
        from numba.core.cpu import CPUContext
        from songmap.cli import startup
        full = CPUContext.refresh
        loaded = startup.load_cached_kernels(("alloc_kernels.cumulative",))
        lean = "numba.np.arraymath" not in sys.modules
        import alloc_kernels
        print(loaded, lean, CPUContext.refresh is full,
              alloc_kernels.cumulative(np.arange(4.0)).tolist())
    """, cwd=tmp_path, env=env)
    supported = run_python("""
        from songmap.cli import startup
        print(startup.lean_load_checked())
    """, cwd=tmp_path, env=env) == "True"
    # loaded from the cache (leanly where this numba was checked), refresh restored, and
    # the loaded code links the runtime and runs
    assert out == f"1 {supported} True [0.0, 1.0, 3.0, 6.0]"


def test_a_numba_release_not_checked_loads_with_its_own_refresh(monkeypatch):
    from numba.core.cpu import CPUContext

    from songmap.cli import startup

    full = CPUContext.refresh
    monkeypatch.setattr(startup, "LEAN_LOAD_NUMBA", ((0, 1), (0, 2)))
    with startup._linking_only_refresh() as lean:
        assert lean is False and CPUContext.refresh is full
    monkeypatch.setattr(startup, "LEAN_LOAD_PLATFORMS", ("no-such-platform",))
    with startup._linking_only_refresh() as lean:
        assert lean is False and CPUContext.refresh is full
    monkeypatch.undo()
    with startup._linking_only_refresh() as lean:
        assert lean is (CPUContext.refresh is not full)
    assert CPUContext.refresh is full


def test_entry_kernels_name_songmaps_cached_kernels():
    import importlib

    from songmap.cli.startup import ENTRY_KERNELS, KERNEL_MODULES

    for name in ENTRY_KERNELS:
        module, attr = name.rsplit(".", 1)
        assert module in KERNEL_MODULES
        kernel = getattr(importlib.import_module(module), attr)
        assert kernel.targetoptions.get("inline") != "always"  # has a cache of its own
        assert kernel._cache.__class__.__name__ != "NullCache"


def test_numpy_is_imported_with_one_blas_thread_and_the_environment_kept(tmp_path):
    code = """
        import os
        from threadpoolctl import threadpool_info
        from songmap.cli.startup import import_numpy_one_blas_thread
        import_numpy_one_blas_thread()
        import numpy  # noqa: F401 (imported already unless the user set the variable)
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        print(blas, os.environ.get("OPENBLAS_NUM_THREADS"))
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    assert run_python(code, cwd=tmp_path, env=env) == "[1] None"
    # the user's own setting stands
    env["OPENBLAS_NUM_THREADS"] = "2"
    assert run_python(code, cwd=tmp_path, env=env) == "[2] 2"


def test_songmap_kernels_are_found(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")}
    out = run_python("""
        from songmap.cli.startup import kernels_to_compile
        print(len(kernels_to_compile()))
    """, cwd=tmp_path, env=env)
    assert int(out) >= 2  # the BLSTM recurrence and the beat Viterbi at least


def test_numba_cache_dir_falls_back_to_temp_when_nothing_is_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where folders would have to be")
    code = f"""
        import os
        from pathlib import Path
        from songmap.cli.startup import ensure_numba_cache_dir
        got = ensure_numba_cache_dir(package_dir=Path({str(blocker / 'site-packages' / 'songmap')!r}))
        print(got, os.environ.get("NUMBA_CACHE_DIR"))
    """
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(blocker / "cache")
    got, var = run_python(code, cwd=tmp_path, env=env).split()
    assert got == var and "songmap-numba-cache" in got
    # a writable user cache folder: numba's own choice stands
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    assert run_python(code, cwd=tmp_path, env=env).split() == ["None", "None"]
    # NUMBA_CACHE_DIR set by the user: left alone
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    assert run_python(code, cwd=tmp_path, env=env).split() == ["None", str(tmp_path / "mine")]


@pytest.mark.models
@pytest.mark.slow
def test_first_run_says_it_compiles_and_the_next_does_not(tmp_path, example_file):
    # an empty network cache: the first run must run (and so compile) every kernel
    numba_cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache),
           "SONGMAP_CACHE_DIR": str(tmp_path / "networks")}
    argv = [sys.executable, "-m", "songmap.cli.main", "analyze", str(example_file), "-q"]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert first.returncode == 0, first.stderr
    notice = "songmap: compiling its kernels once (~20 s); later runs start at once"
    assert first.stderr.count(notice) == 1, first.stderr
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stderr
    # the BLSTM kernel no longer cached, but the networks' outputs are: nothing compiles,
    # so nothing is announced
    dropped = list(numba_cache.rglob("*lstm_recurrence*"))
    assert dropped
    for path in dropped:
        path.unlink()
    third = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert third.returncode == 0, third.stderr
    assert "compiling" not in third.stderr


def test_import_songmap_loads_nothing_heavy(tmp_path):
    out = run_python(f"""
        import sys
        import songmap
        print([m for m in {HEAVY!r} if m in sys.modules])
    """, cwd=tmp_path, env=dict(os.environ))
    assert out == "[]"


@pytest.mark.models
def test_cold_analysis_imports_neither_scipy_fft_nor_scipy_linalg(tmp_path, example_file):
    # the two scipy packages cost ~0.35 s of a cold start; songmap needs one compiled
    # module of each (songmap.models._scipy_ext)
    code = f"""
        import sys
        from songmap.cli.main import main
        code = main(["analyze", {str(example_file)!r}, "-o", "out.json", "-q"])
        print(code, sorted(m for m in ("scipy.fft", "scipy.linalg", "scipy.special")
                           if m in sys.modules))
    """
    env = {**os.environ, "SONGMAP_CACHE_DIR": ""}
    assert run_python(code, cwd=tmp_path, env=env) == "0 []"
    assert json.loads((tmp_path / "out.json").read_text())["total_beats"] > 0


def _comparable(result) -> dict:
    out = result.model_dump(mode="json")
    out.pop("performance_metrics")
    out["provenance"].pop("analyzed_at", None)
    return out


@pytest.mark.models
def test_a_head_start_gives_the_same_result_and_reports_its_stages(analyzer, example_file,
                                                                   example_result):
    from songmap.audio import load_audio
    from songmap.netcache import NetworkCache
    from songmap.pipeline import Analyzer, HeadStart

    fresh = Analyzer(analyzer.settings, analyzer.registry, NetworkCache())
    audio = load_audio(example_file)
    decoded: Future = Future()
    decoded.set_result(audio)
    head = HeadStart()
    fresh.start_ahead(audio, head)  # on this thread here; the CLI's decoding thread there
    assert head.onsets is not None and head.onsets.done()
    assert head.harmony is not None and head.harmony.done()
    fractions: list[float] = []
    result = fresh.analyze(example_file, decoded=decoded, head_start=head,
                           progress=fractions.append)
    assert _comparable(result) == _comparable(example_result)
    stages = result.performance_metrics.stage_seconds
    assert {"onsets", "key_chroma_network", "beat_network", "bars"} <= set(stages)
    assert fractions == sorted(fractions) and 0.5 < fractions[-1] < 1.0
    # the networks' outputs are cached now: only the onsets start ahead
    again = HeadStart()
    fresh.start_ahead(audio, again)
    assert again.harmony is None and again.onsets is not None


@pytest.mark.models
def test_nothing_starts_ahead_for_long_audio_one_thread_or_other_samples(analyzer):
    import dataclasses

    import numpy as np

    from songmap.audio import Audio
    from songmap.config import NETWORK_SR
    from songmap.netcache import NetworkCache
    from songmap.pipeline import HEAD_START_MAX_S, Analyzer, HeadStart

    rng = np.random.default_rng(0)
    seconds = int(HEAD_START_MAX_S) + 1
    noise = (0.1 * rng.standard_normal(seconds * NETWORK_SR)).astype(np.float32)
    long_audio = Audio(samples=noise, sr=NETWORK_SR, source_sr=NETWORK_SR, channels=1,
                       decoder="test")
    fresh = Analyzer(analyzer.settings, analyzer.registry, NetworkCache())
    head = HeadStart()
    fresh.start_ahead(long_audio, head)
    assert (head.onsets, head.harmony) == (None, None)
    short = dataclasses.replace(long_audio, samples=noise[: 10 * NETWORK_SR])
    single = fresh.with_settings(threads=1)
    head = HeadStart()
    single.start_ahead(short, head)
    assert (head.onsets, head.harmony) == (None, None)
    head = HeadStart()
    head.decide(short.samples, onsets=True, harmony=True)
    other = dataclasses.replace(short, samples=short.samples.copy())
    assert head.started(other) == (None, None)  # started for other samples: not taken
