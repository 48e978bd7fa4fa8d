"""Scenes of the real-content benchmark: photo cut-outs over a background photograph.

Each cut-out (an RGBA photo) is scaled once per clip so that its box covers an area drawn from the
VGG-SS box-area distribution, then alpha-blended at an integer position per frame (a small drift and
sway). A clip-wide look (brightness, contrast, colour cast, gamma, blur, sensor noise) is applied to
the whole frame. The exact mask of an object is its alpha > 0.5 minus the masks of the cut-outs drawn
in front of it; its box is that mask's extent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from model.synth.scene import box_overlap, make_background

__all__ = ["BOX_AREA_LEVELS", "BOX_AREA_QUANTILES", "CutOut", "Look", "RealScene", "compose_scene"]

#: Quantiles of the largest box's area (fraction of the frame) per VGG-SS test clip (5158 clips of
#: shared/reference/vggss.json); the sounding object's box area is drawn from this distribution.
BOX_AREA_LEVELS = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
BOX_AREA_QUANTILES = (0.004, 0.0292, 0.0496, 0.1098, 0.2418, 0.4492, 0.67, 0.7795, 0.95)
DISTRACTOR_SCALE = (0.4, 1.0)  # distractor box area = a draw from the same distribution x this
SIMILAR_SIZE = (0.7, 1.4)  # a similar distractor's box area / the sounding object's
TWO_SOURCE_SCALE = (0.3, 0.6)  # the same for each of two sounding objects, so that both fit apart
MAX_OVERLAP = 0.15  # non-occluding objects are re-placed until their boxes overlap less than this
OCCLUDE_SHARE = 0.25  # share of clips with a distractor in front of the sounding object
VISIBLE_WHEN_OCCLUDED = (0.6, 0.9)  # share of the sounding object's mask left visible
DRIFT = 0.06  # largest drift over the clip, fraction of the frame size
SWAY = 0.015  # largest sinusoidal sway, fraction of the frame size
PROCEDURAL_BACKGROUND_SHARE = 0.1
PHOTO_SIDE = 720  # background photos are kept at this shorter side once loaded


@lru_cache(maxsize=256)
def load_cutout(path: str) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA PNG cropped to its alpha: ``(rgb (h, w, 3) float32, alpha (h, w) float32 in [0, 1])``."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise ValueError(f"{path} is not an RGBA image")
    alpha = image[..., 3].astype(np.float32) / 255
    rows, cols = np.nonzero(alpha > 0.5)
    y1, y2, x1, x2 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    rgb = cv2.cvtColor(image[y1:y2, x1:x2, :3], cv2.COLOR_BGR2RGB).astype(np.float32)
    return rgb, alpha[y1:y2, x1:x2]


@lru_cache(maxsize=64)
def load_photo(path: str) -> np.ndarray:
    """A background photograph as RGB uint8, scaled down to ``PHOTO_SIDE`` on its shorter side."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read the background photo {path}")
    scale = PHOTO_SIDE / min(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def background_crop(rng, photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """A random crop of ``photo`` with the frame's aspect (45-100 % of the largest), maybe mirrored."""
    ph, pw = photo.shape[:2]
    ch = min(ph, pw * height / width) * rng.uniform(0.45, 1.0)
    cw = ch * width / height
    y, x = int(rng.uniform(0, ph - ch)), int(rng.uniform(0, pw - cw))
    crop = photo[y:y + int(ch), x:x + int(cw)]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)


@dataclass
class CutOut:
    """One cut-out of a scene, scaled: colours, alpha, top-left position per frame, and what hides it."""

    class_name: str
    rgb: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w) float32
    positions: np.ndarray  # (frames, 2) int, (x, y), the cut-out inside the frame
    sounding: bool
    front: list[CutOut] = field(default_factory=list)  # cut-outs drawn over this one
    frame_size: tuple[int, int] = (0, 0)  # (W, H)

    def alpha_at(self, frame: int) -> np.ndarray:
        """The full-frame alpha (H, W) float32 at ``frame``."""
        width, height = self.frame_size
        out = np.zeros((height, width), np.float32)
        x, y = self.positions[frame]
        h, w = self.alpha.shape
        out[y:y + h, x:x + w] = self.alpha
        return out

    def visible_mask(self, frame: int) -> np.ndarray:
        """The exact mask (H, W) bool of what shows of this cut-out at ``frame``."""
        mask = self.alpha_at(frame) > 0.5
        for other in self.front:
            mask &= ~(other.alpha_at(frame) > 0.5)
        return mask

    def box(self, frame: int) -> tuple[int, int, int, int]:
        """Pixel box ``(x1, y1, x2, y2)`` of the visible mask at ``frame`` (x2, y2 exclusive)."""
        rows, cols = np.nonzero(self.visible_mask(frame))
        return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1

    def full_box(self, frame: int) -> tuple[int, int, int, int]:
        x, y = (int(v) for v in self.positions[frame])
        return x, y, x + self.alpha.shape[1], y + self.alpha.shape[0]


