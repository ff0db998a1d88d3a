"""The model registry loads each network once, and a network whose loading waits (the
BLSTM on numba's kernels at a cold start) holds up no other network's loading."""

from __future__ import annotations

import threading

import pytest

from songmap.models.registry import ModelRegistry

# the fast lane's guard (tests/no_networks) forbids ModelRegistry._get itself, even with
# these stand-in networks
pytestmark = pytest.mark.models


class _Registry(ModelRegistry):
    def __init__(self, slow: threading.Event) -> None:
        super().__init__()
        self.slow = slow
        self.built: list[str] = []

    def _builders(self):
        def slow_one(threads: int) -> str:
            self.slow.wait(timeout=30)
            self.built.append("downbeats")
            return "downbeats network"

        def quick(name: str):
            def build(threads: int) -> str:
                self.built.append(name)
                return f"{name} network"
            return build

        return {"downbeats": slow_one, "key": quick("key"), "chroma": quick("chroma")}


def test_a_slow_network_does_not_hold_up_the_others():
    release = threading.Event()
    reg = _Registry(release)
    waiting = threading.Thread(target=reg._get, args=("downbeats",))
    waiting.start()
    try:
        got: list[str] = []
        other = threading.Thread(target=lambda: got.append(reg._get("key")))
        other.start()
        other.join(timeout=10)
        assert got == ["key network"]  # loaded while downbeats is still loading
        assert "downbeats" not in reg.built
    finally:
        release.set()
        waiting.join(timeout=30)
    assert reg._get("downbeats") == "downbeats network"


def test_each_network_is_built_once_by_concurrent_callers():
    release = threading.Event()
    reg = _Registry(release)
    threads = [threading.Thread(target=reg._get, args=("downbeats",)) for _ in range(4)]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join(timeout=30)
    assert reg.built.count("downbeats") == 1
