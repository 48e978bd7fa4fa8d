"""The video with its heatmap overlay (two pyqtgraph ImageItems) and the overlay's controls.

The view receives raw cosine maps at frame size and makes them heatmaps on the scale chosen (per-frame
stretch or fixed), shows that scale on a colour bar and the value under the cursor. On a line of its own
above the picture it says what the heatmap is listening to; on the picture's top right corner, whether the
sound is in the picture and what the model hears. Neither ever moves the layout: the state changes
several times a second and the picture (and what the user is about to click) must stay put.
"""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFontMetrics, QImage, QPixmap
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from model.inference.overlay import COLORMAPS, FIXED_RANGE, blend, overlay_lut, scale_heat

pg.setConfigOptions(imageAxisOrder="row-major")
FADED = 0.25  # overlay opacity factor while the sound is not in the picture
SCALES = {"stretch": None, f"fixed {FIXED_RANGE[0]:g}–{FIXED_RANGE[1]:g}": FIXED_RANGE}  # name: cosine range
COLOUR_BAR_SIZE = (90, 12)


class RateMeter:
    """Events per second, smoothed over the last ``window`` events; None until ``min_events`` events have
    come over at least ``min_seconds`` (the first frames arrive in a burst: two of them 0.1 ms apart are not
    a rate of 10,000 a second)."""

    def __init__(self, window: int = 20, min_events: int = 5, min_seconds: float = 0.5):
        self.window, self.min_events, self.min_seconds = window, min_events, min_seconds
        self._times: list[float] = []

    def tick(self) -> None:
        self._times = (self._times + [time.monotonic()])[-self.window:]

    @property
    def rate(self) -> float | None:
        if len(self._times) < self.min_events or self._times[-1] - self._times[0] < self.min_seconds:
            return None
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


def format_rate(name: str, rate: float | None) -> str:
    return f"{name} {rate:4.1f} fps" if rate is not None else f"{name} – fps"


