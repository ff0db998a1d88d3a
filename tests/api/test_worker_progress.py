"""A worker reports the Analyzer's per-stage progress for the job it runs."""

from __future__ import annotations

import json

from songmap.workers import Job, WorkerContext, analyze


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, message: tuple) -> None:
        self.sent.append(message)


def test_progress_moves_through_the_stages(analyzer, example_file):
    pipe = _Pipe()
    ctx = WorkerContext(analyzer=analyzer, conn=pipe)
    result = json.loads(analyze(ctx, Job(str(example_file), "example.flac")))
    fractions = [m[1] for m in pipe.sent if m[0] == "progress"]
    assert len(fractions) >= 6
    assert fractions == sorted(fractions) and 0 < fractions[0] < 0.5 < fractions[-1] < 1
    assert result["filename"] == "example.flac"
