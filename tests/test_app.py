"""The main window, driven headless through the same source classes the app uses for its devices."""
import os
import stat

import numpy as np
import pytest
import torch
from PySide6.QtCore import QThread
from support import write_clip
from window_support import WAIT_MS, drop, python_threads, start_test_devices, wait_for_heatmaps

from model import ModelConfig, SSLModel
from model.data.video_io import decode_audio_track, probe, read_frame
from ssl_desktop import app as app_module
from ssl_desktop import live_sources as live_sources_module
from ssl_desktop import sources
from ssl_desktop.sources import Device, PatternSource, SourceError


# --- live ---------------------------------------------------------------------------------------

def test_live_overlay_is_a_non_uniform_heatmap_over_the_image(qtbot, make_window):
    window = make_window()
    start_test_devices(window)
    view = window.live_view
    wait_for_heatmaps(qtbot, view)
    assert view.heatmap.shape == view.frame.shape[:2]
    assert view.heatmap.std() > 0.01 and view.heatmap.max() == pytest.approx(1.0)
    assert view.heat_item.isVisible() and view.heat_item.opacity() > 0
    assert view.heat_item.mapRectToParent(view.heat_item.boundingRect()) == \
        view.video_item.mapRectToParent(view.video_item.boundingRect())
    shown = view.composite()
    assert shown.shape == view.frame.shape and np.abs(shown.astype(int) - view.frame).mean() > 1
    assert window.messages.keys() == []
    view.overlay_box.setChecked(False)  # overlay off: the picture as captured
    assert not view.heat_item.isVisible() and np.array_equal(view.composite(), view.frame)
    assert "heatmap" in view.stats_label.text() and "latency" in view.stats_label.text()


def test_demo_source_plays_the_bundled_clips_with_their_sound(qtbot, make_window):
    window = make_window()
    window.start_source("demo")
    wait_for_heatmaps(qtbot, window.live_view)
    assert window.live_view.frame.shape == (240, 320, 3)
    assert np.abs(window.pipeline.ring.snapshot(8000)).max() > 0.01
    assert "6 clips" in window.source_label.text()


def test_without_a_camera_the_demo_runs_and_says_why(qtbot, make_window, monkeypatch):
    monkeypatch.setattr(live_sources_module, "list_cameras", lambda: [])
    window = make_window()
    window.start_source("camera")
    assert "no camera found" in window.messages.text("source")
    wait_for_heatmaps(qtbot, window.live_view, 1)


def test_a_camera_that_cannot_be_opened_falls_back_to_the_demo(qtbot, make_window, monkeypatch):
    monkeypatch.setattr(live_sources_module, "list_cameras", lambda: [Device(99, "camera 99")])
    window = make_window()
    window.start_source("camera")
    qtbot.waitUntil(lambda: "camera 99 cannot be opened" in window.messages.text("source"), timeout=WAIT_MS)
    assert window.sources.kind == "demo"
    wait_for_heatmaps(qtbot, window.live_view, 1)


def test_an_unreadable_live_file_falls_back_to_the_demo(qtbot, make_window, clips):
    window = make_window()
    window.start_source(str(clips["broken"]))
    qtbot.waitUntil(lambda: "broken.mp4" in window.messages.text("source"), timeout=WAIT_MS)
    assert "showing the bundled demo clips instead" in window.messages.text("source")
    assert window.messages.text("sound") == ""  # the demo has sound
    wait_for_heatmaps(qtbot, window.live_view, 1)


def test_without_a_microphone_the_picture_goes_on_and_the_window_says_so(qtbot, make_window, monkeypatch):
    def no_portaudio():
        raise SourceError(f"no sound devices: the PortAudio library is missing; {sources.PORTAUDIO_HINT}")

    monkeypatch.setattr(sources, "import_sounddevice", no_portaudio)
    window = make_window()
    window.start_sources(PatternSource(), sources.MicrophoneSource(), "camera")
    assert "libportaudio2" in window.messages.text("sound")
    assert "the heatmap needs sound" in window.messages.text("sound")
    qtbot.waitUntil(lambda: window.live_view.frames_shown >= 10, timeout=WAIT_MS)
    assert window.live_view.heatmaps_shown == 0  # no heatmap made up from silence


def test_a_checkpoint_that_does_not_load_gives_a_message_and_the_app_goes_on(qtbot, make_window, tmp_path,
                                                                           app_checkpoint):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    window = make_window(load_model=False)
    assert not window.load_checkpoint(bad)
    assert window.messages.text("model").startswith("no model loaded:") and "bad.safetensors" in \
        window.messages.text("model")
    start_test_devices(window)
    qtbot.waitUntil(lambda: window.live_view.frames_shown >= 3, timeout=WAIT_MS)
    assert window.load_checkpoint(app_checkpoint)  # a good one afterwards replaces the message
    assert window.messages.text("model") == ""
    assert not window.load_checkpoint(tmp_path / "missing.safetensors")
    assert "still using random.safetensors" in window.messages.text("model")
    wait_for_heatmaps(qtbot, window.live_view, 1)


