"""The main window: the live view and the inspector as tabs, the sound dock, menus and messages.

It wires sources, threads and widgets together; the widgets only show state, the threads compute.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from model import CheckpointError, load_model
from model.inference.fast_path import InferenceConfig
from model.gallery.index import read_labels
from model.checkpoints.import_published import import_checkpoint
from model.localize import ViewSettings

from .audio_panel import AudioPanel
from .export import Exports
from .finetune import Finetune
from .finetune_panel import FinetunePanel
from .inspector import Inspector
from .live import LivePipeline
from .live_sources import LiveSources
from .menus import WindowMenus
from .message_bar import MessageBar
from .player import Volume
from .recorder import RecordBar, Recording
from .retrieval import Retrieval
from .retrieval_panel import RetrievalPanel
from .video_view import VideoView

WAVEFORM_SECONDS = 3.0
SILENCE_LEVEL = 1e-4  # a sound whose peak stays under this is digital silence
RETRIEVAL_DOCK_WIDTH = 470  # at most; and at most RETRIEVAL_DOCK_SHARE of the window's width
RETRIEVAL_DOCK_SHARE = 0.3
MESSAGE_TABS = {  # message key -> the tab it belongs to (other keys show on every tab)
    **dict.fromkeys(("source", "source-file", "sound", "inference"), "live"),
    **dict.fromkeys(("inspector", "inspector-audio", "inspector-frames", "inspector-inference", "speaker"),
                    "inspector"),
}


def app_settings() -> QSettings:
    """Where the window remembers the devices chosen last (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "ssl-desktop", "ssl-desktop")


@lru_cache(maxsize=256)
def clip_label(path: Path) -> str:
    """``name (class)`` of a clip, the class from the annotations of its folder where there are some."""
    label = read_labels(path.parent).get(path.stem)
    return f"{path.stem} ({label})" if label else path.stem


