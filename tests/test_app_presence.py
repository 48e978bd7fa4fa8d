"""The app with an EfficientNet-Lite0 checkpoint, and what it says when the sound is not in the picture."""
import numpy as np
import pytest
import torch

from model import ModelConfig, SSLModel, save_model
from model.presence import NOT_IN_VIEW, SILENCE, PresenceConfig
from ssl_desktop.sources import PatternSource, ToneSource
from ssl_desktop.video_view import FADED
from test_app import checkpoint, make_window, wait_for_heatmaps  # noqa: F401 (fixtures)


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


def test_a_silent_microphone_fades_the_overlay_and_says_silence(qtbot, make_window, lite_checkpoints):  # noqa: F811
    window = make_window(load_model=False)
    assert window.load_checkpoint(lite_checkpoints["never"])
    view = window.live_view
    window.start_sources(PatternSource(size=(320, 240), fps=25), QuietMicrophone(), "camera")
    wait_for_heatmaps(qtbot, view)
    qtbot.waitUntil(lambda: window.messages.text("presence") == SILENCE, timeout=20000)
    assert view.faded and view.heat_item.opacity() == pytest.approx(view.opacity * FADED)

    window.start_sources(PatternSource(size=(320, 240), fps=25), ToneSource(), "camera")  # a sound, not in view
    qtbot.waitUntil(lambda: window.messages.text("presence") == NOT_IN_VIEW, timeout=20000)

    assert window.load_checkpoint(lite_checkpoints["always"])  # the sound is in the picture
    qtbot.waitUntil(lambda: window.messages.text("presence") == "", timeout=20000)
    assert not view.faded and view.heat_item.opacity() == pytest.approx(view.opacity)
    wait_for_heatmaps(qtbot, view)
    assert view.heatmap.shape == view.frame.shape[:2] and view.heatmap.std() > 0.01

    window.start_sources(PatternSource(size=(320, 240), fps=25), QuietMicrophone(), "camera")
    qtbot.waitUntil(lambda: window.messages.text("presence") == SILENCE, timeout=20000)  # whatever the score
    assert view.faded


def test_a_checkpoint_with_the_sound_effects_encoder_runs_live_and_shows_its_mel_bands(qtbot, make_window,  # noqa: F811
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
