"""Exports: the frame on screen as a PNG, and a whole clip with its heatmaps as an MP4 with its sound.

The clip export runs in its own thread (``ExportWorker``) with progress and cancel; it writes to a
partial file beside the target and renames it at the end, so a cancelled export leaves nothing (the file
is made as recorded clips are: an ordinary new file's mode).
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import av.error
import cv2
import numpy as np
import torch
from PySide6.QtCore import QThread, Signal

from model.data import video_io
from model.data.video_io import VideoReadError
from model.data.video_writer import ClipWriter
from model.localize import Localizer, ViewSettings
from model.overlay import blend, scale_heat


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
