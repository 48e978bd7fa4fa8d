"""StreamResampler: the microphone's rate to 16 kHz, block by block."""
import numpy as np
import pytest

from ssl_desktop.resample import StreamResampler


def tone(freq, rate, seconds=1.0):
    return np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate).astype(np.float32)


def in_blocks(resampler, x, rng):
    cuts = np.sort(rng.integers(0, len(x), 40))
    return np.concatenate([resampler.process(b) for b in np.split(x, cuts)])


@pytest.mark.parametrize("in_rate", [44100, 48000, 22050, 8000])
def test_blocks_of_any_size_give_the_output_of_the_whole_stream(in_rate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(in_rate).astype(np.float32)
    whole = StreamResampler(in_rate, 16000).process(x)
    assert len(whole) == pytest.approx(16000, abs=1)
    np.testing.assert_allclose(in_blocks(StreamResampler(in_rate, 16000), x, rng), whole, atol=1e-5)


@pytest.mark.parametrize("in_rate", [44100, 48000])
def test_a_tone_keeps_its_pitch_and_level(in_rate):
    out = StreamResampler(in_rate, 16000).process(tone(1000, in_rate))[1000:]  # past the filter's start
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.fft.rfftfreq(len(out), 1 / 16000)[spectrum.argmax()] == pytest.approx(1000, abs=2)
    assert np.sqrt(np.mean(out ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.02)


def test_frequencies_above_8_khz_are_filtered_not_folded_down():
    out = StreamResampler(48000, 16000).process(tone(14000, 48000))[1000:]  # would fold to 2 kHz
    assert np.sqrt(np.mean(out ** 2)) < 0.01
