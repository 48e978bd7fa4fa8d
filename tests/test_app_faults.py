"""The app on input that gives nothing to localize: banners, no heatmaps from silence, a prompt --snapshot."""
import threading

import av
import numpy as np
import pytest
from support import write_clip
from window_support import WAIT_MS, wait_for_heatmaps

from model.data import video_io
from ssl_desktop import app as app_module
from ssl_desktop.sources import PatternSource, SourceError, ToneSource


def test_a_live_video_without_sound_says_so_and_gives_no_heatmap(qtbot, make_window, clips):
    window = make_window()
    window.start_source(str(clips["silent"]))
    view = window.live_view
    qtbot.waitUntil(lambda: view.frames_shown >= 10, timeout=WAIT_MS)
    assert "has no sound track" in window.messages.text("sound")
    assert view.heatmaps_shown == 0 and window.pipeline.worker.frames_processed == 0


def write_empty_clip(path):
    """A video of 0 frames with a sound track of 0 samples: streams declared, nothing in them (fragmented MP4)."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}) as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        container.add_stream("aac", rate=16000, layout="mono")
        container.start_encoding()
    return path


@pytest.fixture
def empty_clip(tmp_path):
    return write_empty_clip(tmp_path / "empty.mp4")


def test_a_video_of_no_frames_is_said_to_be_empty_never_a_permission_problem(qtbot, make_window, empty_clip):
    window = make_window()
    window.open_paths([empty_clip])
    qtbot.waitUntil(lambda: window.messages.text("inspector") != "", timeout=WAIT_MS)
    shown = " ".join(window.messages.text(key) for key in window.messages.keys())
    assert "permission" not in shown
    assert "empty.mp4" in window.messages.text("inspector-audio")
    assert "no audio frames: the audio track is empty" in window.messages.text("inspector-audio")
    assert "empty.mp4: no frame could be decoded" in window.messages.text("inspector")


@pytest.mark.parametrize("folder", ["empty", "broken"])
def test_a_gallery_of_nothing_playable_says_so(qtbot, make_window, clips, tmp_path, folder):
    (tmp_path / folder).mkdir()
    if folder == "broken":
        (tmp_path / folder / "a.mp4").write_bytes(clips["broken"].read_bytes())
    window = make_window()
    window.retrieval.build(tmp_path / folder)
    qtbot.waitUntil(lambda: window.messages.text("gallery") != "", timeout=WAIT_MS)
    assert f"no playable clips in {tmp_path / folder}" in window.messages.text("gallery")
    if folder == "broken":
        assert "a.mp4" in window.messages.text("gallery")


@pytest.mark.parametrize("case", ["source", "open", "gallery", "open-empty"])
def test_snapshot_ends_when_nothing_more_will_come(qtbot, app_checkpoint, clips, tmp_path, case):
    """--snapshot saves (exit 0) instead of waiting its 120 s for heatmaps or matches that cannot come
    (``open-empty``: a video of no frames, said in a banner)."""
    out = tmp_path / "shot.png"
    args = {"source": ["--source", str(clips["silent"])], "open": ["--source", "demo", "--open", str(clips["silent"])],
            "gallery": ["--source", "demo", "--gallery", str(tmp_path)],
            "open-empty": ["--source", "demo", "--open", str(write_empty_clip(tmp_path / "empty.mp4"))]}[case]
    code = app_module.main(["--checkpoint", str(app_checkpoint), *args, "--snapshot", str(out), "--after", "3",
                            "--size", "640x400", "--device", "cpu"])
    assert code == 0 and out.is_file()


class StallingCamera(PatternSource):
    """A test camera that stops delivering after ``good`` frames (it raises, as a camera unplugged does)
    until ``plugged`` is set again; ``opens`` counts how often it was opened."""

    def __init__(self, good: int):
        super().__init__(size=(160, 120), fps=25)
        self.good, self.opens = good, 0
        self.plugged = threading.Event()
        self.plugged.set()

    def open(self) -> None:
        self.opens += 1
        if not self.plugged.is_set():
            raise SourceError("test camera cannot be opened")

    def read(self):
        if self._count >= self.good:
            self.plugged.clear()
            self.good = float("inf")
        if not self.plugged.is_set():
            raise SourceError("test camera stopped delivering frames")
        return super().read()


def test_a_camera_that_stops_delivering_is_shown_retried_and_recovers(qtbot, make_window):
    window = make_window()
    camera = StallingCamera(good=5)
    window.start_sources(camera, ToneSource(), "camera")
    qtbot.waitUntil(lambda: window.messages.text("capture") != "", timeout=WAIT_MS)
    assert "test camera stopped delivering frames: retrying" in window.messages.text("capture")
    qtbot.waitUntil(lambda: camera.opens >= 3, timeout=WAIT_MS)  # reopened every RETRY_SECONDS
    shown = window.live_view.frames_shown
    assert window.pipeline.capture.frames_captured == 5 and window.pipeline.capture.isRunning()
    camera.plugged.set()
    qtbot.waitUntil(lambda: window.live_view.frames_shown > shown + 3, timeout=WAIT_MS)
    assert window.messages.text("capture") == "" and window.messages.text("source") == ""


class OverflowingMicrophone(ToneSource):
    """A test microphone whose device loses a block now and then, as a busy computer makes it do."""

    def samples(self, start, stop):
        self.overflows += 1
        return super().samples(start, stop)


def test_microphone_overflows_are_counted_and_shown(qtbot, make_window):
    window = make_window()
    microphone = OverflowingMicrophone()
    window.start_sources(PatternSource(size=(160, 120), fps=25), microphone, "camera")
    qtbot.waitUntil(lambda: "lost sound" in window.messages.text("microphone"), timeout=WAIT_MS)
    count = int(window.messages.text("microphone").split("lost sound ")[1].split()[0])
    assert 0 < count <= microphone.overflows


@pytest.mark.parametrize("key, text, message", [
    ("model_config", "[1, 2]", "model_config must be a JSON object"),
    ("audio_config", '{"sample_rate": 0}', "audio_config.sample_rate must be a finite number > 0"),
    ("audio_config", '{"sample_rate": 99999999999}', "audio_config.sample_rate must be within [1000, 384000]"),
])
def test_a_checkpoint_with_a_bad_field_is_a_banner_naming_it(qtbot, make_window, app_checkpoint, tmp_path,
                                                             key, text, message):
    from model.checkpoints.store import read_safetensors, write_safetensors_atomic
    tensors, meta = read_safetensors(app_checkpoint)
    bad = tmp_path / "bad.safetensors"
    write_safetensors_atomic(bad, tensors, {**meta, key: text})
    window = make_window()
    assert not window.load_checkpoint(bad)
    assert message in window.messages.text("model") and str(bad) in window.messages.text("model")
    assert "still using random.safetensors" in window.messages.text("model")


def test_a_file_plays_at_once_and_its_sound_is_decoded_outside_the_gui_thread(qtbot, make_window, tmp_path,
                                                                             monkeypatch):
    """Opening a file returned only once its whole sound track was decoded, in the GUI thread (a 2-hour file:
    11.9 s and 2 GB). Here the decoder is held back until the picture plays, as a long file's would be."""
    path = write_clip(tmp_path / "clip.mp4", seconds=2.0)
    release, decoders = threading.Event(), []
    decode = video_io.iter_audio_track if hasattr(video_io, "iter_audio_track") else None

    def held_back(*args):
        decoders.append(threading.current_thread())
        release.wait(WAIT_MS / 1000)
        yield from decode(*args)

    monkeypatch.setattr(video_io, "iter_audio_track", held_back, raising=False)
    window = make_window()
    window.open_paths([path])
    inspector = window.inspector
    try:
        assert inspector.file.track is None  # the open call did not wait for the sound
        qtbot.waitUntil(lambda: inspector.view.frames_shown >= 3, timeout=WAIT_MS)
        inspector.pause()
        assert inspector.file.track is None and inspector.view.heatmaps_shown == 0
    finally:
        release.set()
    qtbot.waitUntil(lambda: inspector.file.track is not None, timeout=WAIT_MS)
    assert decoders and threading.main_thread() not in decoders
    assert np.array_equal(inspector.file.track, video_io.decode_audio_track(path, inspector.sample_rate))
    qtbot.waitUntil(lambda: inspector.view.heatmaps_shown >= 1, timeout=WAIT_MS)  # the paused frame's, once heard


