"""A preallocated, thread-safe ring buffer of audio samples: the device callback writes, readers snapshot."""
from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """The last ``capacity`` float32 samples of a sound at ``sample_rate``. ``write`` never allocates;
    ``snapshot`` returns a copy in order."""

    def __init__(self, capacity: int, sample_rate: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.sample_rate = sample_rate
        self._data = np.zeros(capacity, dtype=np.float32)
        self._end = 0  # index one past the newest sample
        self._written = 0  # samples written since creation or the last clear
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return len(self._data)

    @property
    def samples_written(self) -> int:
        """Samples written in total: a clock for whoever feeds the buffer."""
        return self._written

    def write(self, samples) -> None:
        """Append samples (a 1-D array); only the newest ``capacity`` of a long write are kept."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            self._written += len(samples)
            samples = samples[-self.capacity:]
            n = len(samples)
            first = min(n, self.capacity - self._end)
            self._data[self._end:self._end + first] = samples[:first]
            self._data[:n - first] = samples[first:]
            self._end = (self._end + n) % self.capacity

    def snapshot(self, n: int | None = None) -> np.ndarray:
        """The newest ``n`` samples (default: all), oldest first; zeros where nothing was written yet."""
        n = self.capacity if n is None else min(n, self.capacity)
        with self._lock:
            return np.roll(self._data, -self._end)[self.capacity - n:]

    def clear(self) -> None:
        with self._lock:
            self._data[:] = 0.0
            self._end = 0
            self._written = 0

    def reset(self, capacity: int, sample_rate: int) -> None:
        """Empty, with a new size and rate (a model at another rate); readers keep the same buffer object."""
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        with self._lock:
            self._data = np.zeros(capacity, dtype=np.float32)
            self.sample_rate = sample_rate
            self._end = 0
            self._written = 0
