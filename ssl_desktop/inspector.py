"""The inspector: play video files with their sound and the heatmap of every frame shown.

Each frame's heatmap is computed from the ``seconds`` of sound centred on it (the model's audio window,
at the model's sample rate), and the picture says, as the live view's does, when that sound is silence or
not in view. Files come from drag-and-drop, File > Open or the file list; every way plays the file at once:
the picture at once, the sound (and so the heatmaps) once its track is decoded in a thread of its own.
A file whose frames or sound end before its duration is said to be cut short.
The window talks to it, as to the live pipeline, through ``set_model``, ``set_audio_override``, the
``embeddings`` signal and ``waveform(seconds)``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QVBoxLayout, QWidget

from model import AudioConfig
from model.data import video_io
from model.data.video_io import VideoReadError

from .capture import Frame, Waveform
from .inference_worker import InferenceWorker
from .player import FrameThread, PlaybackClock, Speaker, TrackThread, Volume
from .sources import SourceError, format_time, has_output_device, sound_fault
from .video_view import VideoView

SPEEDS = (0.25, 0.5, 1.0, 2.0)
PLAY_TIP, PAUSE_TIP = "Play (Space)", "Pause (Space)"  # what the play button does now
SLIDER_STEPS_PER_SECOND = 1000


@dataclass
class OpenFile:
    path: Path
    info: video_io.VideoInfo
    track: np.ndarray | None  # mono at the model's rate; None without a (decodable) sound track, or until decoded
    sample_rate: int


class Inspector(QWidget):
    """A video player whose frames carry the model's heatmap."""

    message = Signal(str, str, str)  # key, text ("" clears the key), level
    spectrogram_ready = Signal(object)  # (257, T) heard for the shown frame
    embeddings = Signal(object, object)  # unit audio vector, unit global image vector (for retrieval)

    def __init__(self, device: str = "cpu", parent=None):
        super().__init__(parent)
        self.model = None
        self.file: OpenFile | None = None
        self.files: list[Path] = []
        self.shown_t = 0.0  # media time of the frame shown
        self.clock: PlaybackClock | None = None
        self.frame_thread: FrameThread | None = None
        self.track_thread: TrackThread | None = None  # decoding the open file's sound
        self.speaker: Speaker | None = None
        self.volume = Volume()
        self.loop = False
        self._next_frame_id = 0
        self._file_first_id = 0  # results of frames before this id belong to a file closed since
        self._result_shown = False  # whether the last result was shown (its presence state follows it)
        self.worker = InferenceWorker(self._audio_window, device, hear_in_background=False, parent=self)
        self.worker.result.connect(self._show_result)
        self.worker.presence.connect(self._show_presence)
        self.worker.spectrogram_ready.connect(self.spectrogram_ready)
        self.worker.embeddings.connect(self.embeddings)
        self.worker.failed.connect(lambda text: self.message.emit("inspector-inference", text, "error"))
        self.worker.start()

        self.view = VideoView()
        self.file_box = QComboBox()
        self.file_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.file_box.activated.connect(self._open_chosen)
        style = self.style()
        self.play_button = self._tool_button(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay),
                                             PLAY_TIP, self.toggle_play)
        self.back_button = self._tool_button(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward),
                                             "Previous frame (Left)", lambda: self.step(-1))
        self.forward_button = self._tool_button(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward),
                                                "Next frame (Right)", lambda: self.step(1))
        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.setToolTip("Timeline: drag to scrub")
        self.timeline.valueChanged.connect(self._on_timeline_moved)
        self.time_label = QLabel(format_time(0.0))
        self.speed_box = QComboBox()
        self.speed_box.addItems([f"{s:g}×" for s in SPEEDS])
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_box.setToolTip("Playback speed (the sound plays at 1× only)")
        self.speed_box.currentIndexChanged.connect(self._on_speed_chosen)
        self.placeholder = QLabel("Drop video files here, or use File > Open…")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #888; font-size: 16px;")

        transport = QHBoxLayout()
        for widget in (self.file_box, self.back_button, self.play_button, self.forward_button):
            transport.addWidget(widget)
        transport.addWidget(self.timeline, 1)
        transport.addWidget(self.time_label)
        transport.addWidget(self.speed_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder, 1)
        layout.addWidget(self.view, 1)
        layout.addLayout(transport)
        self.view.setVisible(False)
        self._set_controls_enabled(False)

    def _tool_button(self, icon, tip, slot) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.file_box, self.play_button, self.back_button, self.forward_button,
                       self.timeline, self.speed_box):
            widget.setEnabled(enabled)

    # --- files ------------------------------------------------------------------------------

    @property
    def audio_config(self) -> AudioConfig:
        """How the model hears (the defaults without a model)."""
        return self.model.audio_config if self.model is not None else AudioConfig()

    @property
    def sample_rate(self) -> int:
        """The rate the model hears at (a file's sound is decoded at it)."""
        return self.audio_config.sample_rate

    def set_model(self, model) -> None:
        """Use ``model``; an open file is decoded again when the model hears at another rate."""
        self.model = model
        self.worker.set_model(model)
        if self.file is not None and self.file.info.has_audio and self.file.sample_rate != self.sample_rate:
            position, playing = self.clock.position(), self.playing
            self.open_file(self.file.path)
            self.seek(position)
            if playing:
                self.play()

    def set_view(self, view) -> None:
        """Show the heatmaps as ``view`` (``model.localize.ViewSettings``) says."""
        self.worker.set_view(view)

    def set_audio_override(self, audio) -> None:
        """Localize this sound's vector instead of the file's sound (None: the file's sound again)."""
        self.worker.set_audio_override(audio)

    def waveform(self, seconds: float) -> Waveform | None:
        """``seconds`` of the file's sound centred on the frame shown; None without a file or sound."""
        if self.file is None or self.file.track is None:
            return None
        rate = self.file.sample_rate
        samples = video_io.centred_window(self.file.track, self.shown_t, int(round(seconds * rate)), rate)
        return Waveform(samples, rate, self.shown_t - seconds / 2, self.shown_t)

    def open_paths(self, paths) -> list[str]:
        """Add the readable files to the file list and open the first of them; returns the problems."""
        problems, opened = [], []
        for path in map(Path, paths):
            try:
                video_io.probe(path)
            except VideoReadError as exc:
                problems.append(f"cannot open {path.name}: {exc.reason}")
                continue
            if path not in self.files:
                self.files.append(path)
                self.file_box.addItem(path.name, str(path))
            opened.append(path)
        if opened:
            try:
                self.open_file(opened[0])
            except VideoReadError as exc:
                problems.append(f"cannot open {opened[0].name}: {exc.reason}")
        return problems

    def _open_chosen(self, index: int) -> None:
        """A file chosen in the list: opened and played, as every other way of opening a file does."""
        path = self.files[index]
        try:
            self.open_file(path)
        except VideoReadError as exc:
            self.message.emit("inspector", f"cannot open {path.name}: {exc.reason}", "error")
            return
        self.message.emit("inspector", "", "info")
        self.play()

    def open_file(self, path: Path) -> None:
        """Show ``path`` paused at its first frame, its sound decoded in a thread; raises ``VideoReadError``."""
        info = video_io.probe(path)
        self.message.emit("inspector-audio", "", "info")
        self.message.emit("inspector-frames", "", "info")
        if not info.has_audio:
            self.message.emit("inspector-audio", f"{path.name} has no sound track: showing the video only "
                              "(the heatmap needs sound)", "warning")
        self.stop_playback()
        self.file = OpenFile(path, info, None, self.sample_rate)
        self.shown_t = 0.0
        self.file_box.setCurrentIndex(self.files.index(path))
        self._file_first_id = self._next_frame_id
        self.worker.forget_sound()
        self.view.clear()
        self.placeholder.setVisible(False)
        self.view.setVisible(True)
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, int(info.duration * SLIDER_STEPS_PER_SECOND))
        self.timeline.setValue(0)
        self.timeline.blockSignals(False)
        self._set_controls_enabled(True)
        self.clock = PlaybackClock(info.duration)
        self.clock.loop = self.loop
        self.clock.set_speed(SPEEDS[self.speed_box.currentIndex()])
        self.frame_thread = FrameThread(path, self.clock, info.fps, parent=self)
        self.frame_thread.frame_ready.connect(self._show_frame)
        self.frame_thread.reached_end.connect(self._on_reached_end)
        self.frame_thread.failed.connect(lambda text: self.message.emit("inspector", text, "error"))
        self.frame_thread.cut_short.connect(lambda text: self.message.emit("inspector-frames", text, "warning"))
        self.frame_thread.start()
        if info.has_audio:
            self.track_thread = TrackThread(path, self.sample_rate, info.duration, parent=self)
            self.track_thread.succeeded.connect(self._on_sound_decoded)
            self.track_thread.failed.connect(self._on_sound_failed)
            self.track_thread.start()
        self._update_play_icon()

    def _from_current_track_thread(self) -> bool:
        """Whether the signal being handled comes from the open file's sound (not from a file closed since)."""
        return self.track_thread is not None and self.sender() is self.track_thread

    def _on_sound_decoded(self, track: np.ndarray) -> None:
        if not self._from_current_track_thread():
            return
        self.file.track = track
        fault = sound_fault(self.file.path.name, len(track) / self.file.sample_rate, self.file.info.duration)
        if fault:
            self.message.emit("inspector-audio", fault, "warning")
        self._sound_arrived()

    def _on_sound_failed(self, reason: str, part: np.ndarray | None) -> None:
        if not self._from_current_track_thread():
            return
        name = self.file.path.name
        if part is None:
            self.message.emit("inspector-audio", f"the sound of {name} cannot be decoded ({reason}): "
                              "showing the video only (the heatmap needs sound)", "warning")
            return
        self.file.track = part
        heard = len(part) / self.file.sample_rate
        self.message.emit("inspector-audio", sound_fault(name, heard, self.file.info.duration, reason), "warning")
        self._sound_arrived()

    def _sound_arrived(self) -> None:
        """Play the sound; a paused frame, shown before its sound was there, is shown again to get its heatmap."""
        self._start_speaker()
        if not self.playing:
            self.frame_thread.show_current()

    def _start_speaker(self) -> None:
        if self.file.track is None:
            return
        if not has_output_device():
            self.message.emit("speaker", "no sound output device: playing silently (picture and heatmap "
                              "still follow the clock)", "info")
            return
        self.speaker = Speaker(self.file.track, self.file.sample_rate, self.clock, self.volume)
        try:
            self.speaker.start()
        except SourceError as exc:
            self.speaker = None
            self.message.emit("speaker", f"{exc}: playing silently", "warning")

    # --- transport --------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self.clock is not None and self.clock.playing

    def play(self) -> None:
        if self.clock is not None:
            self.clock.play()
            self._update_play_icon()

    def pause(self) -> None:
        if self.clock is not None:
            self.clock.pause()
            self._update_play_icon()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self, frames: int) -> None:
        """Pause and move ``frames`` frames forward (negative: back)."""
        if self.file is None:
            return
        self.pause()
        self.seek(self.clock.position() + frames / (self.file.info.fps or 25.0))

    def seek_by(self, seconds: float) -> None:
        """Move ``seconds`` forward (negative: back), playing or not."""
        if self.clock is not None:
            self.seek(self.clock.position() + seconds)

    def set_loop(self, loop: bool) -> None:
        """At the end of the file: start again (True) or pause (False)."""
        self.loop = loop
        if self.clock is not None:
            self.clock.loop = loop

    def seek(self, t: float) -> None:
        if self.clock is None:
            return
        self.clock.seek(t)
        self.frame_thread.show_current()

    def _on_speed_chosen(self, index: int) -> None:
        if self.clock is not None:
            self.clock.set_speed(SPEEDS[index])

    def _on_timeline_moved(self, value: int) -> None:
        self.seek(value / SLIDER_STEPS_PER_SECOND)

    def _on_reached_end(self) -> None:
        self._update_play_icon()

    def _update_play_icon(self) -> None:
        """The play button shows what a click does: pause while playing, play while paused."""
        icon = QStyle.StandardPixmap.SP_MediaPause if self.playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip(PAUSE_TIP if self.playing else PLAY_TIP)

    # --- frames and heatmaps ----------------------------------------------------------------

    def _audio_window(self, t: float, num_samples: int) -> np.ndarray | None:
        track = self.file.track if self.file is not None else None
        return None if track is None else video_io.centred_window(track, t, num_samples, self.file.sample_rate)

    def _show_frame(self, t: float, image: np.ndarray) -> None:
        self.shown_t = t
        self.view.show_frame(image)
        self.timeline.blockSignals(True)
        self.timeline.setValue(int(t * SLIDER_STEPS_PER_SECOND))
        self.timeline.blockSignals(False)
        self.time_label.setText(f"{format_time(t)} / {format_time(self.file.info.duration)}")
        if self.file.track is None:
            return
        self.worker.submit(Frame(self._next_frame_id, image, time.monotonic(), t))
        self._next_frame_id += 1

    def _show_result(self, frame_id: int, heatmap: np.ndarray, latency: float) -> None:
        self._result_shown = frame_id >= self._file_first_id
        if self._result_shown:
            self.view.show_heatmap(heatmap, latency)

    def _show_presence(self, state: str, hearing: str) -> None:
        """The presence state of the result just shown (the worker sends it right after the result)."""
        if self._result_shown:
            self.view.set_presence(state, hearing)

    # --- shutdown ---------------------------------------------------------------------------

    def stop_playback(self) -> None:
        """Stop the file's frame thread, the decoding of its sound and the sound (the inspector stays usable)."""
        if self.track_thread is not None:
            self.track_thread.stop()
            self.track_thread.deleteLater()
            self.track_thread = None
        if self.speaker is not None:
            self.speaker.stop()
            self.speaker = None
        if self.frame_thread is not None:
            self.frame_thread.stop()
            self.frame_thread.deleteLater()
            self.frame_thread = None
        self._update_play_icon()

    def shutdown(self) -> None:
        """Stop every thread this widget started."""
        self.stop_playback()
        self.worker.stop()
