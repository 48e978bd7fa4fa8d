"""Resampling a live audio stream block by block (a microphone that cannot deliver 16 kHz itself)."""
from __future__ import annotations

import numpy as np


class StreamResampler:
    """``in_rate`` -> ``out_rate`` for a stream that arrives in blocks of any size.

    A windowed-sinc low-pass below the lower Nyquist frequency, then linear interpolation. State is
    carried between blocks, so the output does not depend on how the stream was cut into blocks. The
    output lags the input by ``half_taps`` input samples (the filter's delay).
    """

    def __init__(self, in_rate: int, out_rate: int, half_taps: int = 32):
        self.step = in_rate / out_rate  # input samples per output sample
        cutoff = 0.45 * min(1.0, out_rate / in_rate)  # in cycles per input sample; 0.5 is Nyquist
        k = np.arange(-half_taps, half_taps + 1)
        taps = np.sinc(2 * cutoff * k) * np.blackman(len(k))
        self._taps = (taps / taps.sum()).astype(np.float32)
        self._history = np.zeros(len(k) - 1, np.float32)  # input the filter still needs
        self._last = np.float32(0.0)  # the previous block's last filtered sample
        self._next = 1.0  # where the next output falls, counted from ``_last`` (at 0) in input samples

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resampled float32 samples for this block of mono input (possibly none for a short block)."""
        block = np.asarray(block, np.float32)
        if not len(block):
            return np.zeros(0, np.float32)
        padded = np.concatenate([self._history, block])
        filtered = np.convolve(padded, self._taps, mode="valid").astype(np.float32)  # len(block) samples
        self._history = padded[len(block):]
        known = np.concatenate([[self._last], filtered])  # positions 0 .. len(block)
        count = max(int(np.floor((len(block) - self._next) / self.step)) + 1, 0)
        positions = self._next + self.step * np.arange(count)
        out = np.interp(positions, np.arange(len(known)), known).astype(np.float32)
        self._next += self.step * count - len(block)
        self._last = filtered[-1]
        return out
