"""The main window: the live view and the inspector as tabs, the sound dock, menus and messages.

It wires sources, threads and widgets together; the widgets only show state, the threads compute.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QProgressBar, QPushButton,
                               QTabWidget, QVBoxLayout, QWidget)

from model import CheckpointError, load_model
from model.gallery import read_labels
from model.import_checkpoint import import_checkpoint

from .audio_panel import AudioPanel
from .export import ExportWorker, save_png
from .finetune import Finetune
from .finetune_panel import FinetunePanel
from .inspector import Inspector
from .live import LivePipeline
from .message_bar import MessageBar
from .player import Monitor, Volume
from .recorder import RecordBar, Recording
from .retrieval import Retrieval
from .retrieval_panel import RetrievalPanel
from .sources import (SAMPLE_RATE, CameraSource, Device, MicrophoneSource, Playlist, PlaylistAudioSource,
                      PlaylistFrameSource, SourceError, has_output_device, list_cameras, list_microphones)
from .video_view import VideoView

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_DIR = RESOURCES / "demo"
WAVEFORM_SECONDS = 3.0
SEEK_SECONDS = 5.0  # Shift+Left / Shift+Right
SILENCE_LEVEL = 1e-4  # a sound whose peak stays under this is digital silence
RETRIEVAL_DOCK_WIDTH = 470  # at most; and at most RETRIEVAL_DOCK_SHARE of the window's width
RETRIEVAL_DOCK_SHARE = 0.3
VIDEO_FILTER = "Videos (*.mp4 *.mkv *.webm *.avi *.mov);;All files (*)"
MESSAGE_TABS = {  # message key -> the tab it belongs to (other keys show on every tab)
    **dict.fromkeys(("source", "sound", "inference"), "live"),
    **dict.fromkeys(("inspector", "inspector-audio", "inspector-inference", "speaker"), "inspector"),
}
CHECKPOINT_FILTERS = {  # file dialog filter -> import format (None: our own safetensors)
    "ssl-desktop model (*.safetensors)": None,
    "SSL-Align published checkpoint (*.pth *.pth.tar *.tar)": "ssl-align",
    "EZ-VSL published checkpoint (*.pth *.pth.tar *.tar)": "ezvsl",
}


def app_settings() -> QSettings:
    """Where the window remembers the devices chosen last (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "ssl-desktop", "ssl-desktop")


@lru_cache(maxsize=256)
def clip_label(path: Path) -> str:
    """``name (class)`` of a clip, the class from the annotations of its folder where there are some."""
    label = read_labels(path.parent).get(path.stem)
    return f"{path.stem} ({label})" if label else path.stem


def demo_clips() -> list[Path]:
    """The bundled demo videos, in name order."""
    return sorted((DEMO_DIR / "videos").glob("*.mp4"))


