"""Soak benchmark: the live pipeline on the demo source for minutes, headless, watching for leaks.

The real main window (offscreen Qt) plays the bundled demo clips as camera and microphone with the
bundled model; every ``--every`` seconds it samples the process's RSS, thread count, open file handles,
the heatmaps shown so far and the interpreter's reference counts of ``True`` and ``None`` (a binding that
drops references to them, as PySide6 6.12.0 on Python 3.11 does, makes them fall until the interpreter
aborts). Prints a summary and writes JSON.

Usage: python bench/soak.py --minutes 10 [--json soak.json] [--every 10] [--checkpoint FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import __version__ as pyside_version  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project: bench/model.py is not the model package
from bench.results_file import write_json  # noqa: E402
from ssl_desktop.app import BUNDLED_CHECKPOINT  # noqa: E402
from ssl_desktop.inference_worker import WORKER_INFERENCE  # noqa: E402
from ssl_desktop.live_sources import demo_clips  # noqa: E402
from ssl_desktop.main_window import MainWindow  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sample(window: MainWindow, start: float) -> dict:
    return {
        "t_s": round(time.monotonic() - start, 1),
        "rss_mb": round(rss_mb(), 1),
        "threads": len(os.listdir("/proc/self/task")),
        "open_files": len(os.listdir("/proc/self/fd")),
        "refcount_true": sys.getrefcount(True),
        "refcount_none": sys.getrefcount(None),
        "heatmaps_shown": window.live_view.heatmaps_shown,
        "frames_shown": window.live_view.frames_shown,
    }


def slope_per_minute(samples: list[dict], key: str) -> float:
    """Least-squares slope of ``key`` against time, per minute."""
    ts = [s["t_s"] / 60 for s in samples]
    ys = [s[key] for s in samples]
    n = len(ts)
    if n < 2:
        return 0.0
    mean_t, mean_y = sum(ts) / n, sum(ys) / n
    var = sum((t - mean_t) ** 2 for t in ts)
    return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys)) / var if var else 0.0


def summarise(samples: list[dict], warmup_s: float) -> dict:
    steady = [s for s in samples if s["t_s"] >= warmup_s] or samples
    first, last = samples[0], samples[-1]
    return {
        "duration_s": last["t_s"],
        "rss_mb_first": first["rss_mb"], "rss_mb_last": last["rss_mb"],
        "rss_mb_peak": max(s["rss_mb"] for s in samples),
        "rss_slope_mb_per_min": round(slope_per_minute(steady, "rss_mb"), 3),
        "threads_min": min(s["threads"] for s in steady), "threads_max": max(s["threads"] for s in steady),
        "open_files_min": min(s["open_files"] for s in steady),
        "open_files_max": max(s["open_files"] for s in steady),
        "refcount_true_change": last["refcount_true"] - first["refcount_true"],
        "refcount_none_change": last["refcount_none"] - first["refcount_none"],
        "heatmap_hz": round((last["heatmaps_shown"] - first["heatmaps_shown"])
                            / max(last["t_s"] - first["t_s"], 1e-9), 2),
        "display_fps": round((last["frames_shown"] - first["frames_shown"])
                             / max(last["t_s"] - first["t_s"], 1e-9), 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the RSS slope")
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    parser.add_argument("--json", type=Path, help="write the samples and the summary here")
    parser.add_argument("--int8", action="store_true", help="the int8 visual encoder (the app's --int8)")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    int8_calibration = tuple(map(str, demo_clips())) if args.int8 else ()
    window = MainWindow("cpu", replace(WORKER_INFERENCE, int8_calibration=int8_calibration))
    window.load_checkpoint(args.checkpoint)
    window.start_source("demo")
    window.resize(1280, 760)
    window.show()

    start = time.monotonic()
    samples: list[dict] = []

    def tick() -> None:
        samples.append(sample(window, start))
        s = samples[-1]
        print(f"{s['t_s']:7.1f} s  rss {s['rss_mb']:7.1f} MB  threads {s['threads']:3d}  files {s['open_files']:3d}"
              f"  True {s['refcount_true']}  None {s['refcount_none']}  heatmaps {s['heatmaps_shown']}", flush=True)
        if s["t_s"] >= args.minutes * 60:
            app.quit()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(int(args.every * 1000))
    QTimer.singleShot(0, tick)
    app.exec()
    window.close()

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(), "pyside6": pyside_version,
        "summary": summarise(samples, args.warmup), "samples": samples,
    }
    print(json.dumps(result["summary"], indent=2))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
