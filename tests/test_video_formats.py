"""Files as phones and films make them: a rotation tag (display matrix) and 5.1 / 7.1 sound."""
from fractions import Fraction

import av
import numpy as np
import pytest
from window_support import WAIT_MS

from model.data.video_io import decode_audio_track, iter_frames, read_clip, read_frame

WIDTH, HEIGHT = 160, 96


def write_tagged_clip(path, rotation=0, layout="mono", sound_channel=0, seconds=1.0, level=0.5):
    """A clip whose picture has a white bar on its left edge, tagged to be shown turned ``rotation``
    degrees counter-clockwise, with a 440 Hz tone of amplitude ``level`` in channel ``sound_channel`` of
    ``layout`` (a tuple: in each of those channels; others silent; None: a tone of its own in each channel)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("h264", rate=25)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.set_display_rotation(rotation)
        audio = container.add_stream("aac", rate=48000, layout=layout)
        picture = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        picture[:, :16] = 255
        for i in range(int(25 * seconds)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        channels = audio.codec_context.channels
        n = int(48000 * seconds)
        sound = np.zeros((channels, n), np.float32)
        if sound_channel is None:
            hz = 220 * (1 + np.arange(channels))[:, None]  # 220, 440, 660 ... Hz
            sound[:] = level / 2 * np.sin(2 * np.pi * hz * np.arange(n) / 48000)
        else:
            sound[sound_channel, :] = level * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)
        for start in range(0, n, 1024):
            chunk = np.ascontiguousarray(sound[:, start:start + 1024].T).reshape(1, -1)  # packed: PyAV's planar
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout=layout)  # path fails on 8 channels
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


@pytest.mark.parametrize("rotation, bar_at", [(90, "bottom"), (-90, "top"), (180, "right")])
def test_frames_are_turned_as_the_display_matrix_says(tmp_path, rotation, bar_at):
    clip = write_tagged_clip(tmp_path / "phone.mp4", rotation)
    frame = read_frame(clip, 0.5)
    assert frame.shape == ((HEIGHT, WIDTH, 3) if rotation == 180 else (WIDTH, HEIGHT, 3))
    edge = {"bottom": frame[-16:], "top": frame[:16], "right": frame[:, -16:]}[bar_at]
    assert edge.mean() > 200 and frame.mean() < 60  # the bar is on that edge, the rest dark
    assert np.array_equal(next(iter_frames(clip))[1].shape, frame.shape)  # playback turns them too
    assert read_clip(clip, 0.5, seconds=0.5, sample_rate=16000).frame.shape == frame.shape  # and so does training


def test_an_untagged_clip_is_not_turned(tmp_path):
    frame = read_frame(write_tagged_clip(tmp_path / "plain.mp4"), 0.5)
    assert frame.shape == (HEIGHT, WIDTH, 3) and frame[:, :12].mean() > 200


def test_the_inspector_shows_a_rotated_clip_upright(qtbot, make_window, tmp_path):
    window = make_window()
    window.open_paths([write_tagged_clip(tmp_path / "phone.mp4", 90)])
    view = window.inspector.view
    qtbot.waitUntil(lambda: view.heatmap is not None, timeout=WAIT_MS)
    assert view.frame.shape == (WIDTH, HEIGHT, 3) and view.frame[-16:].mean() > 200
    assert view.heatmap.shape == (WIDTH, HEIGHT)  # the heatmap is of the turned picture


def ffmpeg_mono(path, rate: int) -> np.ndarray:
    """FFmpeg's own mono downmix of a file's sound (its resampler's standard matrix), at ``rate``."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
        frames += resampler.resample(None)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("layout", ["5.1", "7.1"])
def test_surround_sound_is_ffmpeg_s_standard_mono_downmix(tmp_path, layout):
    clip = write_tagged_clip(tmp_path / "film.mp4", layout=layout, sound_channel=None)  # a tone a channel
    track = decode_audio_track(clip, 16000)
    reference = ffmpeg_mono(clip, 16000)
    n = min(len(track), len(reference))
    assert n >= 15000 and rms(reference[:n]) > 0.1
    # FFmpeg's matrix at the level of a stereo file's mean (FFmpeg's stereo downmix is 1/sqrt(2) of the sum)
    assert np.allclose(track[:n], reference[:n] * np.sqrt(0.5), atol=1e-4)


def test_5_1_dialogue_in_the_centre_channel_is_as_loud_as_in_stereo_and_the_lfe_is_dropped(tmp_path):
    # a tone in FC (5.1: FL FR FC LFE BL BR) and the same tone panned to the centre of stereo (each side -3 dB)
    centre = decode_audio_track(write_tagged_clip(tmp_path / "film.mp4", layout="5.1", sound_channel=2), 16000)
    stereo = write_tagged_clip(tmp_path / "stereo.mp4", layout="stereo", sound_channel=(0, 1), level=0.5 / np.sqrt(2))
    panned = decode_audio_track(stereo, 16000)
    assert rms(centre[4000:12000]) == pytest.approx(rms(panned[4000:12000]), rel=0.05)  # the mean of six: 15.6 dB down
    lfe = decode_audio_track(write_tagged_clip(tmp_path / "lfe.mp4", layout="5.1", sound_channel=3), 16000)
    assert rms(lfe[4000:12000]) < 1e-3


def test_5_1_centre_channel_gives_a_non_silent_spectrogram_in_the_sound_dock(qtbot, make_window, tmp_path):
    clip = write_tagged_clip(tmp_path / "film.mp4", layout="5.1", sound_channel=2)
    window = make_window()
    spectrograms = []
    window.inspector.spectrogram_ready.connect(spectrograms.append)
    window.open_paths([clip])
    window.inspector.pause()
    window.inspector.seek(0.5)
    qtbot.waitUntil(lambda: len(spectrograms) > 0, timeout=WAIT_MS)
    silence = np.log(1e-7) / 12  # the spectrogram of digital silence, everywhere
    assert spectrograms[-1].max() > silence + 0.5
    assert np.abs(window.audio_panel.waveform_curve.getData()[1]).max() > 0.05
