"""Entry point of the desktop app: ``python main.py`` / ``ssl-desktop``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
BUNDLED_CHECKPOINT = RESOURCES / "model.safetensors"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ssl-desktop", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    return parser.parse_args(argv)


class MainWindow(QMainWindow):
    def __init__(self, status: str):
        super().__init__()
        self.setWindowTitle("Sound Source Localization")
        self.status_label = QLabel(status)
        self.setCentralWidget(self.status_label)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model import CheckpointError, load_model

    try:
        load_model(args.checkpoint)
        status = f"Model loaded: {args.checkpoint}"
    except CheckpointError as exc:
        status = f"No model: {exc}"
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(status)
    window.resize(800, 600)
    window.show()
    return app.exec()
