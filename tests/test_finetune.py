"""Fine-tuning through the panel: ssl-train as a child process, its log as a curve, its checkpoints as the
window's model, a graceful cancel, resume, and a close that stops it cleanly."""
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from window_support import WAIT_MS

from model import AudioConfig, ModelConfig, SSLModel, load_model, save_model
from model.gallery.index import model_fingerprint
from model.knowledge.config import SemanticConfig
from model.networks.object_guidance import ObjectGuidance
from model.synth.generator import generate
from model.train.flags import parse_args
from ssl_desktop.finetune_process import PRESETS, FinetuneSettings, link_clips, tail_lines
from ssl_desktop.sources import FrameSource, Pacer, ToneSource

TRAIN_MS = 240000  # child start (torch import) and a few tiny steps on a busy 2-core machine

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """4 generated clips (96x64) with their annotations: training and validation in one."""
    root = tmp_path_factory.mktemp("finetune-data")
    generate(root, clips=4, seed=0, size=(96, 64))
    return root


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An efficientnet_lite0 model at 64 px and 0.5 s of sound (random weights): what --freeze-visual is for."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("finetune-model") / "tiny.safetensors"
    save_model(path, SSLModel(ModelConfig(image_size=64, visual_backbone="efficientnet_lite0"),
                              AudioConfig(seconds=0.5)).eval())
    return path


class StillSource(FrameSource):
    """A test camera that always shows the same frame."""

    name = "still"

    def __init__(self):
        rng = np.random.default_rng(3)
        self.image = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((20, 20, 1))).astype(np.uint8)
        self._pacer = Pacer(25.0)

    def read(self):
        self._pacer.wait()
        return self.image


