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
