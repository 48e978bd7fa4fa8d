"""Helpers that several test files share (their fixtures are in conftest.py): the real sample's ``ssl-synth``
arguments and a test clip."""
from pathlib import Path

import numpy as np

from model.data.video_writer import ClipWriter
from ssl_desktop.sources import PatternSource

REAL_SAMPLE = Path(__file__).resolve().parent / "data" / "real_sample"
REAL = {"content": "real", "assets": str(REAL_SAMPLE), "manifest": str(REAL_SAMPLE / "manifest.json")}
TONE_RATE = 16000


def write_clip(path, seconds=1.0, fps=25, sound=True):
    """A test clip: the pattern camera's frames and, optionally, a 440 Hz tone."""
    pattern = PatternSource(fps=1000)  # fast: no real-time pacing needed to draw frames
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * TONE_RATE)) / TONE_RATE)).astype(np.float32)
    writer = ClipWriter(path, fps, (320, 240), tone if sound else None, TONE_RATE)
    for _ in range(int(seconds * fps)):
        writer.write(pattern.read())
    writer.close()
    return path
