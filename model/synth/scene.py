"""Scene rendering for the procedural benchmark: sprites, cluttered backgrounds, motion, boxes.

Each object is rendered once per clip as a square sprite (colours + boolean mask) and pasted at
its integer position in every frame, so its box at any frame follows exactly from the mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synth.classes import PALETTES, ClassSpec

SIZE_RANGE = (0.25, 0.6)  # sprite side / frame width, all objects alike: box areas ~8-55 % (VGG-SS median 25 %)
MAX_OVERLAP = 0.15  # objects are re-placed until their middle-frame boxes overlap less than this


@dataclass
class SceneObject:
    """One object of a scene: its sprite and its top-left position (x, y) in every frame."""

    class_name: str
    rgb: np.ndarray  # (s, s, 3) uint8
    mask: np.ndarray  # (s, s) bool
    positions: np.ndarray  # (frames, 2) int
    sounding: bool

    def box(self, frame: int) -> tuple[int, int, int, int]:
        """Pixel box ``(x1, y1, x2, y2)`` of the rendered object at ``frame`` (x2, y2 exclusive)."""
        rows, cols = np.any(self.mask, axis=1), np.any(self.mask, axis=0)
        y1, y2 = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
        x1, x2 = np.argmax(cols), len(cols) - np.argmax(cols[::-1])
        x, y = (int(v) for v in self.positions[frame])
        return x + int(x1), y + int(y1), x + int(x2), y + int(y2)

    def frame_mask(self, frame: int, height: int, width: int) -> np.ndarray:
        """The object's full-frame boolean mask at ``frame`` (ignoring occlusion)."""
        out = np.zeros((height, width), dtype=bool)
        x, y = self.positions[frame]
        side = self.mask.shape[0]
        out[y:y + side, x:x + side] = self.mask
        return out


@dataclass
class Scene:
    """A static background and objects drawn back to front; ``sounding`` in audio order."""

    background: np.ndarray  # (H, W, 3) uint8
    objects: list[SceneObject]
    sounding: list[SceneObject]

    def render(self, frame: int) -> np.ndarray:
        """The RGB image (H, W, 3) uint8 of ``frame``."""
        image = self.background.copy()
        for obj in self.objects:
            x, y = obj.positions[frame]
            side = obj.mask.shape[0]
            region = image[y:y + side, x:x + side]
            region[obj.mask] = obj.rgb[obj.mask]
        return image


def _polygon(u, v, vertices) -> np.ndarray:
    """Even-odd point-in-polygon test of the grid ``(u, v)`` against ``vertices``."""
    inside = np.zeros(u.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, 1, axis=0)):
        crosses = (ay > v) != (by > v)
        x_at = (bx - ax) * (v - ay) / np.where(by == ay, 1e-12, by - ay) + ax
        inside ^= crosses & (u < x_at)
    return inside


def _star(points, outer, inner, start=-np.pi / 2) -> np.ndarray:
    angles = start + np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _regular(sides, radius=0.95, start=-np.pi / 2) -> np.ndarray:
    angles = start + 2 * np.pi * np.arange(sides) / sides
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


SHAPES = {
    "circle": lambda u, v: u**2 + v**2 <= 0.95**2,
    "ring": lambda u, v: (u**2 + v**2 <= 0.95**2) & (u**2 + v**2 >= 0.5**2),
    "square": lambda u, v: _polygon(u, v, _regular(4, start=np.pi / 4)),
    "diamond": lambda u, v: _polygon(u, v, np.array([[0, -0.95], [0.6, 0], [0, 0.95], [-0.6, 0]])),
    "triangle": lambda u, v: _polygon(u, v, _regular(3)),
    "hexagon": lambda u, v: _polygon(u, v, _regular(6, start=0.0)),
    "star": lambda u, v: _polygon(u, v, _star(5, 0.95, 0.42)),
    "cross": lambda u, v: ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.9))
    | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.9)),
}


def _direction(rng, u, v) -> np.ndarray:
    """Coordinate along a random direction."""
    angle = rng.uniform(0, np.pi)
    return u * np.cos(angle) + v * np.sin(angle)


