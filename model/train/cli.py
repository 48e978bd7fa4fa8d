"""ssl-train: self-supervised SSL-Align training (or the EZ-VSL baseline) on a folder of videos.

    ssl-train --data DIR --out RUN_DIR [--val DIR [--best-metric ciou|auc|a2i_r1]]
              [--init CKPT | --image-init imagenet|RESNET18.pth] [--visual-backbone resnet18|efficientnet_lite0]
              [--freeze-visual none|early|all] [--cache-visual-maps MB]
              [--audio-backbone resnet18|aisfx|yamnet] [--audio-init aisfx|yamnet|FILE.pth]
              [--freeze-audio none|last|all]
              [--loss align|ezvsl] [--epochs N] [--batch-size B] [--lr LR] [--schedule constant|cosine]
              [--warmup-steps N] [--image-size S]
              [--audio-seconds S] [--device auto|cpu|cuda] [--resume | --overwrite] [--no-neighbours]
              [--positives neighbours|bridge|both]
              [--no-augment | --views paper|weak]
              [--neighbours-k K] [--workers N] [--threads N] [--freeze-batch-norm] [--cache DIR] [--max-clips N]

The same command under ``torchrun --nproc_per_node N`` trains with DDP (``--batch-size`` is the global
batch). Writes ``RUN_DIR/last.safetensors``, ``best.safetensors``, ``last.state.safetensors`` (resume)
and ``log.jsonl`` (every step, every epoch's validation). Ctrl-C or SIGTERM ends the current step, saves
``last`` and exits (128 + the signal's number); a second one stops at once, still saving ``last``.
A RUN_DIR that holds a run is continued with ``--resume`` or replaced with ``--overwrite``, never silently
(``--overwrite`` deletes it once every input has been read, and never the ``--init`` file). A loss that
becomes NaN or infinite stops the run before that step (exit 2): the run's files keep their last save.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from tqdm import tqdm

from model.checkpoints.store import CheckpointError
from model.data.workers import error_line
from model.train import distributed
from model.train.flags import parse_args
from model.train.run_folder import LOG
from model.train.trainer import Callback, Trainer


def rounded(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


class ProgressBar(Callback):
    """A tqdm bar over all steps with the loss and clips/s."""

    def __init__(self):
        self.bar = None

    def on_train_start(self, info: dict) -> None:
        self.bar = tqdm(total=info["total_steps"], initial=info["step"], unit="step", dynamic_ncols=True)

    def on_step(self, step: int, metrics: dict) -> None:
        self.bar.set_postfix(epoch=metrics["epoch"], loss=f"{metrics['loss']:.3f}",
                             clips_s=f"{metrics['clips_per_s']:.1f}")
        self.bar.update(1)

    def on_baseline(self, metrics: dict) -> None:
        self.bar.write(f"before training: {rounded(metrics)}")

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self.bar.write(f"epoch {epoch}: {rounded(metrics)}")

    def on_train_end(self, summary: dict) -> None:
        self.bar.close()


class JsonlLog(Callback):
    """One JSON object per line in ``path``: start, the starting model's validation (``baseline``, when
    fine-tuning with --val), every step, every epoch, every checkpoint, end.
    Appends, so a resumed run continues the same log."""

    def __init__(self, path):
        self.path = Path(path)

    def _write(self, event: str, payload: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"event": event, "time": time.time(), **payload}) + "\n")

    def on_train_start(self, info: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)  # not before: the trainer checks --out first
        self._write("start", {**info, "skipped": [list(s) for s in info["skipped"]]})

    def on_step(self, step: int, metrics: dict) -> None:
        self._write("step", metrics)

    def on_baseline(self, metrics: dict) -> None:
        self._write("baseline", metrics)

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self._write("epoch", metrics)

    def on_checkpoint(self, path: str) -> None:
        self._write("checkpoint", {"path": path})

    def on_train_end(self, summary: dict) -> None:
        self._write("end", summary)


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer, verbose: bool):
    """SIGINT/SIGTERM: the first asks ``trainer`` to stop after its step, the second interrupts at once.

    Yields a list that receives the numbers of the signals caught. A SIGINT the parent set to be
    ignored (a job started with ``&`` or ``nohup``) stays ignored; elsewhere than in the main thread
    (a GUI driving ``main``) nothing is installed.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handle(signum, _frame):
        caught.append(signum)
        if len(caught) > 1:
            raise KeyboardInterrupt
        trainer.stop()
        if verbose:
            print(f"\n{signal.Signals(signum).name}: stopping after this step (again to stop now)", file=sys.stderr)

    wanted = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {s: signal.signal(s, handle) for s in wanted}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def use_threads(threads: int | None) -> None:
    """Limit torch to ``threads`` threads (None: leave its default); before any tensor work."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:  # settable once per process, before parallel work
        torch.set_num_interop_threads(threads)


def main(argv=None) -> int:
    config = parse_args(argv)
    use_threads(config.threads)
    info = distributed.setup(config.device)
    callbacks = [ProgressBar(), JsonlLog(Path(config.out) / LOG)] if info.is_main else []
    trainer = None
    caught: list[int] = []
    saved = f"saved {config.out}/last.safetensors; continue with --resume"
    try:
        trainer = Trainer(config, callbacks, info)
        with stop_on_signals(trainer, info.is_main) as caught:
            summary = trainer.fit()
    except KeyboardInterrupt:
        if info.is_main and trainer is not None:
            print(f"\ninterrupted: {saved}", file=sys.stderr)
        return 128 + (caught[0] if caught else signal.SIGINT)
    except (CheckpointError, OSError, ValueError) as exc:  # OSError: also a full disk
        print(f"ssl-train: error: {error_line(exc)}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    if caught:
        if info.is_main:
            print(f"stopped at step {summary['step']}: {saved}", file=sys.stderr)
        return 128 + caught[0]
    if info.is_main:
        print(f"done: step {summary['step']}, epoch {summary['epoch']}, best {summary['best']} -> {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
