"""A worker slot shut down from one thread while another starts it (the service stopping
while its workers load): no error of the slot's own, no process left behind."""

from __future__ import annotations

import threading
import time

import pytest

from songmap.config import AnalysisSettings
from songmap.errors import ModelError
from songmap.workers.process import WorkerSpec
from songmap.workers.slot import Slot


def test_a_slot_shut_down_starts_nothing():
    slot = Slot(0, WorkerSpec(AnalysisSettings()))
    slot.stop()
    with pytest.raises(ModelError, match="shut down"):
        slot.start(timeout_s=5)
    assert slot.proc is None and not slot.alive


@pytest.mark.models
@pytest.mark.slow
def test_a_slot_shut_down_while_it_starts_leaves_no_process():
    slot = Slot(0, WorkerSpec(AnalysisSettings()))
    failures: list[BaseException] = []

    def start() -> None:
        try:
            slot.start(timeout_s=120)
        except ModelError:
            pass  # shut down while loading: the expected way for the start to end
        except BaseException as exc:  # noqa: BLE001 - what the test is about
            failures.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    deadline = time.monotonic() + 30
    while slot.proc is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc = slot.proc
    assert proc is not None
    slot.stop(timeout_s=0.5)  # its models are still loading
    starter.join(60)
    assert not starter.is_alive() and failures == []
    proc.join(5)
    assert not proc.is_alive() and slot.proc is None and not slot.alive
    with pytest.raises(ModelError):
        slot.spawn()
