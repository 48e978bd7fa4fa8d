"""The app on input that gives nothing to localize: banners, no heatmaps from silence, a prompt --snapshot."""
import threading

import pytest

from ssl_desktop import app as app_module
from ssl_desktop.sources import PatternSource, SourceError, ToneSource
from test_app import WAIT_MS, checkpoint, clips, make_window  # noqa: F401 (fixtures)


def test_a_live_video_without_sound_says_so_and_gives_no_heatmap(qtbot, make_window, clips):
    window = make_window()
    window.start_source(str(clips["silent"]))
    view = window.live_view
    qtbot.waitUntil(lambda: view.frames_shown >= 10, timeout=WAIT_MS)
    assert "has no sound track" in window.messages.text("sound")
    assert view.heatmaps_shown == 0 and window.pipeline.worker.frames_processed == 0


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


@pytest.mark.parametrize("case", ["source", "open", "gallery"])
def test_snapshot_ends_when_nothing_more_will_come(qtbot, checkpoint, clips, tmp_path, case):  # noqa: F811
    """--snapshot saves (exit 0) instead of waiting its 120 s for heatmaps or matches that cannot come."""
    out = tmp_path / "shot.png"
    args = {"source": ["--source", str(clips["silent"])], "open": ["--source", "demo", "--open", str(clips["silent"])],
            "gallery": ["--source", "demo", "--gallery", str(tmp_path)]}[case]
    code = app_module.main(["--checkpoint", str(checkpoint), *args, "--snapshot", str(out), "--after", "3",
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
def test_a_checkpoint_with_a_bad_field_is_a_banner_naming_it(qtbot, make_window, checkpoint, tmp_path,  # noqa: F811
                                                             key, text, message):
    from model.checkpoint import read_safetensors, write_safetensors_atomic
    tensors, meta = read_safetensors(checkpoint)
    bad = tmp_path / "bad.safetensors"
    write_safetensors_atomic(bad, tensors, {**meta, key: text})
    window = make_window()
    assert not window.load_checkpoint(bad)
    assert message in window.messages.text("model") and str(bad) in window.messages.text("model")
    assert "still using random.safetensors" in window.messages.text("model")
