"""``songmap serve`` with SONGMAP_DASK_SCHEDULER: the service's analyses on a Dask cluster.

A ``distributed.LocalCluster`` on loopback (2 worker processes, 1 thread each) stands in for
the cluster; the answers must be those of the local worker pool.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.schema import AnalysisResult
from songmap.store import ResultStore, content_hash
from songmap.workers import Job, analyze

from .conftest import leftovers, make_settings, upload
from .test_jobs import wait_for

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def crash_once(ctx, job: Job) -> str:
    """A task whose first run kills its Dask worker process: for ``crash-<hex path>*`` names
    it creates the file ``<path>`` and exits, unless the file is already there."""
    if job.name.startswith("crash-"):
        flag = bytes.fromhex(job.name.split("-")[1].split(".")[0]).decode()
        if not os.path.exists(flag):
            open(flag, "w").close()
            os._exit(3)
    return analyze(ctx, job)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.CRITICAL) as c:
        yield c


@pytest.fixture(scope="module")
def dask_service(cluster, tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("dask-data"),
                             dask_scheduler=cluster.scheduler_address)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def test_ready_and_a_good_upload_matches_the_local_pool(dask_service, service, clips):
    client, settings = dask_service
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["workers_ready"] == 2
    r = upload(client, "/analyze", clips["song"])
    assert r.status_code == 200, r.text
    assert r.headers["X-Songmap-Cache"] == "miss"
    remote = AnalysisResult.model_validate_json(r.text)
    local_client, _ = service  # the local pool, its own store
    local = AnalysisResult.model_validate_json(upload(local_client, "/analyze", clips["song"]).text)
    assert remote.filename == "song.wav"
    assert remote.tempo.bpm == local.tempo.bpm and abs(remote.tempo.bpm - 120.0) < 2.0
    assert remote.time_signature == local.time_signature
    assert remote.downbeat_timeline == local.downbeat_timeline
    # The server, not the cluster, wrote its store.
    with ResultStore(settings.result_store_path) as store:
        assert store.contains(content_hash(clips["song"]), settings.analysis_settings().cache_key())
    again = upload(client, "/analyze-timeline", clips["song"])
    assert again.status_code == 200 and again.headers["X-Songmap-Cache"] == "hit"
    assert leftovers(settings) == []


@pytest.mark.parametrize("name", ["text", "truncated", "long"])
def test_a_bad_upload_gets_the_local_status(dask_service, service, clips, name):
    client, settings = dask_service
    remote = upload(client, "/analyze", clips[name])
    local = upload(service[0], "/analyze", clips[name])
    assert remote.status_code == local.status_code and 400 <= remote.status_code < 500
    assert remote.json()["error"]["type"] == local.json()["error"]["type"]
    assert clips[name].name in remote.json()["error"]["message"]
    assert leftovers(settings) == []


def test_jobs_run_on_the_cluster(dask_service, clips):
    client, settings = dask_service
    good = upload(client, "/jobs", clips["other"], name="job.flac")
    bad = upload(client, "/jobs", clips["text"])
    assert good.status_code == bad.status_code == 202
    info = wait_for(client, good.json()["id"])
    assert info["state"] == "done" and info["progress"] == 1.0, info
    result = client.get(info["result_url"]).json()
    assert result["filename"] == "job.flac" and abs(result["tempo"]["bpm"] - 100.0) < 2.0
    failed = wait_for(client, bad.json()["id"])
    assert failed["state"] == "failed" and failed["error_status"] == 415
    assert failed["error"]["type"] == "NotAudioError"
    assert leftovers(settings) == []


@pytest.mark.models
def test_a_dead_dask_worker_is_retried_by_dask(cluster, clips, tmp_path):
    settings = make_settings(tmp_path / "data", dask_scheduler=cluster.scheduler_address)
    flag = tmp_path / "crashed"
    name = f"crash-{str(flag).encode().hex()}.wav"
    with TestClient(create_app(settings, task=crash_once)) as client:
        job = upload(client, "/jobs", clips["song"], name=name).json()
        info = wait_for(client, job["id"])
    assert flag.exists()  # a worker process did die under this job
    assert info["state"] == "done", info
    # The nanny restarts the dead worker; the next tests get the full cluster again.
    client_ = distributed.Client(cluster, set_as_default=False)
    try:
        client_.wait_for_workers(2, timeout=60)
    finally:
        client_.close()


def test_an_unreachable_scheduler_is_not_ready_with_the_reason(tmp_path, clips):
    port = _free_port()
    settings = make_settings(tmp_path, dask_scheduler=f"tcp://127.0.0.1:{port}",
                             dask_connect_timeout_s=1.0)
    t0 = time.monotonic()
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "failed"
        assert f"127.0.0.1:{port}" in ready.json()["detail"]
        r = upload(client, "/analyze", clips["song"])
        assert r.status_code == 503 and "Dask" in r.json()["error"]["message"]
    assert time.monotonic() - t0 < 15


def test_serve_refuses_to_start_without_its_scheduler(tmp_path, monkeypatch, capsys):
    from songmap.cli.main import main

    monkeypatch.setenv("SONGMAP_DASK_CONNECT_TIMEOUT_S", "1")
    port = _free_port()
    code = main(["serve", "--data-dir", str(tmp_path),
                 "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 2
    assert f"could not reach the Dask scheduler at tcp://127.0.0.1:{port}" in capsys.readouterr().err


def _free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_overrides_reach_the_cluster(dask_service, clips):
    client, _ = dask_service
    with open(clips["song"], "rb") as f:
        r = client.post("/analyze", params={"time_signature": "5/4"},
                        files={"file": ("song.wav", f, "audio/wav")})
    assert r.status_code == 200, r.text
    result = AnalysisResult.model_validate_json(r.text)
    assert result.time_signature.label == "5/4" and result.time_signature.beats_per_bar == 5
