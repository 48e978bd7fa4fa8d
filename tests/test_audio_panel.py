"""The sound dock's level meter: the peak of the newest 50 ms, in dB, without a synchronous repaint."""
import numpy as np

from ssl_desktop.audio_panel import AudioPanel


def test_meter_shows_the_peak_and_stays_drawable(qtbot):
    panel = AudioPanel()
    qtbot.addWidget(panel)
    samples = np.zeros(16000, np.float32)
    samples[-100:] = 0.5  # -6 dBFS in the newest 50 ms
    panel.show_waveform(samples, 16000, -1.0)
    assert panel.meter.value() == -6
    assert panel.level_label.text() == "-6 dB"
    assert panel.meter.updatesEnabled()  # updates were held only around setValue
