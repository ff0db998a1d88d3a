"""Issue 15: Dask workers cap their memory as local workers do.

The cap itself (``cap_worker``) is exercised on a real ``LocalCluster`` worker process with
a task that only allocates (no networks); the plugin that applies it to every worker with
the models is exercised by a batch with ``--max-memory`` on the cluster (``models``).
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest

from songmap.config import AnalysisSettings
from songmap.workers import Job
from songmap.workers.dask import analysis_cap_mb, cap_worker, run_remote, uncap_worker
from songmap.workers.memory import FLOOR_MB, can_cap, default_memory_mb

distributed = pytest.importorskip("distributed")

needs_cap = pytest.mark.skipif(not can_cap(), reason="no RLIMIT_AS on this platform")


def test_the_cap_per_analysis_follows_the_option_else_the_workers_limit():
    gib = 2**30
    assert analysis_cap_mb(3000, memory_limit_bytes=8 * gib, nthreads=2) == 3000
    assert analysis_cap_mb(0, memory_limit_bytes=8 * gib, nthreads=2) is None  # 0: none
    assert analysis_cap_mb(None, memory_limit_bytes=8 * gib, nthreads=2) == 4096
    assert analysis_cap_mb(None, memory_limit_bytes=2 * gib, nthreads=4) == FLOOR_MB
    assert analysis_cap_mb(None, memory_limit_bytes=None, nthreads=2) == default_memory_mb(2)


def test_a_worker_without_a_nanny_is_left_alone():
    """It may be a thread of the client's own process (LocalCluster(processes=False)):
    capping it would cap the program that started the cluster."""
    assert cap_worker(SimpleNamespace(nanny=None, nthreads=1), 100) is None


def allocate(ctx, job: Job) -> int:
    """A task that needs ``job.name`` MB (no networks), and says how many it touched."""
    import numpy as np

    block = np.ones(int(job.name) * 2**20, dtype=np.uint8)
    return int(block.sum() // 2**20)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as c:
        yield c


def _run(client, megabytes: int) -> tuple:
    job = Job("none", str(megabytes))
    answer, worker, _ = client.submit(run_remote, allocate, job, AnalysisSettings(), "k",
                                      pure=False).result(timeout=60)
    return answer, worker


@needs_cap
@pytest.mark.slow
def test_an_analysis_past_the_cap_fails_in_one_line_and_the_worker_lives(client):
    capped = client.run(lambda dask_worker: cap_worker(dask_worker, 200))
    assert list(capped.values()) == [200]
    pid_before = list(client.run(os.getpid).values())
    try:
        answer, _ = _run(client, 50)
        assert answer == ("ok", 50)
        answer, _ = _run(client, 600)
        assert answer[0] == "error", answer
        error = answer[1]
        assert type(error).__name__ == "MemoryLimitError"
        assert "the cap of 200 MB per analysis" in str(error)
        assert list(client.run(os.getpid).values()) == pid_before  # no restart, no OOM kill
    finally:
        client.run(lambda: uncap_worker())
    answer, _ = _run(client, 600)  # the cap, not the machine, refused it
    assert answer == ("ok", 600)


@needs_cap
@pytest.mark.slow
@pytest.mark.models
def test_batch_max_memory_reaches_the_dask_workers(client, long_songs, tmp_path):
    """The plugin caps every worker once its models are loaded and warmed up: ``--max-memory
    1`` makes every analysis's first large allocation fail there, as on a local worker, as
    the cap's own error (before the warm-up, the first analysis imported the FFT under the
    cap, and failed as whatever the import machinery raised: KeyError, TypeError)."""
    from songmap.batch import run_batch

    summary = run_batch([long_songs], store=tmp_path / "s.sqlite", scheduler=client,
                        memory_mb=1)
    assert (summary.ok, summary.failed) == (0, 2), summary.format()
    assert {f.kind for f in summary.failures} == {"MemoryLimitError"}
    assert all("the cap of 1 MB per analysis" in f.message for f in summary.failures)
