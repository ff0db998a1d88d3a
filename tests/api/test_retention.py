"""Issue 15, job retention: finished jobs expire (410), their records are emptied, then go."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.api.jobs import DONE, EXPIRED, JobStore
from songmap.api.settings import ServeSettings
from tests.api.conftest import make_settings, upload


def _row(settings, job_id: str) -> dict | None:
    store = JobStore(settings.jobs_path)
    try:
        row = store.connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else dict(row)
    finally:
        store.close()


def _wait_done(client, job_id: str) -> None:
    for _ in range(600):
        if client.get(f"/jobs/{job_id}").json()["state"] in ("done", "failed"):
            return
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


@pytest.mark.models  # runs an analysis in a worker
def test_a_finished_job_expires_with_410_and_its_record_is_emptied(tmp_path, clips):
    settings = make_settings(tmp_path, job_retention=1.5)
    with TestClient(create_app(settings)) as client:
        job = upload(client, "/jobs", clips["song"], name="private name.wav").json()
        _wait_done(client, job["id"])
        assert client.get(f"/jobs/{job['id']}/result").status_code == 200
        time.sleep(1.7)
        for url in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/result"):
            r = client.get(url)
            assert r.status_code == 410, r.text
            assert r.json()["error"]["type"] == "JobExpiredError"
        for _ in range(40):  # the sweeper runs every retention / 4
            row = _row(settings, job["id"])
            if row and row["state"] == EXPIRED:
                break
            time.sleep(0.1)
        assert row["state"] == EXPIRED and row["filename"] == "" and row["audio_hash"] == ""
        assert not [p for p in settings.uploads_dir.rglob("*") if p.is_file()]


def test_expired_records_are_deleted_after_a_second_period(tmp_path):
    jobs = JobStore(tmp_path / "jobs.sqlite")
    try:
        job = jobs.create(filename="a.wav", upload_path=None, audio_hash="h", settings_key="k",
                          state=DONE)
        t = job.finished_at
        assert jobs.expire(retention_s=10, now=t + 5) == (0, [])
        assert jobs.expire(retention_s=10, now=t + 11)[0] == 1
        assert jobs.get(job.id).state == EXPIRED
        jobs.expire(retention_s=10, now=t + 21)
        assert jobs.get(job.id) is None  # now an unknown id: 404
    finally:
        jobs.close()


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("30m", 1800.0), ("12h", 43200.0),
                                           ("7d", 604800.0), ("never", None)])
def test_retention_is_given_as_a_duration(text, seconds, monkeypatch):
    monkeypatch.setenv("SONGMAP_JOB_RETENTION", text)
    assert ServeSettings().job_retention == seconds