class MainWindow(QMainWindow):
    def __init__(self, device: str = "cpu", live_inference: InferenceConfig | None = None):
        """``live_inference``: how the live view runs the encoders (None: the worker's default)."""
        super().__init__()
        self.setWindowTitle("Sound Source Localization — SSL-Align")
        self.setAcceptDrops(True)
        self.device = device
        self.model = None
        self.model_name = ""
        self.view = ViewSettings()  # what the heatmaps show (object guidance on or off, which map)
        self.settings = app_settings()
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
        self.export_progress.setMinimumWidth(  # the text on one line, whole, for clips of up to 99,999 frames
            self.export_progress.fontMetrics().horizontalAdvance("exporting 99999 / 99999 frames") + 40)
        self.export_cancel = QPushButton("Cancel export")
        self.exports = Exports(self)
        self.exports.message.connect(self._show_or_clear_message)
        self.exports.note.connect(self.statusBar().showMessage)
        self.exports.progress.connect(self._show_export_progress)
        self.exports.running_changed.connect(self._show_export_running)
        self.export_cancel.clicked.connect(self.exports.cancel)
        self.statusBar().addWidget(self.source_label)
        self.statusBar().addPermanentWidget(self.export_progress)
        self.statusBar().addPermanentWidget(self.export_cancel)
        self.statusBar().addPermanentWidget(self.sound_label)
        self.statusBar().addPermanentWidget(self.model_label)
        self.export_progress.hide()
        self.export_cancel.hide()

        self.pipeline = LivePipeline(device, live_inference, parent=self)
        self.pipeline.frame_captured.connect(lambda frame: self.live_view.show_frame(frame.image))
        self.pipeline.result.connect(self._show_live_result)
        self.pipeline.presence.connect(self.live_view.set_presence)
        self.pipeline.spectrogram_ready.connect(self._show_live_spectrogram)
        self.pipeline.inference_failed.connect(lambda text: self.messages.show_message("inference", text, "error"))
        self.pipeline.source_stalled.connect(
            lambda text: self._show_or_clear_message("capture", text and f"{text}: retrying", "warning"))
        self.pipeline.source_faulty.connect(lambda text: self._show_or_clear_message("source-file", text, "warning"))
        self.inspector.message.connect(self._show_or_clear_message)
        self.inspector.spectrogram_ready.connect(self._show_inspector_spectrogram)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.retrieval = Retrieval(self.retrieval_panel, device, parent=self)
        self.retrieval.message.connect(self._show_or_clear_message)
        self.retrieval.open_clip.connect(lambda path: self.open_paths([path]))
        self.retrieval.query_sound_changed.connect(self._use_query_sound)
        self.pipeline.embeddings.connect(self._offer_live_embeddings)
        self.inspector.embeddings.connect(self._offer_inspector_embeddings)

        self.waveform_timer = QTimer(self)
        self.waveform_timer.setInterval(50)
        self.waveform_timer.timeout.connect(self._show_waveform)
        self.waveform_timer.timeout.connect(self._show_audio_overflows)
        self.waveform_timer.start()

        self.sources = LiveSources(self.pipeline, self.settings, parent=self)
        self.sources.message.connect(self._show_or_clear_message)
        self.sources.note.connect(self.statusBar().showMessage)
        self.sources.started.connect(self._show_live_start)

        self.menus = WindowMenus(self, self.inspector, self.sources,
                                 [self.audio_dock.toggleViewAction(), self.retrieval_dock.toggleViewAction()])
        self.menus.videos_chosen.connect(self.open_paths)
        self.menus.checkpoint_chosen.connect(self.load_checkpoint)
        self.menus.gallery_folder_chosen.connect(self.retrieval.build)
        self.menus.frame_export_chosen.connect(self.export_frame)
        self.menus.clip_export_chosen.connect(self.export_clip)
        self.menus.objects_toggled.connect(self.show_objects)
        self.menus.map_chosen.connect(self.show_map)
        self.menus.transport.connect(self.in_inspector)
        self.menus.mute_toggled.connect(self.set_muted)
        self.menus.volume_stepped.connect(self.change_volume)
        self._build_teaching()
        self._show_sound_state()
        self._show_model_state()

    def _build_teaching(self) -> None:
        """Teach it your world: the record bar under the live view, the fine-tune dock (tabbed with Retrieval)
        and their Teach menu."""
        self.record_bar = RecordBar()
        self.live_view.layout().addWidget(self.record_bar)
        self.recording = Recording(self.record_bar, self.pipeline, self.settings, parent=self)
        self.recording.open_clip.connect(lambda path: self.open_paths([path]))
        self.recording.message.connect(self._show_or_clear_message)
        self.finetune_panel = FinetunePanel()
        self.finetune = Finetune(self.finetune_panel, self.device, self)
        self.finetune.model_chosen.connect(self.set_model)
        self.finetune_dock = QDockWidget("Fine-tune", self)
        self.finetune_dock.setObjectName("finetune-dock")
        self.finetune_dock.setWidget(self.finetune_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.finetune_dock)
        self.tabifyDockWidget(self.retrieval_dock, self.finetune_dock)
        self.finetune_dock.hide()  # Teach > Fine-tune shows it, as the tab in front beside Retrieval
        self.finetune_dock.toggleViewAction().triggered.connect(self._raise_finetune)
        self.menus.add_teach_menu(self.recording.toggle, self.finetune_dock.toggleViewAction())

    def _raise_finetune(self, shown: bool) -> None:
        if shown:  # once the dock is back in its tab bar (the main window lays it out on the next turn)
            QTimer.singleShot(0, self.finetune_dock.raise_)

    # --- sound and transport (the Playback menu) -----------------------------------------------

    def in_inspector(self, action) -> None:
        """Transport keys act on the inspector while it is the tab shown."""
        if not self._live_active():
            action()

    @property
    def volume(self) -> Volume:
        """The volume of the sound playing in the tab shown."""
        return self.sources.volume if self._live_active() else self.inspector.volume

    def set_muted(self, muted: bool) -> None:
        self.volume.muted = muted
        if self._live_active() and not muted and (reason := self.sources.unplayed_reason()):
            self.statusBar().showMessage(f"the live sound is not played: {reason}", 8000)
        self._show_sound_state()

    def change_volume(self, steps: int) -> None:
        self.volume.change(steps)
        self._show_sound_state()

    def _show_sound_state(self) -> None:
        volume = self.volume
        self.menus.mute_action.setChecked(volume.muted)
        self.sound_label.setText(f"sound {volume.describe()} (M)")

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
        """Use ``model`` everywhere: live view, inspector and retrieval (the gallery is indexed again)."""
        rate_changed = self.model is not None and model.audio_config.sample_rate != self.pipeline.sample_rate
        self.model, self.model_name = model, name
        self.pipeline.set_model(model)
        self.inspector.set_model(model)
        self.retrieval.set_model(model)
        self.finetune.set_model(model, name)
        self.messages.clear("model")
        self._set_view(ViewSettings())  # a new model is shown as it says
        if rate_changed:  # the sources deliver sound at the model's rate
            self.sources.restart()

    def show_objects(self, on: bool) -> None:
        """Mix the visual encoder's objectness into the heatmaps at the model's own weight, or show the cosine map
        alone (the paper's), in every view from its next frame; the model stays as loaded."""
        if self.model is not None and self.model.guidance.weight > 0:
            self._set_view(replace(self.view, objects=on))

    def show_map(self, shown: str) -> None:
        """Which map the heatmaps show (``model.localize.SHOWN_MAPS``): the alignment model's mixed with the
        semantic map at the model's own weight, the alignment model's alone (the paper's), or the semantic map
        alone, in every view from its next frame; presence keeps the model's rule."""
        if self.model is not None and self.model.semantic.enabled:
            self._set_view(replace(self.view, shown=shown))

    def _set_view(self, view: ViewSettings) -> None:
        self.view = view
        self.pipeline.set_view(view)
        self.inspector.set_view(view)
        self.finetune.set_view(view)
        self._show_model_state()

    def _show_model_state(self) -> None:
        model, view = self.model, self.view
        guided = model is not None and view.object_weight(model.guidance) > 0
        guidance = f", object-guided {model.guidance.weight:g}" if guided else ""
        knows = model is not None and model.semantic.enabled
        knowledge = ""
        if knows:
            weight, people = view.semantic_weight(model.semantic), view.semantic_weight(model.semantic, persons=True)
            knowledge = f", knowledge {weight:g}" + (f" (people {people:g})" if people != weight else "")
        self.model_label.setText(f"model: {self.model_name} on {self.device}{guidance}{knowledge}"
                                 if model else "no model")
        self.menus.export_clip_action.setEnabled(model is not None)
        self.menus.show_objects(model.guidance.weight if model is not None else 0.0, guided)
        self.menus.show_map(model.semantic.weight if knows else 0.0, view.shown if knows else None)

    # --- live sources -----------------------------------------------------------------------

    def start_source(self, choice: str) -> None:
        """``camera`` (falls back to the demo), ``demo`` or the path of a video file to loop."""
        self.sources.start_choice(choice)

    def start_sources(self, frame_source, audio_source, kind: str = "custom") -> None:
        """Run any frame and audio source live (the devices, the demo, or test sources)."""
        self.sources.start(frame_source, audio_source, kind)

    def _show_live_start(self, text: str) -> None:
        self.live_view.clear()
        self.audio_panel.clear()
        self.source_label.setText(text)

    # --- live display -----------------------------------------------------------------------

    def _show_live_result(self, frame_id: int, heatmap, latency: float) -> None:
        self.live_view.show_heatmap(heatmap, latency)
        self.messages.clear("inference")

    def _live_active(self) -> bool:
        return self.tabs.currentWidget() is self.live_view

    def _show_waveform(self) -> None:
        """The sound around now (live) or around the frame shown (inspector), and what the heatmap hears."""
        if self._live_active():
            waveform = self.pipeline.waveform(WAVEFORM_SECONDS)
            heard = waveform.samples[-self.model.audio_config.num_samples:] if self.model else waveform.samples
            playing = self.pipeline.playing()
            clip = clip_label(playing) if playing else ""
            view, sound, what = self.live_view, None if self.pipeline.silent else heard, "the live sound"
        else:
            waveform = self.inspector.waveform(WAVEFORM_SECONDS)
            if self.inspector.file is None:
                return
            clip = clip_label(self.inspector.file.path)
            view, sound, what = self.inspector.view, waveform and waveform.samples, "its sound"
        if waveform is not None and self.audio_dock.isVisible():
            self.audio_panel.show_waveform(waveform.samples, waveform.sample_rate, waveform.start, waveform.cursor)
        view.set_listening(self._listening(sound, what, clip))

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
            self.audio_panel.show_spectrogram(spec, self.pipeline.sample_rate, self.pipeline.audio_config.frontend)

    def _show_inspector_spectrogram(self, spec) -> None:
        if not self._live_active():
            self.audio_panel.show_spectrogram(spec, self.inspector.sample_rate, self.inspector.audio_config.frontend)

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
        self.pipeline.set_audio_override(sound)
        self.inspector.set_audio_override(sound)

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

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.open_paths([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()])
        event.acceptProposedAction()

    # --- exports ----------------------------------------------------------------------------

    def current_view(self) -> VideoView:
        return self.live_view if self._live_active() else self.inspector.view

    def frame_on_screen(self) -> np.ndarray | None:
        return self.current_view().frame

    def sound_on_screen(self, seconds: float) -> np.ndarray | None:
        """The last ``seconds`` of the sound heard with the frame on screen (None: none)."""
        waveform = (self.pipeline if self._live_active() else self.inspector).waveform(seconds)
        return None if waveform is None else waveform.samples

    def export_frame(self, path) -> bool:
        """Save the frame on screen with its overlay as a PNG; a failure is a message."""
        return self.exports.save_frame(self.current_view().composite(), path)

    def export_clip(self, target) -> bool:
        """Export the inspector's file with heatmaps and sound to ``target`` (MP4), in a thread."""
        file, view = self.inspector.file, self.inspector.view
        return self.exports.start_clip(self.model, self.device, file and file.path, target, view.lut, view.opacity,
                                       view.value_range, self.view)

    def _show_export_progress(self, done: int, total: int) -> None:
        self.export_progress.setRange(0, total)
        self.export_progress.setValue(done)

    def _show_export_running(self, running: bool) -> None:
        if running:
            self.export_progress.setValue(0)
        self.export_progress.setVisible(running)
        self.export_cancel.setVisible(running)

    # --- shutdown ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every thread and release the camera and the microphone (idempotent)."""
        self.waveform_timer.stop()
        self.exports.shutdown()
        self.retrieval.shutdown()
        self.recording.shutdown()
        self.finetune.shutdown()
        self.sources.shutdown()
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
