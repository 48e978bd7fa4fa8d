"""Fine-tuning wiring: the panel's settings -> ``FinetuneProcess``; its events -> the panel; a saved
checkpoint -> ``model_chosen`` (the window's model: the live view, the inspector and the retrieval dock
follow); before / after heatmaps of the frame on screen, computed in a ``CompareThread``."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QWidget

from model import CheckpointError, load_model, save_model
from model.inference.fast_path import InferenceConfig
from model.localize import Localizer, ViewSettings

from .finetune_panel import BeforeAfterDialog, FinetunePanel
from .finetune_process import BEST, LAST, LOG, FinetuneProcess

RUNS = Path.home() / "ssl-desktop-runs"  # where a new run's folder is proposed
START = "start.safetensors"  # the current model, saved into the run folder as --init
STATE = "last.state.safetensors"


ONE_FRAME = InferenceConfig(engine="eager")  # one frame per model: compiling would cost more than it saves


class CompareThread(QThread):
    """The heatmaps (frame size) of one frame and its sound by two models, shown as ``view`` says."""

    succeeded = Signal(object, object, object)  # frame, before, after
    failed = Signal(str)

    def __init__(self, models, frame: np.ndarray, sounds: list[np.ndarray], device, view=None, parent=None):
        super().__init__(parent)
        self.models, self.frame, self.sounds, self.device, self.view = models, frame, sounds, device, view

    def run(self) -> None:
        try:
            maps = []
            with torch.inference_mode():
                for model, sound in zip(self.models, self.sounds):
                    localizer = Localizer(model, self.device, inference=ONE_FRAME, view=self.view)
                    localizer.hear(sound, 0.0)
                    maps.append(localizer.localize(self.frame).shown)
        except Exception as exc:  # a model that cannot run this frame: a message, never a dead app
            self.failed.emit(f"before / after failed: {exc!r}")
        else:
            self.succeeded.emit(self.frame, *maps)


class Screen(Protocol):
    """What the comparison reads of the window: the frame on screen and the sound heard with it."""

    def frame_on_screen(self) -> np.ndarray | None:
        """The frame shown (None: none yet)."""

    def sound_on_screen(self, seconds: float) -> np.ndarray | None:
        """The last ``seconds`` of sound heard with it (None: none)."""


class Finetune(QObject):
    """Connects ``panel`` to a ``FinetuneProcess``; starts from the model given to ``set_model``, and offers
    the run's checkpoints as ``model_chosen``. ``window``: the Qt parent, read only as a ``Screen``."""

    model_chosen = Signal(object, str)  # a checkpoint of the run, loaded (on ``device``); its name

    def __init__(self, panel: FinetunePanel, device, window: QWidget):
        super().__init__(window)
        self.panel, self.device = panel, device
        self.model, self.model_name = None, ""  # the model in use, the default start
        self.view = ViewSettings()  # how the comparison shows its heatmaps
        self.process = FinetuneProcess(self)
        self.previous: tuple[object, str] | None = None  # the model before the last "Use this model"
        self.dialog: BeforeAfterDialog | None = None
        self.compare_thread: CompareThread | None = None
        self._steps: list[int] = []
        self._losses: list[float] = []
        panel.changed.connect(self._show_command)
        panel.start_clicked.connect(lambda: self.start(resume=False))
        panel.resume_clicked.connect(lambda: self.start(resume=True))
        panel.cancel_clicked.connect(self.cancel)
        panel.use_model_clicked.connect(self.use_model)
        panel.compare_clicked.connect(self.compare)
        self.process.started.connect(self._on_started)
        self.process.step.connect(self._on_step)
        self.process.baseline.connect(lambda event: panel.show_baseline(event["val_ciou"], event["val_a2i_r1"]))
        self.process.epoch.connect(self._on_epoch)
        self.process.progress.connect(panel.show_progress)
        self.process.checkpoint.connect(lambda _path: self._show_checkpoints())
        self.process.ended.connect(self._on_ended)
        self.process.finished.connect(self._on_finished)
        panel.out_edit.textChanged.connect(self._show_checkpoints)
        panel.out_edit.setText(str(RUNS / time.strftime("finetune-%Y%m%d-%H%M%S")))
        self.set_model(None, "")

    @property
    def screen(self) -> Screen:
        """The window: the Qt parent (no Python reference back, see ``WindowMenus.window``), as a ``Screen``."""
        return self.parent()

    def set_model(self, model, name: str) -> None:
        """The window's model changed: it is the default start (freezing applies to efficientnet_lite0)."""
        self.model, self.model_name = model, name
        freezable = model is not None and model.config.visual_backbone == "efficientnet_lite0"
        self.panel.set_start_model(name, freezable)
        self._show_command()

    def set_view(self, view: ViewSettings) -> None:
        self.view = view

    def settings(self, resume: bool = False):
        """The panel's settings, starting from the current model (saved as ``START`` in the run) by default."""
        out = self.panel.out_edit.text().strip()
        return self.panel.settings(str(Path(out) / START) if self.model is not None and out else None, resume)

    def _show_command(self) -> None:
        settings = self.settings()
        text = settings.command_text()
        if settings.init and Path(settings.init).name == START and not self.panel.init_edit.text().strip():
            text = (f"# {settings.init}: the current model ({self.model_name}), saved when the run starts\n"
                    + text)
        self.panel.show_command(text)

    # --- the run --------------------------------------------------------------------------------

    def start(self, resume: bool) -> bool:
        """Start (or resume) the run the panel describes; a missing piece is a message."""
        settings = self.settings(resume)
        problem = self._problem(settings)
        if problem:
            self.panel.show_message(problem, "warning")
            return False
        out = Path(settings.out)
        if not resume and settings.init == str(out / START):
            try:
                out.mkdir(parents=True, exist_ok=True)
                save_model(out / START, self.model)
            except OSError as exc:
                self.panel.show_message(f"cannot save the current model into {out}: {exc}", "error")
                return False
        self._steps, self._losses = [], []
        self.panel.clear_run()
        self.panel.set_running(True)
        self.process.start(settings)
        return True

    def _problem(self, settings) -> str:
        """Why ``settings`` cannot start now ("" when they can)."""
        out = Path(settings.out)
        if self.process.running:
            return "a run is going"
        if not settings.data:
            return "add a folder of clips"
        if not settings.out:
            return "choose a run folder"
        if settings.resume and not (out / STATE).is_file():
            return f"nothing to resume in {out}"
        if not settings.resume and (out / LOG).exists():
            return f"{out} holds a run: Resume continues it, or choose another run folder"
        return ""

    def cancel(self) -> None:
        self.panel.show_cancelling()
        self.process.cancel()

    def _on_started(self, info: dict) -> None:
        skipped = info.get("skipped") or []
        note = f" ({len(skipped)} files skipped: {skipped[0][0]}…)" if skipped else ""
        self.panel.show_message(f"training on {info['clips']} clips, {info['device']}{note}", "info")

    def _on_step(self, event: dict) -> None:
        self._steps.append(int(event["step"]))
        self._losses.append(float(event["loss"]))
        self.panel.show_losses(self._steps, self._losses)
        self.panel.show_speed(float(event.get("clips_per_s", math.nan)))

    def _on_epoch(self, event: dict) -> None:
        if "val_ciou" in event:
            self.panel.show_validation(event["val_ciou"], event["val_a2i_r1"], int(event["epoch"]))

    def _on_ended(self, summary: dict) -> None:
        """The trainer has stopped and saved; its process is exiting."""
        self._show_checkpoints()
        if summary.get("stopped"):
            self.panel.show_message(f"stopped at step {summary['step']}: {LAST} saved; the trainer is exiting…",
                                    "info")

    def _on_finished(self, outcome: str, text: str) -> None:
        out = Path(self.process.settings.out)
        self.panel.set_running(False, resumable=(out / STATE).is_file())
        self.panel.show_message(text, "error" if outcome == "failed" else "info")
        self._show_checkpoints()

    def checkpoints(self) -> list[str]:
        """The run folder's model files, best first."""
        out = self.panel.out_edit.text().strip()
        return [str(Path(out) / name) for name in (BEST, LAST) if out and (Path(out) / name).is_file()]

    def _show_checkpoints(self) -> None:
        self.panel.set_checkpoints(self.checkpoints())

    # --- using the result -----------------------------------------------------------------------

    def use_model(self, path: str) -> bool:
        """Swap the window's model for the checkpoint at ``path`` (kept for before / after)."""
        before = (self.model, self.model_name)
        try:
            model = load_model(path, self.device)
        except (CheckpointError, OSError, RuntimeError, ValueError) as exc:
            self.panel.show_message(f"{path} not loaded, the current model stays: {exc}", "error")
            return False
        self.model_chosen.emit(model, f"{Path(path).parent.name}/{Path(path).name}")
        if before[0] is not None:
            self.previous = before
        self.panel.compare_button.setEnabled(self.previous is not None)
        self.panel.show_message(f"using {self.model_name}", "info")
        return True

    def compare(self) -> bool:
        """Show the frame on screen with the heatmaps of the model before and after the last swap."""
        if self.previous is None or self.compare_thread is not None:
            return False
        models = [self.previous[0], self.model]
        frame = self.screen.frame_on_screen()
        sounds = [self.screen.sound_on_screen(m.audio_config.seconds) for m in models]
        if frame is None or any(sound is None for sound in sounds):
            self.panel.show_message("no frame to compare yet", "warning")
            return False
        self.compare_thread = CompareThread(models, frame, sounds, self.device, self.view, self)
        self.compare_thread.succeeded.connect(self._show_comparison)
        self.compare_thread.failed.connect(lambda text: self.panel.show_message(text, "error"))
        self.compare_thread.finished.connect(self._end_compare)
        self.compare_thread.start()
        return True

    def _show_comparison(self, frame, before, after) -> None:
        if self.dialog is None:
            self.dialog = BeforeAfterDialog(self.parent())
        self.dialog.show_maps(frame, before, after, self.previous[1], self.model_name)
        self.dialog.show()

    def _end_compare(self) -> None:
        self.compare_thread.wait()
        self.compare_thread.deleteLater()
        self.compare_thread = None

    def shutdown(self) -> None:
        """Stop a run gracefully (it saves ``last``) and wait for it and for a comparison."""
        self.process.shutdown()
        if self.compare_thread is not None:
            self.compare_thread.wait()
