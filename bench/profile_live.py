"""Where the live pipeline's time goes (the setting of ``bench/live.py``: real window offscreen, demo clips
at 30 fps, bundled model).

- per thread, over the measured window: CPU time, and time runnable but waiting for a core (run queue),
  from /proc/self/task/*/schedstat;
- the worker's ``localize`` and ``hear`` calls: wall time split into its thread's CPU, run-queue wait, and
  the rest (blocked: waiting for the GIL, or for intra-op threads);
- the GUI thread's busiest functions (cProfile, internal time);
- each GUI stall (the probe's 5-ms timer late by ``--stall-ms`` or more): its length split into the GUI
  thread's CPU, run-queue wait and the rest (blocked: the GIL, a lock), and where the GUI thread was
  (its Python stack, sampled every 2 ms while the timer is late; "in Qt" when no Python code ran);
- the start-up timeline: imports, window, model, first frame shown, model prepared, first heatmap.

The instrumentation wraps ``Localizer`` methods in this process only.

Usage: python bench/profile_live.py [--seconds 20] [--engine E] [--threads N] [--stall-ms 30] [--json OUT]
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from live import (  # noqa: E402
    SOURCE_FPS,
    STALL_TIMER_MS,
    STARTED,  # noqa: E402  (bench/, the folder of this script; first: its clock starts the timeline)
    WARMUP_S,
    LiveProbe,
)
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project: bench/model.py is not the model package

from bench.results_file import write_json  # noqa: E402
from model import localize  # noqa: E402
from model.inference.fast_path import ENGINES, InferenceConfig  # noqa: E402
from ssl_desktop.app import BUNDLED_CHECKPOINT  # noqa: E402
from ssl_desktop.live_sources import demo_clips  # noqa: E402
from ssl_desktop.main_window import MainWindow  # noqa: E402
from ssl_desktop.sources import Playlist, PlaylistAudioSource, PlaylistFrameSource  # noqa: E402

IMPORTED = time.time() - STARTED


def threads() -> dict[str, tuple[str, float, float]]:
    """Thread id -> (name, CPU seconds, run-queue seconds) of every thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            cpu_ns, wait_ns, _ = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        except FileNotFoundError:  # the thread ended
            continue
        out[tid] = (name, int(cpu_ns) / 1e9, int(wait_ns) / 1e9)
    return out


def own_schedstat() -> tuple[float, float]:
    """This thread's CPU and run-queue seconds so far."""
    cpu_ns, wait_ns, _ = Path("/proc/thread-self/schedstat").read_text().split()
    return int(cpu_ns) / 1e9, int(wait_ns) / 1e9


def where(frame, depth: int = 3) -> str:
    """The innermost ``depth`` Python frames of a stack, innermost first; "in Qt" at the event loop itself."""
    names = []
    while frame is not None and len(names) < depth:
        names.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    if names and names[0].startswith(f"{Path(__file__).name}:main:"):
        return "in Qt (no Python code running)"
    return " < ".join(names)


class StallProbe(LiveProbe):
    """``LiveProbe`` that also records each GUI stall: the GUI thread's CPU, run-queue and blocked time
    over the late tick's gap, and its sampled stacks meanwhile."""

    SAMPLE_S = 0.002

    def __init__(self, window: MainWindow, threshold_s: float):
        self.threshold = threshold_s
        self.stalls: list[dict] = []
        self._sched = own_schedstat()
        self._samples: dict[float, list[str]] = {}  # a late tick's start -> stacks seen since
        super().__init__(window)
        self._gui = threading.get_ident()
        threading.Thread(target=self._sample, name="stall-sampler", daemon=True).start()

    def _sample(self) -> None:
        while True:
            time.sleep(self.SAMPLE_S)
            last = self._last_tick
            if self.counting and time.monotonic() - last > STALL_TIMER_MS / 1000 + self.threshold / 2:
                frame = sys._current_frames().get(self._gui)
                self._samples.setdefault(last, []).append(where(frame))

    def _tick(self) -> None:
        now, sched = time.monotonic(), own_schedstat()
        gap = now - self._last_tick - STALL_TIMER_MS / 1000
        samples = self._samples.pop(self._last_tick, [])
        if self.counting and gap >= self.threshold:
            cpu, queue = sched[0] - self._sched[0], sched[1] - self._sched[1]
            self.stalls.append({"ms": round(gap * 1000, 1), "cpu_ms": round(cpu * 1000, 1),
                                "runqueue_ms": round(queue * 1000, 1),
                                "blocked_ms": round(max(gap + STALL_TIMER_MS / 1000 - cpu - queue, 0) * 1000, 1),
                                "where": Counter(samples).most_common(3)})
        self._sched = sched
        super()._tick()


def stall_summary(stalls: list[dict], worst: int = 5) -> dict:
    total = {key: round(sum(stall[key] for stall in stalls), 1) for key in ("ms", "cpu_ms", "runqueue_ms", "blocked_ms")}
    return {"count": len(stalls), "total": total, "worst": sorted(stalls, key=lambda stall: -stall["ms"])[:worst]}


