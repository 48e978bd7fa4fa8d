"""Exports: the frame on screen as a PNG, and a whole clip with its heatmaps as an MP4 with its sound.

The clip export runs in its own thread (``ExportWorker``) with progress and cancel; it writes to a
partial file beside the target and renames it at the end, so a cancelled export leaves nothing (the file
is made as recorded clips are: an ordinary new file's mode). ``Exports`` runs both for the window, one clip
at a time, and says how they went.
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import av.error
import cv2
import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal

from model.data import video_io
from model.data.video_io import VideoReadError
from model.data.video_writer import ClipWriter
from model.localize import Localizer, ViewSettings
from model.inference.overlay import blend, scale_heat


def save_png(path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image; raises ``OSError`` when it cannot be written."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


class ExportCancelled(Exception):
    pass


def export_clip(model, device, source, target, lut: np.ndarray, opacity: float, progress=None,
                should_stop=None, value_range: tuple[float, float] | None = None,
                view: ViewSettings | None = None) -> None:
    """Write ``source`` with its heatmaps blended in (as on screen: ``value_range`` is the view's fixed
    scale, None its per-frame stretch; ``view`` what the heatmaps show) and its sound to ``target`` (MP4).

    ``progress(done, total)`` is called per frame; ``should_stop()`` returning True cancels
    (``ExportCancelled``). Raises ``VideoReadError`` for an unreadable source and ``ValueError`` for a
    source without sound.
    """
    info = video_io.probe(source)
    if not info.has_audio:
        raise ValueError(f"{Path(source).name} has no sound track: there is no heatmap to export")
    rate = model.audio_config.sample_rate
    heard = video_io.decode_audio_track(source, rate)
    original = video_io.decode_audio_track(source, info.audio_rate)
    total = max(int(round(info.duration * info.fps)), 1)
    target = Path(target)
    partial = target.with_name(target.name + ".part.mp4")
    try:
        writer = None
        localizer = Localizer(model, device, view=view)
        with torch.inference_mode():
            for done, (t, frame) in enumerate(video_io.iter_frames(source), start=1):
                if should_stop is not None and should_stop():
                    raise ExportCancelled()
                if localizer.needs_sound(t):
                    localizer.hear(video_io.centred_window(heard, t, model.audio_config.num_samples, rate), t)
                heatmap, _ = scale_heat(localizer.localize(frame).shown, value_range)
                if writer is None:  # the size of the frames as shown (a rotated file's turned frames)
                    writer = ClipWriter(partial, info.fps, (frame.shape[1], frame.shape[0]), original, info.audio_rate)
                writer.write(blend(frame, heatmap, lut, opacity))
                if progress is not None:
                    progress(min(done, total), total)
        if writer is None:
            raise VideoReadError(source, "cannot decode: no video frame")
        writer.close()
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


class ExportWorker(QThread):
    """Runs ``export_clip`` in its own thread."""

    progress = Signal(int, int)  # frames done, frames in all
    succeeded = Signal(str)  # the written file
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, model, device, source, target, lut, opacity, value_range=None, view=None, parent=None):
        super().__init__(parent)
        self.args = (model, device, source, target, lut, opacity)
        self.value_range, self.view = value_range, view
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True

    def run(self) -> None:
        model, device, source, target, lut, opacity = self.args
        try:
            export_clip(model, device, source, target, lut, opacity, self.progress.emit, lambda: self._cancel,
                        self.value_range, self.view)
        except ExportCancelled:
            self.cancelled.emit()
        except (VideoReadError, ValueError, OSError, av.error.FFmpegError) as exc:
            self.failed.emit(f"export of {Path(source).name} failed: {exc}")
        else:
            self.succeeded.emit(str(target))


class Exports(QObject):
    """The frame on screen saved as a PNG, and one clip export at a time in an ``ExportWorker``; each outcome is
    a message (key "export") or a note for the status bar."""

    message = Signal(str, str, str)  # key, text, level
    note = Signal(str, int)  # a passing remark for the status bar, and for how many ms
    progress = Signal(int, int)  # frames done, frames in all, while a clip export runs
    running_changed = Signal(bool)  # a clip export started (True) or ended (False)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker: ExportWorker | None = None

    def save_frame(self, image: np.ndarray | None, path) -> bool:
        """Save ``image`` (the frame on screen with its overlay, None: none yet) as a PNG."""
        if image is None:
            self.message.emit("export", "no frame to export yet", "warning")
            return False
        try:
            save_png(path, image)
        except OSError as exc:
            self.message.emit("export", str(exc), "error")
            return False
        self.note.emit(f"saved {path}", 5000)
        return True

    def start_clip(self, model, device, source, target, lut, opacity, value_range=None, view=None) -> bool:
        """Export ``source`` (None: no file open) with heatmaps and sound to ``target`` in a thread
        (``export_clip``'s arguments); False, and a message, when it cannot start."""
        if source is None or model is None or self.worker is not None:
            reason = ("open a video in the inspector first" if source is None else
                      "no model loaded" if model is None else "an export is already running")
            self.message.emit("export", f"cannot export a clip: {reason}", "warning")
            return False
        self.worker = ExportWorker(model, device, source, target, lut, opacity, value_range, view, parent=self)
        self.worker.progress.connect(self.progress)
        self.worker.succeeded.connect(lambda path: self._end(f"exported {path}", "info"))
        self.worker.failed.connect(lambda text: self._end(text, "error"))
        self.worker.cancelled.connect(lambda: self._end("export cancelled", "info"))
        self.running_changed.emit(True)
        self.worker.start()
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _end(self, text: str, level: str) -> None:
        if self.worker is None:  # already ended by shutdown
            return
        self.worker.wait()
        self.worker.deleteLater()
        self.worker = None
        self.running_changed.emit(False)
        self.message.emit("export", text, level)

    def shutdown(self) -> None:
        """Cancel a clip export and wait for its thread."""
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait()
            self.worker = None