class VideoView(QWidget):
    """Shows frames and heatmaps; the overlay can be hidden, recoloured and made more or less opaque."""

    overlay_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frame: np.ndarray | None = None
        self.cosine: np.ndarray | None = None  # the raw cosine map at frame size
        self.heatmap: np.ndarray | None = None  # the cosine on the scale in use, [0, 1]
        self.scale: tuple[float, float] | None = None  # the (cold, hot) cosine of the heatmap shown
        self._cursor = (-1, -1)  # the frame pixel under the mouse
        self.latency: float | None = None  # capture to heatmap of the last heatmap shown, s
        self.faded = False  # the model says the sound is not in the picture
        self.listening = ""  # what the heatmap is listening to, in full (the line above the picture may elide it)
        self.frames_shown = 0
        self.heatmaps_shown = 0
        self.video_rate = RateMeter()
        self.heatmap_rate = RateMeter()

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#202020")
        self.viewbox = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.viewbox.setMouseEnabled(False, False)
        self.video_item = pg.ImageItem()
        self.heat_item = pg.ImageItem()
        self.heat_item.setZValue(1)
        self.viewbox.addItem(self.video_item)
        self.viewbox.addItem(self.heat_item)
        # the picture's corners: the presence state at the top right, the cosine under the mouse at the bottom left
        self.presence_text = pg.TextItem("", color="#ffffff", fill=(0, 0, 0, 170), anchor=(1, 0))
        self.cursor_text = pg.TextItem("", color="#ffffff", fill=(0, 0, 0, 150), anchor=(0, 1))
        for item in (self.presence_text, self.cursor_text):
            item.setVisible(False)
            item.setZValue(2)
            self.viewbox.addItem(item)
        self.graphics.scene().sigMouseMoved.connect(self._show_value_at)
        self.listening_text = QLabel()  # a line of its own, always there (empty or not): the picture never moves
        self.listening_text.setStyleSheet("QLabel { background: #202020; color: #ffffff; padding: 2px 4px; }")
        self.listening_text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.listening_text.setFixedHeight(QFontMetrics(self.listening_text.font()).height() + 6)

        self.overlay_box = QCheckBox("Heatmap")
        self.overlay_box.setChecked(True)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(70)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.setMaximumWidth(160)
        self.opacity_slider.setMinimumWidth(60)
        self.colormap_box = QComboBox()
        self.colormap_box.addItems(list(COLORMAPS))
        self.scale_box = QComboBox()
        self.scale_box.addItems(list(SCALES))
        self.scale_box.setToolTip("Heatmap scale: stretch each map to its own min..max (there is always a hot "
                                  "spot), or the raw cosine on a fixed range (frames compare; silence stays cold)")
        self.colour_bar = QLabel()
        self.colour_bar.setToolTip("The colours of the cosine range in use")
        self.cold_label, self.hot_label = QLabel("–"), QLabel("–")
        self.stats_label = QLabel("")
        self.stats_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.stats_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # yields first

        controls = QHBoxLayout()
        controls.addWidget(self.overlay_box)
        controls.addWidget(QLabel("opacity"))
        controls.addWidget(self.opacity_slider)
        controls.addWidget(self.colormap_box)
        controls.addWidget(self.scale_box)
        controls.addWidget(self.cold_label)
        controls.addWidget(self.colour_bar)
        controls.addWidget(self.hot_label)
        controls.addWidget(self.stats_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.listening_text)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(controls)

        self.overlay_box.toggled.connect(self._apply_overlay_settings)
        self.opacity_slider.valueChanged.connect(self._apply_overlay_settings)
        self.colormap_box.currentTextChanged.connect(self._apply_overlay_settings)
        self.scale_box.currentTextChanged.connect(self._rescale)
        self._apply_overlay_settings()

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The fixed (cold, hot) cosine range chosen, None for the per-frame stretch."""
        return SCALES[self.scale_box.currentText()]

    def set_listening(self, text: str) -> None:
        """Say above the picture what the heatmap is listening to (and what is playing): elided to the line's
        width, in full in its tooltip."""
        if text != self.listening:
            self.listening = text
            self.listening_text.setToolTip(text)
            self._elide_listening()

    def _elide_listening(self) -> None:
        width = self.listening_text.contentsRect().width() - 8  # the label's padding
        self.listening_text.setText(QFontMetrics(self.listening_text.font()).elidedText(
            self.listening, Qt.TextElideMode.ElideRight, max(width, 0)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide_listening()

    def set_presence(self, state: str, hearing: str = "") -> None:
        """Say on the picture whether the sound is in it (``state``: '' when it is, else "silence" or "the sound
        is not in view": the overlay fades) and what the model hears (``hearing``: "speech 0.93, dog 0.41",
        '' when unknown)."""
        self.fade_overlay(bool(state))
        text = "\n".join(line for line in (state, hearing and f"hearing: {hearing}") if line)
        if text != self.presence:
            self.presence_text.setText(text)
            self.presence_text.setVisible(bool(text))

    @property
    def presence(self) -> str:
        """What the picture says about the sound ('' when nothing)."""
        return self.presence_text.toPlainText() if self.presence_text.isVisible() else ""

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    @property
    def lut(self) -> np.ndarray:
        return overlay_lut(self.colormap_box.currentText())

    def show_frame(self, image: np.ndarray) -> None:
        new_size = self.frame is None or self.frame.shape != image.shape
        self.frame = image
        self.video_item.setImage(image, autoLevels=False)  # no levels: uint8 RGB drawn as is, no rescale pass
        if new_size:
            self.heat_item.setRect(QRectF(0, 0, image.shape[1], image.shape[0]))
            self.cursor_text.setPos(0, image.shape[0])
            self.presence_text.setPos(image.shape[1], 0)
            self.viewbox.autoRange(padding=0)
        self.frames_shown += 1
        self.video_rate.tick()
        self._update_stats()

    def show_heatmap(self, cosine: np.ndarray, latency: float | None = None) -> None:
        """Show a raw cosine map (frame-sized) on the scale in use."""
        self.cosine = cosine
        self._show_scaled()
        self.heatmaps_shown += 1
        self.heatmap_rate.tick()
        self.latency = latency
        self._update_stats()

    def _show_scaled(self) -> None:
        self.heatmap, self.scale = scale_heat(self.cosine, self.value_range)
        self.heat_item.setImage(self.heatmap, autoLevels=False, levels=(0.0, 1.0))
        if self.frame is not None:
            self.heat_item.setRect(QRectF(0, 0, self.frame.shape[1], self.frame.shape[0]))
        self.cold_label.setText(f"{self.scale[0]:.2f}")
        self.hot_label.setText(f"{self.scale[1]:.2f}")
        self._show_cursor_value()

    def _rescale(self) -> None:
        if self.cosine is not None:
            self._show_scaled()

    def value_at(self, x: int, y: int) -> float | None:
        """The raw cosine at pixel (x, y) of the frame, None outside it or before a heatmap."""
        if self.cosine is None or not (0 <= y < self.cosine.shape[0] and 0 <= x < self.cosine.shape[1]):
            return None
        return float(self.cosine[y, x])

    def _show_value_at(self, scene_pos: QPointF) -> None:
        point = self.viewbox.mapSceneToView(scene_pos)
        self._cursor = int(np.floor(point.x())), int(np.floor(point.y()))
        self._show_cursor_value()

    def _show_cursor_value(self) -> None:
        """The cosine under the mouse (kept up to date as new maps arrive under a still mouse)."""
        x, y = self._cursor
        value = self.value_at(x, y)
        self.cursor_text.setText("" if value is None else f"cosine {value:.3f} at ({x}, {y})")
        self.cursor_text.setVisible(value is not None)

    def clear_heatmap(self) -> None:
        """No heatmap (and so nothing to say about the sound) until the next one."""
        self.set_presence("")
        self.cosine = None
        self.scale = None
        self.cold_label.setText("–")
        self.hot_label.setText("–")
        self.cursor_text.setVisible(False)
        self.heatmap = None
        self.heat_item.clear()
        self.latency = None
        self._update_stats()

    def clear(self) -> None:
        self.frame = None
        self.video_item.clear()
        self.clear_heatmap()

    def composite(self) -> np.ndarray | None:
        """The frame as shown: with the overlay blended in when it is on, RGB uint8; None before a frame."""
        if self.frame is None:
            return None
        if self.heatmap is None or not self.overlay_box.isChecked():
            return self.frame.copy()
        return blend(self.frame, self.heatmap, self.lut, self.shown_opacity)

    def fade_overlay(self, faded: bool) -> None:
        """Dim the heatmap (the sound is not in the picture) or show it at the chosen opacity."""
        if faded != self.faded:  # the opacity only: the look-up table and colour bar stay (the state flips often)
            self.faded = faded
            self._apply_opacity()

    @property
    def shown_opacity(self) -> float:
        """The overlay's opacity as drawn: the chosen one, dimmed while faded."""
        return self.opacity * (FADED if self.faded else 1.0)

    def _apply_opacity(self) -> None:
        self.heat_item.setOpacity(self.shown_opacity)

    def _apply_overlay_settings(self) -> None:
        lut = self.lut
        self.heat_item.setLookupTable(lut)
        self._apply_opacity()
        columns = lut[np.linspace(0, len(lut) - 1, COLOUR_BAR_SIZE[0]).astype(int), :3]  # (W, 3), cold to hot
        bar = np.ascontiguousarray(np.repeat(columns[None], COLOUR_BAR_SIZE[1], axis=0))  # (H, W, 3)
        image = QImage(bar.data, bar.shape[1], bar.shape[0], 3 * bar.shape[1], QImage.Format.Format_RGB888)
        self.colour_bar.setPixmap(QPixmap.fromImage(image.copy()))
        self.heat_item.setVisible(self.overlay_box.isChecked())
        self.overlay_changed.emit()

    def _update_stats(self) -> None:
        parts = [format_rate("video", self.video_rate.rate)]
        if self.heatmap is not None:
            parts.append(format_rate("heatmap", self.heatmap_rate.rate))
        if self.latency is not None:
            parts.append(f"latency {1000 * self.latency:4.0f} ms")
        self.stats_label.setText("  ·  ".join(parts))
