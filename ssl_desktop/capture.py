"""The capture thread: reads a frame source at its own rate and hands every frame on."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PySide6.QtCore import QThread, Signal

from .sources import FrameSource, SourceError


@dataclass
class Frame:
    """A captured frame and when it was captured."""

    id: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    captured_at: float  # time.monotonic() when it arrived
    t: float = 0.0  # seconds into the media (files); the capture time for live sources


@dataclass
class Waveform:
    """Sound to show: ``samples`` at ``sample_rate``, the first at time ``start`` (s), the shown frame at
    ``cursor`` (None: live, the newest sample is now)."""

    samples: np.ndarray
    sample_rate: int
    start: float
    cursor: float | None = None


RETRY_SECONDS = 1.0  # a source that stopped delivering is reopened this often until frames return


class CaptureThread(QThread):
    """Opens ``source`` in this thread, then reads it until stopped or ended.

    Each frame goes to ``sink`` (called in this thread, e.g. the inference worker's ``submit``) and to
    ``frame_captured`` (queued to the GUI for display). The source is closed by this thread on exit.
    A source that cannot be opened is ``failed``; one that stops delivering after it did (a camera
    unplugged) is ``stalled`` (the reason) and reopened every ``RETRY_SECONDS`` until frames come
    again (``stalled("")``). What is wrong with what it delivers (``FrameSource.fault``: a file cut
    short) is ``faulty``, from the first frame on and whenever it changes.
    """

    frame_captured = Signal(object)  # Frame
    failed = Signal(str)
    stalled = Signal(str)  # why frames stopped coming; "" when they come again
    faulty = Signal(str)  # what is wrong with the frames or sound delivered; "" when nothing

    def __init__(self, source: FrameSource, sink: Callable[[Frame], None], parent=None):
        super().__init__(parent)
        self.source = source
        self.sink = sink
        self.frames_captured = 0
        self._stopping = False

    def run(self) -> None:
        try:
            self.source.open()
            stalled, fault = False, None
            while not self._stopping:
                try:
                    image = self.source.read()
                except SourceError as exc:
                    if not self.frames_captured:
                        raise
                    if not stalled:
                        self.stalled.emit(str(exc))
                    stalled = True
                    self._reopen()
                    continue
                if image is None:  # the source has ended: so does the thread (``finished``)
                    break
                if stalled:
                    self.stalled.emit("")
                    stalled = False
                now = time.monotonic()
                frame = Frame(self.frames_captured, image, now, now)
                self.frames_captured += 1
                self.sink(frame)
                self.frame_captured.emit(frame)
                fault, said = self.source.fault(), fault
                if fault != said:
                    self.faulty.emit(fault)
        except SourceError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug or an unexpected device error must not kill the app silently
            self.failed.emit(f"{self.source.name} failed: {exc!r}")
        finally:
            self.source.close()

    def _reopen(self) -> None:
        """Close the source and open it again every ``RETRY_SECONDS`` until it opens or ``stop()``."""
        self.source.close()
        while not self._stopping:
            deadline = time.monotonic() + RETRY_SECONDS
            while not self._stopping and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                self.source.open()
                return
            except SourceError:
                continue

    def stop(self) -> None:
        """Ask the loop to end after the current frame and wait for it."""
        self._stopping = True
        self.wait()