@dataclass
class Look:
    """Clip-wide photometric variation: a tone curve per channel, blur and sensor noise."""

    lut: np.ndarray  # (1, 256, 3) uint8: gamma, brightness x colour cast, contrast around mid-grey
    blur: float  # Gaussian sigma in pixels, 0: none
    noise: float  # sensor noise sigma (0-255 scale)
    noise_seed: int

    @classmethod
    def sample(cls, rng) -> Look:
        gain = rng.uniform(0.75, 1.25) * (1 + rng.normal(0, 0.05, 3))
        contrast, gamma = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.2)
        levels = np.arange(256)[:, None] / 255
        curve = ((255 * levels ** gamma * gain) - 128) * contrast + 128  # (256, 3)
        lut = np.clip(np.rint(curve), 0, 255).astype(np.uint8)[None]
        blur = rng.uniform(0.5, 1.5) if rng.random() < 0.3 else 0.0
        return cls(lut, blur, rng.uniform(0, 6), int(rng.integers(2**30)))

    def apply(self, image: np.ndarray, frame: int) -> np.ndarray:
        """``image`` (H, W, 3) float in 0..255 -> the frame as the camera gives it, uint8."""
        x = cv2.LUT(np.clip(image, 0, 255).astype(np.uint8), self.lut).astype(np.float32)
        if self.blur:
            x = cv2.GaussianBlur(x, (0, 0), self.blur)
        noise = np.empty((x.shape[0], x.shape[1] * 3), np.float32)  # one channel: randn fills it all
        cv2.setRNGSeed(self.noise_seed + frame)  # OpenCV's generator: much faster than numpy's here
        cv2.randn(noise, 0.0, self.noise)
        return np.clip(x + noise.reshape(x.shape), 0, 255).astype(np.uint8)


@dataclass
class RealScene:
    """A background, cut-outs drawn back to front, and the look; ``sounding`` in audio order."""

    background: np.ndarray  # (H, W, 3) uint8
    objects: list[CutOut]
    sounding: list[CutOut]
    look: Look
    photo_background: bool = True  # False: a procedural background instead of the photograph

    def render(self, frame: int) -> np.ndarray:
        """The RGB image (H, W, 3) uint8 of ``frame``."""
        image = self.background.astype(np.float32)
        for obj in self.objects:
            x, y = obj.positions[frame]
            h, w = obj.alpha.shape
            region = image[y:y + h, x:x + w]
            a = obj.alpha[..., None]
            region *= 1 - a
            region += a * obj.rgb
        return self.look.apply(image, frame)


def draw_box_area(rng) -> float:
    """A box area (fraction of the frame) from the VGG-SS distribution."""
    return float(np.interp(rng.random(), BOX_AREA_LEVELS, BOX_AREA_QUANTILES))


def scale_cutout(rng, rgb, alpha, area: float, size) -> tuple[np.ndarray, np.ndarray]:
    """Mirror maybe, tint a little and resize the cut-out so that its box covers ``area`` of the frame."""
    width, height = size
    h, w = alpha.shape
    scale = min(np.sqrt(area * width * height / (w * h)), 0.98 * width / w, 0.98 * height / h)
    new = (max(4, round(w * scale)), max(4, round(h * scale)))
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    premultiplied = cv2.resize(np.ascontiguousarray(rgb * alpha[..., None]), new, interpolation=cv2.INTER_AREA)
    alpha = np.clip(cv2.resize(np.ascontiguousarray(alpha), new, interpolation=cv2.INTER_AREA), 0, 1)
    rgb = premultiplied / np.maximum(alpha, 1e-3)[..., None] * (1 + rng.normal(0, 0.04, 3))
    alpha = np.where(alpha > 0.02, alpha, 0).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.float32), alpha


def _path(rng, size, obj_size, n_frames, fps) -> np.ndarray:
    """Top-left positions (frames, 2): a random start (lower in the frame more often, as things stand
    on the ground), a small drift and sway, inside the frame."""
    span = np.array(size) - np.array(obj_size)
    t = np.arange(n_frames) / fps
    start = np.array([rng.random(), rng.random() ** 0.5]) * span
    drift = rng.uniform(-DRIFT, DRIFT, 2) * np.array(size) * (t[:, None] / t[-1] - 0.5)
    sway = (rng.uniform(0, SWAY, 2) * np.array(size)
            * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t[:, None] + rng.uniform(0, 2 * np.pi, 2)))
    return np.clip(np.rint(start + drift + sway), 0, span).astype(int)