def _pattern(name, rng, u, v) -> np.ndarray:
    """Weight in [0, 1] of the secondary colour at each sprite pixel."""
    period = rng.uniform(0.3, 0.5)
    if name == "solid":
        return 0.15 * (u**2 + v**2) / 2  # a tint of the second colour towards the rim
    if name == "stripes":
        return np.floor(2 * _direction(rng, u, v) / period + rng.uniform(0, 2)) % 2
    if name == "checker":
        return (np.floor(u / period) + np.floor(v / period)) % 2
    if name == "dots":
        du = (u / period + rng.uniform(0, 1)) % 1 - 0.5
        dv = (v / period + rng.uniform(0, 1)) % 1 - 0.5
        return (du**2 + dv**2 < 0.3**2).astype(float)
    if name == "gradient":
        return np.clip((_direction(rng, u, v) + 1) / 2, 0, 1)
    raise ValueError(f"unknown pattern {name!r}")


def make_sprite(rng, spec: ClassSpec, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one instance of a class: ``(rgb (s, s, 3) uint8, mask (s, s) bool)``."""
    grid = (np.arange(side) + 0.5) / side * 2 - 1
    v, u = np.meshgrid(grid, grid, indexing="ij")
    turn = 0.0 if spec.shape in ("circle", "ring") else rng.uniform(-0.35, 0.35)
    u, v = u * np.cos(turn) + v * np.sin(turn), -u * np.sin(turn) + v * np.cos(turn)
    mask = SHAPES[spec.shape](u, v)
    colours = [np.array(c) * rng.uniform(0.85, 1.1) + rng.normal(0, 8, 3) for c in PALETTES[spec.palette]]
    weight = _pattern(spec.pattern, rng, u, v)[..., None]
    rgb = (1 - weight) * colours[0] + weight * colours[1]
    return np.clip(rgb, 0, 255).astype(np.uint8), mask


def make_background(rng, width: int, height: int) -> np.ndarray:
    """Low-contrast clutter: muted base colour, gradient, soft blobs and static pixel noise."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    image = rng.uniform(70, 170) + rng.normal(0, 12, 3) + (
        _direction(rng, x, y)[..., None] * rng.uniform(-40, 40, 3))
    for _ in range(rng.integers(4, 9)):
        cx, cy = rng.uniform(0, width / max(width, height)), rng.uniform(0, height / max(width, height))
        sigma = rng.uniform(0.05, 0.2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
        image += blob[..., None] * rng.normal(0, 18, 3)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _axis_path(rng, span: int, t: np.ndarray) -> np.ndarray:
    """Smooth 1-D path within ``[0, span]``: linear drift or a sinusoidal sway."""
    if rng.random() < 0.5:
        start = rng.uniform(0, span)
        end = np.clip(start + rng.uniform(-0.6, 0.6) * span, 0, span)
        return start + (end - start) * t / t[-1]
    centre = rng.uniform(0, span)
    amplitude = rng.uniform(0.2, 1.0) * min(centre, span - centre)
    return centre + amplitude * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))


def box_overlap(a, b) -> float:
    """Intersection area over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0) * max(h, 0) / smaller


def _place(rng, obj: SceneObject, size, t, mid_frame, taken) -> None:
    """Give ``obj`` a path, re-drawing it (up to 30 times) while it overlaps ``taken`` boxes."""
    side = obj.mask.shape[0]
    for _ in range(30):
        path = np.stack([_axis_path(rng, size[0] - side, t), _axis_path(rng, size[1] - side, t)], 1)
        obj.positions = np.rint(path).astype(int)
        if all(box_overlap(obj.box(mid_frame), box) < MAX_OVERLAP for box in taken):
            return


def sample_scene(rng, sounding: list[ClassSpec], distractors: list[ClassSpec], size,
                 n_frames: int, fps: int, mid_frame: int) -> Scene:
    """A random scene of ``size`` (W, H) with sounding and silent objects, the sounding ones in front."""
    width, height = size
    background = make_background(rng, width, height)
    t = np.arange(n_frames) / fps
    objects, taken = [], []
    for i, spec in enumerate(sounding + distractors):
        side = int(np.clip(round(rng.uniform(*SIZE_RANGE) * width), 16, min(width, height) - 4))
        rgb, mask = make_sprite(rng, spec, side)
        obj = SceneObject(spec.name, rgb, mask, np.zeros((n_frames, 2), dtype=int), i < len(sounding))
        _place(rng, obj, size, t, mid_frame, taken)
        taken.append(obj.box(mid_frame))
        objects.append(obj)
    # distractors in random depth order, sounding objects in front: a large silent object must not
    # hide the object the box annotates
    n = len(sounding)
    depth_order = [objects[n + i] for i in rng.permutation(len(objects) - n)] + objects[:n]
    return Scene(background, depth_order, objects[:n])
