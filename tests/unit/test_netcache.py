"""The network-output cache: bounded, and clearable so a benchmark hears the audio anew."""

import numpy as np

from songmap.netcache import NetworkCache
from songmap.signals import Activations, NetworkOutputs


def _outputs(seed: int) -> NetworkOutputs:
    rng = np.random.default_rng(seed)
    return NetworkOutputs(Activations(rng.random((50, 2), dtype=np.float32), 100.0),
                          rng.random(24), Activations(rng.random((5, 12), dtype=np.float32), 10.0))


def test_keeps_only_the_newest_and_clear_forgets_them() -> None:
    cache = NetworkCache(max_items=2)
    for i in range(3):
        cache.put(f"k{i}", _outputs(i))
    assert len(cache) == 2 and cache.get("k0") is None and cache.get("k2") is not None
    cache.clear()
    assert len(cache) == 0 and cache.get("k2") is None
