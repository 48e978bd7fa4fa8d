"""Fine-tuning as a child process: the ``ssl-train`` command of a ``FinetuneSettings`` and the ``QProcess``
that runs it, outside the GUI's process.

``FinetuneProcess`` starts ``python -m model.train ...`` with the threads it is given, at a lower
priority than the app (the live view comes first), reads the run's ``log.jsonl`` as it grows and turns
its lines into signals (steps, epochs, checkpoints, progress with an ETA). Cancel is the trainer's own
graceful stop (SIGINT, as Ctrl-C: it ends the step and saves ``last``); a second one stops at once (still
saving) and only a trainer that ignores both is killed. A crash is a message with the end of its stderr,
never the app's end. The log's ``end`` event (``ended``) comes as soon as the trainer has stopped and
saved; the process exits a few seconds later (torch's interpreter teardown), which ``finished`` reports.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from model.train.config import TrainConfig
from model.train.flags import config_argv

ROOT = Path(__file__).resolve().parent.parent  # holds the model package the child imports
LOG = "log.jsonl"
LAST, BEST = "last.safetensors", "best.safetensors"
MIXED = "clips"  # in the run folder: links to the clips of several folders (ssl-train --data takes one)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
ANNOTATIONS = "annotations.json"
PRESETS = {  # name -> epochs, learning rate, batch size, what of an efficientnet_lite0 is frozen
    "quick": {"epochs": 2, "lr": 1e-5, "batch_size": 8, "freeze": "all"},  # keeps what it knew (docs/RESULTS.md)
    "standard": {"epochs": 10, "lr": 2e-5, "batch_size": 16, "freeze": "early"},
}
POLL_MS = 200  # how often the log is read
STOP_SECONDS = 10.0  # after SIGINT: a second SIGINT; as long again: kill
EXIT_SECONDS = 30.0  # stopped and saved (its end event): this long to exit before a kill
STDERR_KEEP = 8000  # characters of the child's stderr kept for the message of a failure
NICENESS = 15  # the trainer yields the CPU to the live view (whose worker runs at niceness 5) when both want it


def stop_signal() -> int:
    """SIGINT, as Ctrl-C; SIGTERM (which the trainer takes the same way) when this process ignores SIGINT
    (started with ``&`` or ``nohup``): its children inherit that, and the trainer keeps it ignored."""
    return signal.SIGTERM if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else signal.SIGINT


def default_threads() -> int:
    """Half the cores for the trainer, at least one: the other half keeps the live view going."""
    return max(1, (os.cpu_count() or 1) // 2)


@dataclass
class FinetuneSettings:
    """What the fine-tune panel asks for; ``train_config()`` is the ssl-train run, ``arguments()`` its command
    line."""

    data: list[str]  # folders of videos (labels are never used)
    out: str  # the run folder
    init: str | None = None  # checkpoint to start from (None: a new model)
    val: str | None = None  # annotated folder (None: the first data folder with annotations, if any)
    replay: str | None = None  # the model's own training data, mixed in against forgetting
    epochs: int = PRESETS["quick"]["epochs"]
    lr: float = PRESETS["quick"]["lr"]
    batch_size: int = PRESETS["quick"]["batch_size"]
    freeze: str = "none"  # --freeze-visual (efficientnet_lite0 models only)
    device: str = "auto"
    threads: int = field(default_factory=default_threads)
    resume: bool = False
    # fine-tuning (init): batch norm keeps the model's running statistics; a few clips would replace them
    # (measured in docs/RESULTS.md: the presence score forgets first)
    freeze_batch_norm: bool = True

    @property
    def folders(self) -> list[str]:
        """Every folder of training clips: the data folders, then the replay folder."""
        return [*self.data, *([self.replay] if self.replay else [])]

    @property
    def train_folder(self) -> str:
        """``--data``: the one folder, or the run's folder of links to the clips of all of them."""
        folders = self.folders
        return str(Path(self.out) / MIXED) if len(folders) > 1 else (folders[0] if folders else "")

    @property
    def val_folder(self) -> str | None:
        if self.val:
            return self.val
        return next((f for f in self.data if (Path(f) / ANNOTATIONS).is_file()), None)

    def train_config(self) -> TrainConfig:
        """The run: from ``init`` unless resumed (the run owns its model then), with no loader processes (the
        trainer stays within its threads)."""
        return TrainConfig(data=self.train_folder, out=self.out, val=self.val_folder,
                           init=None if self.resume else self.init, freeze_visual=self.freeze, epochs=self.epochs,
                           lr=self.lr, batch_size=self.batch_size, device=self.device, threads=self.threads,
                           workers=0, resume=self.resume, freeze_batch_norm=bool(self.init) and self.freeze_batch_norm)

    def arguments(self) -> list[str]:
        return config_argv(self.train_config())

    def command_text(self) -> str:
        """The equivalent command, as a user would paste it (with the links it needs, when there are several
        folders)."""
        text = shlex.join(["ssl-train", *self.arguments()])
        if len(self.folders) > 1:
            text = (f"# {self.train_folder}: links to the clips of {', '.join(self.folders)}\n"
                    "# (made when the run starts: ssl-train --data takes one folder)\n" + text)
        return text