class CallTimes:
    """Wall, own-CPU and run-queue seconds of each call of a method (while ``on``)."""

    def __init__(self):
        self.on = False
        self.calls: list[tuple[float, float, float]] = []

    def wrap(self, method):
        def timed(*args, **kwargs):
            wall, cpu, queue = time.perf_counter(), time.thread_time(), own_schedstat()[1]
            out = method(*args, **kwargs)
            if self.on:
                self.calls.append((time.perf_counter() - wall, time.thread_time() - cpu, own_schedstat()[1] - queue))
            return out
        return timed

    def summary(self) -> dict:
        if not self.calls:
            return {"calls": 0}
        wall, cpu, queue = (float(np.median(column)) * 1000 for column in zip(*self.calls))
        return {"calls": len(self.calls), "wall_ms": round(wall, 1), "cpu_ms": round(cpu, 1),
                "runqueue_ms": round(queue, 1), "blocked_ms": round(max(wall - cpu - queue, 0.0), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--engine", choices=ENGINES, help="the worker's CPU engine (default: the app's)")
    parser.add_argument("--int8", action="store_true", help="the int8 visual encoder (the app's --int8)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        default=InferenceConfig.channels_last)
    parser.add_argument("--threads", type=int, help="the worker's torch threads (default: the app's)")
    parser.add_argument("--top", type=int, default=15, help="GUI functions listed")
    parser.add_argument("--stall-ms", type=float, default=30.0, help="a GUI stall recorded from this long")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    timeline = {"imports_s": IMPORTED}
    calls = {"localize": CallTimes(), "hear": CallTimes(), "prepare": CallTimes()}
    localize.Localizer.localize = calls["localize"].wrap(localize.Localizer.localize)
    localize.Localizer.hear = calls["hear"].wrap(localize.Localizer.hear)
    localize.prepare_for_inference = calls["prepare"].wrap(localize.prepare_for_inference)
    calls["prepare"].on = True

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow("cpu")
    inference = replace(window.pipeline.worker.inference, engine=args.engine, channels_last=args.channels_last,
                        threads=args.threads,  # the app's settings (background compile) but for the ones given
                        int8_calibration=tuple(map(str, demo_clips())) if args.int8 else ())
    window.pipeline.worker.inference = inference
    timeline["window_s"] = time.time() - STARTED
    window.load_checkpoint(BUNDLED_CHECKPOINT)
    timeline["model_loaded_s"] = time.time() - STARTED
    probe = StallProbe(window, args.stall_ms / 1000)
    window.pipeline.frame_captured.connect(lambda _: timeline.setdefault("first_frame_s", time.time() - STARTED))
    playlist = Playlist(demo_clips(), window.pipeline.sample_rate)
    window.start_sources(PlaylistFrameSource(playlist, SOURCE_FPS), PlaylistAudioSource(playlist), "demo")
    window.resize(1280, 760)
    window.show()

    gui = cProfile.Profile()
    marks = {}

    def begin() -> None:
        probe.counting = True
        calls["localize"].on = calls["hear"].on = True
        marks["start"], marks["threads"] = time.monotonic(), threads()
        gui.enable()

    def end() -> None:
        gui.disable()
        marks["end"], marks["threads_end"] = time.monotonic(), threads()
        app.quit()

    QTimer.singleShot(int(WARMUP_S * 1000), begin)
    QTimer.singleShot(int((WARMUP_S + args.seconds) * 1000), end)
    app.exec()
    window.close()

    elapsed = marks["end"] - marks["start"]
    timeline["first_heatmap_s"] = probe.first_heatmap_s
    if calls["prepare"].calls:
        timeline["prepare_model_s"] = calls["prepare"].calls[0][0]
    per_thread = []
    for tid, (name, cpu, wait) in marks["threads_end"].items():
        _, cpu0, wait0 = marks["threads"].get(tid, (name, 0.0, 0.0))
        per_thread.append({"thread": f"{name} ({tid})", "cpu_share": round((cpu - cpu0) / elapsed, 3),
                           "runqueue_share": round((wait - wait0) / elapsed, 3)})
    per_thread.sort(key=lambda row: -row["cpu_share"])
    stream = io.StringIO()
    pstats.Stats(gui, stream=stream).sort_stats("tottime").print_stats(args.top)
    result = {
        "load_average": os.getloadavg()[0],
        "heatmap_hz": round(probe.heatmaps / elapsed, 2),
        "timeline": {key: round(value, 2) for key, value in timeline.items() if value is not None},
        "worker_calls": {name: calls[name].summary() for name in ("localize", "hear")},
        "threads": [row for row in per_thread if row["cpu_share"] + row["runqueue_share"] >= 0.005],
        "gui_max_stall_ms": round(probe.max_stall * 1000, 1),
        "gui_stalls": stall_summary(probe.stalls),
    }
    print(f"{elapsed:.0f} s measured, load average {result['load_average']:.2f}, "
          f"heatmaps {result['heatmap_hz']}/s, "
          f"worker: engine {inference.cpu_plan(window.model.config.visual_backbone)[0]}, "
          f"channels-last {inference.channels_last}, {inference.cpu_threads()} threads")
    print("timeline (s from process start):", result["timeline"])
    print("worker calls (medians):", result["worker_calls"])
    print(f"{'thread':>28} {'CPU':>6} {'run queue':>10}  (cores)")
    for row in result["threads"]:
        print(f"{row['thread']:>28} {row['cpu_share']:6.3f} {row['runqueue_share']:10.3f}")
    stalls = result["gui_stalls"]
    print(f"GUI stalls >= {args.stall_ms:.0f} ms: {stalls['count']} (longest {result['gui_max_stall_ms']} ms); "
          f"late by {stalls['total']['ms']} ms in all; over those ticks' whole gaps the GUI thread had CPU "
          f"{stalls['total']['cpu_ms']}, run queue {stalls['total']['runqueue_ms']}, blocked {stalls['total']['blocked_ms']} ms")
    for stall in stalls["worst"]:
        print(f"  {stall['ms']:6.1f} ms: CPU {stall['cpu_ms']}, run queue {stall['runqueue_ms']}, "
              f"blocked {stall['blocked_ms']}; GUI thread at {stall['where']}")
    print("GUI thread, cProfile by internal time (wall clock, GIL waits included):")
    print("\n".join(stream.getvalue().splitlines()[6:7 + args.top]))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
