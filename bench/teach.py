"""What recording and a fine-tuning child cost the live view: the real main window (offscreen), the test
camera (320x240 at 25 fps) and the test tone, the bundled model; live frames shown and heatmaps per
second over the same number of seconds, idle, while recording clips back to back, and while ssl-train
fine-tunes the bundled model on the demo clips in a child process with ``--threads N``.

On a machine shared with other work the rates drift with its load, so the training child is measured in
alternation: running, then paused (SIGSTOP) for as long, ``--rounds`` times; the pairs see the same load.
``--nice`` sets the child's niceness after the app set its own (default: the app's).

Usage: python bench/teach.py --seconds 15 [--rounds 3] [--threads 1 2] [--nice N] [--json OUT]
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ssl_desktop.app import BUNDLED_CHECKPOINT  # noqa: E402
from ssl_desktop.live_sources import DEMO_DIR  # noqa: E402
from ssl_desktop.main_window import MainWindow  # noqa: E402
from ssl_desktop.sources import PatternSource, ToneSource  # noqa: E402

WARMUP_S = 5.0


def spin(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def spin_until(done, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        spin(0.1)
    return done()


def measure(window: MainWindow, seconds: float) -> dict:
    """Frames captured and shown and heatmaps shown per second over ``seconds``."""
    view, capture = window.live_view, window.pipeline.capture
    start = (capture.frames_captured, view.frames_shown, view.heatmaps_shown, time.monotonic())
    spin(seconds)
    elapsed = time.monotonic() - start[3]
    captured, shown, heatmaps = (capture.frames_captured - start[0], view.frames_shown - start[1],
                                 view.heatmaps_shown - start[2])
    return {"seconds": round(elapsed, 1), "frames_captured": captured, "frames_shown": shown,
            "video_fps": round(shown / elapsed, 2), "heatmap_hz": round(heatmaps / elapsed, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nice", type=int)
    parser.add_argument("--json")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    window = MainWindow("cpu")
    window.resize(1280, 800)
    window.show()
    assert window.load_checkpoint(BUNDLED_CHECKPOINT)
    window.start_sources(PatternSource(size=(320, 240), fps=25), ToneSource(), "camera")
    spin(WARMUP_S)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["idle"] = measure(window, args.seconds)

        recording = window.recording
        recording.set_folder(Path(tmp) / "clips")
        recording.recorder.succeeded.connect(lambda _path: recording.recorder.start())  # back to back
        recording.recorder.start()
        rows["recording"] = measure(window, args.seconds)
        recording.recorder.succeeded.disconnect()
        spin_until(lambda: recording.recorder.state == "idle", 30)
        rows["recording"]["clips"] = recording.recorder.clips_saved
        rows["idle again"] = measure(window, args.seconds)

        panel, finetune = window.finetune_panel, window.finetune
        panel.add_data_folder(DEMO_DIR)
        panel.preset_box.setCurrentText("quick")
        panel.epochs_box.setValue(100)
        panel.device_box.setCurrentText("cpu")
        for threads in args.threads:
            panel.threads_box.setValue(threads)
            panel.out_edit.setText(str(Path(tmp) / f"run-{threads}"))
            assert finetune.start(resume=False), panel.message_label.text()
            steps: list[dict] = []
            finetune.process.step.connect(steps.append)
            if not spin_until(lambda steps=steps: len(steps) >= 1, 600):
                print(f"no step: {panel.message_label.text()}", file=sys.stderr)
                return 1
            pid = finetune.process.pid
            if args.nice is not None:
                os.setpriority(os.PRIO_PROCESS, pid, args.nice)
            running, paused, done = [], [], len(steps)
            for _ in range(args.rounds):
                running.append(measure(window, args.seconds))
                os.kill(pid, signal.SIGSTOP)
                paused.append(measure(window, args.seconds))
                os.kill(pid, signal.SIGCONT)
            for name, phase in ((f"training, --threads {threads}", running), (f"paused, --threads {threads}", paused)):
                row = {k: round(sum(r[k] for r in phase) / len(phase), 2) for k in phase[0]}
                row["heatmap_hz_each"] = [r["heatmap_hz"] for r in phase]
                rows[name] = row
            rows[f"training, --threads {threads}"]["train_steps"] = len(steps) - done
            rows[f"training, --threads {threads}"]["train_clips_per_s"] = round(
                sum(s["clips_per_s"] for s in steps) / len(steps), 2)
            finetune.process.step.disconnect(steps.append)
            finetune.cancel()
            spin_until(lambda: not finetune.process.running, 120)
    window.close()
    print(f"{'':28s} " + " ".join(f"{k:>16s}" for k in rows["idle"]))
    for name, row in rows.items():
        print(f"{name:28s} " + " ".join(f"{row.get(k, ''):>16}" for k in rows["idle"]) +
              "".join(f"  {k}={v}" for k, v in row.items() if k not in rows["idle"]))
    print(f"load average after: {os.getloadavg()}, cores: {os.cpu_count()}, child niceness: "
          f"{args.nice if args.nice is not None else 'the app default'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
