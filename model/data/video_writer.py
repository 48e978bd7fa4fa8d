"""Writing MP4 files with PyAV: H.264 (yuv420p) video and AAC sound, interleaved frame by frame."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


class ClipWriter:
    """``write`` RGB frames one by one; ``sound`` (mono ``(N,)`` or channels-first ``(C, N)``, C <= 2) is
    muxed alongside, up to each frame's time, and to its end on ``close``."""

    def __init__(self, path, fps: float, size: tuple[int, int], sound: np.ndarray | None = None,
                 sample_rate: int | None = None):
        if sound is not None and not sample_rate:
            raise ValueError("a sound track needs its sample rate")
        self.width, self.height = (size[0] // 2) * 2, (size[1] // 2) * 2  # yuv420p needs even sizes
        self.fps = fps
        self.sound = None if sound is None else np.atleast_2d(np.asarray(sound, dtype=np.float32))
        self.sample_rate = sample_rate
        self._frames = 0
        self._samples = 0
        self._container = av.open(str(path), "w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._video = self._container.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "20"})
        self._video.width, self._video.height, self._video.pix_fmt = self.width, self.height, "yuv420p"
        self._audio = None
        if self.sound is not None:
            self._layout = "stereo" if len(self.sound) == 2 else "mono"
            self._audio = self._container.add_stream("aac", rate=sample_rate, layout=self._layout)

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:self.height, :self.width]), format="rgb24")
        frame.pts = self._frames
        self._container.mux(self._video.encode(frame))
        self._frames += 1
        if self._audio is not None:
            self._write_sound(int(round(self._frames / self.fps * self.sample_rate)))

    def _write_sound(self, until: int) -> None:
        chunk = self.sound[:, self._samples:until]
        if chunk.shape[1] == 0:
            return
        samples = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self._layout)
        samples.sample_rate, samples.pts = self.sample_rate, self._samples
        self._container.mux(self._audio.encode(samples))
        self._samples += chunk.shape[1]

    def close(self) -> None:
        self._container.mux(self._video.encode())
        if self._audio is not None:
            self._write_sound(self.sound.shape[1])
            self._container.mux(self._audio.encode())
        self._container.close()
