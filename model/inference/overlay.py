"""The heatmap overlay's look, shared by the app's view, its MP4 export and the ssl-eval report: a colour
map whose alpha rises with the heat (cold regions leave the picture untouched), and blending it onto a frame."""
from __future__ import annotations

import cv2
import numpy as np

COLORMAPS = {"inferno": cv2.COLORMAP_INFERNO, "turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS,
             "magma": cv2.COLORMAP_MAGMA, "plasma": cv2.COLORMAP_PLASMA}
FIXED_RANGE = (0.0, 1.0)  # the fixed scale: raw cosine 0 is cold, 1 is hot, for every frame alike
TRANSPARENT_BELOW = 0.25  # heat under this is fully transparent
OPAQUE_ABOVE = 0.75  # heat over this gets the full opacity


def overlay_lut(colormap: str) -> np.ndarray:
    """(256, 4) uint8 RGBA look-up table: the colour map's colours, alpha ramping up with the heat."""
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    rgb = cv2.cvtColor(cv2.applyColorMap(ramp, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)[:, 0]  # (256, 3) uint8
    heat = np.linspace(0.0, 1.0, 256)
    alpha = np.clip((heat - TRANSPARENT_BELOW) / (OPAQUE_ABOVE - TRANSPARENT_BELOW), 0.0, 1.0)
    return np.concatenate([rgb, (255 * alpha)[:, None]], axis=1).astype(np.uint8)


def scale_heat(cosine: np.ndarray, value_range: tuple[float, float] | None = None
               ) -> tuple[np.ndarray, tuple[float, float]]:
    """Raw cosine map -> (heat in [0, 1], the (cold, hot) cosine range used): ``value_range`` fixed, or
    None to stretch this map's own min..max (there is then always a hot spot, even in silence)."""
    lo, hi = value_range if value_range is not None else (float(cosine.min()), float(cosine.max()))
    heat = np.clip((cosine - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)
    return heat, (lo, hi)


def blend(frame: np.ndarray, heatmap: np.ndarray, lut: np.ndarray, opacity: float) -> np.ndarray:
    """RGB uint8 frame (H, W, 3) with the heatmap (any size, [0, 1]) laid over it, as on screen."""
    h, w = frame.shape[:2]
    if heatmap.shape != (h, w):
        heatmap = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    rgba = lut[np.clip(heatmap * 255.0, 0, 255).astype(np.uint8)]  # (H, W, 4)
    alpha = rgba[..., 3:].astype(np.float32) / 255.0 * opacity
    out = frame.astype(np.float32) * (1.0 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
