"""Recording the live camera and microphone as MP4 clips (H.264 + AAC, ``export.ClipWriter``).

``ClipRecorder`` collects the frames shown live for ``seconds`` (the GUI thread only keeps references)
and, at the end, the sound the audio source wrote into the ring buffer meanwhile; a ``ClipWriteThread``
encodes them as the next ``clip_NNNN.mp4`` of the folder. ``RecordBar`` is the row of controls under
the live view: it shows state and emits signals. ``Recording`` wires the two to the live pipeline.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import av.error
import numpy as np
from PySide6.QtCore import QObject, QSettings, QThread, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from model.data.video_writer import ClipWriter

from .capture import Frame
from .live import LivePipeline
from .ring_buffer import RingBuffer

CLIP_PATTERN = "clip_{:04d}.mp4"
MAX_SECONDS = 4.0  # the ring buffer holds 5 s: the sound of a longer clip would be overwritten


def next_clip_path(folder: Path) -> Path:
    """The first ``clip_NNNN.mp4`` of ``folder`` that does not exist yet."""
    n = 1
    while (folder / CLIP_PATTERN.format(n)).exists():
        n += 1
    return folder / CLIP_PATTERN.format(n)


def fit_sound(samples: np.ndarray, length: int) -> np.ndarray:
    """The newest ``length`` samples, zero-padded at the start when fewer were heard."""
    samples = samples[len(samples) - length:] if len(samples) > length else samples
    return np.concatenate([np.zeros(length - len(samples), np.float32), samples]).astype(np.float32)


class ClipWriteThread(QThread):
    """Writes frames (RGB uint8) at ``fps`` with mono ``sound`` at ``sample_rate`` to ``path`` through a
    temporary file."""

    succeeded = Signal(str)  # the clip written
    failed = Signal(str)

    def __init__(self, path: Path, frames: list[np.ndarray], fps: float, sound: np.ndarray, sample_rate: int,
                 parent=None):
        super().__init__(parent)
        self.path, self.frames, self.fps, self.sound, self.sample_rate = path, frames, fps, sound, sample_rate

    def run(self) -> None:
        partial = self.path.with_name(self.path.name + ".part.mp4")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = self.frames[0].shape[:2]
            writer = ClipWriter(partial, self.fps, (width, height), self.sound, self.sample_rate)
            for frame in self.frames:
                writer.write(frame)
            writer.close()
            os.replace(partial, self.path)
        except (OSError, ValueError, av.error.FFmpegError) as exc:
            with contextlib.suppress(OSError):  # nothing to remove where the folder itself failed
                partial.unlink(missing_ok=True)
            self.failed.emit(f"clip not saved: {exc}")
        else:
            self.succeeded.emit(str(self.path))
        finally:
            self.frames = []


class ClipRecorder(QObject):
    """Records the next ``seconds`` of live frames (``add_frame``, in the GUI thread) and the sound of
    ``ring``, then writes them into ``folder`` in a ``ClipWriteThread``; one clip at a time."""

    state_changed = Signal(str)  # "recording", "saving" or "idle"
    succeeded = Signal(str)  # the clip written
    failed = Signal(str)

    def __init__(self, ring: RingBuffer, parent=None):
        super().__init__(parent)
        self.ring = ring
        self.folder: Path | None = None
        self.seconds = 2.0
        self.state = "idle"
        self.clips_saved = 0
        self.last_clip: Path | None = None
        self._frames: list[Frame] = []
        self._sound_start = 0  # ring.samples_written when recording began
        self._writer: ClipWriteThread | None = None

    def start(self) -> bool:
        """Begin a clip with the next frame; False while one is recorded or saved, or without a folder."""
        if self.state != "idle" or self.folder is None:
            return False
        self._frames = []
        self._sound_start = self.ring.samples_written
        self._set_state("recording")
        return True

    def add_frame(self, frame: Frame) -> None:
        """A live frame (connected to the capture's ``frame_captured``); ends the clip once it is long enough
        or when the frame size changes (another source)."""
        if self.state != "recording":
            return
        if self._frames and frame.image.shape != self._frames[0].image.shape:
            self.stop()
            return
        self._frames.append(frame)
        if frame.captured_at - self._frames[0].captured_at >= self.seconds - 1.5 / self._fps():  # n frames last n / fps
            self.stop()

    def _fps(self) -> float:
        """The rate the frames came at (25 until two have come)."""
        frames = self._frames
        if len(frames) < 2 or frames[-1].captured_at <= frames[0].captured_at:
            return 25.0
        return (len(frames) - 1) / (frames[-1].captured_at - frames[0].captured_at)

    def stop(self) -> None:
        """End the clip now and save what was recorded (nothing when no frame came)."""
        if self.state != "recording":
            return
        frames, fps = self._frames, self._fps()
        self._frames = []
        if not frames:
            self._set_state("idle")
            return
        heard = min(max(self.ring.samples_written - self._sound_start, 0), self.ring.capacity)
        rate = self.ring.sample_rate
        sound = fit_sound(self.ring.snapshot(heard), round(len(frames) / fps * rate))
        self._writer = ClipWriteThread(next_clip_path(self.folder), [f.image for f in frames], fps, sound, rate, self)
        self._writer.succeeded.connect(self._on_saved)
        self._writer.failed.connect(self._on_failed)
        self._set_state("saving")
        self._writer.start()

    def _on_saved(self, path: str) -> None:
        self.clips_saved += 1
        self.last_clip = Path(path)
        self._end_write()
        self.succeeded.emit(path)

    def _on_failed(self, text: str) -> None:
        self._end_write()
        self.failed.emit(text)

    def _end_write(self) -> None:
        if self._writer is not None:
            self._writer.wait()
            self._writer.deleteLater()
            self._writer = None
        self._set_state("idle")

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    def shutdown(self) -> None:
        """Drop a clip being recorded; let one being written finish."""
        self._frames = []
        if self._writer is not None:
            self._writer.wait()
        self.state = "idle"


class RecordBar(QWidget):
    """Record button, clip length, folder, counter and "play last" under the live view."""

    record_clicked = Signal()  # start, or stop early while recording
    folder_clicked = Signal()
    play_last_clicked = Signal()
    seconds_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.record_button = QPushButton("● Record")
        self.record_button.setToolTip("Record a clip of the camera and the microphone into the folder")
        self.seconds_box = QDoubleSpinBox()
        self.seconds_box.setRange(0.5, MAX_SECONDS)
        self.seconds_box.setSingleStep(0.5)
        self.seconds_box.setValue(2.0)
        self.seconds_box.setSuffix(" s")
        self.folder_button = QPushButton("Folder…")
        self.counter_label = QLabel()
        self.play_button = QPushButton("Play last clip")
        self.play_button.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.record_button, self.seconds_box, self.folder_button, self.counter_label):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.play_button)
        self.record_button.clicked.connect(self.record_clicked)
        self.folder_button.clicked.connect(self.folder_clicked)
        self.play_button.clicked.connect(self.play_last_clicked)
        self.seconds_box.valueChanged.connect(self.seconds_changed)
        self.show_state("idle", 0, None, None)

    def show_state(self, state: str, clips: int, folder: Path | None, last: Path | None) -> None:
        self.record_button.setText({"recording": "■ Stop", "saving": "saving…"}.get(state, "● Record"))
        self.record_button.setEnabled(state != "saving")
        self.seconds_box.setEnabled(state == "idle")
        self.folder_button.setText(folder.name if folder else "Folder…")
        self.folder_button.setToolTip(f"clips are saved in {folder}" if folder else "where to save the clips")
        self.counter_label.setText(f"{clips} clip{'s' * (clips != 1)} recorded")
        self.play_button.setEnabled(last is not None)
        self.play_button.setToolTip(last.name if last else "")


class Recording(QObject):
    """The record bar and a ``ClipRecorder`` on ``pipeline``'s frames and sound; the folder is remembered
    in ``settings``."""

    open_clip = Signal(str)  # "Play last clip"
    message = Signal(str, str, str)  # key, text ("" clears), level

    def __init__(self, bar: RecordBar, pipeline: LivePipeline, settings: QSettings, parent=None):
        super().__init__(parent)
        self.bar, self.settings = bar, settings
        self.recorder = ClipRecorder(pipeline.ring, self)
        folder = settings.value("record_folder", "")
        self.recorder.folder = Path(folder) if folder else None
        self.recorder.seconds = bar.seconds_box.value()
        pipeline.frame_captured.connect(self.recorder.add_frame)
        bar.record_clicked.connect(self.toggle)
        bar.folder_clicked.connect(self._choose_folder)
        bar.seconds_changed.connect(lambda seconds: setattr(self.recorder, "seconds", seconds))
        bar.play_last_clicked.connect(lambda: self.open_clip.emit(str(self.recorder.last_clip)))
        self.recorder.state_changed.connect(self._show_state)
        self.recorder.succeeded.connect(lambda path: self.message.emit("record", "", "info"))
        self.recorder.failed.connect(lambda text: self.message.emit("record", text, "error"))
        self._show_state()

    def set_folder(self, folder) -> None:
        self.recorder.folder = Path(folder)
        self.settings.setValue("record_folder", str(folder))
        self._show_state()

    def toggle(self) -> None:
        """Start a clip (asking for the folder the first time), or end the one being recorded."""
        if self.recorder.state == "recording":
            self.recorder.stop()
            return
        if self.recorder.folder is None:
            self._choose_folder()
        self.recorder.start()

    def shutdown(self) -> None:
        """Drop a clip being recorded; let one being written finish."""
        self.recorder.shutdown()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.bar, "Folder for the recorded clips",
                                                  str(self.recorder.folder or Path.home()))
        if folder:
            self.set_folder(folder)

    def _show_state(self, *_) -> None:
        r = self.recorder
        self.bar.show_state(r.state, r.clips_saved, r.folder, r.last_clip)
