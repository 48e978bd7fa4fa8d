"""Playing one video file: a clock, a thread that decodes the frame due on it, and the sound.

The clock is the master: frames are picked by its position, and the speaker (when there is an output
device) plays the track samples at its position, so picture and sound stay together at any speed
(the sound is muted away from 1x) and after every seek.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QThread, Signal

from .sources import SAMPLE_RATE, SequentialFrames, SourceError, import_sounddevice

RESYNC_SECONDS = 0.1  # the speaker jumps to the clock when it is further off than this


class PlaybackClock:
    """Media time in seconds that runs at ``speed`` while playing; thread-safe."""

    def __init__(self, duration: float):
        self.duration = duration
        self.speed = 1.0
        self.playing = False
        self._base = 0.0  # media time at _wall
        self._wall = time.monotonic()
        self._lock = threading.Lock()

    def position(self) -> float:
        with self._lock:
            return self._position()

    def _position(self) -> float:
        if not self.playing:
            return self._base
        return min(self._base + (time.monotonic() - self._wall) * self.speed, self.duration)

    def _rebase(self, t: float) -> None:
        self._base = min(max(t, 0.0), self.duration)
        self._wall = time.monotonic()

    def play(self) -> None:
        with self._lock:
            start = 0.0 if self._position() >= self.duration else self._position()
            self._rebase(start)
            self.playing = True

    def pause(self) -> None:
        with self._lock:
            self._rebase(self._position())
            self.playing = False

    def seek(self, t: float) -> None:
        with self._lock:
            self._rebase(t)

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._rebase(self._position())
            self.speed = speed


def audio_window(track: np.ndarray, t: float, num_samples: int) -> np.ndarray:
    """``num_samples`` of a 16 kHz track centred on time ``t`` (s), zeros outside the track."""
    start = int(round(t * SAMPLE_RATE)) - num_samples // 2
    window = np.zeros(num_samples, dtype=np.float32)
    lo, hi = max(start, 0), min(start + num_samples, len(track))
    if hi > lo:
        window[lo - start:hi - start] = track[lo:hi]
    return window


class FrameThread(QThread):
    """Emits the frame due on ``clock``: continuously while playing, once per ``show_current`` when paused."""

    frame_ready = Signal(float, object)  # media time of the frame (s), RGB frame
    ended = Signal()
    failed = Signal(str)

    def __init__(self, path, clock: PlaybackClock, fps: float, parent=None):
        super().__init__(parent)
        self.path = path
        self.clock = clock
        self.period = 1.0 / (fps or 25.0)
        self._wake = threading.Condition()
        self._show_requested = True
        self._stopping = False

    def show_current(self) -> None:
        """Emit the frame at the clock's position (after a seek or a step while paused)."""
        with self._wake:
            self._show_requested = True
            self._wake.notify()

    def run(self) -> None:
        frames = SequentialFrames(self.path)
        shown_t = None
        try:
            while not self._stopping:
                if self.clock.playing:
                    t = self.clock.position()
                    frame_t, image = frames.frame_at(t)
                    if frame_t != shown_t:
                        shown_t = frame_t
                        self.frame_ready.emit(frame_t, image)
                    if t >= self.clock.duration:
                        self.clock.pause()
                        self.ended.emit()
                    time.sleep(min(self.period / max(self.clock.speed, 1e-3), 0.02))
                    continue
                with self._wake:
                    self._wake.wait_for(lambda: self._show_requested or self._stopping, 0.1)
                    requested, self._show_requested = self._show_requested, False
                if requested and not self._stopping:
                    frame_t, image = frames.frame_at(self.clock.position())
                    shown_t = frame_t
                    self.frame_ready.emit(frame_t, image)
        except SourceError as exc:
            self.failed.emit(str(exc))
        finally:
            frames.close()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self.wait()


class Speaker:
    """Plays a 16 kHz track on the default output device, following a ``PlaybackClock``."""

    def __init__(self, track: np.ndarray, clock: PlaybackClock):
        self.track = track
        self.clock = clock
        self._next: int | None = None  # index of the next sample to play
        self._stream = None

    def start(self) -> None:
        """Open the output stream; raises ``SourceError``."""
        sd = import_sounddevice()
        try:
            self._stream = sd.OutputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                           callback=self._callback)
            self._stream.start()
        except Exception as exc:  # PortAudioError, ValueError: no device or unsupported rate
            self._stream = None
            raise SourceError(f"cannot play sound: {exc}") from exc

    def _callback(self, outdata, frames, time_info, status) -> None:
        if not self.clock.playing or self.clock.speed != 1.0:
            outdata[:] = 0.0
            self._next = None
            return
        due = int(self.clock.position() * SAMPLE_RATE)
        if self._next is None or abs(due - self._next) > RESYNC_SECONDS * SAMPLE_RATE:
            self._next = due
        chunk = self.track[self._next:self._next + frames]
        outdata[:len(chunk), 0] = chunk
        outdata[len(chunk):] = 0.0
        self._next += frames

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
