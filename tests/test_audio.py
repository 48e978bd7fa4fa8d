import numpy as np
import pytest
import scipy.signal

from model.preprocess.audio import AudioConfig, spectrogram


def scipy_reference(x, config):
    _, _, spec = scipy.signal.spectrogram(x, config.sample_rate, nperseg=config.nperseg, noverlap=config.noverlap)
    return (np.log(spec + config.log_eps) - config.norm_mean) / config.norm_std


@pytest.mark.parametrize("noverlap", [353, 274])
def test_spectrogram_equals_scipy(noverlap):
    config = AudioConfig(noverlap=noverlap)
    rng = np.random.default_rng(1)
    t = np.arange(config.num_samples) / config.sample_rate
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(t.size)
    ours = spectrogram(x, config)
    ref = scipy_reference(x, config)
    assert ours.shape == (1, 257, ref.shape[1]) == (1, 257, config.num_frames)
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=1e-4)


def test_spectrogram_peak_at_tone_frequency():
    config = AudioConfig()
    t = np.arange(config.num_samples) / config.sample_rate
    spec = spectrogram(np.sin(2 * np.pi * 1000 * t), config)[0]
    peak_bin = int(spec.mean(dim=1).argmax())
    assert abs(peak_bin * config.sample_rate / config.nperseg - 1000) <= config.sample_rate / config.nperseg
