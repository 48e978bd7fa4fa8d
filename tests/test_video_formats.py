"""Files as phones and films make them: a rotation tag (display matrix) and 5.1 sound."""
from fractions import Fraction

import av
import numpy as np
import pytest
from test_app import WAIT_MS, checkpoint, make_window  # noqa: F401 (fixtures)

from model.data.video_io import decode_audio_track, iter_frames, read_clip, read_frame

WIDTH, HEIGHT = 160, 96


def write_tagged_clip(path, rotation=0, layout="mono", sound_channel=0, seconds=1.0):
    """A clip whose picture has a white bar on its left edge, tagged to be shown turned ``rotation``
    degrees counter-clockwise, with a 440 Hz tone in channel ``sound_channel`` of ``layout`` (others silent)."""
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
        sound[sound_channel] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)
        for start in range(0, n, 1024):
            chunk = np.ascontiguousarray(sound[:, start:start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
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


def test_5_1_sound_in_the_centre_channel_only_is_heard(tmp_path):
    clip = write_tagged_clip(tmp_path / "film.mp4", layout="5.1", sound_channel=2)  # FL FR FC LFE BL BR
    track = decode_audio_track(clip, 16000)
    assert np.sqrt(np.mean(track[4000:12000] ** 2)) > 0.5 / np.sqrt(2) / 6 * 0.8  # the mean of six channels


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