class MainWindow(QMainWindow):
    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.setWindowTitle("Sound Source Localization — SSL-Align")
        self.setAcceptDrops(True)
        self.device = device
        self.model = None
        self.model_name = ""
        self.live_source_kind = ""  # "camera", "demo", "file" or "custom"
        self.settings = app_settings()
        self.camera: Device | None = None  # the camera in use
        self.microphone: Device | None = self._remembered_microphone()  # None: the default input device
        self.sound_from_video = True  # with the demo or a file as the video: its own sound, else the microphone
        self.live_file: Path | None = None  # the file looped as the live source
        self.export_worker: ExportWorker | None = None
        self.live_volume = Volume(muted=True)  # the demo's or a looped file's sound: M unmutes it
        self.monitor: Monitor | None = None
        self.query_name: str | None = None  # the gallery clip whose sound is the query, None: the sound heard
        self._shown_once = False

        self.messages = MessageBar(MESSAGE_TABS)
        self.messages.set_tab("live")
        self.live_view = VideoView()
        self.inspector = Inspector(device, parent=self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.live_view, "Live")
        self.tabs.addTab(self.inspector, "Inspector")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.messages)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.audio_panel = AudioPanel()
        self.audio_dock = QDockWidget("Sound", self)
        self.audio_dock.setObjectName("sound-dock")
        self.audio_dock.setWidget(self.audio_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.audio_dock)
        self.resizeDocks([self.audio_dock], [self.audio_panel.sizeHint().height()], Qt.Orientation.Vertical)
        self.retrieval_panel = RetrievalPanel()
        self.retrieval_dock = QDockWidget("Retrieval", self)
        self.retrieval_dock.setObjectName("retrieval-dock")
        self.retrieval_dock.setWidget(self.retrieval_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.retrieval_dock)
        self.resizeDocks([self.retrieval_dock], [RETRIEVAL_DOCK_WIDTH], Qt.Orientation.Horizontal)

        self.source_label = QLabel()
        self.model_label = QLabel()
        self.sound_label = QLabel()
        self.export_progress = QProgressBar()
        self.export_progress.setFormat("exporting %v / %m frames")
        self.export_cancel = QPushButton("Cancel export")
        self.statusBar().addWidget(self.source_label)
        self.statusBar().addPermanentWidget(self.export_progress)
        self.statusBar().addPermanentWidget(self.export_cancel)
        self.statusBar().addPermanentWidget(self.sound_label)
        self.statusBar().addPermanentWidget(self.model_label)
        self.export_progress.hide()
        self.export_cancel.hide()

        self.pipeline = LivePipeline(device, parent=self)
        self.pipeline.frame_captured.connect(lambda frame: self.live_view.show_frame(frame.image))
        self.pipeline.result.connect(self._show_live_result)
        self.pipeline.presence.connect(self._show_presence)
        self.pipeline.spectrogram_ready.connect(self._show_live_spectrogram)
        self.pipeline.inference_failed.connect(lambda text: self.messages.show_message("inference", text, "error"))
        self.pipeline.source_failed.connect(self._on_source_failed)
        self.pipeline.source_stalled.connect(
            lambda text: self._show_or_clear_message("capture", text and f"{text}: retrying", "warning"))
        self.inspector.message.connect(self._show_or_clear_message)
        self.inspector.waveform_changed.connect(self._show_inspector_waveform)
        self.inspector.spectrogram_ready.connect(self._show_inspector_spectrogram)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.retrieval = Retrieval(self.retrieval_panel, device, parent=self)
        self.retrieval.message.connect(self._show_or_clear_message)
        self.retrieval.open_clip.connect(lambda path: self.open_paths([path]))
        self.retrieval.query_sound_changed.connect(self._use_query_sound)
        self.pipeline.worker.embeddings.connect(self._offer_live_embeddings)
        self.inspector.worker.embeddings.connect(self._offer_inspector_embeddings)

        self.waveform_timer = QTimer(self)
        self.waveform_timer.setInterval(50)
        self.waveform_timer.timeout.connect(self._show_live_waveform)
        self.waveform_timer.timeout.connect(self._show_audio_overflows)
        self.waveform_timer.start()

        self._build_menus()
        self._build_teaching()
        self._show_model_state()

    # --- menus ------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_action(file_menu, "&Open video…", self._choose_videos, QKeySequence.StandardKey.Open)
        self._add_action(file_menu, "&Import checkpoint…", self._choose_checkpoint)
        self._add_action(file_menu, "&Build gallery…", self._choose_gallery_folder)
        file_menu.addSeparator()
        self._add_action(file_menu, "Export &frame as PNG…", self._choose_frame_export, "Ctrl+E")
        self.export_clip_action = self._add_action(file_menu, "Export &clip with heatmap as MP4…",
                                                   self._choose_clip_export, "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.source_menu = self.menuBar().addMenu("&Source")
        self.source_menu.aboutToShow.connect(self._fill_source_menu)
        self._fill_source_menu()

        self._build_playback_menu()

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.audio_dock.toggleViewAction())
        view_menu.addAction(self.retrieval_dock.toggleViewAction())

    def _build_teaching(self) -> None:
        """Teach it your world: the record bar under the live view, the fine-tune dock, the Teach menu."""
        self.record_bar = RecordBar()
        self.live_view.layout().addWidget(self.record_bar)
        self.recording = Recording(self.record_bar, self.pipeline, self.settings, parent=self)
        self.recording.open_clip.connect(lambda path: self.open_paths([path]))
        self.recording.message.connect(self._show_or_clear_message)
        self.finetune_panel = FinetunePanel()
        self.finetune = Finetune(self.finetune_panel, self, parent=self)
        self.finetune_dock = QDockWidget("Fine-tune", self)
        self.finetune_dock.setObjectName("finetune-dock")
        self.finetune_dock.setWidget(self.finetune_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.finetune_dock)
        self.tabifyDockWidget(self.retrieval_dock, self.finetune_dock)
        self.finetune_dock.hide()  # Teach > Fine-tune shows it (as a tab beside Retrieval)
        menu = self.menuBar().addMenu("&Teach")
        self._add_action(menu, "&Record a clip", self.recording.toggle, "Ctrl+R")
        menu.addAction(self.finetune_dock.toggleViewAction())

    def _build_playback_menu(self) -> None:
        """The keys of mpv / VLC, working anywhere in the window (menu actions are window shortcuts)."""
        menu = self.menuBar().addMenu("&Playback")
        inspector = self.inspector
        for text, slot, keys in (("Play / pause", inspector.toggle_play, "Space"),
                                 ("Previous frame", lambda: inspector.step(-1), "Left"),
                                 ("Next frame", lambda: inspector.step(1), "Right"),
                                 (f"Back {SEEK_SECONDS:g} s", lambda: inspector.seek_by(-SEEK_SECONDS), "Shift+Left"),
                                 (f"Forward {SEEK_SECONDS:g} s", lambda: inspector.seek_by(SEEK_SECONDS),
                                  "Shift+Right")):
            self._add_action(menu, text, lambda checked=False, act=slot: self._in_inspector(act), keys)
        self.loop_action = self._add_action(menu, "&Loop", inspector.set_loop, "L")
        self.loop_action.setCheckable(True)
        menu.addSeparator()
        self.mute_action = self._add_action(menu, "&Mute", self._set_muted, "M")
        self.mute_action.setCheckable(True)
        self._add_action(menu, "Volume down", lambda: self._change_volume(-1), "9")
        self._add_action(menu, "Volume up", lambda: self._change_volume(1), "0")
        self._show_sound_state()

    def _in_inspector(self, action) -> None:
        """Transport keys act on the inspector while it is the tab shown."""
        if not self._live_active():
            action()

    @property
    def volume(self) -> Volume:
        """The volume of the sound playing in the tab shown."""
        return self.live_volume if self._live_active() else self.inspector.volume

    def _set_muted(self, muted: bool) -> None:
        self.volume.muted = muted
        if self._live_active() and not muted and self.monitor is None:
            reason = ("no sound output device" if self._uses_video_sound()
                      else "a microphone is never played back (it would feed back)")
            self.statusBar().showMessage(f"the live sound is not played: {reason}", 8000)
        self._show_sound_state()

    def _change_volume(self, steps: int) -> None:
        self.volume.change(steps)
        self._show_sound_state()

    def _show_sound_state(self) -> None:
        volume = self.volume
        self.mute_action.setChecked(volume.muted)
        self.sound_label.setText(f"sound {volume.describe()} (M)")

    def _add_action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _fill_source_menu(self) -> None:
        """The video and the sound sources, chosen apart, listed anew each time the menu opens; the ones
        in use are checked."""
        menu = self.source_menu
        menu.clear()
        kind = self.live_source_kind
        menu.addSection("Video")
        videos = QActionGroup(menu)
        cameras = list_cameras()
        for camera in cameras:
            self._add_choice(menu, videos, camera.name, lambda c=camera: self.use_camera(c),
                             kind == "camera" and camera == self.camera)
        if not cameras:
            menu.addAction("no camera found").setEnabled(False)
        self._add_choice(menu, videos, "Bundled demo clips", self.use_demo, kind == "demo")
        file_text = f"Video file: {self.live_file.name}" if kind == "file" else "Video file as a live source…"
        self._add_choice(menu, videos, file_text, self._choose_live_file, kind == "file")
        menu.addSection("Sound")
        sounds = QActionGroup(menu)
        own = self._add_choice(menu, sounds, "The video's own sound", self.use_video_sound,
                               self._uses_video_sound())
        own.setEnabled(kind in ("demo", "file"))
        try:
            microphones = list_microphones()
        except SourceError as exc:
            menu.addAction(str(exc)).setEnabled(False)
            microphones = []
        for microphone in [None, *microphones]:
            self._add_choice(menu, sounds, microphone.name if microphone else "default microphone",
                             lambda m=microphone: self.use_microphone(m),
                             not self._uses_video_sound() and microphone == self.microphone)

    def _add_choice(self, menu, group, text, slot, checked: bool) -> QAction:
        action = self._add_action(menu, text, lambda checked=False: slot())
        action.setCheckable(True)
        action.setChecked(checked)
        group.addAction(action)
        return action

    def _uses_video_sound(self) -> bool:
        return self.live_source_kind in ("demo", "file") and self.sound_from_video

    # --- the model --------------------------------------------------------------------------

    def load_checkpoint(self, path, fmt: str | None = None) -> bool:
        """Load our safetensors model (``fmt`` None) or import a published one; a failure is a message."""
        try:
            if fmt is None:
                model = load_model(path, self.device)
            else:
                model, report = import_checkpoint(path, fmt)
                model = model.to(self.device)
                self.statusBar().showMessage(f"imported {report.describe()}", 15000)
        except (CheckpointError, OSError, RuntimeError, ValueError) as exc:
            if self.model is None:
                text = f"no model loaded: {exc}"
            else:
                text = f"checkpoint not loaded, still using {self.model_name}: {exc}"
            self.messages.show_message("model", text, "error")
            return False
        self.set_model(model, Path(path).name)
        return True

    def set_model(self, model, name: str) -> None:
        self.model, self.model_name = model, name
        self.pipeline.set_model(model)
        self.inspector.set_model(model)
        self.retrieval.set_model(model)
        self.finetune.set_model(model, name)
        self.messages.clear("model")
        self._show_model_state()

    def _show_model_state(self) -> None:
        self.model_label.setText(f"model: {self.model_name} on {self.device}" if self.model else "no model")
        self.export_clip_action.setEnabled(self.model is not None)

    # --- live sources -----------------------------------------------------------------------

    def start_source(self, choice: str) -> None:
        """``camera`` (falls back to the demo), ``demo`` or the path of a video file to loop."""
        if choice == "camera":
            self.use_camera(None)
        elif choice == "demo":
            self.use_demo()
        else:
            self.use_file(Path(choice))

    def use_camera(self, camera: Device | None) -> None:
        """Go live with ``camera`` (None: the first one) and the chosen microphone."""
        if camera is None:
            cameras = list_cameras()
            if not cameras:
                self.messages.show_message("source", "no camera found: showing the bundled demo clips instead", "info")
                self.use_demo(keep_message=True)
                return
            remembered = self.settings.value("camera")
            camera = next((c for c in cameras if c.name == remembered), cameras[0])
        self.camera = camera
        self.settings.setValue("camera", camera.name)
        self.messages.clear("source")
        self.start_sources(CameraSource(camera.index, camera.name), self._microphone_source(), "camera")

    def use_microphone(self, microphone: Device | None) -> None:
        """Hear ``microphone`` (None: the default one), also with the demo or a file as the video."""
        self.microphone = microphone
        self.sound_from_video = False
        self.settings.setValue("microphone", microphone.name if microphone else "")
        self._restart_live()

    def use_video_sound(self) -> None:
        """Hear the demo's or the file's own sound again."""
        self.sound_from_video = True
        self._restart_live()

    def _restart_live(self) -> None:
        if self.live_source_kind == "camera":
            self.use_camera(self.camera)
        elif self.live_source_kind == "demo":
            self.use_demo()
        elif self.live_source_kind == "file":
            self.use_file(self.live_file)

    def _remembered_microphone(self) -> Device | None:
        """The microphone chosen last time, when it is still there (None: the default one)."""
        name = self.settings.value("microphone", "")
        try:
            return next((m for m in list_microphones() if m.name == name), None) if name else None
        except SourceError:
            return None

    def _microphone_source(self) -> MicrophoneSource:
        return MicrophoneSource(self.microphone.index if self.microphone else None,
                                self.microphone.name if self.microphone else None)

    def _playlist_sources(self, playlist: Playlist):
        """The playlist's frames with its own sound, or with the microphone chosen instead."""
        sound = PlaylistAudioSource(playlist) if self.sound_from_video else self._microphone_source()
        return PlaylistFrameSource(playlist), sound

    def use_demo(self, keep_message: bool = False) -> None:
        clips = demo_clips()
        if not clips:
            self.messages.show_message("source", f"no demo clips in {DEMO_DIR / 'videos'} "
                                       "(make them with: python bench/make_demo_clips.py)", "error")
            return
        if not keep_message:
            self.messages.clear("source")
        self.start_sources(*self._playlist_sources(Playlist(clips)), "demo")

    def use_file(self, path: Path) -> None:
        """Loop a video file as if it were a camera and a microphone."""
        self.messages.clear("source")
        self.live_file = path
        self.start_sources(*self._playlist_sources(Playlist([path])), "file")

    def start_sources(self, frame_source, audio_source, kind: str = "custom") -> None:
        """Run any frame and audio source live (the devices, the demo, or test sources)."""
        self.live_source_kind = kind
        self.live_view.clear()
        self.audio_panel.clear()
        problem = self.pipeline.start(frame_source, audio_source)
        self._start_monitor(isinstance(audio_source, PlaylistAudioSource))
        if problem:
            self.messages.show_message("sound", f"no sound ({problem}): the heatmap needs sound", "warning")
        else:
            self.messages.clear("sound")
        self.source_label.setText(f"live: {frame_source.name} + {self.pipeline.audio_source.name}")

    def _start_monitor(self, wanted: bool) -> None:
        """Play the live sound (muted until M) when it comes from the demo or a file and can be played."""
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        if wanted and has_output_device():
            monitor = Monitor(self.pipeline.ring, self.live_volume)
            try:
                monitor.start()
                self.monitor = monitor
            except SourceError as exc:
                self.statusBar().showMessage(f"the live sound is not played: {exc}", 8000)

    def _on_source_failed(self, text: str) -> None:
        if self.live_source_kind in ("camera", "file"):
            self.messages.show_message("source", f"{text}: showing the bundled demo clips instead", "warning")
            self.use_demo(keep_message=True)
        else:
            self.messages.show_message("source", text, "error")

    def _choose_live_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Video file to loop as a live source", "", VIDEO_FILTER)
        if path:
            self.use_file(Path(path))

    # --- live display -----------------------------------------------------------------------

    def _show_live_result(self, frame_id: int, heatmap, latency: float) -> None:
        self.live_view.show_heatmap(heatmap, latency)
        self.messages.clear("inference")

    def _show_presence(self, state: str) -> None:
        """Below the model's presence threshold: the overlay fades and the window says why."""
        self.live_view.fade_overlay(bool(state))
        if state:
            self.messages.show_message("presence", state, "info")
        else:
            self.messages.clear("presence")

    def _live_active(self) -> bool:
        return self.tabs.currentWidget() is self.live_view

    def _show_live_waveform(self) -> None:
        if not self._live_active():
            return
        samples = self.pipeline.ring.snapshot(int(WAVEFORM_SECONDS * SAMPLE_RATE))
        if self.audio_dock.isVisible():
            self.audio_panel.show_waveform(samples, SAMPLE_RATE, -WAVEFORM_SECONDS)
        heard = samples[-self.model.audio_config.num_samples:] if self.model else samples
        playing = self.pipeline.frame_source.playlist if isinstance(self.pipeline.frame_source,
                                                                    PlaylistFrameSource) else None
        clip = clip_label(playing.paths[playing.locate(playing.position())[0]]) if playing and playing.infos else ""
        sound = None if self.pipeline.silent else heard
        self.live_view.set_listening(self._listening(sound, "the live sound", clip))

    def _listening(self, samples, what: str, clip: str) -> str:
        """What the heatmap listens to, said on the picture, with the clip playing."""
        playing = f"  ·  playing {clip}" if clip else ""
        if self.query_name:
            return f"listening to: gallery clip {self.query_name} (the query sound){playing}"
        if samples is None:
            return f"no sound: no heatmap{playing}"
        if np.abs(samples).max() < SILENCE_LEVEL:
            return f"listening to: silence{playing}"
        return f"listening to: {what}{playing}"

    def _show_audio_overflows(self) -> None:
        """A banner counting the blocks of sound the live audio source lost (a busy computer)."""
        source = self.pipeline.audio_source
        if source is None or not source.overflows:
            return
        text = f"{source.name} lost sound {source.overflows} times (the computer was too busy to take it)"
        if self.messages.text("microphone") != text:
            self.messages.show_message("microphone", text, "warning")

    def _show_live_spectrogram(self, spec) -> None:
        if self._live_active():
            self.audio_panel.show_spectrogram(spec, SAMPLE_RATE)

    def _show_inspector_waveform(self, samples, sample_rate: int, start: float, cursor: float) -> None:
        if not self._live_active():
            self.audio_panel.show_waveform(samples, sample_rate, start, cursor)
            clip = clip_label(self.inspector.file.path)
            self.inspector.view.set_listening(self._listening(samples, "its sound", clip))

    def _show_inspector_spectrogram(self, spec) -> None:
        if not self._live_active():
            self.audio_panel.show_spectrogram(spec, SAMPLE_RATE)

    def _on_tab_changed(self) -> None:
        live = self._live_active()
        self.messages.set_tab("live" if live else "inspector")
        self.pipeline.inference_enabled = live  # one model at work at a time
        if live:
            self.inspector.pause()
        self.audio_panel.clear()
        self._show_sound_state()

    # --- retrieval --------------------------------------------------------------------------

    def _offer_live_embeddings(self, audio, image) -> None:
        if self._live_active():
            self.retrieval.offer(audio, image)

    def _offer_inspector_embeddings(self, audio, image) -> None:
        if not self._live_active():
            self.retrieval.offer(audio, image)

    def _use_query_sound(self, sound) -> None:
        """Localize a gallery clip's sound (None: the sound heard) in the live and inspected frames."""
        self.query_name = self.retrieval_panel.query_chooser.currentText() if sound is not None else None
        self.pipeline.worker.set_audio_override(sound)
        self.inspector.worker.set_audio_override(sound)

    def _choose_gallery_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of video clips to index", str(DEMO_DIR))
        if folder:
            self.retrieval.build(folder)

    # --- files ------------------------------------------------------------------------------

    def open_paths(self, paths) -> None:
        """Open video files in the inspector and play the first (File > Open, drag-and-drop, ``--open``)."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        problems = self.inspector.open_paths(paths)
        if problems:
            self.messages.show_message("file", "; ".join(problems), "error")
        else:
            self.messages.clear("file")
        if self.inspector.file is not None and len(problems) < len(paths):
            self.tabs.setCurrentWidget(self.inspector)
            self.inspector.play()

    def _show_or_clear_message(self, key: str, text: str, level: str) -> None:
        if text:
            self.messages.show_message(key, text, level)
        else:
            self.messages.clear(key)

    def _choose_videos(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open videos", "", VIDEO_FILTER)
        self.open_paths(paths)

    def _choose_checkpoint(self) -> None:
        path, chosen = QFileDialog.getOpenFileName(self, "Import checkpoint", str(RESOURCES),
                                                   ";;".join(CHECKPOINT_FILTERS))
        if path:
            self.load_checkpoint(path, CHECKPOINT_FILTERS.get(chosen))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.open_paths([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()])
        event.acceptProposedAction()

    # --- exports ----------------------------------------------------------------------------

    def current_view(self) -> VideoView:
        return self.live_view if self._live_active() else self.inspector.view

    def export_frame(self, path) -> bool:
        """Save the frame on screen with its overlay as a PNG; a failure is a message."""
        image = self.current_view().composite()
        if image is None:
            self.messages.show_message("export", "no frame to export yet", "warning")
            return False
        try:
            save_png(path, image)
        except OSError as exc:
            self.messages.show_message("export", str(exc), "error")
            return False
        self.statusBar().showMessage(f"saved {path}", 5000)
        return True

    def export_clip(self, target) -> bool:
        """Export the inspector's file with heatmaps and sound to ``target`` (MP4), in a thread."""
        if self.inspector.file is None or self.model is None or self.export_worker is not None:
            reason = ("open a video in the inspector first" if self.inspector.file is None else
                      "no model loaded" if self.model is None else "an export is already running")
            self.messages.show_message("export", f"cannot export a clip: {reason}", "warning")
            return False
        view = self.inspector.view
        self.export_worker = ExportWorker(self.model, self.device, self.inspector.file.path, target,
                                          view.lut, view.opacity, view.value_range, parent=self)
        self.export_worker.progress.connect(self._show_export_progress)
        self.export_worker.succeeded.connect(lambda path: self._end_export(f"exported {path}", "info"))
        self.export_worker.failed.connect(lambda text: self._end_export(text, "error"))
        self.export_worker.cancelled.connect(lambda: self._end_export("export cancelled", "info"))
        self.export_cancel.clicked.connect(self.export_worker.cancel)
        self.export_progress.setValue(0)
        self.export_progress.show()
        self.export_cancel.show()
        self.export_worker.start()
        return True

    def _show_export_progress(self, done: int, total: int) -> None:
        self.export_progress.setRange(0, total)
        self.export_progress.setValue(done)

    def _end_export(self, text: str, level: str) -> None:
        if self.export_worker is None:  # already ended by shutdown
            return
        self.export_worker.wait()
        self.export_cancel.clicked.disconnect()
        self.export_worker.deleteLater()
        self.export_worker = None
        self.export_progress.hide()
        self.export_cancel.hide()
        self.messages.show_message("export", text, level)

    def _choose_frame_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export frame", "frame.png", "PNG images (*.png)")
        if path:
            self.export_frame(path)

    def _choose_clip_export(self) -> None:
        default = f"{self.inspector.file.path.stem}_heatmap.mp4" if self.inspector.file else "clip_heatmap.mp4"
        path, _ = QFileDialog.getSaveFileName(self, "Export clip", default, "MP4 videos (*.mp4)")
        if path:
            self.export_clip(path)

    # --- shutdown ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every thread and release the camera and the microphone (idempotent)."""
        self.waveform_timer.stop()
        if self.export_worker is not None:
            self.export_worker.cancel()
            self.export_worker.wait()
            self.export_worker = None
        self.retrieval.shutdown()
        self.recording.recorder.shutdown()
        self.finetune.shutdown()
        self._start_monitor(False)
        self.pipeline.shutdown()
        self.inspector.shutdown()

    def showEvent(self, event) -> None:
        """The first time, give the retrieval dock its width for the window's size (down to 1024x640)."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            width = min(RETRIEVAL_DOCK_WIDTH, int(RETRIEVAL_DOCK_SHARE * self.width()))
            self.resizeDocks([self.retrieval_dock], [width], Qt.Orientation.Horizontal)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
