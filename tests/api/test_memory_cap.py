"""Issue 15: every service worker has a memory cap (RLIMIT_AS, sized from the machine by
default); an analysis past it answers 413 with a MemoryLimitError, and the server goes on."""

from __future__ import annotations

import asyncio
import resource

import pytest
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.api.pool import WorkerPool
from songmap.workers import Job, default_memory_mb

from .conftest import make_settings, upload
from .tasks import address_space_limit, faulty_analysis
from .test_jobs import wait_for

# every test here starts service workers, and a worker loads the networks before its first job
pytestmark = pytest.mark.models


def _limit_in_worker(spec) -> int:
    async def run() -> int:
        pool = WorkerPool(size=1, spec=spec, max_queue=0, timeout_s=60.0)
        await pool.start()
        try:
            await pool.wait_ready()
            return await pool.run(address_space_limit, Job("unused", "unused"))
        finally:
            await pool.close()

    return asyncio.run(run())


def test_the_cap_is_set_in_the_worker_sized_from_the_machine_and_can_be_turned_off(tmp_path,
                                                                                    monkeypatch):
    settings = make_settings(tmp_path, workers=2)
    expected = default_memory_mb(2)
    assert expected is not None and expected >= 1536
    assert settings.worker_spec().memory_mb == expected
    # the cap is on top of what the loaded worker already uses (0.7-1 GB measured)
    limit_mb = _limit_in_worker(settings.worker_spec()) / 2**20
    assert expected + 300 < limit_mb < expected + 4096

    monkeypatch.setenv("SONGMAP_WORKER_MEMORY_MB", "0")
    off = make_settings(tmp_path)
    assert off.worker_spec().memory_mb is None
    assert _limit_in_worker(off.worker_spec()) == resource.getrlimit(resource.RLIMIT_AS)[0]


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """A server whose analyses may not add more than 2 GB to a worker's address space."""
    settings = make_settings(tmp_path_factory.mktemp("capped"), worker_memory_mb=2048)
    with TestClient(create_app(settings, task=faulty_analysis),
                    raise_server_exceptions=False) as client:
        yield client


def test_an_analysis_past_the_cap_is_a_413_and_the_worker_goes_on(capped, clips):
    r = upload(capped, "/analyze", clips["song"], name="hog.wav")
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["type"] == "MemoryLimitError"
    assert "the cap of 2048 MB per analysis" in error["message"] and error["id"] is None
    # the same worker (not killed) analyses the next upload
    assert upload(capped, "/analyze", clips["song"], name="fine.wav").status_code == 200


def test_a_job_past_the_cap_fails_with_413(capped, clips):
    job = upload(capped, "/jobs", clips["other"], name="hog-job.flac").json()
    info = wait_for(capped, job["id"])
    assert info["state"] == "failed", info
    assert info["error"]["type"] == "MemoryLimitError"
    assert capped.get(f"/jobs/{job['id']}/result").status_code == 413


def test_a_real_analysis_under_a_cap_it_cannot_fit_is_a_413(tmp_path, long_songs_folder):
    # 1 MB on top of the loaded worker: the analysis's first large allocation fails (a
    # real MemoryError in songmap's code, not a test task's). A 3.4-minute song: a worker
    # warmed up before its cap analyses a 10-second one in memory it has already mapped.
    path = long_songs_folder / "long.flac"
    settings = make_settings(tmp_path, worker_memory_mb=1, max_upload_mb=50.0,
                             max_duration_s=600.0)
    with TestClient(create_app(settings)) as client:
        r = upload(client, "/analyze-timeline", path)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["type"] == "MemoryLimitError"
        assert client.get("/healthz").status_code == 200
