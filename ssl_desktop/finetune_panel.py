"""The fine-tune panel ("Teach it your world") and the before / after dialog: widgets that show state and
emit signals; the run itself is ``finetune_process.FinetuneProcess``, the wiring ``finetune.Finetune``."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .finetune_process import PRESETS, FinetuneSettings, default_threads
from .video_view import VideoView

CUSTOM = "custom"
FREEZE_CHOICES = ("none", "early", "all")
DEVICES = ("auto", "cpu", "cuda")


def format_eta(seconds: float) -> str:
    if math.isnan(seconds):
        return "ETA –"
    minutes, secs = divmod(round(seconds), 60)
    return f"ETA {minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"ETA {minutes}:{secs:02d}"


class LossPlot(pg.PlotWidget):
    """The loss curve, always in full (it follows the run): the mouse neither zooms nor pans it, and the wheel
    scrolls the panel it sits in."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()

    def wheelEvent(self, event) -> None:
        event.ignore()  # to the scroll area


class FinetunePanel(QWidget):
    """Folders, starting checkpoint, preset, device; the equivalent command; progress, loss curve, clips/s,
    validation numbers; the run's checkpoints with "Use this model": all in a scroll area, under which Start /
    Cancel / Resume and the progress bar stay in sight. It opens on the "quick" preset."""

    changed = Signal()  # any setting changed: the command shown is out of date
    start_clicked = Signal()
    cancel_clicked = Signal()
    resume_clicked = Signal()
    use_model_clicked = Signal(str)  # the checkpoint chosen
    compare_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.data_list = QListWidget()
        self.data_list.setMaximumHeight(70)
        self.add_data_button = QPushButton("Add folder…")
        self.remove_data_button = QPushButton("Remove")
        self.val_edit = self._path_edit("annotated folder (optional): cIoU and R@1 after each epoch")
        self.replay_edit = self._path_edit("the model's own training clips (optional): against forgetting")
        self.init_edit = self._path_edit("")
        self.out_edit = self._path_edit("run folder: checkpoints and log")
        self.preset_box = QComboBox()
        self.preset_box.addItems([*PRESETS, CUSTOM])
        self.epochs_box = QSpinBox()
        self.epochs_box.setRange(1, 1000)
        self.lr_box = QDoubleSpinBox()
        self.lr_box.setDecimals(7)
        self.lr_box.setRange(1e-7, 1.0)
        self.lr_box.setSingleStep(1e-5)
        self.batch_box = QSpinBox()
        self.batch_box.setRange(2, 1024)
        self.freeze_box = QComboBox()
        self.freeze_box.addItems(FREEZE_CHOICES)
        self.freeze_box.setToolTip("efficientnet_lite0 models: train all of the visual encoder (none), its last "
                                   "stages (early), or only the projection (all)")
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.threads_box = QSpinBox()
        self.threads_box.setRange(1, 256)
        self.threads_box.setValue(default_threads())
        self.threads_box.setToolTip("CPU threads of the trainer; the rest keep the live view going")
        self.command_text = QPlainTextEdit()
        self.command_text.setReadOnly(True)
        self.command_text.setMaximumHeight(80)
        self.command_text.setToolTip("The same run from a terminal")
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.progress = QProgressBar()
        self.progress.setFormat("not started")
        self.speed_label = QLabel("– clips/s")
        self.val_label = QLabel("")
        self._baseline: tuple[float, float] | None = None  # the starting model's cIoU and R@1, when measured
        self.plot = LossPlot()
        self.plot.setMinimumHeight(120)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen("#ff9f1c", width=2))
        self.checkpoint_box = QComboBox()
        self.use_button = QPushButton("Use this model")
        self.compare_button = QPushButton("Before / after")
        self.compare_button.setToolTip("The heatmap of the frame shown, by the model before and after the last swap")
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        data_buttons = QHBoxLayout()
        data_buttons.addWidget(self.add_data_button)
        data_buttons.addWidget(self.remove_data_button)
        form.addRow("Clips", self.data_list)
        form.addRow("", data_buttons)
        form.addRow("Validation", self._with_browse(self.val_edit, "Annotated folder"))
        form.addRow("Replay", self._with_browse(self.replay_edit, "The model's own training clips"))
        form.addRow("Start from", self._with_browse(self.init_edit, "Checkpoint", file=True))
        form.addRow("Run folder", self._with_browse(self.out_edit, "Run folder"))
        form.addRow("Preset", self.preset_box)
        grid = QGridLayout()
        for i, (label, widget) in enumerate((("epochs", self.epochs_box), ("learning rate", self.lr_box),
                                             ("batch", self.batch_box), ("frozen", self.freeze_box),
                                             ("device", self.device_box), ("threads", self.threads_box))):
            grid.addWidget(QLabel(label), i // 2, 2 * (i % 2))
            grid.addWidget(widget, i // 2, 2 * (i % 2) + 1)
        form.addRow(grid)
        form.addRow("Command", self.command_text)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        numbers = QHBoxLayout()
        numbers.addWidget(self.speed_label)
        numbers.addStretch(1)
        numbers.addWidget(self.val_label)
        use = QHBoxLayout()
        use.addWidget(self.checkpoint_box, 1)
        use.addWidget(self.use_button)
        use.addWidget(self.compare_button)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addLayout(form)
        layout.addLayout(numbers)
        layout.addWidget(self.plot, 1)
        layout.addLayout(use)
        layout.addWidget(self.message_label)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 4)
        outer.addWidget(self.scroll, 1)
        outer.addLayout(buttons)
        outer.addWidget(self.progress)

        self.add_data_button.clicked.connect(self._choose_data_folder)
        self.remove_data_button.clicked.connect(self._remove_data_folder)
        self.preset_box.currentTextChanged.connect(self._apply_preset)
        for box in (self.epochs_box, self.lr_box, self.batch_box):
            box.valueChanged.connect(self._edited)
        self.freeze_box.currentTextChanged.connect(self._edited)
        for edit in (self.val_edit, self.replay_edit, self.init_edit, self.out_edit):
            edit.textChanged.connect(self.changed)
        self.device_box.currentTextChanged.connect(self.changed)
        self.threads_box.valueChanged.connect(self.changed)
        self.start_button.clicked.connect(self.start_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.resume_button.clicked.connect(self.resume_clicked)
        self.use_button.clicked.connect(lambda: self.use_model_clicked.emit(self.checkpoint_box.currentData()))
        self.compare_button.clicked.connect(self.compare_clicked)
        self._freezable = True
        self._apply_preset(self.preset_box.currentText())
        self.set_running(False)
        self.set_checkpoints([])
        self.compare_button.setEnabled(False)

    # --- settings -------------------------------------------------------------------------------

    def _path_edit(self, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        return edit

    def _with_browse(self, edit: QLineEdit, title: str, file: bool = False) -> QWidget:
        button = QPushButton("…")
        button.setMaximumWidth(28)

        def browse():
            if file:
                path, _ = QFileDialog.getOpenFileName(self, title, edit.text(), "ssl-desktop model (*.safetensors)")
            else:
                path = QFileDialog.getExistingDirectory(self, title, edit.text())
            if path:
                edit.setText(path)

        button.clicked.connect(browse)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        layout.addWidget(button)
        return row

    def _choose_data_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of video clips")
        if folder:
            self.add_data_folder(folder)

    def add_data_folder(self, folder) -> None:
        self.data_list.addItem(str(folder))
        self.changed.emit()

    def _remove_data_folder(self) -> None:
        for item in self.data_list.selectedItems():
            self.data_list.takeItem(self.data_list.row(item))
        self.changed.emit()

    def _apply_preset(self, name: str) -> None:
        if name in PRESETS:
            preset = PRESETS[name]
            for box in (self.epochs_box, self.lr_box, self.batch_box, self.freeze_box):
                box.blockSignals(True)
            self.epochs_box.setValue(preset["epochs"])
            self.lr_box.setValue(preset["lr"])
            self.batch_box.setValue(preset["batch_size"])
            self.freeze_box.setCurrentText(preset["freeze"] if self._freezable else "none")
            for box in (self.epochs_box, self.lr_box, self.batch_box, self.freeze_box):
                box.blockSignals(False)
        self.changed.emit()

    def _edited(self) -> None:
        """A value edited by hand makes the preset "custom"."""
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentText(CUSTOM)
        self.preset_box.blockSignals(False)
        self.changed.emit()

    def set_start_model(self, name: str, freezable: bool) -> None:
        """The current model (the default start) and whether ``--freeze-visual`` applies to it."""
        self.init_edit.setPlaceholderText(f"the current model ({name})" if name else "a new model")
        self._freezable = freezable
        self.freeze_box.setEnabled(freezable)
        if self.preset_box.currentText() in PRESETS:  # the preset's recipe for this model
            self._apply_preset(self.preset_box.currentText())
        elif not freezable:
            self.freeze_box.setCurrentText("none")

    def settings(self, init: str | None, resume: bool = False) -> FinetuneSettings:
        """What the fields say; ``init``: the checkpoint to start from when the field is empty."""
        def text(edit: QLineEdit) -> str | None:
            return edit.text().strip() or None

        return FinetuneSettings(
            data=[self.data_list.item(i).text() for i in range(self.data_list.count())],
            out=self.out_edit.text().strip(), init=text(self.init_edit) or init, val=text(self.val_edit),
            replay=text(self.replay_edit), epochs=self.epochs_box.value(), lr=self.lr_box.value(),
            batch_size=self.batch_box.value(), freeze=self.freeze_box.currentText(),
            device=self.device_box.currentText(), threads=self.threads_box.value(), resume=resume)

    def show_command(self, text: str) -> None:
        self.command_text.setPlainText(text)

    # --- the run --------------------------------------------------------------------------------

    def set_running(self, running: bool, resumable: bool = False) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running and resumable)
        self.cancel_button.setEnabled(running)
        self.cancel_button.setText("Cancel")

    def show_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Stopping…")

    def clear_run(self) -> None:
        self.loss_curve.setData([], [])
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.speed_label.setText("– clips/s")
        self.val_label.setText("")
        self._baseline = None
        self.show_message("", "info")

    def show_losses(self, steps: list[int], losses: list[float]) -> None:
        self.loss_curve.setData(steps, losses)

    def show_progress(self, step: int, total: int, eta: float) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(step, total))
        self.progress.setFormat(f"step %v / %m  ·  {format_eta(eta)}")

    def show_speed(self, clips_per_s: float) -> None:
        self.speed_label.setText(f"{clips_per_s:.1f} clips/s")

    def show_baseline(self, ciou: float, r1: float) -> None:
        """The starting model's validation numbers: the "before" that each epoch's numbers are shown against."""
        self._baseline = (ciou, r1)
        self.val_label.setText(f"before training: cIoU {ciou:.1f}  ·  R@1 {r1:.1f}")

    def show_validation(self, ciou: float, r1: float, epoch: int) -> None:
        text = f"epoch {epoch}: cIoU {ciou:.1f}  ·  R@1 {r1:.1f}"
        if self._baseline is not None:
            before_ciou, before_r1 = self._baseline
            text += (f"  (before: {before_ciou:.1f}  ·  {before_r1:.1f}; "
                     f"{ciou - before_ciou:+.1f} / {r1 - before_r1:+.1f})")
        self.val_label.setText(text)

    def set_checkpoints(self, paths: list[str]) -> None:
        """The run's model files, best first; "Use this model" needs one."""
        current = self.checkpoint_box.currentData()
        self.checkpoint_box.clear()
        for path in paths:
            self.checkpoint_box.addItem(Path(path).name, path)
        if current in paths:
            self.checkpoint_box.setCurrentIndex(paths.index(current))
        self.use_button.setEnabled(bool(paths))

    def show_message(self, text: str, level: str) -> None:
        colour = {"error": "#d62828", "warning": "#e09f3e"}.get(level, "")
        self.message_label.setStyleSheet(f"color: {colour}" if colour else "")
        self.message_label.setText(text)


class BeforeAfterDialog(QDialog):
    """The heatmap of one frame by two models, side by side."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Before / after")
        self.before_label, self.after_label = QLabel(), QLabel()
        self.before, self.after = VideoView(), VideoView()
        layout = QGridLayout(self)
        layout.addWidget(self.before_label, 0, 0)
        layout.addWidget(self.after_label, 0, 1)
        layout.addWidget(self.before, 1, 0)
        layout.addWidget(self.after, 1, 1)
        self.resize(900, 420)

    def show_maps(self, frame: np.ndarray, before: np.ndarray, after: np.ndarray, before_name: str,
                  after_name: str) -> None:
        """Raw cosine maps at frame size of ``frame`` by the model before and the model after."""
        for view, label, cosine, text in ((self.before, self.before_label, before, f"before: {before_name}"),
                                          (self.after, self.after_label, after, f"after: {after_name}")):
            label.setText(text)
            view.show_frame(frame)
            view.show_heatmap(cosine)