def faststart(source, path):
    """``source`` remuxed with its index (moov) at the front, as files made for the web are."""
    with av.open(str(source)) as original, av.open(str(path), "w", format="mp4",
                                                   options={"movflags": "faststart"}) as copy:
        streams = {stream.index: copy.add_stream_from_template(stream) for stream in original.streams}
        for packet in original.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                copy.mux(packet)
    return path


def test_a_faststart_mp4_cut_at_half_is_a_banner_naming_the_file(qtbot, make_window, tmp_path):
    """The header still promises the whole clip; frames and sound end at half of it. The picture stopped without
    a word."""
    data = faststart(write_clip(tmp_path / "whole.mp4", seconds=4.0), tmp_path / "fast.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    assert video_io.probe(cut).duration == pytest.approx(4.0, abs=0.1)
    window = make_window()
    window.open_paths([cut])
    qtbot.waitUntil(lambda: window.messages.text("inspector-frames") != "", timeout=WAIT_MS)
    assert window.messages.text("inspector-frames").startswith("cut.mp4 has no frames after 0:0")
    assert "of its 0:04.00: the file is cut short or damaged" in window.messages.text("inspector-frames")
    assert "inspector-frames" in window.messages.shown_keys()
    qtbot.waitUntil(lambda: window.messages.text("inspector-audio") != "", timeout=WAIT_MS)
    sound = window.messages.text("inspector-audio")
    assert sound.startswith("the sound of cut.mp4 ") and ("breaks off at" in sound or "cut short" in sound)


def test_a_live_file_plays_at_once_and_its_sound_is_decoded_outside_the_gui_thread(qtbot, make_window, tmp_path,
                                                                                  monkeypatch):
    """A file as the live source had its whole sound track decoded when the live view started, in the GUI thread
    (a 2-hour file froze the window for seconds). Here the decoder is held back until the picture plays."""
    path = write_clip(tmp_path / "clip.mp4", seconds=2.0)
    release, decoders = threading.Event(), []
    decode = video_io.iter_audio_track

    def held_back(*args):
        decoders.append(threading.current_thread())
        release.wait(WAIT_MS / 1000)
        yield from decode(*args)

    monkeypatch.setattr(video_io, "iter_audio_track", held_back)
    window = make_window()
    window.start_source(str(path))
    view, pipeline = window.live_view, window.pipeline
    playlist = pipeline.audio_source.playlist
    try:
        qtbot.waitUntil(lambda: view.frames_shown >= 10, timeout=WAIT_MS)
        assert playlist.decoded == 0 and pipeline.silent and view.heatmaps_shown == 0
        assert not pipeline.ring.snapshot().any()  # silence stands in for the sound not decoded yet
    finally:
        release.set()
    wait_for_heatmaps(qtbot, view, 1)  # once the sound is there
    assert decoders and threading.main_thread() not in decoders
    qtbot.waitUntil(lambda: playlist.decoded == len(playlist.audio), timeout=WAIT_MS)
    assert np.array_equal(playlist.audio, video_io.decode_audio_track(path, playlist.sample_rate)[:len(playlist.audio)])
    assert np.abs(pipeline.ring.snapshot(8000)).max() > 0.1  # the clip's tone


def test_a_live_file_cut_short_is_a_banner_naming_it_and_plays_on(qtbot, make_window, tmp_path):
    """The header still promises the whole clip; frames and sound end at a third of it. The live view showed the
    last frame without a word."""
    data = faststart(write_clip(tmp_path / "whole.mp4", seconds=4.0), tmp_path / "fast.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) * 3 // 10])
    window = make_window()
    window.start_source(str(cut))
    qtbot.waitUntil(lambda: "has no frames" in window.messages.text("source-file"), timeout=WAIT_MS)
    text = window.messages.text("source-file")
    assert text.startswith("cut.mp4 has no frames after 0:0")
    assert "of its 0:04.00: the file is cut short or damaged" in text and "the sound of cut.mp4 " in text
    assert "source-file" in window.messages.shown_keys() and window.messages.text("source") == ""
    shown = window.live_view.frames_shown
    qtbot.waitUntil(lambda: window.live_view.frames_shown > shown + 10, timeout=WAIT_MS)  # it plays on, looping
    assert window.sources.kind == "file" and window.pipeline.capture.isRunning()
    window.start_source("demo")
    qtbot.waitUntil(lambda: window.messages.text("source-file") == "", timeout=WAIT_MS)  # another source: gone
