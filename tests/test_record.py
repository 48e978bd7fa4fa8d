"""Recording clips from the live view: the test camera and the test microphone into playable MP4s."""
import numpy as np
import pytest
from PySide6.QtCore import Qt
from window_support import WAIT_MS, start_test_devices

from model.data.video_io import decode_audio_track, iter_frames, probe
from ssl_desktop.recorder import fit_sound, next_clip_path

pytestmark = pytest.mark.usefixtures("one_thread")


def test_record_two_clips_of_the_test_camera_and_microphone_and_play_the_last(qtbot, make_window, tmp_path):
    window = make_window()
    start_test_devices(window)  # 320x240 at 25 fps, a 440 Hz tone
    worker = window.pipeline.worker
    # once the model's encoders are compiled: making an ONNX Runtime session holds the GIL up to 0.12 s, which
    # costs the camera frames in the first seconds of a model (measured with a probe: docs/BENCHMARKS.md)
    qtbot.waitUntil(lambda: window.live_view.frames_shown >= 5 and worker.frames_processed > 0
                    and not worker.preparing, timeout=WAIT_MS)
    folder = tmp_path / "my clips"
    window.recording.set_folder(folder)
    bar, recorder = window.record_bar, window.recording.recorder
    bar.seconds_box.setValue(1.0)
    for n in (1, 2):
        qtbot.mouseClick(bar.record_button, Qt.MouseButton.LeftButton)
        assert recorder.state == "recording" and bar.record_button.text() == "■ Stop"
        qtbot.waitUntil(lambda n=n: recorder.clips_saved == n, timeout=WAIT_MS)
    assert bar.counter_label.text() == "2 clips recorded" and bar.record_button.text() == "● Record"
    clips = sorted(folder.glob("*.mp4"))
    assert [c.name for c in clips] == ["clip_0001.mp4", "clip_0002.mp4"]
    for clip in clips:
        info = probe(clip)
        assert info.has_audio and (info.width, info.height) == (320, 240)
        assert info.duration == pytest.approx(1.0, abs=0.1)
        frames = [frame for _, frame in iter_frames(clip)]
        assert 23 <= len(frames) <= 27 and frames[0].shape == (240, 320, 3)
        assert not np.array_equal(frames[0], frames[-1])  # the disc moved: the frames are the live ones
        sound = decode_audio_track(clip, 16000)
        assert len(sound) == pytest.approx(16000, abs=1600)
        spectrum = np.abs(np.fft.rfft(sound[2000:14000]))
        assert np.argmax(spectrum) * 16000 / 12000 == pytest.approx(440, abs=10)  # the test tone
    qtbot.mouseClick(bar.play_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.inspector and window.inspector.file.path == clips[1]


def test_record_stops_early_on_a_second_click_and_names_never_collide(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    start_test_devices(window)
    (tmp_path / "clip_0001.mp4").write_bytes(b"someone else's")
    window.recording.set_folder(tmp_path)
    recorder = window.recording.recorder
    window.record_bar.seconds_box.setValue(4.0)
    window.recording.toggle()
    qtbot.waitUntil(lambda: len(recorder._frames) >= 10, timeout=WAIT_MS)
    window.recording.toggle()  # stop early: what was recorded is saved
    qtbot.waitUntil(lambda: recorder.clips_saved == 1, timeout=WAIT_MS)
    assert recorder.last_clip == tmp_path / "clip_0002.mp4" and probe(recorder.last_clip).duration < 2.0
    assert (tmp_path / "clip_0001.mp4").read_bytes() == b"someone else's"
    assert next_clip_path(tmp_path).name == "clip_0003.mp4"


def test_record_sound_is_fitted_to_the_frames():
    heard = np.arange(10, dtype=np.float32)
    assert fit_sound(heard, 4).tolist() == [6, 7, 8, 9]  # the newest
    assert fit_sound(heard[:2], 4).tolist() == [0, 0, 0, 1]  # padded before


def test_record_into_a_folder_that_cannot_be_made_is_a_message(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    start_test_devices(window)
    (tmp_path / "a file").write_text("")
    window.recording.set_folder(tmp_path / "a file" / "clips")
    window.record_bar.seconds_box.setValue(0.5)
    window.recording.toggle()
    qtbot.waitUntil(lambda: "record" in window.messages.keys(), timeout=WAIT_MS)
    assert window.messages.text("record").startswith("clip not saved")
    assert window.recording.recorder.state == "idle" and window.record_bar.record_button.isEnabled()
