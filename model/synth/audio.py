"""Sound synthesis for the procedural benchmark: class sounds, background noise and the mix."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synth.classes import SoundSpec

TWO_PI = 2.0 * np.pi


@dataclass
class ClipAudio:
    """The audio of one clip: the track of the video and one stem per sounding object."""

    sample_rate: int
    mix: np.ndarray  # (channels, n) float32 in [-1, 1]
    stems: list[np.ndarray]  # per sounding object: (n,) float32, its sound + the background noise


def draw_params(spec: SoundSpec, rng: np.random.Generator) -> dict:
    """Draw the per-clip value of every ``(lo, hi)`` range in the class's sound parameters."""
    return {key: rng.uniform(*value) if isinstance(value, tuple) else value
            for key, value in spec.params.items()}


def _since_event(rng, t, rate, poisson=False) -> np.ndarray:
    """Seconds since the latest event at each time ``t``; events come ``rate`` times a second."""
    if not poisson:
        period = 1.0 / rate
        return (t + rng.uniform(0.0, period)) % period
    gaps = rng.exponential(1.0 / rate, size=int(rate * t[-1] * 2) + 20)
    times = np.concatenate([[0.0], np.cumsum(gaps)]) - rng.uniform(0.0, 1.0 / rate)
    return t - times[np.searchsorted(times, t, side="right") - 1]


def _slow_modulation(rng, t, rate, depth) -> np.ndarray:
    """Gain between ``1 - depth`` and 1, varying sinusoidally at ``rate`` Hz."""
    return 1.0 - depth * (0.5 + 0.5 * np.sin(TWO_PI * rate * t + rng.uniform(0, TWO_PI)))


def band_noise(rng, n, sr, lo, hi) -> np.ndarray:
    """White noise restricted (by FFT masking) to the band ``lo..hi`` Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum[(freqs < lo) | (freqs > hi)] = 0.0
    return np.fft.irfft(spectrum, n)


def _tone(p, t, rng, sr):
    """Harmonic tone with optional vibrato (FM) and tremolo (AM)."""
    depth = p.get("vibrato_depth", 0.0)
    vibrato = 1.0 + depth * np.sin(TWO_PI * p.get("vibrato_rate", 0.0) * t + rng.uniform(0, TWO_PI))
    phase = TWO_PI * np.cumsum(p["f0"] * vibrato) / sr
    step = 2 if p.get("odd") else 1
    x = np.zeros_like(t)
    for k in range(1, step * p["harmonics"] + 1, step):
        if k * p["f0"] * (1 + depth) < 0.45 * sr:
            x += k ** -p.get("rolloff", 1.0) * np.sin(k * phase + rng.uniform(0, TWO_PI))
    if "am_rate" in p:
        x *= _slow_modulation(rng, t, p["am_rate"], p["am_depth"])
    return x


def _noise(p, t, rng, sr):
    """Band-limited noise, steady, slowly modulated (wind) or in decaying bursts (crackle)."""
    x = band_noise(rng, len(t), sr, p["lo"], p["hi"])
    if "am_rate" in p:
        x *= _slow_modulation(rng, t, p["am_rate"], p["am_depth"])
    if "rate" in p:
        x *= np.exp(-_since_event(rng, t, p["rate"], poisson=True) / p["decay"])
    return x


def _pulses(p, t, rng, sr):
    """Regular struck or gated notes: partials of ``f0``, optional decay and falling pitch."""
    tau = _since_event(rng, t, p["rate"])
    drop = p.get("pitch_drop", 0.0) * 0.03 * (1.0 - np.exp(-tau / 0.03))  # integral of the drop
    phase = TWO_PI * p["f0"] * (tau + drop)
    env = np.minimum(1.0, tau / 0.002)  # 2 ms attack, no click at each onset
    if "duty" in p:
        env = env * (tau < p["duty"] / p["rate"])
    x = np.zeros_like(t)
    for i, ratio in enumerate(p["partials"]):
        partial = np.sin(ratio * phase + rng.uniform(0, TWO_PI)) / (i + 1)
        if "decay" in p:
            partial *= np.exp(-tau * (1.0 + 0.5 * i) / p["decay"])
        x += partial
    return x * env


def _sweep(p, t, rng, sr):
    """Repeated log-frequency chirps (up, down, or up-and-down like a siren)."""
    tau = _since_event(rng, t, p["rate"], poisson=p.get("poisson", False))
    length = p["fill"] / p["rate"]
    u = np.clip(tau / length, 0.0, 1.0)
    if p.get("updown"):
        u = 1.0 - np.abs(2.0 * u - 1.0)
    freq = p["f_start"] * (p["f_end"] / p["f_start"]) ** u
    x = np.sin(TWO_PI * np.cumsum(freq) / sr)
    if p["fill"] < 1.0:
        edge = 0.005
        x *= np.clip(tau / edge, 0.0, 1.0) * np.clip((length - tau) / edge, 0.0, 1.0)
    return x


FAMILIES = {"tone": _tone, "noise": _noise, "pulses": _pulses, "sweep": _sweep}


def render_sound(spec: SoundSpec, rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """One instance of a class's sound, ``seconds`` long at ``sr`` Hz, scaled to unit RMS."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = FAMILIES[spec.family](draw_params(spec, rng), t, rng, sr)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def background_noise(rng, n, sr, channels) -> np.ndarray:
    """Coloured (between pink and brown) noise, partly correlated across channels, unit RMS."""
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / sr), 20.0)
    tilt = freqs ** (-rng.uniform(0.5, 1.5) / 2.0)
    white = rng.standard_normal((channels + 1, n))  # one shared component, one per channel
    coloured = np.fft.irfft(np.fft.rfft(white, axis=1) * tilt, n, axis=1)
    noise = coloured[0] + 0.6 * coloured[1:]  # (channels, n)
    return noise / np.sqrt(np.mean(noise**2))


