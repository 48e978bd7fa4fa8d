"""What the model hears: the recent waveform, the spectrogram fed to the audio encoder, a level meter."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

METER_FLOOR_DB = -60.0
METER_WINDOW_S = 0.05  # the meter shows the peak of the newest 50 ms
WAVEFORM_BINS = 600  # the waveform is drawn as the min and max of this many bins
EMPTY_SPECTROGRAM = ((0, 300), (0, 8000))  # axes (frames, Hz) before the first spectrogram


class AudioPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.waveform_plot = pg.PlotWidget()
        self.waveform_plot.setMouseEnabled(False, False)
        self.waveform_plot.hideButtons()
        self.waveform_plot.setYRange(-1.0, 1.0)
        self.waveform_plot.setLabel("bottom", "time", units="s")
        self.waveform_plot.setLabel("left", "sound")
        self.waveform_plot.setMinimumHeight(120)
        self.waveform_curve = self.waveform_plot.plot(pen=pg.mkPen("#7fd4ff", width=1))
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffcc33", width=2))
        self.cursor.setVisible(False)
        self.waveform_plot.addItem(self.cursor)

        self.spectrogram_plot = pg.PlotWidget()
        self.spectrogram_plot.setMouseEnabled(False, False)
        self.spectrogram_plot.hideButtons()
        self.spectrogram_plot.setLabel("left", "frequency", units="Hz")
        self.showing_mel = False
        self.spectrogram_plot.setLabel("bottom", "spectrogram frame: what the model hears")
        self.spectrogram_plot.setMinimumHeight(120)
        self.spectrogram_item = pg.ImageItem()
        self.spectrogram_item.setColorMap(pg.colormap.get("viridis"))
        self.spectrogram_plot.addItem(self.spectrogram_item)
        self.spectrogram_plot.setRange(xRange=EMPTY_SPECTROGRAM[0], yRange=EMPTY_SPECTROGRAM[1], padding=0)

        self.meter = QProgressBar()
        self.meter.setOrientation(Qt.Orientation.Vertical)
        self.meter.setRange(int(METER_FLOOR_DB), 0)
        self.meter.setValue(int(METER_FLOOR_DB))
        self.meter.setTextVisible(False)
        self.meter.setToolTip("input level (peak, dBFS)")
        self.level_label = QLabel("–∞ dB")
        self.level_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.level_label.setMinimumWidth(56)

        meter = QVBoxLayout()
        meter.addWidget(self.meter, 1, Qt.AlignmentFlag.AlignHCenter)
        meter.addWidget(self.level_label)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 4)
        layout.addWidget(self.waveform_plot, 1)
        layout.addWidget(self.spectrogram_plot, 1)
        layout.addLayout(meter)

    def sizeHint(self) -> QSize:
        return QSize(900, 190)

    def show_waveform(self, samples: np.ndarray, sample_rate: int, start: float, cursor: float | None = None) -> None:
        """Plot ``samples`` with the first at time ``start`` (s) and a line at time ``cursor``; the meter
        shows the peak level just before the cursor (None: no line, the newest samples)."""
        self.cursor.setVisible(cursor is not None)
        if cursor is not None:
            self.cursor.setValue(cursor)
        bin_size = max(len(samples) // WAVEFORM_BINS, 1)
        usable = len(samples) // bin_size * bin_size
        bins = samples[:usable].reshape(-1, bin_size)
        envelope = np.stack([bins.min(axis=1), bins.max(axis=1)], axis=1).reshape(-1)  # min, max per bin
        times = start + np.repeat(np.arange(len(bins)) * bin_size, 2) / sample_rate
        self.waveform_curve.setData(times, envelope)
        if len(samples):
            self.waveform_plot.setXRange(start, start + len(samples) / sample_rate, padding=0)
        now = len(samples) if cursor is None else int(np.clip((cursor - start) * sample_rate, 0, len(samples)))
        recent = samples[max(now - int(METER_WINDOW_S * sample_rate), 0):now]
        peak = float(np.abs(recent).max()) if len(recent) else 0.0
        db = 20 * np.log10(peak) if peak > 0 else -np.inf
        self.meter.setUpdatesEnabled(False)  # QProgressBar.setValue repaints at once (bench/profile_live.py: a
        self.meter.setValue(int(max(db, METER_FLOOR_DB)))  # tenth of the GUI thread); this way it joins the
        self.meter.setUpdatesEnabled(True)  # next paint (re-enabling schedules an ordinary update)
        self.level_label.setText(f"{db:.0f} dB" if db > METER_FLOOR_DB else "–∞ dB")

    def show_spectrogram(self, spec: np.ndarray, sample_rate: int, frontend: str = "linear") -> None:
        """The (frequency, time) log spectrogram the audio encoder was given: linear bins up to half the
        sample rate, or (front ends ``sfx_mel``, ``yamnet_mel``) mel bands, shown by their number."""
        mel = frontend != "linear"
        top = spec.shape[0] if mel else sample_rate / 2
        if mel != self.showing_mel:
            self.showing_mel = mel
            self.spectrogram_plot.setLabel("left", "mel band" if mel else "frequency", units="" if mel else "Hz")
        self.spectrogram_item.setImage(spec, autoLevels=True)
        self.spectrogram_item.setRect(QRectF(0, 0, spec.shape[1], top))
        self.spectrogram_plot.setRange(xRange=(0, spec.shape[1]), yRange=(0, top), padding=0)

    def clear(self) -> None:
        self.waveform_curve.setData([], [])
        self.cursor.setVisible(False)
        self.spectrogram_item.clear()
        self.meter.setValue(int(METER_FLOOR_DB))
        self.level_label.setText("–∞ dB")