def clip_files(folder: Path) -> list[Path]:
    """The videos ssl-train would read in ``folder`` (its ``videos/`` when it has one), recursively."""
    root = folder / "videos" if (folder / "videos").is_dir() else folder
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def link_clips(folders: list[str], target: Path) -> int:
    """Fill ``target`` with symbolic links to the clips of ``folders`` (``<k>_<name>``: distinct ids);
    returns how many."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_symlink():
            old.unlink()
    count = 0
    for k, folder in enumerate(folders):
        for clip in clip_files(Path(folder)):
            (target / f"{k}_{clip.relative_to(folder).as_posix().replace('/', '_')}").symlink_to(clip.resolve())
            count += 1
    return count


def tail_lines(text: str, lines: int = 6) -> str:
    """The last ``lines`` lines of a stream (a progress bar's carriage-return updates: their last state)."""
    kept = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    return "\n".join([line for line in kept if line][-lines:])


class FinetuneProcess(QObject):
    """One ssl-train child at a time; its log lines become signals."""

    started = Signal(dict)  # the log's "start" event: total_steps, step, clips, config...
    baseline = Signal(dict)  # the "baseline" event: the starting model's val_ciou, val_a2i_r1... (--init, --val)
    step = Signal(dict)  # a "step" event: step, epoch, loss, clips_per_s, wall_seconds...
    epoch = Signal(dict)  # an "epoch" event: loss and, with --val, val_ciou, val_a2i_r1...
    checkpoint = Signal(str)  # a checkpoint file was written
    ended = Signal(dict)  # the log's "end" event: step, epoch, stopped, best (the process is about to exit)
    progress = Signal(int, int, float)  # steps done, steps in all, seconds left (nan: not known yet)
    finished = Signal(str, str)  # "done" | "stopped" | "failed", what to tell the user

    def __init__(self, parent=None):
        super().__init__(parent)
        self.process: QProcess | None = None
        self.settings: FinetuneSettings | None = None
        self.stderr = ""
        self.stop_requested = False
        self._stage = ""  # how far a stop went: "asked", "urged" (a second signal), "exiting", "killed"
        self._ended = False  # the log's end event came: the trainer has stopped and saved
        self._log_offset = 0
        self._partial = b""
        self._total_steps = 0
        self._step_seconds: list[float] = []
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._read_log)
        self._escalate = QTimer(self)
        self._escalate.setSingleShot(True)
        self._escalate.timeout.connect(self._stop_harder)

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        return self.process.processId() if self.process is not None else None

    def start(self, settings: FinetuneSettings) -> None:
        """Start ssl-train (the clips of several folders linked into the run folder first)."""
        if self.running:
            raise RuntimeError("a fine-tuning run is already going")
        self.settings = settings
        self.stderr = ""
        self.stop_requested, self._stage, self._ended = False, "", False
        self._log_offset, self._partial = 0, b""
        self._total_steps, self._step_seconds = 0, []
        if len(settings.folders) > 1:
            try:
                link_clips(settings.folders, Path(settings.train_folder))
            except OSError as exc:
                self.finished.emit("failed", f"cannot link the clips into {settings.train_folder}: {exc}")
                return
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH")
        env.insert("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.insert(name, str(settings.threads))
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setProgram(sys.executable)
        process.setArguments(["-m", "model.train", *settings.arguments()])
        process.readyReadStandardError.connect(self._read_stderr)
        process.readyReadStandardOutput.connect(process.readAllStandardOutput)  # "done: ..." is in the log too
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        process.started.connect(self._lower_priority)
        self.process = process
        process.start()
        self._poll.start()

    def _lower_priority(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, self.pid, NICENESS)
        except (OSError, TypeError):  # already gone: its finished signal is on its way
            pass

    def cancel(self) -> None:
        """Ask the trainer to stop after its step and save ``last`` (SIGINT, as Ctrl-C)."""
        if self.process is None or self.stop_requested:
            return
        self.stop_requested, self._stage = True, "asked"
        self._signal(stop_signal())
        self._escalate.start(int(STOP_SECONDS * 1000))

    def _stop_harder(self) -> None:
        """The next step of a stop that has not ended the process yet: once the trainer has stopped and
        saved, only its exit is left (``EXIT_SECONDS``); before that a second signal (the trainer stops at
        once, still saving), and ``STOP_SECONDS`` later a kill."""
        if self.process is None:
            return
        self._read_log()
        if self._ended and self._stage in ("asked", "urged"):
            self._stage = "exiting"
            self._escalate.start(int(EXIT_SECONDS * 1000))
        elif self._stage == "asked":
            self._stage = "urged"
            self._signal(stop_signal())
            self._escalate.start(int(STOP_SECONDS * 1000))
        else:
            self._stage = "killed"
            self._escalate.stop()
            self.process.kill()

    def _signal(self, signum: int) -> None:
        pid = self.pid
        if pid:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # it has just ended: its finished signal is on its way
                pass

    def shutdown(self) -> None:
        """On the app's close: stop as Cancel does and wait for the process (blocking), through the same
        steps (``_stop_harder``) when it does not end."""
        process = self.process
        if process is None:
            return
        self.cancel()
        while self.process is not None and not process.waitForFinished(self._escalate.remainingTime()):
            self._stop_harder()  # remainingTime() is -1 (wait for ever) once killed
        if self.process is not None:  # waitForFinished delivers `finished` when it can
            self._on_finished(process.exitCode(), process.exitStatus())

    # --- the child's output ---------------------------------------------------------------------

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode(errors="replace")
        self.stderr = (self.stderr + text)[-STDERR_KEEP:]

    def _read_log(self) -> None:
        path = Path(self.settings.out) / LOG
        try:
            with open(path, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._log_offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._on_event(event)

    def _on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self._total_steps = int(event["total_steps"])
            self._step_seconds = []
            self.started.emit(event)
            self.progress.emit(int(event["step"]), self._total_steps, math.nan)
        elif kind == "step":
            self._step_seconds = (self._step_seconds + [float(event.get("wall_seconds", math.nan))])[-20:]
            self.step.emit(event)
            left = max(self._total_steps - int(event["step"]), 0)
            self.progress.emit(int(event["step"]), self._total_steps,
                               left * sum(self._step_seconds) / len(self._step_seconds))
        elif kind == "baseline":
            self.baseline.emit(event)
        elif kind == "epoch":
            self.epoch.emit(event)
        elif kind == "checkpoint":
            self.checkpoint.emit(event["path"])
        elif kind == "end":
            self._ended = True
            self.ended.emit(event)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._on_finished(-1, QProcess.ExitStatus.CrashExit,
                              f"ssl-train could not start: {self.process.errorString()}")

    def _on_finished(self, code: int, status: QProcess.ExitStatus, text: str = "") -> None:
        if self.process is None:
            return
        self._read_stderr()
        self._read_log()
        self._poll.stop()
        self._escalate.stop()
        process, self.process = self.process, None
        process.deleteLater()
        crashed = status == QProcess.ExitStatus.CrashExit
        if text:
            outcome = "failed"
        elif code == 0 and not crashed:
            outcome, text = "done", f"fine-tuning done: {self.settings.out}"
        elif self.stop_requested and (code in (128 + signal.SIGINT, 128 + signal.SIGTERM) or crashed):
            saved = (Path(self.settings.out) / LAST).is_file()
            outcome = "stopped"
            text = (f"fine-tuning stopped: {LAST} saved, Resume continues it" if saved
                    else "fine-tuning stopped before its first step: nothing saved")
            if self._stage == "killed":
                text = f"ssl-train did not stop and was killed; {text}"
        else:
            outcome = "failed"
            how = "was killed" if crashed else f"exited with status {code}"
            text = f"ssl-train {how}:\n{tail_lines(self.stderr) or '(no message)'}"
        self.finished.emit(outcome, text)
