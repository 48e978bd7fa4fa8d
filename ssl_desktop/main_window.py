"""The main window: the live view and the inspector as tabs, the sound dock, menus and messages.

It wires sources, threads and widgets together; the widgets only show state, the threads compute.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QProgressBar, QPushButton,
                               QTabWidget, QVBoxLayout, QWidget)

from model import CheckpointError, load_model
from model.import_checkpoint import import_checkpoint

from .audio_panel import AudioPanel
from .export import ExportWorker, save_png
from .inspector import Inspector
from .live import LivePipeline
from .message_bar import MessageBar
from .retrieval import Retrieval
from .retrieval_panel import RetrievalPanel
from .sources import (SAMPLE_RATE, CameraSource, Device, MicrophoneSource, Playlist, PlaylistAudioSource,
                      PlaylistFrameSource, SourceError, list_cameras, list_microphones)
from .video_view import VideoView

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_DIR = RESOURCES / "demo"
WAVEFORM_SECONDS = 3.0
RETRIEVAL_DOCK_WIDTH = 470
VIDEO_FILTER = "Videos (*.mp4 *.mkv *.webm *.avi *.mov);;All files (*)"
CHECKPOINT_FILTERS = {  # file dialog filter -> import format (None: our own safetensors)
    "ssl-desktop model (*.safetensors)": None,
    "SSL-Align published checkpoint (*.pth *.pth.tar *.tar)": "ssl-align",
    "EZ-VSL published checkpoint (*.pth *.pth.tar *.tar)": "ezvsl",
}


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
        self.camera: Device | None = None  # the camera in use
        self.microphone: Device | None = None  # None: the default input device
        self.export_worker: ExportWorker | None = None

        self.messages = MessageBar()
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
        self.export_progress = QProgressBar()
        self.export_progress.setFormat("exporting %v / %m frames")
        self.export_cancel = QPushButton("Cancel export")
        self.statusBar().addWidget(self.source_label)
        self.statusBar().addPermanentWidget(self.export_progress)
        self.statusBar().addPermanentWidget(self.export_cancel)
        self.statusBar().addPermanentWidget(self.model_label)
        self.export_progress.hide()
        self.export_cancel.hide()

        self.pipeline = LivePipeline(device, parent=self)
        self.pipeline.frame_captured.connect(lambda frame: self.live_view.show_frame(frame.image))
        self.pipeline.result.connect(self._show_live_result)
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

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.audio_dock.toggleViewAction())
        view_menu.addAction(self.retrieval_dock.toggleViewAction())

    def _add_action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _fill_source_menu(self) -> None:
        """Cameras, microphones and the demo, listed anew each time the menu opens."""
        menu = self.source_menu
        menu.clear()
        cameras = list_cameras()
        menu.addSection("Camera")
        for camera in cameras:
            self._add_action(menu, camera.name, lambda checked=False, c=camera: self.use_camera(c))
        if not cameras:
            menu.addAction("no camera found").setEnabled(False)
        menu.addSection("Microphone")
        try:
            microphones = list_microphones()
        except SourceError as exc:
            menu.addAction(str(exc)).setEnabled(False)
            microphones = []
        group = QActionGroup(menu)
        for microphone in [None, *microphones]:
            action = self._add_action(menu, microphone.name if microphone else "default microphone",
                                      lambda checked=False, m=microphone: self.use_microphone(m))
            action.setCheckable(True)
            action.setChecked(microphone == self.microphone)
            group.addAction(action)
        menu.addSection("Demo")
        self._add_action(menu, "Bundled demo clips", self.use_demo)
        self._add_action(menu, "Video file as a live source…", self._choose_live_file)

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
            camera = cameras[0]
        self.camera = camera
        self.messages.clear("source")
        microphone = MicrophoneSource(self.microphone.index if self.microphone else None,
                                      self.microphone.name if self.microphone else None)
        self.start_sources(CameraSource(camera.index, camera.name), microphone, "camera")

    def use_microphone(self, microphone: Device | None) -> None:
        self.microphone = microphone
        if self.live_source_kind == "camera":
            self.use_camera(self.camera)

    def use_demo(self, keep_message: bool = False) -> None:
        clips = demo_clips()
        if not clips:
            self.messages.show_message("source", f"no demo clips in {DEMO_DIR / 'videos'} "
                                       "(make them with: python bench/make_demo_clips.py)", "error")
            return
        if not keep_message:
            self.messages.clear("source")
        playlist = Playlist(clips)
        self.start_sources(PlaylistFrameSource(playlist), PlaylistAudioSource(playlist), "demo")

    def use_file(self, path: Path) -> None:
        """Loop a video file as if it were a camera and a microphone."""
        self.messages.clear("source")
        playlist = Playlist([path])
        self.start_sources(PlaylistFrameSource(playlist), PlaylistAudioSource(playlist), "file")

    def start_sources(self, frame_source, audio_source, kind: str = "custom") -> None:
        """Run any frame and audio source live (the devices, the demo, or test sources)."""
        self.live_source_kind = kind
        self.live_view.clear()
        self.audio_panel.clear()
        problem = self.pipeline.start(frame_source, audio_source)
        if problem:
            self.messages.show_message("sound", f"no sound ({problem}): the heatmap needs sound", "warning")
        else:
            self.messages.clear("sound")
        self.source_label.setText(f"live: {frame_source.name} + {self.pipeline.audio_source.name}")

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

    def _live_active(self) -> bool:
        return self.tabs.currentWidget() is self.live_view

    def _show_live_waveform(self) -> None:
        if self._live_active() and self.audio_dock.isVisible():
            samples = self.pipeline.ring.snapshot(int(WAVEFORM_SECONDS * SAMPLE_RATE))
            self.audio_panel.show_waveform(samples, SAMPLE_RATE, -WAVEFORM_SECONDS)

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

    def _show_inspector_spectrogram(self, spec) -> None:
        if not self._live_active():
            self.audio_panel.show_spectrogram(spec, SAMPLE_RATE)

    def _on_tab_changed(self) -> None:
        live = self._live_active()
        self.pipeline.inference_enabled = live  # one model at work at a time
        if live:
            self.inspector.pause()
        self.audio_panel.clear()

    # --- retrieval --------------------------------------------------------------------------

    def _offer_live_embeddings(self, audio, image) -> None:
        if self._live_active():
            self.retrieval.offer(audio, image)

    def _offer_inspector_embeddings(self, audio, image) -> None:
        if not self._live_active():
            self.retrieval.offer(audio, image)

    def _use_query_sound(self, sound) -> None:
        """Localize a gallery clip's sound (None: the sound heard) in the live and inspected frames."""
        self.pipeline.worker.set_audio_override(sound)
        self.inspector.worker.set_audio_override(sound)

    def _choose_gallery_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of video clips to index", str(DEMO_DIR))
        if folder:
            self.retrieval.build(folder)

    # --- files ------------------------------------------------------------------------------

    def open_paths(self, paths) -> None:
        """Open video files in the inspector (File > Open and drag-and-drop both end here)."""
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
                                          view.lut, view.opacity, parent=self)
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
        self.pipeline.shutdown()
        self.inspector.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