def child_pids() -> set[int]:
    """The live (not zombie) children of this process."""
    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids |= {int(p) for p in (task / "children").read_text().split()}
    return {p for p in pids if Path(f"/proc/{p}/stat").is_file()
            and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"}


def fine_tune_window(make_window, tiny_checkpoint, tiny_data, run, epochs=2, lr=1e-3):
    """A window with the tiny model, the still camera, the tone, and the panel filled in (custom preset)."""
    window = make_window(load_model=False)
    assert window.load_checkpoint(tiny_checkpoint)
    window.start_sources(StillSource(), ToneSource(), "camera")
    window.finetune_dock.toggleViewAction().trigger()  # Teach > Fine-tune
    panel = window.finetune_panel
    assert panel.isVisible()
    panel.add_data_folder(tiny_data)
    panel.out_edit.setText(str(run))
    panel.epochs_box.setValue(epochs)
    panel.batch_box.setValue(2)
    panel.lr_box.setValue(lr)
    panel.freeze_box.setCurrentText("all")
    panel.device_box.setCurrentText("cpu")
    panel.threads_box.setValue(1)
    return window, panel


def busy() -> float:
    """How many times over the machine is booked (>= 1): time limits meant for an idle machine scale with it
    (this 2-core machine runs other jobs beside the tests)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def curve_points(panel) -> int:
    x, _ = panel.loss_curve.getData()
    return 0 if x is None else len(x)


def test_finetune_settings_make_the_ssl_train_command(tmp_path, tiny_data):
    settings = FinetuneSettings(data=[str(tiny_data)], out=str(tmp_path / "run"), init="m.safetensors", epochs=3,
                                lr=2e-5, batch_size=8, freeze="early", device="cpu", threads=1)
    args = settings.arguments()
    assert args[:2] == ["--data", str(tiny_data)] and args[args.index("--init") + 1] == "m.safetensors"
    assert args[args.index("--val") + 1] == str(tiny_data)  # annotated: validation numbers
    assert args[args.index("--threads") + 1] == "1" and args[args.index("--freeze-visual") + 1] == "early"
    assert settings.command_text().startswith("ssl-train --data ")
    assert parse_args(args) == settings.train_config()  # the command is the config's
    resumed = FinetuneSettings(**{**settings.__dict__, "resume": True}).arguments()
    assert "--resume" in resumed and "--init" not in resumed  # the run owns its model
    assert "--freeze-batch-norm" in args and "--freeze-batch-norm" in resumed  # fine-tuning keeps the statistics
    assert "--freeze-batch-norm" not in FinetuneSettings(data=[str(tiny_data)], out="o").arguments()  # a new model
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "clip_0001.mp4").write_bytes(b"x")
    (other / "notes.txt").write_text("not a clip")
    mixed = FinetuneSettings(data=[str(tiny_data)], out=str(tmp_path / "run"), replay=str(other))
    assert mixed.train_folder == str(tmp_path / "run" / "clips") and "links to the clips" in mixed.command_text()
    assert link_clips(mixed.folders, Path(mixed.train_folder)) == 5
    links = sorted(p.name for p in Path(mixed.train_folder).iterdir())
    assert links[-1] == "1_sub_clip_0001.mp4" and len(set(links)) == 5
    assert tail_lines("a\nb\r 10%|#\r 100%|##\nssl-train: error: no\n") == "a\n 100%|##\nssl-train: error: no"


def test_finetune_through_the_panel_curve_checkpoint_and_use_this_model(qtbot, make_window, tiny_checkpoint,
                                                                         tiny_data, tmp_path):
    run = tmp_path / "run"
    window, panel = fine_tune_window(make_window, tiny_checkpoint, tiny_data, run)
    command = panel.command_text.toPlainText()
    assert f"--init {run / 'start.safetensors'}" in command and "--threads 1" in command
    assert "the current model (tiny.safetensors)" in command
    before = window.model
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    finished = []
    window.finetune.process.finished.connect(lambda outcome, text: finished.append((outcome, text)))
    qtbot.waitUntil(lambda: bool(finished), timeout=TRAIN_MS)
    assert finished[0][0] == "done", finished
    start_event = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start_event["config"]["threads"] == 1 and start_event["config"]["init"] == str(run / "start.safetensors")
    assert curve_points(panel) == 4  # 2 epochs of 2 steps
    assert panel.progress.value() == panel.progress.maximum() == 4
    assert "clips/s" in panel.speed_label.text() and "cIoU" in panel.val_label.text()
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    baseline = events[1]  # the starting model on the annotated folder, before any step
    assert baseline["event"] == "baseline" and [e["event"] for e in events].count("baseline") == 1
    assert f"before: {baseline['val_ciou']:.1f}" in panel.val_label.text()
    assert [panel.checkpoint_box.itemText(i) for i in range(panel.checkpoint_box.count())] == \
        ["best.safetensors", "last.safetensors"]
    assert panel.use_button.isEnabled() and panel.start_button.isEnabled()

    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)  # best
    assert window.model is not before and window.model_name == "run/best.safetensors"
    assert window.pipeline.worker._model is window.model and window.inspector.worker._model is window.model
    start = window.live_view.heatmaps_shown
    qtbot.waitUntil(lambda: window.live_view.heatmaps_shown >= start + 2, timeout=WAIT_MS)
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.finetune.dialog is not None and window.finetune.dialog.isVisible(), timeout=WAIT_MS)
    dialog = window.finetune.dialog
    assert np.array_equal(dialog.before.frame, dialog.after.frame)  # one frame, two models
    assert np.abs(dialog.before.cosine - dialog.after.cosine).max() > 1e-3
    assert dialog.before_label.text() == "before: tiny.safetensors"
    assert dialog.after_label.text() == "after: run/best.safetensors"


def test_finetune_cancel_stops_within_two_seconds_leaves_a_checkpoint_and_resumes(qtbot, make_window,
                                                                                  tiny_checkpoint, tiny_data, tmp_path):
    run = tmp_path / "run"
    window, panel = fine_tune_window(make_window, tiny_checkpoint, tiny_data, run, epochs=100)
    finished, ended = [], []
    window.finetune.process.finished.connect(lambda outcome, text: finished.append((outcome, text)))
    window.finetune.process.ended.connect(lambda summary: ended.append(time.monotonic()))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: curve_points(panel) >= 1, timeout=TRAIN_MS)
    cancelled_at = time.monotonic()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(finished), timeout=int(60000 * busy()))
    exited_at = time.monotonic()
    print(f"cancel: stopped and saved after {ended[0] - cancelled_at:.2f} s, process exited after "
          f"{exited_at - cancelled_at:.2f} s")
    assert ended[0] - cancelled_at < 2.0 * busy()  # the step ended and `last` was saved
    assert finished[0] == ("stopped", "fine-tuning stopped: last.safetensors saved, Resume continues it")
    stopped_at = load_model(run / "last.safetensors")  # loadable
    assert stopped_at.config.image_size == 64
    listed = {panel.checkpoint_box.itemText(i) for i in range(panel.checkpoint_box.count())}
    # the run's files: `last`, and `best` too where the first epoch ended before the cancel reached the child
    assert panel.resume_button.isEnabled() and listed == {n for n in ("best.safetensors", "last.safetensors") if (run / n).is_file()}
    assert "last.safetensors" in listed

    steps = curve_points(panel)
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: curve_points(panel) > steps, timeout=TRAIN_MS)  # the log continues
    x, _ = panel.loss_curve.getData()
    assert x[0] == 1 and x[-1] > steps  # the whole run: before and after the resume
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=int(60000 * busy()))
    assert finished[1][0] == "stopped"


def test_finetune_closing_the_window_while_training_stops_it_gracefully(qtbot, make_window, tiny_checkpoint,
                                                                         tiny_data, tmp_path):
    run = tmp_path / "run"
    children = child_pids()
    window, panel = fine_tune_window(make_window, tiny_checkpoint, tiny_data, run, epochs=100)
    finished = []
    window.finetune.process.finished.connect(lambda outcome, text: finished.append((outcome, text)))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    pid = window.finetune.process.pid
    qtbot.waitUntil(lambda: curve_points(panel) >= 1, timeout=TRAIN_MS)
    window.close()
    assert finished and finished[0][0] == "stopped" and "killed" not in finished[0][1]  # SIGINT: step, save, exit
    assert (run / "last.safetensors").is_file() and load_model(run / "last.safetensors")
    assert pid not in child_pids() and child_pids() <= children
    # make_window checks that no QThread and no Python thread is left


def test_the_run_starts_from_the_model_as_loaded_whatever_the_view_shows(qtbot, make_window, tiny_checkpoint,
                                                                         tmp_path):
    """View > Object-guided heatmap off and View > Heatmap shows > Alignment only change what is shown, never the
    model the next fine-tune starts from (``start.safetensors``)."""
    model = load_model(tiny_checkpoint)
    model.guidance, model.semantic = ObjectGuidance(0.4, "by hand"), SemanticConfig(0.7, 0.25)
    knowing = tmp_path / "knowing.safetensors"
    save_model(knowing, model)
    window = make_window(load_model=False)
    assert window.load_checkpoint(knowing)
    assert "object-guided 0.4, knowledge 0.7" in window.model_label.text()
    window.menus.objects_action.trigger()
    window.menus.map_actions["alignment"].trigger()
    assert not window.menus.objects_action.isChecked() and window.menus.map_actions["alignment"].isChecked()
    assert window.model_label.text().endswith("on cpu, knowledge 0")  # the view shows neither ...
    assert window.model.guidance.weight == 0.4 and window.model.semantic.weight == 0.7  # ... the model keeps both

    empty = tmp_path / "empty"  # the run fails at once (no clips): only its start matters here
    empty.mkdir()
    window.finetune_dock.toggleViewAction().trigger()
    panel = window.finetune_panel
    panel.add_data_folder(empty)
    panel.out_edit.setText(str(tmp_path / "run"))
    panel.device_box.setCurrentText("cpu")
    panel.threads_box.setValue(1)
    finished = []
    window.finetune.process.finished.connect(lambda outcome, text: finished.append((outcome, text)))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    start = load_model(tmp_path / "run" / "start.safetensors")
    assert start.guidance == model.guidance and start.semantic == model.semantic
    qtbot.waitUntil(lambda: bool(finished), timeout=TRAIN_MS)
    assert finished[0][0] == "failed"


def test_finetune_a_failing_run_is_a_message_with_its_error(qtbot, make_window, tiny_checkpoint, tiny_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    window, panel = fine_tune_window(make_window, tiny_checkpoint, tiny_data, tmp_path / "run")
    panel.data_list.clear()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.message_label.text() == "add a folder of clips" and not window.finetune.process.running
    panel.add_data_folder(empty)
    finished = []
    window.finetune.process.finished.connect(lambda outcome, text: finished.append((outcome, text)))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(finished), timeout=TRAIN_MS)
    assert finished[0][0] == "failed"
    text = panel.message_label.text()
    assert "exited with status 2" in text and "no readable clips" in text
    assert panel.start_button.isEnabled() and window.isVisible()

    panel.data_list.clear()  # a crash (killed from outside) is a message too
    panel.add_data_folder(tiny_data)
    panel.out_edit.setText(str(tmp_path / "run2"))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    os.kill(window.finetune.process.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=TRAIN_MS)
    assert finished[1][0] == "failed" and "was killed" in panel.message_label.text()


def test_finetune_model_swap_drops_the_stale_gallery_and_indexes_it_again(qtbot, make_window, tiny_checkpoint,
                                                                          tiny_data):
    window = make_window(load_model=False)
    assert window.load_checkpoint(tiny_checkpoint)
    window.retrieval.build(tiny_data)
    qtbot.waitUntil(lambda: window.retrieval.gallery is not None, timeout=WAIT_MS)
    old_id = window.retrieval.gallery.model_id
    window.retrieval_panel.select_query_sound(1)
    assert window.pipeline.worker.audio_override is not None
    torch.manual_seed(1)
    new = SSLModel(ModelConfig(image_size=64, visual_backbone="efficientnet_lite0"), AudioConfig(seconds=0.5)).eval()
    window.set_model(new, "swapped")
    # at once: no gallery of the old model's vectors, and the old model's gallery sound is no longer the query
    assert window.retrieval.gallery is None and window.pipeline.worker.audio_override is None
    assert window.inspector.worker.audio_override is None and window.query_name is None
    qtbot.waitUntil(lambda: window.retrieval.gallery is not None, timeout=WAIT_MS)
    assert window.retrieval.gallery.model_id == model_fingerprint(new) != old_id
    assert window.finetune_panel.init_edit.placeholderText() == "the current model (swapped)"


def test_quick_preset_is_what_a_fresh_panel_opens_on_with_the_model_s_recipe(qtbot, make_window, tiny_checkpoint):
    quick = PRESETS["quick"]
    window = make_window(load_model=False)  # the panel is built before any model arrives
    panel = window.finetune_panel
    assert panel.preset_box.currentText() == "quick" and panel.freeze_box.currentText() == "none"
    assert window.load_checkpoint(tiny_checkpoint)  # efficientnet_lite0: "quick" freezes all of its visual side
    assert panel.preset_box.currentText() == "quick" and panel.freeze_box.currentText() == quick["freeze"] == "all"
    assert (panel.epochs_box.value(), panel.lr_box.value(), panel.batch_box.value()) == \
        (quick["epochs"], quick["lr"], quick["batch_size"])
    assert "--freeze-visual all" in panel.command_text.toPlainText()
    window.set_model(SSLModel(ModelConfig()).eval(), "resnet18")  # a model with nothing to freeze
    assert panel.preset_box.currentText() == "quick" and panel.freeze_box.currentText() == "none"
    assert not panel.freeze_box.isEnabled()


def test_quick_preset_panel_at_1024x640_teach_raises_it_start_in_sight_and_the_wheel_scrolls(qtbot, make_window,
                                                                                             tiny_checkpoint):
    window = make_window(load_model=False)
    window.resize(1024, 640)
    assert window.load_checkpoint(tiny_checkpoint)
    qtbot.waitUntil(lambda: not window.retrieval_panel.visibleRegion().isEmpty(), timeout=WAIT_MS)
    window.finetune_dock.toggleViewAction().trigger()  # Teach > Fine-tune
    panel = window.finetune_panel
    qtbot.waitUntil(lambda: window.retrieval_panel.visibleRegion().isEmpty(), timeout=WAIT_MS)  # its tab is in front
    assert not panel.visibleRegion().isEmpty() and panel.preset_box.currentText() == "quick"
    start = panel.start_button
    qtbot.waitUntil(lambda: not start.visibleRegion().isEmpty(), timeout=WAIT_MS)
    assert window.rect().contains(QRect(start.mapTo(window, QPoint(0, 0)), start.size()))
    bar = panel.scroll.verticalScrollBar()
    assert bar.maximum() > 0  # the panel is taller than the dock: it scrolls
    panel.show_losses([0, 1, 2], [3.0, 2.0, 1.0])
    shown = panel.plot.getViewBox().viewRange()
    centre = QPointF(panel.plot.width() / 2, panel.plot.height() / 2)
    wheel = QWheelEvent(centre, QPointF(panel.plot.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(panel.plot.viewport(), wheel)
    assert panel.plot.getViewBox().viewRange() == shown  # the plot is not zoomed
    assert not wheel.isAccepted()  # the wheel goes on to the scroll area (a real one; a synthetic one stops here)