def _visible_ok(front: CutOut, back: CutOut, frame: int) -> bool:
    """Whether ``front`` leaves ``VISIBLE_WHEN_OCCLUDED`` of ``back``'s mask visible at ``frame``."""
    behind = back.alpha_at(frame) > 0.5
    visible = (behind & ~(front.alpha_at(frame) > 0.5)).sum() / max(behind.sum(), 1)
    return VISIBLE_WHEN_OCCLUDED[0] <= visible <= VISIBLE_WHEN_OCCLUDED[1]


def _place(rng, obj: CutOut, size, n_frames, fps, mid_frame, taken) -> None:
    """Give ``obj`` a path, re-drawing it (up to 30 times) while it overlaps ``taken`` boxes."""
    for _ in range(30):
        obj.positions = _path(rng, size, obj.alpha.shape[::-1], n_frames, fps)
        if all(box_overlap(obj.full_box(mid_frame), box) < MAX_OVERLAP for box in taken):
            return


def _place_occluder(rng, obj: CutOut, target: CutOut, size, n_frames, fps, mid_frame) -> bool:
    """Put ``obj`` on the edge of ``target`` (placed first) so that it hides part of it; False if
    30 tries leave no share in ``VISIBLE_WHEN_OCCLUDED`` visible."""
    obj_size = np.array(obj.alpha.shape[::-1])
    for _ in range(30):
        x1, y1, x2, y2 = target.full_box(mid_frame)
        centre = rng.uniform([x1, y1], [x2, y2]) - obj_size / 2
        path = _path(rng, size, obj_size, n_frames, fps)
        shifted = path + np.rint(centre - path[mid_frame]).astype(int)
        obj.positions = np.clip(shifted, 0, np.array(size) - obj_size)
        if _visible_ok(obj, target, mid_frame):
            return True
    return False


def compose_scene(rng, sounding, distractors, photo, size, n_frames: int, fps: int, mid_frame: int,
                  similar: bool = False) -> RealScene:
    """A scene of ``size`` (W, H): ``sounding`` and ``distractors`` are ``(class, rgb, alpha)`` cut-outs;
    ``photo`` the background photograph (None: a procedural background). ``similar``: the first distractor's
    box area is the first sounding object's times ``SIMILAR_SIZE`` (a map that finds "an object" of that size
    without the sound is then right about half the time at best)."""
    width, height = size
    procedural = photo is None or rng.random() < PROCEDURAL_BACKGROUND_SHARE
    if procedural:
        background = make_background(rng, width, height)
    else:
        background = background_crop(rng, photo, width, height)
    objects, areas = [], []
    for i, (name, rgb, alpha) in enumerate(sounding + distractors):
        if similar and i == len(sounding):
            area = areas[0] * rng.uniform(*SIMILAR_SIZE)
        elif i >= len(sounding):
            area = draw_box_area(rng) * rng.uniform(*DISTRACTOR_SCALE)
        else:
            area = draw_box_area(rng) * (rng.uniform(*TWO_SOURCE_SCALE) if len(sounding) == 2 else 1.0)
        areas.append(area)
        rgb, alpha = scale_cutout(rng, rgb, alpha, area, size)
        objects.append(CutOut(name, rgb, alpha, np.zeros((n_frames, 2), int), i < len(sounding),
                              frame_size=(width, height)))
    n = len(sounding)
    occluder = objects[n] if n == 1 and len(objects) > n and rng.random() < OCCLUDE_SHARE else None
    taken = []
    for obj in objects:
        if obj is occluder:
            continue
        _place(rng, obj, size, n_frames, fps, mid_frame, taken)
        taken.append(obj.full_box(mid_frame))
    if occluder is not None and not _place_occluder(rng, occluder, objects[0], size, n_frames, fps, mid_frame):
        _place(rng, occluder, size, n_frames, fps, mid_frame, taken)  # it goes behind like the others
        occluder = None
    behind = [o for o in objects[n:] if o is not occluder]
    order = [behind[i] for i in rng.permutation(len(behind))] + objects[:n] + ([occluder] if occluder else [])
    for k, obj in enumerate(order):
        obj.front = order[k + 1:]
    return RealScene(background, order, objects[:n], Look.sample(rng), not procedural)
