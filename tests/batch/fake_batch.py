"""A batch run whose "analysis" is a fake (no networks), for tests of runs side by side.

    python tests/batch/fake_batch.py --store S --out O --log L --delay 0.1 PATH...

Every fake analysis sleeps ``--delay`` seconds and appends ``pid path`` to ``--log``; the
summary is printed as one JSON line. Used in a subprocess, so that two runs are two
processes as they are for users (the locks are per process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from typing import Any

from songmap.batch import run as batch_run
from songmap.workers import Job, Outcome


class FakeRunner:
    """The interface of ``LocalRunner`` with ``workers`` fake slots that each take
    ``delay`` seconds per job; nothing is loaded."""

    def __init__(self, workers: int, delay: float, log: str) -> None:
        self.workers, self.delay, self.log = workers, delay, log
        self.queue: deque[Job] = deque()
        self.busy: dict[str, tuple[Job, float]] = {}

    def free_slots(self) -> int:
        return self.workers - len(self.busy) - len(self.queue)

    def pending(self) -> int:
        return len(self.busy) + len(self.queue)

    def submit(self, job: Job) -> None:
        self.queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.queue and len(self.busy) < self.workers:
            job = self.queue.popleft()
            self.busy[job.audio_hash] = (job, time.monotonic() + self.delay)
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {job.path}\n")

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if not self.busy:
            return []
        first = min(done for _, done in self.busy.values())
        time.sleep(max(0.0, min(first - time.monotonic(), timeout or 1.0)))
        now, out = time.monotonic(), []
        for key, (job, done) in list(self.busy.items()):
            if done <= now:
                del self.busy[key]
                text = json.dumps({"filename": job.name, "audio": {"duration": 1.0}})
                out.append(Outcome(job.path, job.audio_hash, True, result_json=text,
                                   wall_seconds=self.delay, worker=str(os.getpid())))
        self._dispatch()
        return out

    def close(self, *, kill: bool = False) -> None:
        self.queue.clear()
        self.busy.clear()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("paths", nargs="+")
    p.add_argument("--store", required=True)
    p.add_argument("--out")
    p.add_argument("--log", required=True)
    p.add_argument("--delay", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)

    def make_runner(options: Any) -> FakeRunner:
        return FakeRunner(args.workers, args.delay, args.log)

    batch_run._make_runner = make_runner  # type: ignore[assignment]
    summary = batch_run.run_batch(args.paths, store=args.store, output=args.out,
                                  workers=args.workers)
    print(json.dumps({"ok": summary.ok, "skipped": summary.skipped, "failed": summary.failed,
                      "total": summary.total}))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
