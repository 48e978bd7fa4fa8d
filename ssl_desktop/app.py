"""Entry point of the desktop app: ``python main.py`` / ``ssl-desktop`` / ``make run``.

Opens the main window with the bundled model and goes live with the camera and the microphone, or
with the bundled demo clips when there is no camera. ``--snapshot OUT.png --after N`` renders N
processed frames, saves a screenshot of the whole window and exits (works headless).
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from model.inference.fast_path import InferenceConfig

from model.common.device import choose_device
from .inference_worker import WORKER_INFERENCE
from .live_sources import RESOURCES, demo_clips
from .main_window import MainWindow

BUNDLED_CHECKPOINT = RESOURCES / "model.safetensors"
APP_ICON = RESOURCES / "icons" / "ssl-desktop.svg"
SNAPSHOT_TIMEOUT_S = 120.0
MIN_SIZE = (640, 400)  # the smallest --size the window's layout is made for
MAX_SIZE = (16384, 16384)  # a window is painted into one image of under 2 GiB: 65536x65536 segfaulted


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: {'is a folder' if path.is_dir() else 'no such file'}")
    return path


def existing_folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {'is a file, not a folder' if path.exists() else 'no such folder'}")
    return path


def live_source(text: str) -> str:
    return text if text in ("camera", "demo") else str(existing_file(text))


def window_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 1280x760)")
    width, height = int(match[1]), int(match[2])
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise argparse.ArgumentTypeError(f"{text} is smaller than {MIN_SIZE[0]}x{MIN_SIZE[1]}")
    if width > MAX_SIZE[0] or height > MAX_SIZE[1]:
        raise argparse.ArgumentTypeError(f"{text} is larger than {MAX_SIZE[0]}x{MAX_SIZE[1]}")
    return width, height


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def parse_args(argv=None) -> argparse.Namespace:
    """The options, all checked here, before any window opens: a bad one exits 2 with a message."""
    parser = argparse.ArgumentParser(prog="ssl-desktop", description="See where in the picture the sound comes from.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--source", type=live_source, default="camera",
                        help="camera (the demo clips when there is none), demo, or a video file to loop")
    parser.add_argument("--checkpoint", type=existing_file, default=BUNDLED_CHECKPOINT,
                        help="ssl-desktop .safetensors model")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the model runs (auto: CUDA when present)")
    parser.add_argument("--open", nargs="*", type=existing_file, default=[], metavar="VIDEO",
                        help="video files to open and play in the inspector")
    parser.add_argument("--gallery", type=existing_folder, metavar="FOLDER",
                        help="index this folder of clips for the retrieval panel (File > Build gallery)")
    parser.add_argument("--snapshot", type=Path, metavar="OUT.png",
                        help="save a screenshot of the window after --after processed frames, then exit")
    parser.add_argument("--after", type=positive_int, default=10, metavar="N",
                        help="processed frames (heatmaps; frames shown without a model) before --snapshot")
    parser.add_argument("--size", type=window_size, default="1280x760", metavar="WxH", help="window size")
    parser.add_argument("--int8", action="store_true",
                        help="live view: run the visual encoder in int8 (ONNX Runtime, calibrated on the demo clips; "
                             "faster, maps slightly off float32's: docs/BENCHMARKS.md)")
    args = parser.parse_args(argv)
    if args.snapshot is not None and args.snapshot.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        parser.error(f"--snapshot {args.snapshot}: give a .png (or .jpg, .bmp) file name")
    if args.int8 and not demo_clips():
        parser.error("--int8 calibrates on the bundled demo clips, and resources/demo/videos has none")
    return args


def live_inference(args: argparse.Namespace) -> InferenceConfig:
    """How the live view runs the encoders: the worker's default, int8 calibrated on the demo clips with ``--int8``."""
    return replace(WORKER_INFERENCE, int8_calibration=tuple(map(str, demo_clips())) if args.int8 else ())


class Snapshot:
    """Saves the window once ``after`` frames were processed (and a gallery indexed), then ends the event loop."""

    def __init__(self, window: MainWindow, path: Path, after: int, app: QApplication):
        self.window, self.path, self.after, self.app = window, path, after, app
        self.exit_code = 1
        self.timer = QTimer(window)
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.check)
        self.timer.start()
        QTimer.singleShot(int(SNAPSHOT_TIMEOUT_S * 1000), self.give_up)

    def frames_done(self) -> int:
        """Heatmaps shown, or frames where none can come (no model, or a banner says there is no sound)."""
        view = self.window.current_view()
        silent = self.window.messages.text("sound" if view is self.window.live_view else "inspector-audio")
        return view.heatmaps_shown if self.window.model and not silent else view.frames_shown

    def gallery_done(self) -> bool:
        """No gallery was asked for, or it shows its matches, or it has a message (it failed or waits)."""
        retrieval = self.window.retrieval
        if retrieval.folder is None or self.window.messages.text("gallery"):
            return True
        return retrieval.gallery is not None and self.window.retrieval_panel.image_row.count() > 0

    def playback_ended(self) -> bool:
        """No more frames will come in the inspector: it played its file to the end and showed a heatmap, or it
        cannot show the file's frames (a banner says why: a file with no frame, a decoder that failed)."""
        inspector = self.window.inspector
        if self.window.current_view() is not inspector.view or inspector.file is None:
            return False
        return bool(self.window.messages.text("inspector")) or (not inspector.playing and self.frames_done() > 0)

    def check(self) -> None:
        if (self.frames_done() >= self.after or self.playback_ended()) and self.gallery_done():
            self.save(0)

    def give_up(self) -> None:
        print(f"--snapshot: only {self.frames_done()} of {self.after} frames after {SNAPSHOT_TIMEOUT_S:.0f} s",
              file=sys.stderr)
        self.save(1)

    def save(self, code: int) -> None:
        if not self.timer.isActive():
            return
        self.timer.stop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        saved = self.window.grab().save(str(self.path))
        print(f"saved {self.path}" if saved else f"cannot write {self.path}", file=sys.stderr)
        self.exit_code = code if saved else 1
        self.app.exit(self.exit_code)


def quit_on_ctrl_c(window: MainWindow):
    """Ctrl+C in the terminal closes the window (Python sees signals only while it runs: tick it).
    Returns the previous handler."""
    ticker = QTimer(window)
    ticker.timeout.connect(lambda: None)
    ticker.start(200)
    return signal.signal(signal.SIGINT, lambda *_: window.close())


def main(argv=None) -> int:
    args = parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ssl-desktop")
    app.setWindowIcon(QIcon(str(APP_ICON)))
    device, device_problem = choose_device(args.device)
    window = MainWindow(device, live_inference(args))
    if device_problem:
        window.messages.show_message("device", device_problem, "warning")
    window.load_checkpoint(args.checkpoint)
    window.start_source(args.source)
    if args.gallery:
        window.retrieval.build(args.gallery)
    if args.open:
        window.open_paths(args.open)
    window.resize(*args.size)
    window.show()
    snapshot = Snapshot(window, args.snapshot, args.after, app) if args.snapshot else None
    previous_handler = quit_on_ctrl_c(window)
    code = app.exec()
    signal.signal(signal.SIGINT, previous_handler)
    window.close()
    window.deleteLater()
    return snapshot.exit_code if snapshot else code