def test_a_published_checkpoint_in_the_wrong_format_is_refused(make_window, tmp_path):
    window = make_window(load_model=False)
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a pickle")
    assert not window.load_checkpoint(junk, "ssl-align")
    assert "junk.pth.tar" in window.messages.text("model")


# --- inspector ----------------------------------------------------------------------------------

def test_dropping_a_clip_opens_it_in_the_inspector_with_heatmaps(qtbot, make_window, clips):
    window = make_window()
    start_test_devices(window)
    drop(window, clips["synth"])
    assert window.tabs.currentWidget() is window.inspector
    assert window.inspector.files == clips["synth"]
    view = window.inspector.view
    wait_for_heatmaps(qtbot, view, 1)
    assert view.frame.shape == (240, 320, 3) and view.heatmap.shape == (240, 320)
    assert view.heatmap.std() > 0.01
    assert not window.pipeline.inference_enabled  # one model at work at a time
    assert set(window.messages.keys()) <= {"speaker"}  # "no sound output device" on machines without one


def test_inspector_plays_steps_and_seeks(qtbot, make_window, clips):
    window = make_window()
    window.open_paths(clips["synth"][:1])
    inspector = window.inspector
    assert inspector.playing  # open = play
    inspector.pause()
    qtbot.waitUntil(lambda: inspector.view.frame is not None, timeout=WAIT_MS)
    inspector.seek(2.0)
    qtbot.waitUntil(lambda: inspector.timeline.value() == 2000, timeout=WAIT_MS)
    expected = read_frame(clips["synth"][0], 2.0)
    assert np.abs(inspector.view.frame.astype(int) - expected).mean() < 1
    inspector.step(1)
    qtbot.waitUntil(lambda: abs(inspector.timeline.value() - 2040) <= 1, timeout=WAIT_MS)
    inspector.play()
    qtbot.waitUntil(lambda: inspector.timeline.value() >= 2400, timeout=WAIT_MS)
    assert inspector.playing
    inspector.pause()
    assert "speaker" in window.messages.keys() or inspector.speaker is not None  # silent, or playing sound
    window.tabs.setCurrentWidget(window.live_view)  # leaving the inspector pauses it
    assert not inspector.playing and window.pipeline.inference_enabled


def test_a_corrupt_file_gives_a_message_and_frames_keep_coming(qtbot, make_window, clips):
    window = make_window()
    start_test_devices(window)
    wait_for_heatmaps(qtbot, window.live_view, 1)
    drop(window, [clips["broken"]])
    assert "cannot open broken.mp4" in window.messages.text("file")
    assert window.tabs.currentWidget() is window.live_view
    wait_for_heatmaps(qtbot, window.live_view, 2)


def test_a_file_without_sound_shows_its_video_and_says_the_map_needs_sound(qtbot, make_window, clips):
    window = make_window()
    window.open_paths([clips["silent"]])
    view = window.inspector.view
    qtbot.waitUntil(lambda: view.frame is not None, timeout=WAIT_MS)
    assert view.frame.shape == (240, 320, 3)
    assert "no sound track" in window.messages.text("inspector-audio")
    assert "needs sound" in window.messages.text("inspector-audio")
    window.inspector.play()
    qtbot.waitUntil(lambda: view.frames_shown >= 5, timeout=WAIT_MS)
    assert view.heatmaps_shown == 0
    window.open_paths(clips["synth"][:1])  # a file with sound clears the message
    assert window.messages.text("inspector-audio") == ""


# --- retrieval ----------------------------------------------------------------------------------

def test_retrieval_panel_follows_the_live_embeddings_and_a_gallery_sound_can_be_the_query(qtbot, make_window,
                                                                                         clips):
    window = make_window()
    start_test_devices(window)
    window.retrieval.build(clips["synth"][0].parent.parent)
    qtbot.waitUntil(lambda: window.retrieval.gallery is not None, timeout=60000)
    panel = window.retrieval_panel
    qtbot.waitUntil(lambda: panel.image_row.count() == 2 and panel.sound_row.count() == 2, timeout=WAIT_MS)
    panel.select_query_sound(1)  # where would gallery clip 1's sound be in the live frame?
    gallery_sound = window.retrieval.gallery.audio_embedding(1)
    assert torch.equal(window.pipeline.worker.audio_override, gallery_sound)
    assert torch.equal(window.inspector.worker.audio_override, gallery_sound)
    wait_for_heatmaps(qtbot, window.live_view, 2)
    panel.select_query_sound(-1)  # back to the live sound
    assert window.pipeline.worker.audio_override is None
    panel.open_clip.emit(str(clips["synth"][1]))  # a double-clicked result opens in the inspector
    assert window.inspector.file.path == clips["synth"][1]
    assert window.tabs.currentWidget() is window.inspector


# --- exports ------------------------------------------------------------------------------------

