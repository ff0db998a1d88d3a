"""A fixed-capacity ring of the latest mono samples (the live analysis's audio memory)."""

from __future__ import annotations

import numpy as np


class SampleRing:
    """The last ``capacity`` samples written (float32); memory fixed at creation."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1 sample")
        self._buf = np.zeros(capacity, np.float32)
        self._pos = 0  # next write index
        #: samples written since creation
        self.written = 0

    @property
    def capacity(self) -> int:
        return len(self._buf)

    def write(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        cap = len(self._buf)
        if len(x) >= cap:
            x = x[-cap:]
            self._buf[:] = x
            self._pos = 0
            self.written += len(samples)
            return
        end = self._pos + len(x)
        if end <= cap:
            self._buf[self._pos:end] = x
        else:
            cut = cap - self._pos
            self._buf[self._pos:] = x[:cut]
            self._buf[:end - cap] = x[cut:]
        self._pos = end % cap
        self.written += len(x)

    def last(self, n: int) -> np.ndarray:
        """A copy of the last ``min(n, available)`` samples, oldest first."""
        n = min(n, self.capacity, self.written)
        start = (self._pos - n) % self.capacity
        if start + n <= self.capacity:
            return self._buf[start:start + n].copy()
        return np.concatenate([self._buf[start:], self._buf[:start + n - self.capacity]])
