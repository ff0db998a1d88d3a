"""``songmap serve`` is registered and checks its options."""

from __future__ import annotations

import pytest

from songmap.cli.main import main


def test_serve_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--workers"):
        assert option in out


def test_serve_rejects_bad_settings(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert "workers" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["--max-duration", "inf"], "invalid --max-duration or SONGMAP_MAX_DURATION_S: "),
    (["--max-memory", "inf"], "invalid --max-memory or SONGMAP_WORKER_MEMORY_MB: "),
    (["--max-upload-mb", "nan"], "invalid --max-upload-mb or SONGMAP_MAX_UPLOAD_MB: "),
])
def test_serve_refuses_infinite_limits_naming_the_option(argv, said, capsys, tmp_path,
                                                         monkeypatch):
    """--max-duration inf crashed the start-up with a traceback (exit 3); --max-memory inf
    started a server whose every worker failed to cap itself."""
    import uvicorn

    import songmap.api.app

    monkeypatch.setattr(songmap.api.app, "create_app", lambda settings: None)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # (a regression starts nothing)
    assert main(["serve", "--data-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, threads, memory", [
    (["--analysis-threads", "3", "--max-memory", "4096"], 3, 4096.0),
    (["--threads", "2", "--max-memory", "0"], 2, None),  # --threads: the old name
])
def test_serve_passes_threads_and_the_memory_cap_to_the_workers(argv, threads, memory,
                                                                 tmp_path, monkeypatch):
    import uvicorn

    import songmap.api.app

    seen = {}
    monkeypatch.setattr(songmap.api.app, "create_app", lambda settings: seen.setdefault(
        "spec", settings.worker_spec()))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    assert main(["serve", "--data-dir", str(tmp_path), *argv]) == 0
    assert seen["spec"].settings.threads == threads
    assert seen["spec"].memory_mb == memory


def test_the_old_threads_variable_still_sets_the_analysis_threads(monkeypatch):
    from songmap.api.settings import ServeSettings

    monkeypatch.setenv("THREADS", "7")  # not songmap's: never read
    assert ServeSettings(workers=64).analysis_settings().threads == 1
    monkeypatch.setenv("SONGMAP_THREADS", "3")
    assert ServeSettings().analysis_settings().threads == 3
    assert ServeSettings(threads=2).analysis_threads == 2  # arguments win, old name too
    monkeypatch.setenv("SONGMAP_ANALYSIS_THREADS", "2")
    monkeypatch.delenv("SONGMAP_THREADS")
    assert ServeSettings().analysis_settings().threads == 2
