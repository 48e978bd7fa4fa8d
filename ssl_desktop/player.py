"""Playing one video file: a clock, a thread that decodes the frame due on it, one that decodes its sound
track, and the sound.

The clock is the master: frames are picked by its position, and the speaker (when there is an output
device) plays the track samples at its position, so picture and sound stay together at any speed
(the sound is muted away from 1x) and after every seek. ``Monitor`` plays the live sound of the demo
or a looped file (never a microphone's: that would feed back). Both play at a ``Volume``.
"""
from __future__ import annotations

import threading
import time
from contextlib import closing

import numpy as np
from PySide6.QtCore import QThread, Signal

from model.data import video_io
from model.data.video_io import VideoReadError

from .sources import SequentialFrames, SourceError, import_sounddevice

RESYNC_SECONDS = 0.1  # the speaker jumps to the clock when it is further off than this
MONITOR_DELAY_SECONDS = 0.1  # the monitor plays this far behind the newest live sample
VOLUME_STEP = 0.1


class Volume:
    """A level in [0, 1] and a mute switch, read by the sound callbacks."""

    def __init__(self, level: float = 1.0, muted: bool = False):
        self.level = level
        self.muted = muted

    @property
    def gain(self) -> float:
        return 0.0 if self.muted else self.level

    def change(self, steps: int) -> None:
        self.level = round(min(max(self.level + steps * VOLUME_STEP, 0.0), 1.0), 2)

    def describe(self) -> str:
        return "muted" if self.muted else f"{100 * self.level:.0f} %"


def open_output(callback, sample_rate: int):
    """A started mono float32 output stream at ``sample_rate`` calling ``callback``; raises ``SourceError``."""
    sd = import_sounddevice()
    try:
        stream = sd.OutputStream(samplerate=sample_rate, channels=1, dtype="float32", callback=callback)
        stream.start()
    except Exception as exc:  # PortAudioError, ValueError: no device or unsupported rate
        raise SourceError(f"cannot play sound: {exc}") from exc
    return stream


class PlaybackClock:
    """Media time in seconds that runs at ``speed`` while playing; thread-safe."""

    def __init__(self, duration: float):
        self.duration = duration
        self.speed = 1.0
        self.playing = False
        self.loop = False  # at the end: back to the start instead of pausing
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


class FrameThread(QThread):
    """Emits the frame due on ``clock``: continuously while playing, once per ``show_current`` when paused."""

    frame_ready = Signal(float, object)  # media time of the frame (s), RGB frame
    reached_end = Signal()  # playing (not looping), the clock passed the file's end: it is paused there
    failed = Signal(str)
    cut_short = Signal(str)  # once, when the frames end before the file's duration: what to tell the user

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
        said_cut_short = False
        try:
            while not self._stopping:
                if self.clock.playing:
                    t = self.clock.position()
                    frame_t, image = frames.frame_at(t)
                    if frame_t != shown_t:
                        shown_t = frame_t
                        self.frame_ready.emit(frame_t, image)
                    if not said_cut_short and (cut_short := frames.cut_short(self.clock.duration)):
                        said_cut_short = True
                        self.cut_short.emit(cut_short)
                    if t >= self.clock.duration and self.clock.loop:
                        self.clock.seek(0.0)
                    elif t >= self.clock.duration:
                        self.clock.pause()
                        self.reached_end.emit()
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


class TrackThread(QThread):
    """Decodes a file's whole sound track (mono at ``sample_rate``) away from the GUI thread: a long file's takes
    seconds. The blocks go straight into one array sized from the file's ``duration`` (grown if the sound is
    longer), never a list of blocks and a copy of it. ``stop`` ends it between two blocks."""

    succeeded = Signal(object)  # the track (N,) float32, sample 0 at time 0
    failed = Signal(str, object)  # the reason, the part decoded before the failure (None: nothing)

    def __init__(self, path, sample_rate: int, duration: float, parent=None):
        super().__init__(parent)
        self.path = path
        self.sample_rate = sample_rate
        self.duration = duration
        self._stopping = False

    def run(self) -> None:
        track, filled = np.empty(int(self.duration * self.sample_rate) + 1, dtype=np.float32), 0
        try:
            with closing(video_io.iter_audio_track(self.path, self.sample_rate)) as decoded:
                for block in decoded:
                    if self._stopping:
                        return
                    if filled + len(block) > len(track):
                        track = np.concatenate([track[:filled], np.empty(filled // 2 + len(block), np.float32)])
                    track[filled:filled + len(block)] = block
                    filled += len(block)
        except VideoReadError as exc:
            self.failed.emit(exc.reason, track[:filled] if filled else None)
            return
        self.succeeded.emit(track[:filled])

    def stop(self) -> None:
        self._stopping = True
        self.wait()


class SoundOutput:
    """Plays mono at ``sample_rate`` on the default output device at ``volume``; subclasses fill ``_callback``."""

    def __init__(self, volume: Volume, sample_rate: int):
        self.volume = volume
        self.sample_rate = sample_rate
        self._next: int | None = None  # index of the next sample to play
        self._stream = None

    def start(self) -> None:
        """Open the output stream; raises ``SourceError``."""
        self._stream = open_output(self._callback, self.sample_rate)

    def _callback(self, outdata, frames, time_info, status) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


class Speaker(SoundOutput):
    """Plays a track (mono at ``sample_rate``), following a ``PlaybackClock``."""

    def __init__(self, track: np.ndarray, sample_rate: int, clock: PlaybackClock, volume: Volume):
        super().__init__(volume, sample_rate)
        self.track = track
        self.clock = clock

    def _callback(self, outdata, frames, time_info, status) -> None:
        if not self.clock.playing or self.clock.speed != 1.0:
            outdata[:] = 0.0
            self._next = None
            return
        due = int(self.clock.position() * self.sample_rate)
        if self._next is None or abs(due - self._next) > RESYNC_SECONDS * self.sample_rate:
            self._next = due
        chunk = self.track[self._next:self._next + frames]
        outdata[:len(chunk), 0] = chunk * self.volume.gain
        outdata[len(chunk):] = 0.0
        self._next += frames


class Monitor(SoundOutput):
    """Plays the live sound written into a ring buffer, ``MONITOR_DELAY_SECONDS`` behind the newest sample."""

    def __init__(self, ring, volume: Volume):
        super().__init__(volume, ring.sample_rate)
        self.ring = ring

    def _callback(self, outdata, frames, time_info, status) -> None:
        written = self.ring.samples_written
        due = written - int(MONITOR_DELAY_SECONDS * self.sample_rate)
        if self._next is None or abs(due - self._next) > RESYNC_SECONDS * self.sample_rate:
            self._next = due
        behind = written - self._next  # the next sample is this many from the newest
        chunk = self.ring.snapshot(behind)[:frames] if 0 < behind <= self.ring.capacity else np.zeros(0, np.float32)
        outdata[:len(chunk), 0] = chunk * self.volume.gain
        outdata[len(chunk):] = 0.0
        self._next += frames
