"""`songmap batch --scheduler`: the same batch on a Dask cluster (2 local worker processes)."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from songmap.batch import run_batch
from songmap.batch.jsonl import read_records
from songmap.schema import AnalysisResult

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow, pytest.mark.models]  # batches analysed on a Dask cluster


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as c:
        yield c


def test_a_killed_worker_and_a_bad_file_lose_no_result(client, library, songs, tmp_path):
    out, db = tmp_path / "r.jsonl", tmp_path / "s.sqlite"
    killed: dict[str, object] = {}
    records = []

    def kill_a_busy_worker(record, runner):
        records.append(record)
        if killed:
            return
        pids = client.run(os.getpid)
        for address, keys in client.processing().items():
            if keys and address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed.update(address=address, pid=pids[address], keys=list(keys))
                return

    summary = run_batch([library], store=db, output=out, scheduler=client,
                        on_record=kill_a_busy_worker)
    print(f"\nkilled worker {killed.get('address')} (pid {killed.get('pid')}) while it ran "
          f"{killed.get('keys')}")
    print(summary.format())

    assert killed, "no worker was busy when the first file finished"
    assert (summary.total, summary.ok, summary.failed) == (5, 4, 1), summary.format()
    assert summary.failures[0].path.endswith("broken.mp3")
    assert summary.failures[0].kind == "NotAudioError"
    # Every file whose worker was killed under it finished on another process.
    by_prefix = {f"songmap-analyze-{r.audio_hash[:16]}": r for r in records if r.audio_hash}
    rerun = [by_prefix[k.rsplit("-", 1)[0]] for k in killed["keys"]]  # type: ignore[union-attr]
    for r in rerun:
        print(f"{r.source.name}: {r.status} on {r.outcome.worker}")
        assert not r.outcome.worker.endswith(f":{killed['pid']}")
        assert r.status == ("failed" if r.source.name.endswith("broken.mp3") else "ok")
    results = {r["name"]: r for r in read_records(out)}
    assert len(results) == 5
    for name, bpm, bpb in songs:
        result = AnalysisResult.model_validate(results[name]["result"])
        assert result.time_signature.beats_per_bar == bpb and abs(result.tempo.bpm - bpm) < 2


def test_upload_sends_bytes_and_a_rerun_skips(client, library, tmp_path):
    (library / "sub" / "broken.mp3").unlink()
    db = tmp_path / "s.sqlite"
    first = run_batch([library / "sub"], store=db, scheduler=client, upload=True)
    assert (first.ok, first.failed) == (2, 0), first.format()
    again = run_batch([library], store=db, scheduler=client, upload=True)
    assert (again.ok, again.skipped, again.failed) == (2, 2, 0), again.format()
