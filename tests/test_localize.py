"""One per-frame path: the inference worker, the MP4 export and ssl-eval give the same heatmap for the
same frame and the same sound, because all three go through ``model.localize``."""
import copy
import time

import numpy as np
import pytest
import torch

from model import AudioConfig, ModelConfig, SSLModel, spectrogram
from model.data import video_io
from model.evaluation.evaluate import predict
from model.localize import Localizer, ViewSettings
from model.networks.object_guidance import ObjectGuidance
from model.inference.overlay import blend, overlay_lut, scale_heat
from model.synth.generator import generate
from model.preprocess.image import preprocess_image
from ssl_desktop.capture import Frame
from ssl_desktop.export import export_clip
from ssl_desktop.inference_worker import InferenceWorker

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    generate(root, clips=1, seed=3, size=(160, 120))
    return next((root / "videos").glob("*.mp4"))


@pytest.fixture(scope="module")
def frame_and_sound(clip, tiny_model):
    """The first frame (t = 0) and the model's window of sound centred on it."""
    t, frame = next(video_io.iter_frames(clip))
    track = video_io.decode_audio_track(clip, tiny_model.audio_config.sample_rate)
    return t, frame, video_io.centred_window(track, t, tiny_model.audio_config.num_samples, 16000)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return SSLModel(ModelConfig(image_size=112), AudioConfig(seconds=1.0)).eval()


def reference(model, frame, window):
    localizer = Localizer(model, "cpu")
    with torch.inference_mode():
        localizer.hear(window, 0.0)
        return localizer.localize(frame)


def test_worker_heatmap_is_the_localizer_heatmap(qtbot, tiny_model, frame_and_sound):
    t, frame, window = frame_and_sound
    worker = InferenceWorker(lambda _t, n: window[:n], "cpu")
    worker.set_model(tiny_model)
    worker.start()
    try:
        with qtbot.waitSignal(worker.result, timeout=30000) as blocker:
            worker.submit(Frame(0, frame, time.monotonic(), t))
    finally:
        worker.stop()
    expected = reference(tiny_model, frame, window)
    np.testing.assert_allclose(blocker.args[1], expected.shown, atol=1e-6)


def test_eval_cosine_map_is_the_localizer_map(tiny_model, frame_and_sound):
    _, frame, window = frame_and_sound
    item = {"image": preprocess_image(frame, tiny_model.config.image_size),
            "spectrogram": spectrogram(window, tiny_model.audio_config),
            "file": "clip", "label": "x", "boxes": []}
    with torch.inference_mode():
        pred = predict(tiny_model, [item], "cpu")
    expected = reference(tiny_model, frame, window)
    np.testing.assert_allclose(pred.maps[0].numpy(), expected.cosine, atol=1e-5)
    np.testing.assert_allclose(pred.audio_emb[0], expected.audio, atol=1e-5)
    np.testing.assert_allclose(pred.image_emb[0], expected.image, atol=1e-5)


def test_exported_frame_is_the_localizer_heatmap_blended(tiny_model, clip, frame_and_sound, tmp_path):
    _, frame, window = frame_and_sound
    lut = overlay_lut("inferno")
    target = tmp_path / "out.mp4"
    export_clip(tiny_model, "cpu", clip, target, lut, 1.0)
    exported = video_io.read_frame(target, 0.0).astype(float)
    heat, _ = scale_heat(reference(tiny_model, frame, window).shown)
    expected = blend(frame, heat, lut, 1.0).astype(float)
    flipped = blend(frame, 1.0 - heat, lut, 1.0).astype(float)
    error = np.abs(exported - expected).mean()
    assert error < 4.0, error  # H.264 at high quality: a few levels
    assert np.abs(exported - flipped).mean() > 4 * error  # another heatmap would be far off


def test_a_fixed_vector_wins_over_a_sound_heard_meanwhile(tiny_model, frame_and_sound):
    """The live view hears in a thread of its own: a gallery sound chosen as the query meanwhile is kept,
    and the sound heard last decides ``heard_recently`` (a frame two refreshes away waits for its own)."""
    t, frame, window = frame_and_sound
    localizer = Localizer(tiny_model, "cpu")
    query = torch.nn.functional.normalize(torch.randn(tiny_model.config.embed_dim), dim=0)
    with torch.inference_mode():
        assert not localizer.heard_recently(0.0)  # nothing heard yet
        localizer.hear(window, 0.0)
        assert localizer.heard_recently(0.4) and not localizer.heard_recently(0.5)  # refresh 0.25 s
        heard = localizer.localize(frame).audio
        localizer.listen_to(query)
        localizer.hear(window, 0.3)
        assert torch.allclose(localizer.localize(frame).audio, query)
        assert localizer.heard_recently(10.0) and not localizer.needs_sound(10.0)
        localizer.listen_to(None)
        assert localizer.localize(frame) is None and not localizer.heard_recently(0.3)
        localizer.hear(window, 0.3)
    assert torch.allclose(localizer.localize(frame).audio, heard, atol=1e-5)


def test_view_settings_change_what_is_shown_never_the_model(tiny_model, frame_and_sound):
    """Object guidance off in the view shows what a model without guidance shows; the model keeps its weight;
    the worker passes its view on from the next frame."""
    _, frame, window = frame_and_sound
    guided = copy.deepcopy(tiny_model)
    guided.guidance = ObjectGuidance(0.5, "by hand")
    as_loaded = reference(guided, frame, window).shown
    localizer = Localizer(guided, "cpu", view=ViewSettings(objects=False))
    with torch.inference_mode():
        localizer.hear(window, 0.0)
        unguided = localizer.localize(frame).shown
        np.testing.assert_allclose(unguided, reference(tiny_model, frame, window).shown, atol=1e-6)
        assert np.abs(unguided - as_loaded).max() > 1e-3  # guidance changes the map, so the check above means something
        localizer.set_view(ViewSettings())
        np.testing.assert_allclose(localizer.localize(frame).shown, as_loaded, atol=1e-6)
    assert guided.guidance.weight == 0.5
    with pytest.raises(ValueError):
        ViewSettings(shown="both")
