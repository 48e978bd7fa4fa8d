"""The video with its heatmap overlay (two pyqtgraph ImageItems) and the overlay's controls."""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from .overlay import COLORMAPS, blend, overlay_lut

pg.setConfigOptions(imageAxisOrder="row-major")
FADED = 0.25  # overlay opacity factor while the sound is not in the picture


class RateMeter:
    """Events per second, smoothed over the last ``window`` events."""

    def __init__(self, window: int = 20):
        self.window = window
        self._times: list[float] = []

    def tick(self) -> None:
        self._times = (self._times + [time.monotonic()])[-self.window:]

    @property
    def rate(self) -> float:
        if len(self._times) < 2 or self._times[-1] == self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


class VideoView(QWidget):
    """Shows frames and heatmaps; the overlay can be hidden, recoloured and made more or less opaque."""

    overlay_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frame: np.ndarray | None = None
        self.heatmap: np.ndarray | None = None
        self.latency: float | None = None  # capture to heatmap of the last heatmap shown, s
        self.faded = False  # the model says the sound is not in the picture
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

        self.overlay_box = QCheckBox("Heatmap")
        self.overlay_box.setChecked(True)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(70)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.setMaximumWidth(160)
        self.colormap_box = QComboBox()
        self.colormap_box.addItems(COLORMAPS)
        self.stats_label = QLabel("")
        self.stats_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        controls = QHBoxLayout()
        controls.addWidget(self.overlay_box)
        controls.addWidget(QLabel("opacity"))
        controls.addWidget(self.opacity_slider)
        controls.addWidget(self.colormap_box)
        controls.addWidget(self.stats_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(controls)

        self.overlay_box.toggled.connect(self._apply_overlay_settings)
        self.opacity_slider.valueChanged.connect(self._apply_overlay_settings)
        self.colormap_box.currentTextChanged.connect(self._apply_overlay_settings)
        self._apply_overlay_settings()

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    @property
    def lut(self) -> np.ndarray:
        return overlay_lut(self.colormap_box.currentText())

    def show_frame(self, image: np.ndarray) -> None:
        new_size = self.frame is None or self.frame.shape != image.shape
        self.frame = image
        self.video_item.setImage(image, autoLevels=False, levels=(0, 255))
        if new_size:
            self.heat_item.setRect(QRectF(0, 0, image.shape[1], image.shape[0]))
            self.viewbox.autoRange(padding=0)
        self.frames_shown += 1
        self.video_rate.tick()
        self._update_stats()

    def show_heatmap(self, heatmap: np.ndarray, latency: float | None = None) -> None:
        self.heatmap = heatmap
        self.heat_item.setImage(heatmap, autoLevels=False, levels=(0.0, 1.0))
        if self.frame is not None:
            self.heat_item.setRect(QRectF(0, 0, self.frame.shape[1], self.frame.shape[0]))
        self.heatmaps_shown += 1
        self.heatmap_rate.tick()
        self.latency = latency
        self._update_stats()

    def clear_heatmap(self) -> None:
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
        return blend(self.frame, self.heatmap, self.lut, self.opacity * (FADED if self.faded else 1.0))

    def fade_overlay(self, faded: bool) -> None:
        """Dim the heatmap (the sound is not in the picture) or show it at the chosen opacity."""
        if faded != self.faded:
            self.faded = faded
            self._apply_overlay_settings()

    def _apply_overlay_settings(self) -> None:
        self.heat_item.setLookupTable(self.lut)
        self.heat_item.setOpacity(self.opacity * (FADED if self.faded else 1.0))
        self.heat_item.setVisible(self.overlay_box.isChecked())
        self.overlay_changed.emit()

    def _update_stats(self) -> None:
        parts = [f"video {self.video_rate.rate:4.1f} fps"]
        if self.heatmap is not None:
            parts.append(f"heatmap {self.heatmap_rate.rate:4.1f} fps")
        if self.latency is not None:
            parts.append(f"latency {1000 * self.latency:4.0f} ms")
        self.stats_label.setText("  ·  ".join(parts))