def pan_gains(position: float, channels: int) -> np.ndarray:
    """Mild equal-power pan for a horizontal position in [-1, 1]; mono gives ``[1]``."""
    if channels == 1:
        return np.ones(1)
    angle = (0.5 * position + 1.0) * np.pi / 4.0
    return np.sqrt(2.0) * np.array([np.cos(angle), np.sin(angle)])


def make_audio(rng, specs, pans, sr, channels, seconds) -> ClipAudio:
    """Mix the sounds of ``specs`` (panned by ``pans``) with background noise at a random SNR."""
    sounds = [rng.uniform(0.7, 1.0) * render_sound(spec, rng, sr, seconds) for spec in specs]
    return mix_sounds(rng, sounds, pans, sr, channels)


def mix_sounds(rng, sounds, pans, sr, channels, ambient=None) -> ClipAudio:
    """Mix ``sounds`` (each (n,), panned by ``pans``) with background noise at a random SNR of 0-20 dB;
    ``ambient`` (n,), e.g. an off-screen sound, joins the noise (in the mix and in every stem)."""
    signal = sum(pan_gains(pan, channels)[:, None] * s for s, pan in zip(sounds, pans))
    noise = background_noise(rng, signal.shape[1], sr, channels)
    noise *= np.sqrt(np.mean(signal**2)) / 10 ** (rng.uniform(0.0, 20.0) / 20.0)  # SNR 0-20 dB
    if ambient is not None:
        noise = noise + ambient
    mix = signal + noise
    scale = rng.uniform(0.5, 0.9) / np.abs(mix).max()
    stems = [((s + noise.mean(axis=0)) * scale).astype(np.float32) for s in sounds]
    return ClipAudio(sr, (mix * scale).astype(np.float32), stems)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of a whole mono clip (FFT truncation or zero-padding)."""
    n_out = int(round(len(x) * sr_out / sr_in))
    spectrum = np.fft.rfft(x)[: n_out // 2 + 1]
    return np.fft.irfft(spectrum, n_out) * (n_out / len(x))
