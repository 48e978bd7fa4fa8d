"""Where the people are, seen whole: BlazePose's person detector (MediaPipe), for people too far or turned away
for a face to be found.

The weights are the file that the PyPI wheel ``mediapipe`` (0.10.14, Apache-2.0, Google) ships,
``mediapipe/modules/pose_detection/pose_detection.tflite``, run in torch (``model.knowledge.tflite_graph``); the
package is installed with ``--no-deps`` and never imported (docs/LICENSES.md). The detector (Bazarevsky et al.,
"BlazePose: On-device Real-time Body Pose tracking", 2020) sees a 224x224 letterboxed frame and gives, for each of
2254 anchors, a score and a box around the head with four key points: the middle of the hips and a point on the
circle around the whole body, the middle of the shoulders and a point on the circle around the upper body (arms
spread). Here a person is the box from the head down to the hips, as wide as that circle's radius: the head and
torso, where someone talking is. People small in the frame are looked for again in its four corners.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from model.knowledge.boxes import box_map, strongest
from model.knowledge.package_files import package_file
from model.knowledge.tflite_graph import TFLiteGraph

WEIGHTS_PACKAGE = "mediapipe"
WEIGHTS_FILE = "modules/pose_detection/pose_detection.tflite"
INSTALL_HINT = "pip install --no-deps mediapipe==0.10.14 (make installs it)"
SIDE = 224  # the detector's input, pixels a side
ANCHORS_PER_CELL = ((8, 2), (16, 2), (32, 6))  # (stride, anchors per cell) of its three heads
TILE = 0.6  # a corner tile's share of each side of the frame: the tiles overlap, so someone in the middle is in one


@dataclass(frozen=True)
class BodyConfig:
    """How people are looked for."""

    accept: float = 0.9  # detector probability for a person
    overlap: float = 0.3  # intersection over union above which two detections are one person
    # people too small in the whole frame are looked for again in its four corners (TILE of each side), at this
    # probability (stricter: a bird or a rock seen large in a tile can look like someone); None: not looked for
    tile_accept: float | None = 0.95


def weights_path() -> Path:
    """The installed detector file, or FileNotFoundError saying how to install it."""
    return package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE, "the person detector's weights", INSTALL_HINT)


@functools.lru_cache(maxsize=1)
def load_detector() -> TFLiteGraph:
    """The detector with the installed weights (shared: treat it as read-only)."""
    path = weights_path()
    try:
        return TFLiteGraph(path)
    except Exception as exc:  # a file that is not this detector: a message to act on
        raise ValueError(f"{path} is not BlazePose's person detector ({exc})") from exc


@functools.lru_cache(maxsize=1)
def anchor_centres() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1] of the detector's input, x then y, in its outputs' order."""
    centres = []
    for stride, count in ANCHORS_PER_CELL:
        cells = SIDE // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), count, axis=0))
    return np.concatenate(centres).astype(np.float32)


def detect_people(image: np.ndarray, config: BodyConfig = BodyConfig()) -> np.ndarray:
    """RGB uint8 frame (H, W, 3) -> people (N, 5): x1, y1, x2, y2 (head to hips, in the frame's pixels) and
    probability, most likely first."""
    h, w = image.shape[:2]
    views = [(0, 0, w, h, config.accept)]
    if config.tile_accept is not None:
        tw, th = round(w * TILE), round(h * TILE)
        views += [(x, y, tw, th, config.tile_accept) for y in (0, h - th) for x in (0, w - tw)]
    found = []
    for x, y, vw, vh, accept in views:  # one at a time: the activations of one view at most
        pixels, placement = _letterboxed(image[y:y + vh, x:x + vw], x, y)
        with torch.no_grad():
            raw, logits = load_detector()(torch.from_numpy(pixels[None]))
        probability = torch.sigmoid(logits[0, :, 0].clamp(-100, 100)).numpy()
        found.append(_boxes(raw[0].numpy(), probability, placement, accept))
    boxes = strongest(np.concatenate(found), config.overlap)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


def _letterboxed(view: np.ndarray, x: int, y: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A part of the frame whose top-left corner is at (x, y) -> the detector's input (SIDE, SIDE, 3) in [-1, 1]
    (the part centred on black), and where the input lies in the frame: its left, top and side in pixels."""
    h, w = view.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(np.ascontiguousarray(view), top, side - h - top, left, side - w - left,
                                cv2.BORDER_CONSTANT, value=0)
    pixels = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
    return pixels, (x - left, y - top, side)


def _boxes(raw: np.ndarray, probability: np.ndarray, placement: tuple[float, float, float], accept: float):
    """The detector's outputs (2254, 12) and probabilities (2254,) -> people (N, 5) in the frame's pixels."""
    keep = np.nonzero(probability >= accept)[0]
    points = raw[keep] / SIDE  # offsets from the anchors, in units of the input's side
    anchors = anchor_centres()[keep]
    head_top = anchors[:, 1] + points[:, 1] - points[:, 3] / 2
    hips = anchors + points[:, 4:6]
    shoulders = anchors + points[:, 8:10]
    half_width = np.linalg.norm(anchors + points[:, 10:12] - shoulders, axis=1) / 2  # as wide as the circle's radius
    left, top, side = placement
    boxes = np.stack([shoulders[:, 0] - half_width, head_top, shoulders[:, 0] + half_width, hips[:, 1]], axis=1) * side
    boxes += np.array([left, top, left, top], np.float32)
    return np.concatenate([boxes, probability[keep, None]], axis=1).astype(np.float32)


def body_map(image: np.ndarray, size: tuple[int, int], config: BodyConfig = BodyConfig()) -> np.ndarray:
    """RGB frame -> (h, w) grid over it: per cell, the probability of the most likely person whose head-to-hips
    box covers the cell's centre (0 where nobody was found)."""
    return box_map(detect_people(image, config), image.shape[:2], size)
