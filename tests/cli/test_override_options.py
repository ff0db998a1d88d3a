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
