"""The app with an EfficientNet-Lite0 checkpoint, and what it says when the sound is not in the picture."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, QRect
from support import write_clip
from window_support import wait_for_heatmaps

from model import ModelConfig, SSLModel, save_model
from model.data.video_io import decode_audio_track
from model.data.video_writer import ClipWriter
from model.networks.presence import NOT_IN_VIEW, SILENCE, PresenceConfig
from ssl_desktop.sources import PatternSource, ToneSource
from ssl_desktop.video_view import FADED, VideoView


class QuietMicrophone(ToneSource):
    """A test microphone in a silent room: digital silence."""

    def samples(self, start: int, stop: int) -> np.ndarray:
        return np.zeros(stop - start, np.float32)


@pytest.fixture(scope="module")
def lite_checkpoints(tmp_path_factory):
    """The ImageNet EfficientNet-Lite0 model with a threshold above any cosine (the sound is never in the
    picture) and one below any (always in it)."""
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(visual_backbone="efficientnet_lite0", image_size=112)).eval()
    model.imgnet.trunk.load_imagenet()
    folder = tmp_path_factory.mktemp("lite")
    paths = {}
    for name, threshold in (("never", 2.0), ("always", -2.0)):
        model.presence = PresenceConfig(threshold=threshold)
        paths[name] = folder / f"{name}.safetensors"
        save_model(paths[name], model)
    return paths


def picture_place(window, view) -> tuple[QRect, QPoint]:
    """Where the picture is in the window: its size and its top left corner."""
    return view.graphics.geometry(), view.graphics.mapTo(window, QPoint(0, 0))


def test_presence_on_picture_fades_the_overlay_and_never_moves_the_layout(qtbot, make_window,
                                                                          lite_checkpoints):
    window = make_window(load_model=False)
    assert window.load_checkpoint(lite_checkpoints["never"])
    view = window.live_view
    window.start_sources(PatternSource(size=(320, 240), fps=25), QuietMicrophone(), "camera")
    qtbot.waitUntil(lambda: view.frames_shown >= 3, timeout=20000)
    place = picture_place(window, view)  # before any state is said
    assert view.presence == ""
    wait_for_heatmaps(qtbot, view)
    qtbot.waitUntil(lambda: view.presence == SILENCE, timeout=20000)
    assert view.faded and view.heat_item.opacity() == pytest.approx(view.opacity * FADED)
    assert view.presence_text.isVisible() and picture_place(window, view) == place
    assert window.messages.keys() == []  # the message area keeps what needs the user, not the running state

    window.start_sources(PatternSource(size=(320, 240), fps=25), ToneSource(), "camera")  # a sound, not in view
    qtbot.waitUntil(lambda: view.presence == NOT_IN_VIEW, timeout=20000)
    assert picture_place(window, view) == place and window.messages.keys() == []

    assert window.load_checkpoint(lite_checkpoints["always"])  # the sound is in the picture
    qtbot.waitUntil(lambda: view.presence == "", timeout=20000)
    assert not view.faded and view.heat_item.opacity() == pytest.approx(view.opacity)
    assert not view.presence_text.isVisible() and picture_place(window, view) == place
    wait_for_heatmaps(qtbot, view)
    assert view.heatmap.shape == view.frame.shape[:2] and view.heatmap.std() > 0.01

    window.start_sources(PatternSource(size=(320, 240), fps=25), QuietMicrophone(), "camera")
    qtbot.waitUntil(lambda: view.presence == SILENCE, timeout=20000)  # whatever the score
    assert view.faded and picture_place(window, view) == place


def test_presence_on_picture_says_what_the_model_hears_beside_the_state(qtbot):
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    view.show_frame(np.zeros((240, 320, 3), np.uint8))
    place = view.graphics.geometry()
    view.set_presence(NOT_IN_VIEW, "speech 0.93, dog 0.41")
    assert view.presence == f"{NOT_IN_VIEW}\nhearing: speech 0.93, dog 0.41" and view.faded
    view.set_presence("", "speech 0.93")  # in the picture: what it hears only, the overlay at full opacity
    assert view.presence == "hearing: speech 0.93" and not view.faded
    view.set_presence("", "")
    assert view.presence == "" and not view.presence_text.isVisible()
    assert view.graphics.geometry() == place
    corner = view.viewbox.mapViewToScene(QPointF(320, 0))  # the picture's top right corner
    view.set_presence(SILENCE)
    box = view.presence_text.mapRectToScene(view.presence_text.boundingRect())
    assert box.right() == pytest.approx(corner.x(), abs=1) and box.top() == pytest.approx(corner.y(), abs=1)


def test_a_checkpoint_with_the_sound_effects_encoder_runs_live_and_shows_its_mel_bands(qtbot, make_window,
                                                                                        tmp_path):
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(visual_backbone="efficientnet_lite0", audio_backbone="aisfx", image_size=112)).eval()
    model.imgnet.trunk.load_imagenet()
    model.audnet.load_pretrained()
    save_model(tmp_path / "sfx.safetensors", model)
    window = make_window(load_model=False)
    assert window.load_checkpoint(tmp_path / "sfx.safetensors")
    assert window.pipeline.audio_config.frontend == "sfx_mel"
    view = window.live_view
    window.start_sources(PatternSource(size=(320, 240), fps=25), ToneSource(), "camera")
    wait_for_heatmaps(qtbot, view)
    assert view.heatmap.shape == view.frame.shape[:2] and view.heatmap.std() > 0.01
    panel = window.audio_panel
    qtbot.waitUntil(lambda: panel.spectrogram_item.image is not None, timeout=20000)
    assert panel.spectrogram_item.image.shape[0] == 96
    assert panel.spectrogram_plot.getAxis("left").labelText == "mel band"


def write_silent_clip(path, seconds=2.0, fps=25, rate=16000):
    """A clip with a sound track of digital silence (the pattern camera's frames)."""
    pattern = PatternSource(fps=1000)
    writer = ClipWriter(path, fps, (320, 240), np.zeros(int(seconds * rate), np.float32), rate)
    for _ in range(int(seconds * fps)):
        writer.write(pattern.read())
    writer.close()
    return path


def test_inspector_silence_fades_the_overlay_and_says_silence_on_its_picture(qtbot, make_window,
                                                                             lite_checkpoints, tmp_path):
    silent = write_silent_clip(tmp_path / "silent.mp4")
    assert np.abs(decode_audio_track(silent, 16000)).max() == 0.0  # the decoder hears digital silence
    loud = write_clip(tmp_path / "tone.mp4", seconds=2.0)
    window = make_window(load_model=False)
    assert window.load_checkpoint(lite_checkpoints["always"])  # any sound is in the picture: silence is silence
    window.open_paths([silent])
    view = window.inspector.view
    qtbot.waitUntil(lambda: view.presence == SILENCE, timeout=20000)
    assert view.faded and view.heat_item.opacity() == pytest.approx(view.opacity * FADED)
    assert not [key for key in window.messages.keys() if SILENCE in window.messages.text(key)]
    window.inspector.pause()
    window.inspector.seek(0.0)  # the silence heard last at 0:00, the time the next file opens at
    wait_for_heatmaps(qtbot, view, 1)
    window.open_paths([loud])  # a loud file: no silence left over from the last one
    assert view.presence == "" and not view.faded
    wait_for_heatmaps(qtbot, view)
    assert view.presence == "" and view.heat_item.opacity() == pytest.approx(view.opacity)
