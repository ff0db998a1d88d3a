"""Worker tasks for fault tests. They run in the worker processes, so they live in a module.

``faulty_analysis`` is the real ``songmap.workers.analyze`` except for uploads whose name asks
for a fault: ``crash*`` kills the worker process, ``raise*`` raises a bug-like exception,
``hang*`` sleeps past any timeout, ``wait-<path>*`` blocks until the file ``<path>`` exists,
``mark-<path>*`` creates the file ``<path>`` and then sleeps (a worker known to be busy),
``hog*`` reserves 3 GB (address space only: no page is touched) before analysing.
"""

from __future__ import annotations

import os
import time

from songmap.workers import Job, WorkerContext, analyze


def faulty_analysis(ctx: WorkerContext, job: Job) -> str:
    filename = job.name
    if filename.startswith("crash"):
        os._exit(3)
    if filename.startswith("raise"):
        raise KeyError("a bug in the analysis")
    if filename.startswith("hog"):
        import numpy as np

        hog = np.empty(3 * 2**30, dtype=np.uint8)  # fails only under a cap below 3 GB
        del hog
    if filename.startswith("hang"):
        time.sleep(600)
    if filename.startswith("mark-"):  # say "started" in the file <path>, then work forever
        flag = bytes.fromhex(filename.split("-")[1].split(".")[0]).decode()
        open(flag, "w").close()
        time.sleep(600)
    if filename.startswith("wait-"):
        flag = bytes.fromhex(filename.split("-")[1].split(".")[0]).decode()
        while not os.path.exists(flag):
            time.sleep(0.02)
    return analyze(ctx, job)


def address_space_limit(ctx: WorkerContext, job: Job) -> int:
    """The worker process's RLIMIT_AS soft limit in bytes (-1: none)."""
    import resource

    return resource.getrlimit(resource.RLIMIT_AS)[0]
