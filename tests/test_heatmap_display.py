"""The heatmap explains itself: no seams, a scale to choose and shown, the value under the cursor, above
the picture what it listens to, and frame rates once there are enough frames to measure them."""
import time

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF
from window_support import WAIT_MS, wait_for_heatmaps

import model
from model.data.video_io import read_clip
from model.inference.heatmap import to_heatmap, upsample_map
from model.localize import Localizer
from model.knowledge.config import SemanticConfig
from model.networks.object_guidance import ObjectGuidance
from model.inference.overlay import FIXED_RANGE, scale_heat
from ssl_desktop.live_sources import demo_clips
from ssl_desktop.sources import ClockedAudioSource, PatternSource, ToneSource
from ssl_desktop.video_view import RateMeter, VideoView

FRAME = (240, 320)


@pytest.fixture(scope="module")
def bundled_model():
    """The bundled model showing its cosine map alone: these tests are about the upsampling of that map (the
    object guidance on top of it: tests/test_object_guidance.py; the semantic map: tests/test_knowledge.py)."""
    bundled = model.load_model("resources/model.safetensors", device="cpu")
    bundled.guidance, bundled.semantic = ObjectGuidance(), SemanticConfig()
    return bundled


@pytest.fixture(scope="module")
def bundled_map(bundled_model):
    """The bundled model's result for a demo frame (resized to FRAME) and its sound: the raw cosine map
    (S/16 square for an S-pixel model) and what the app shows."""
    m = bundled_model
    clip = read_clip(demo_clips()[2], 2.0, seconds=m.audio_config.seconds, sample_rate=m.audio_config.sample_rate)
    localizer = Localizer(m, "cpu")
    with torch.inference_mode():
        localizer.hear(clip.waveform, 2.0)
        return localizer.localize(cv2.resize(clip.frame, (FRAME[1], FRAME[0])))


def reference_bilinear(small: np.ndarray, size) -> np.ndarray:
    return cv2.resize(small.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def slope_jumps(image: np.ndarray, axis: int) -> float:
    """The largest jump of the slope across rows (axis 0) or columns (axis 1): a seam where it is large."""
    slope = np.abs(np.diff(image, axis=axis)).mean(axis=1 - axis)
    return float(np.abs(np.diff(slope)).max())


def test_evaluation_upsampling_is_the_reference_bilinear(bundled_model, bundled_map):
    small = torch.from_numpy(bundled_map.cosine)
    side = bundled_model.config.image_size // 16
    assert small.shape == (side, side)
    reference = reference_bilinear(small.numpy(), FRAME)
    reference = (reference - reference.min()) / (reference.max() - reference.min())
    assert np.abs(to_heatmap(small, FRAME).numpy() - reference).max() < 1e-5


def test_the_displayed_heatmap_follows_bilinear_without_its_seams(bundled_map):
    shown = bundled_map.shown  # what the app shows (before the colour scale)
    small = bundled_map.cosine
    reference = reference_bilinear(small, FRAME)
    assert shown.shape == FRAME and shown.dtype == np.float32
    spread = small.max() - small.min()
    assert np.abs(shown - reference).mean() < 0.05 * spread  # the same picture (a flipped map: ~0.5) ...
    assert small.min() <= shown.min() and shown.max() <= small.max()  # ... in the map's own range
    for axis in (0, 1):  # ... but the slope does not jump at each row / column of cell centres
        assert slope_jumps(shown, axis) < 0.35 * slope_jumps(reference, axis)


def test_smooth_upsampling_keeps_a_flat_map_flat():
    flat = torch.full((6, 6), 0.4)
    assert torch.allclose(upsample_map(flat, FRAME, smooth=True), torch.tensor(0.4))


def test_scale_heat_stretches_or_keeps_the_raw_cosine():
    cosine = np.array([[0.2, 0.4], [0.5, 0.6]], np.float32)
    heat, scale = scale_heat(cosine)
    assert scale == pytest.approx((0.2, 0.6)) and heat.min() == 0 and heat.max() == 1
    heat, scale = scale_heat(cosine, FIXED_RANGE)
    assert scale == FIXED_RANGE and np.allclose(heat, cosine)


class Silence(ClockedAudioSource):
    """A microphone that records digital silence."""

    name = "silence"

    def samples_due(self) -> int:
        return 16000 * 10

    def samples(self, start, stop):
        return np.zeros(stop - start, np.float32)


def test_fixed_scale_colour_bar_and_value_under_the_cursor(qtbot, make_window):
    window = make_window()
    window.start_sources(PatternSource(size=(320, 240)), ToneSource(), "camera")
    view = window.live_view
    wait_for_heatmaps(qtbot, view, 1)
    lo, hi = view.scale
    assert (lo, hi) == pytest.approx((view.cosine.min(), view.cosine.max()))  # stretch: this map's range
    assert view.cold_label.text() == f"{lo:.2f}" and view.hot_label.text() == f"{hi:.2f}"
    assert not view.colour_bar.pixmap().isNull()
    view.scale_box.setCurrentIndex(1)  # fixed
    assert view.value_range == FIXED_RANGE and view.scale == FIXED_RANGE
    assert np.allclose(view.heatmap, np.clip(view.cosine, *FIXED_RANGE))
    assert view.cold_label.text() == "0.00" and view.hot_label.text() == "1.00"
    x, y = 200, 50
    view.graphics.scene().sigMouseMoved.emit(view.viewbox.mapViewToScene(QPointF(x + 0.5, y + 0.5)))  # pixel (x, y)
    assert view.cursor_text.isVisible()
    assert view.cursor_text.textItem.toPlainText() == f"cosine {view.cosine[y, x]:.3f} at ({x}, {y})"


def test_the_picture_says_what_the_heatmap_listens_to(qtbot, make_window, clips):
    window = make_window()
    window.start_source("demo")
    view = window.live_view
    text = lambda: view.listening  # noqa: E731
    qtbot.waitUntil(lambda: "listening to: the live sound" in text(), timeout=WAIT_MS)
    assert "playing s777_0000" in text() and "(" in text()  # the demo clip and its class
    window.start_sources(PatternSource(size=(320, 240)), Silence(), "camera")
    qtbot.waitUntil(lambda: text().startswith("listening to: silence"), timeout=WAIT_MS)
    window.retrieval.build(clips["synth"][0].parent.parent)
    qtbot.waitUntil(lambda: window.retrieval.gallery is not None, timeout=60000)
    window.retrieval_panel.select_query_sound(1)
    qtbot.waitUntil(lambda: "gallery clip" in text() and "query" in text(), timeout=WAIT_MS)
    label = view.listening_text  # a line above the picture, the text elided to it, in full in the tooltip
    assert label.geometry().bottom() < view.graphics.geometry().top()
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
    assert label.toolTip() == text()
    window.resize(700, 640)
    window.start_source("demo")  # the query and the clip playing: longer than the line
    qtbot.waitUntil(lambda: "query" in text() and "playing" in text() and label.text().endswith("…"), timeout=WAIT_MS)
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


def test_no_frame_rate_is_shown_until_enough_frames_came(qtbot):
    view = VideoView()
    qtbot.addWidget(view)
    for _ in range(3):  # the first frames come in a burst
        view.show_frame(np.zeros((24, 32, 3), np.uint8))
    assert view.video_rate.rate is None and "video – fps" in view.stats_label.text()
    meter = RateMeter(min_events=4, min_seconds=0.15)
    for _ in range(4):
        meter.tick()
        time.sleep(0.06)
    assert meter.rate == pytest.approx(1 / 0.06, rel=0.5)  # a real rate, not thousands a second
