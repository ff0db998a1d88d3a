"""/jobs: 202 and an id, progress, results, failures, and nothing lost across restarts."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.api.jobs import JobStore
from songmap.store import content_hash

from .conftest import leftovers, make_settings, upload


def wait_for(client: TestClient, job_id: str, polls: int = 600) -> dict:
    for _ in range(polls):
        info = client.get(f"/jobs/{job_id}").json()
        if info["state"] in ("done", "failed"):
            return info
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {info}")


def test_job_runs_and_gives_the_full_result(service, clips):
    client, settings = service
    r = upload(client, "/jobs", clips["other"], name="job.flac")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["Location"] == f"/jobs/{job['id']}"
    assert job["state"] in ("queued", "running", "done")
    info = wait_for(client, job["id"])
    assert info["state"] == "done" and info["progress"] == 1.0
    assert info["result_url"] == f"/jobs/{job['id']}/result"
    result = client.get(info["result_url"])
    assert result.status_code == 200
    assert result.json()["filename"] == "job.flac"
    assert result.json()["total_bars"] >= 3
    download = client.get(info["result_url"] + "?download=true")
    assert 'filename="job.songmap.json"' in download.headers["Content-Disposition"]
    beats = client.get(info["result_url"] + "?format=beats")
    assert beats.status_code == 200 and len(beats.text.splitlines()) == result.json()["total_beats"]
    assert leftovers(settings) == []


def test_failed_job_reports_its_error(service, clips):
    client, settings = service
    job = upload(client, "/jobs", clips["text"]).json()
    info = wait_for(client, job["id"])
    assert info["state"] == "failed"
    assert info["error"]["type"] == "NotAudioError"
    assert info["error_status"] == 415
    r = client.get(f"/jobs/{job['id']}/result")
    assert r.status_code == 415
    assert r.json()["error"]["type"] == "NotAudioError"
    assert leftovers(settings) == []


def test_unknown_job_is_404(service):
    client, _ = service
    assert client.get("/jobs/nope").status_code == 404
    assert client.get("/jobs/nope/result").status_code == 404


@pytest.mark.models
def test_queued_jobs_survive_a_restart_and_the_queue_has_a_limit(tmp_path, clips):
    accept_only = make_settings(tmp_path, process_jobs=False, max_jobs=1)
    with TestClient(create_app(accept_only)) as client:
        job = upload(client, "/jobs", clips["song"]).json()
        assert job["state"] == "queued"
        r = client.get(f"/jobs/{job['id']}/result")
        assert r.status_code == 409  # not finished yet
        full = upload(client, "/jobs", clips["other"])
        assert full.status_code == 503
        assert int(full.headers["Retry-After"]) > 0
        assert full.json()["error"]["type"] == "QueueFullError"
    # the queued job's upload is kept for the restart
    assert [p.name for p in leftovers(accept_only) if p.is_file()] == ["song.wav"]
    with TestClient(create_app(make_settings(tmp_path))) as client:
        info = wait_for(client, job["id"])
        assert info["state"] == "done"
        assert client.get(f"/jobs/{job['id']}/result").status_code == 200
    assert leftovers(accept_only) == []


@pytest.mark.models
def test_jobs_left_running_by_a_killed_server_are_retried_or_failed(tmp_path, clips):
    """A server killed mid-analysis leaves jobs 'running': retried while attempts remain."""
    settings = make_settings(tmp_path, job_attempts=2)
    settings.uploads_dir.mkdir(parents=True)
    key = settings.analysis_settings().cache_key()
    jobs = JobStore(settings.jobs_path)
    ids = {}
    for attempts, name in ((1, "given_up"), (0, "retried")):
        folder = settings.uploads_dir / name
        folder.mkdir()
        path = folder / "song.wav"
        path.write_bytes(clips["song"].read_bytes())
        job = jobs.create(filename=f"{name}.wav", upload_path=str(path),
                          audio_hash=content_hash(path), settings_key=key)
        for _ in range(attempts):
            assert jobs.claim_next().id == job.id  # running, one attempt more
            jobs.recover(max_attempts=99)  # as a restart does, back to queued
        assert jobs.claim_next().id == job.id  # and running when the server "dies"
        ids[name] = job.id
    jobs.close()
    with TestClient(create_app(settings)) as client:
        retried = wait_for(client, ids["retried"])
        given_up = client.get(f"/jobs/{ids['given_up']}").json()
    assert retried["state"] == "done"
    assert given_up["state"] == "failed"
    assert given_up["error"]["type"] == "AnalysisInterruptedError"
    assert "2 times" in given_up["error"]["message"]
    assert leftovers(settings) == []
