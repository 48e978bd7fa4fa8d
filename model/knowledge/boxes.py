"""Boxes found in a frame (faces, people): one per thing, and the grid of cells they cover."""
from __future__ import annotations

import numpy as np


def strongest(boxes: np.ndarray, overlap: float) -> np.ndarray:
    """Boxes (N, 5: x1, y1, x2, y2, probability) -> the most likely box of each group that overlaps more than
    ``overlap`` (intersection over union), most likely first (greedy non-maximum suppression)."""
    kept: list[np.ndarray] = []
    for box in boxes[np.argsort(-boxes[:, 4])]:
        if all(_iou(box, other) <= overlap for other in kept):
            kept.append(box)
    return np.array(kept, np.float32).reshape(-1, 5)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_map(boxes: np.ndarray, frame: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Boxes (N, 5) in a frame of ``frame`` = (H, W) pixels -> (h, w) grid over it: per cell, the probability of
    the most likely box covering the cell's centre (0 where none does; a box smaller than a cell marks the cell
    under its centre)."""
    h, w = size
    grid = np.zeros((h, w), np.float32)
    ih, iw = frame
    cy, cx = (np.arange(h) + 0.5) * ih / h, (np.arange(w) + 0.5) * iw / w
    for x1, y1, x2, y2, p in boxes:
        inside = ((cy >= y1) & (cy <= y2))[:, None] & ((cx >= x1) & (cx <= x2))[None, :]
        if not inside.any():
            inside[min(h - 1, int((y1 + y2) / 2 * h / ih)), min(w - 1, int((x1 + x2) / 2 * w / iw))] = True
        grid[inside] = np.maximum(grid[inside], p)
    return grid
