"""The live path as a user gets it: the real main window (offscreen), the demo clips driven at 30 fps as
camera and microphone, the ring buffer, the inference worker and the painted overlay; then, in the same
run, a bare loop of the same per-frame model work (``model.localize.Localizer``) for comparison.

Prints a table; ``--json OUT`` writes exactly these keys: heatmap_hz, display_fps, latency_p50_ms,
latency_p95_ms (frame captured -> heatmap handed to the view), gui_max_stall_ms (longest the GUI thread
did not serve a 5 ms timer, beyond its period), bare_forward_hz, rss_growth_mb (end - after the warm-up),
first_heatmap_s (process start -> first heatmap shown). The measured seconds start after a 5 s warm-up
and once the worker's encoders are prepared (compiled; quantized with ``--int8``): the steady state.

The app's inference path is ``model.inference.fast_path``'s defaults; ``--engine onnxruntime|torchscript|eager``,
``--no-channels-last``, ``--threads N`` and ``--int8`` change it for the worker and the bare loop alike (the bare
loop's torch operations keep torch's thread count; ONNX Runtime runs with the worker's threads).

Usage: python bench/live.py --seconds 60 [--checkpoint FILE] [--json OUT] [--engine E] [--threads N] [--int8]
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def process_start() -> float:
    """When this process started, on the time.time() clock (from /proc, so imports count)."""
    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    uptime = float(open("/proc/uptime").read().split()[0])
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


STARTED = process_start()

import argparse  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soak import rss_mb  # noqa: E402  (bench/, the folder of this script)

from bench.results_file import write_json  # noqa: E402
from model.inference.fast_path import ENGINES, InferenceConfig  # noqa: E402
from model.localize import Localizer  # noqa: E402
from ssl_desktop.app import BUNDLED_CHECKPOINT  # noqa: E402
from ssl_desktop.live_sources import demo_clips  # noqa: E402
from ssl_desktop.main_window import MainWindow  # noqa: E402
from ssl_desktop.sources import Playlist, PlaylistAudioSource, PlaylistFrameSource  # noqa: E402

SOURCE_FPS = 30.0
WARMUP_S = 5.0
STALL_TIMER_MS = 5


class LiveProbe:
    """Listens to the window's own signals and timers; counts only after the warm-up."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.captured: dict[int, float] = {}  # frame id -> capture time (monotonic)
        self.latencies: list[float] = []
        self.first_heatmap_s: float | None = None
        self.max_stall = 0.0
        self.counting = False
        self.frames = self.heatmaps = 0
        self._last_tick = time.monotonic()
        pipeline = window.pipeline
        pipeline.frame_captured.connect(self._on_frame)
        pipeline.result.connect(self._on_result)  # after the window's own slot: the view has the heatmap
        self.stall_timer = QTimer()
        self.stall_timer.timeout.connect(self._tick)
        self.stall_timer.start(STALL_TIMER_MS)

    def _on_frame(self, frame) -> None:
        self.captured[frame.id] = frame.captured_at
        if len(self.captured) > 1000:
            self.captured.pop(next(iter(self.captured)))
        self.frames += self.counting

    def _on_result(self, frame_id: int, heatmap, latency: float) -> None:
        if self.first_heatmap_s is None:
            self.first_heatmap_s = time.time() - STARTED
        if self.counting and frame_id in self.captured:
            self.latencies.append(time.monotonic() - self.captured[frame_id])
            self.heatmaps += 1

    def _tick(self) -> None:
        now = time.monotonic()
        if self.counting:
            self.max_stall = max(self.max_stall, now - self._last_tick - STALL_TIMER_MS / 1000)
        self._last_tick = now


def bare_forward_hz(model, frame: np.ndarray, waveform: np.ndarray, seconds: float,
                    inference: InferenceConfig) -> float:
    """The worker's model work alone: a heatmap per frame, the sound re-encoded on the same schedule."""
    localizer = Localizer(model, "cpu", inference=inference)
    done, t, start = 0, 0.0, time.monotonic()
    with torch.inference_mode():
        while time.monotonic() - start < seconds:
            if localizer.needs_sound(t):
                localizer.hear(waveform, t)
            localizer.localize(frame)
            done += 1
            t += 1 / SOURCE_FPS
    return done / (time.monotonic() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds (after a 5 s warm-up and the encoders' preparation)")
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--engine", choices=ENGINES, help="the worker's CPU engine (default: the app's)")
    parser.add_argument("--int8", action="store_true", help="the int8 visual encoder (the app's --int8)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        default=InferenceConfig.channels_last)
    parser.add_argument("--threads", type=int, help="the worker's torch threads (default: the app's)")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow("cpu")
    inference = replace(window.pipeline.worker.inference, engine=args.engine, channels_last=args.channels_last,
                        threads=args.threads,  # the app's settings (background compile) but for the ones given
                        int8_calibration=tuple(map(str, demo_clips())) if args.int8 else ())
    window.pipeline.worker.inference = inference  # before the model: the worker prepares it with this
    window.load_checkpoint(args.checkpoint)
    if window.model is None:
        print(f"cannot load {args.checkpoint}", file=sys.stderr)
        return 2
    probe = LiveProbe(window)
    playlist = Playlist(demo_clips(), window.pipeline.sample_rate)
    window.start_sources(PlaylistFrameSource(playlist, SOURCE_FPS), PlaylistAudioSource(playlist), "demo")
    window.resize(1280, 760)
    window.show()

    marks = {}

    def begin() -> None:
        if window.pipeline.worker.preparing:  # steady state only: the start-up is first_heatmap_s
            QTimer.singleShot(100, begin)
            return
        probe.counting = True
        marks["start"], marks["rss"] = time.monotonic(), rss_mb()
        QTimer.singleShot(int(args.seconds * 1000), end)

    def end() -> None:
        marks["end"], marks["rss_end"] = time.monotonic(), rss_mb()
        app.quit()

    QTimer.singleShot(int(WARMUP_S * 1000), begin)
    app.exec()
    frame = window.live_view.frame
    window.close()

    elapsed = marks["end"] - marks["start"]
    waveform = np.random.default_rng(0).normal(0, 0.1, window.model.audio_config.num_samples).astype(np.float32)
    latencies_ms = np.array(probe.latencies) * 1000
    result = {
        "heatmap_hz": round(probe.heatmaps / elapsed, 2),
        "display_fps": round(probe.frames / elapsed, 2),
        "latency_p50_ms": round(float(np.percentile(latencies_ms, 50)), 1) if len(latencies_ms) else None,
        "latency_p95_ms": round(float(np.percentile(latencies_ms, 95)), 1) if len(latencies_ms) else None,
        "gui_max_stall_ms": round(probe.max_stall * 1000, 1),
        "bare_forward_hz": round(bare_forward_hz(window.model, frame, waveform, min(args.seconds, 20.0),
                                                  replace(inference, background=False)), 2),
        "rss_growth_mb": round(marks["rss_end"] - marks["rss"], 1),
        "first_heatmap_s": round(probe.first_heatmap_s, 2) if probe.first_heatmap_s else None,
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (worker {inference.cpu_threads()}), "
          f"engine {inference.cpu_plan(window.model.config.visual_backbone)[0]}, "
          f"channels-last {inference.channels_last}, int8 {bool(inference.int8_calibration)}, {args.checkpoint.name}, "
          f"source {SOURCE_FPS:.0f} fps {frame.shape[1]}x{frame.shape[0]}, {elapsed:.0f} s measured")
    for key, value in result.items():
        print(f"{key:>18}: {value}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