def new_file_mode() -> int:
    """The mode an ordinary new file gets (0644 under the usual umask 022), as recorded clips get."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_export_frame_and_clip(qtbot, make_window, tmp_path):
    clip = write_clip(tmp_path / "tone.mp4", seconds=1.0)
    window = make_window()
    window.resize(1024, 640)
    window.open_paths([clip])
    wait_for_heatmaps(qtbot, window.inspector.view, 1)
    png = tmp_path / "frame.png"
    assert window.export_frame(png) and png.stat().st_size > 1000
    target = tmp_path / "annotated.mp4"
    assert window.export_clip(target)
    bar = window.export_progress
    qtbot.waitUntil(lambda: bar.isVisible() and bar.width() > 0, timeout=WAIT_MS)
    assert bar.width() >= bar.fontMetrics().horizontalAdvance("exporting 9999 / 9999 frames")  # one line, whole
    qtbot.waitUntil(lambda: window.exports.worker is None, timeout=120000)
    assert "exported" in window.messages.text("export")
    assert stat.S_IMODE(target.stat().st_mode) == new_file_mode()  # not mkstemp's 0600
    info = probe(target)
    assert info.has_audio and (info.width, info.height) == (320, 240)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert np.abs(read_frame(target, 0.5).astype(int) - read_frame(clip, 0.5)).mean() > 2  # heatmaps laid over
    sound = decode_audio_track(target, 16000)
    assert np.abs(sound).max() > 0.2  # the original sound came along


def test_cancelled_clip_export_leaves_no_file(qtbot, make_window, clips, tmp_path):
    window = make_window()
    window.open_paths(clips["synth"][:1])
    target = tmp_path / "cancelled.mp4"
    assert window.export_clip(target)
    window.export_cancel.click()
    qtbot.waitUntil(lambda: window.exports.worker is None, timeout=60000)
    assert window.messages.text("export") == "export cancelled"
    assert list(tmp_path.iterdir()) == []


# --- start and stop -----------------------------------------------------------------------------

def test_closing_stops_every_thread_and_releases_the_devices(qtbot, make_window, clips):
    before = python_threads()
    window = make_window()
    start_test_devices(window)
    window.open_paths(clips["synth"][:1])
    window.inspector.play()
    window.tabs.setCurrentWidget(window.live_view)
    wait_for_heatmaps(qtbot, window.live_view, 1)
    microphone = window.pipeline.audio_source
    threads = window.findChildren(QThread)
    assert len([t for t in threads if t.isRunning()]) >= 4  # capture, two inference workers, player
    window.close()
    assert not [t for t in threads if t.isRunning()]
    assert window.pipeline.capture is None and window.pipeline.audio_source is None
    assert microphone._thread is None  # the test microphone's feeding thread was joined
    assert python_threads() <= before


def test_snapshot_renders_frames_saves_the_window_and_exits_0(qtbot, app_checkpoint, tmp_path):
    before = python_threads()
    out = tmp_path / "shot.png"
    code = app_module.main(["--checkpoint", str(app_checkpoint), "--source", "demo", "--snapshot", str(out),
                            "--after", "3", "--size", "1100x700", "--device", "cpu"])
    assert code == 0 and out.stat().st_size > 10000
    from PySide6.QtGui import QImage
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1100, 700)
    from PySide6.QtWidgets import QApplication
    assert not QApplication.windowIcon().pixmap(64, 64).isNull()  # the SVG icon was found and rendered
    qtbot.waitUntil(lambda: python_threads() <= before, timeout=5000)


def test_snapshot_without_a_model_still_renders(qtbot, tmp_path):
    out = tmp_path / "shot.png"
    unloadable = tmp_path / "junk.safetensors"
    unloadable.write_bytes(b"not a model")
    code = app_module.main(["--checkpoint", str(unloadable), "--source", "demo",
                            "--snapshot", str(out), "--after", "3", "--size", "640x400"])
    assert code == 0 and out.is_file()


def test_the_sound_is_heard_at_the_loaded_model_s_sample_rate(qtbot, make_window, clips, tmp_path):
    """The rate belongs to the model: the live ring, the tone source and the inspector's decoding follow it,
    also when a model at another rate replaces the first one while the live view runs."""
    from model import AudioConfig
    window = make_window()
    start_test_devices(window)
    assert window.pipeline.ring.sample_rate == 16000
    torch.manual_seed(0)
    slow = SSLModel(ModelConfig(), AudioConfig(sample_rate=8000, seconds=1.0)).eval()
    window.set_model(slow, "8 kHz model")
    assert window.pipeline.ring.sample_rate == 8000 and window.pipeline.audio_source.rate == 8000
    qtbot.waitUntil(lambda: window.pipeline.ring.samples_written > 4000, timeout=WAIT_MS)
    wait_for_heatmaps(qtbot, window.live_view, 1)
    window.open_paths([clips["synth"][0]])
    duration = probe(clips["synth"][0]).duration
    assert window.inspector.file.sample_rate == 8000
    qtbot.waitUntil(lambda: window.inspector.file.track is not None, timeout=WAIT_MS)  # decoded in a thread
    assert abs(len(window.inspector.file.track) - duration * 8000) < 0.05 * 8000
    waveform = window.inspector.waveform(2.0)
    assert waveform.sample_rate == 8000 and len(waveform.samples) == 16000
