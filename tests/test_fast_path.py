"""The app's inference path (``model.inference.fast_path``: on the CPU both encoders in ONNX Runtime) and its measured
alternatives (TorchScript trace + freeze, channels-last, eager) give the eager float32 model's maps and vectors.

Tolerance: 1e-4 on the raw cosine (range -1..1) and on the unit vectors; folding batch norm into the
convolutions (TorchScript's freeze, ONNX Runtime's graph optimizations) only reorders float32 sums (measured:
under 1e-6 for both backbones). CUDA's fp16 path is not tested here
(no GPU on the development machine)."""
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from model import AudioConfig, ModelConfig, SSLModel
from model.inference.fast_path import InferenceConfig, InferenceModel, prepare_for_inference
from model.localize import Localizer
from model.inference import onnx_runtime
from model.inference.onnx_runtime import OnnxEncoder, onnx_runtime_available
from model.networks.sslmodel import cosine_map

TOLERANCE = 1e-4

pytestmark = pytest.mark.usefixtures("one_thread")


def trained_looking(model: SSLModel) -> SSLModel:
    """Batch-norm statistics away from (0, 1), as after training, so that folding them changes the weights."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(1 + 0.1 * torch.randn(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()


@pytest.fixture(scope="module", params=["resnet18", "efficientnet_lite0"])
def model(request):
    torch.manual_seed(0)
    return trained_looking(SSLModel(ModelConfig(image_size=96, visual_backbone=request.param),
                                    AudioConfig(seconds=1.0)))


def inputs(model, batch: int = 1, size: int | None = None):
    size = size or model.config.image_size
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(batch, 3, size, size, generator=generator)
    spectrograms = torch.randn(batch, 1, 257, model.audio_config.num_frames, generator=generator)
    return images, spectrograms


CONFIGS = {"app": InferenceConfig(), "onnxruntime": InferenceConfig(engine="onnxruntime"),
           "trace": InferenceConfig(engine="torchscript"),
           "channels_last": InferenceConfig(engine="eager", channels_last=True),
           "trace_channels_last": InferenceConfig(engine="torchscript", channels_last=True)}
COMPILED = {"onnxruntime": OnnxEncoder, "torchscript": torch.jit.ScriptModule}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_inference_path_maps_match_float32(model, name):
    fast = prepare_for_inference(model, "cpu", CONFIGS[name])
    engine, image, audio = CONFIGS[name].cpu_plan(model.config.visual_backbone)
    assert fast.engine == engine
    for compiled, wanted in ((fast._image, image), (fast._audio, audio)):  # the path asked for, not a fallback
        assert isinstance(compiled, COMPILED[engine]) if wanted else compiled is None
    images, spectrograms = inputs(model)
    with torch.inference_mode():
        (visual, objects), audio = model.encode_visual(images), model.encode_audio(spectrograms)
        (fast_visual, fast_objects), fast_audio = fast.encode_visual(images), fast.encode_audio(spectrograms)
    assert fast_visual.dtype == torch.float32 and fast_visual.shape == visual.shape
    assert fast_objects.shape == objects.shape == visual.shape[:1] + visual.shape[2:]
    np.testing.assert_allclose(fast_objects, objects, atol=TOLERANCE)  # packed with the map, split again
    np.testing.assert_allclose(fast_audio, audio, atol=TOLERANCE)
    np.testing.assert_allclose(cosine_map(fast_visual, fast_audio), cosine_map(visual, audio), atol=TOLERANCE)
    if image:
        assert (fast_visual - visual).abs().max() > 0  # another computation (folded batch norm, layout)


def test_an_export_that_fails_leaves_the_eager_model_answering(model, monkeypatch):
    """The export child killed at its deadline: a warning, no child left, the eager model's maps."""
    monkeypatch.setattr(onnx_runtime, "EXPORT_TIMEOUT_S", 0.01)
    before = set(multiprocessing.active_children())  # a child reaped elsewhere stays listed (test below)
    with pytest.warns(RuntimeWarning, match="ONNX Runtime not used: RuntimeError: the ONNX export process ended"):
        fast = prepare_for_inference(model, "cpu", CONFIGS["onnxruntime"])
    assert fast._image is None and fast._audio is None and not set(multiprocessing.active_children()) - before
    images, spectrograms = inputs(model)
    with torch.inference_mode():
        assert torch.equal(fast.encode_image_map(images), model.encode_image_map(images))
        assert torch.equal(fast.encode_audio(spectrograms), model.encode_audio(spectrograms))


def test_an_export_whose_exit_status_was_collected_elsewhere_is_used(model, monkeypatch):
    """Another part of the process reaps the export child (here the kernel, with SIGCHLD ignored): its exit status
    reads None, and the complete file alone says the export succeeded - no "ONNX Runtime not used" warning."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the export runs in this process without fork")
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            fast = prepare_for_inference(model, "cpu", CONFIGS["onnxruntime"])
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert isinstance(fast._image, OnnxEncoder) and isinstance(fast._audio, OnnxEncoder)


def test_the_app_runs_onnx_runtime_on_the_cpu(model):
    """onnxruntime is a dependency: the default path is ONNX Runtime for both encoders, not a silent fallback."""
    assert onnx_runtime_available()
    assert InferenceConfig().cpu_plan(model.config.visual_backbone) == ("onnxruntime", True, True)
    assert InferenceConfig(engine="eager").cpu_plan(model.config.visual_backbone) == ("eager", False, False)
    with pytest.raises(ValueError, match="engine"):
        InferenceConfig(engine="tensorrt")


@pytest.mark.parametrize("name", ["onnxruntime", "trace"])
def test_other_shapes_take_the_eager_model(model, name):
    fast = prepare_for_inference(model, "cpu", CONFIGS[name])
    images, spectrograms = inputs(model, batch=2, size=64)
    with torch.inference_mode():
        assert torch.equal(fast.encode_image_map(images), model.encode_image_map(images))
        assert torch.equal(fast.encode_audio(spectrograms), model.encode_audio(spectrograms))


def test_background_compile_answers_eagerly_until_it_is_ready(model):
    """The live view's start-up: the maps come at once (eager), the compiled encoders take over when ready."""
    fast = prepare_for_inference(model, "cpu", InferenceConfig(background=True))
    assert fast._preparing is not None and fast._preparing.name == "prepare-encoders"
    images, spectrograms = inputs(model)
    with torch.inference_mode():
        first = fast.encode_image_map(images), fast.encode_audio(spectrograms)  # while the trace runs beside
        assert fast.wait_prepared(timeout=120)
        assert fast._image is not None and fast._audio is not None  # the compiled path took over
        assert not any(t.name == "prepare-encoders" for t in threading.enumerate())
        traced = fast.encode_image_map(images), fast.encode_audio(spectrograms)
        eager = model.encode_image_map(images), model.encode_audio(spectrograms)
    for a, b, c in zip(first, traced, eager):
        np.testing.assert_allclose(a, c, atol=TOLERANCE)
        np.testing.assert_allclose(b, c, atol=TOLERANCE)
    assert prepare_for_inference(model, "cpu").wait_prepared(timeout=0)  # nothing in the background by default


def test_localizer_runs_the_inference_path_and_keeps_the_models_settings(model):
    localizer = Localizer(model, "cpu", inference=CONFIGS["trace_channels_last"])
    assert isinstance(localizer.model, InferenceModel) and localizer.model._image is not None
    assert localizer.model.config is model.config and localizer.model.presence is model.presence
    assert prepare_for_inference(localizer.model, "cpu") is localizer.model
    assert next(model.parameters()).is_contiguous()  # the caller's model keeps its layout


def test_eager_when_asked_or_training():
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(image_size=64), AudioConfig(seconds=1.0))
    assert InferenceModel(model.eval(), "cpu", InferenceConfig(engine="eager"))._image is None
    training = InferenceModel(model.train(), "cpu", InferenceConfig(engine="onnxruntime"))
    assert training._image is None and training.engine == "eager"  # batch norm in training mode: no export
    assert model.training


def test_cpu_threads_leave_a_core():
    assert InferenceConfig(threads=3).cpu_threads() == 3
    assert InferenceConfig().cpu_threads() == max(1, len(os.sched_getaffinity(0)) - 1)


@pytest.mark.skipif(not onnx_runtime_available(), reason="ONNX Runtime is not installed")
def test_onnx_runtime_writes_nothing_under_the_user_s_cache(tmp_path):
    """ONNX Runtime's telemetry is off: a session made and run in a fresh process leaves no device id or event
    database in the home folder (it wrote ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ with telemetry on)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path)
    code = ("import torch; from model.inference.onnx_runtime import OnnxEncoder; "
            "encoder = OnnxEncoder(torch.nn.Conv2d(3, 4, 3).eval(), torch.zeros(1, 3, 8, 8), threads=1); "
            "print(tuple(encoder(torch.zeros(1, 3, 8, 8)).shape))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 4, 6, 6)"  # the session ran
    assert not (tmp_path / ".cache" / "Microsoft").exists(), sorted(map(str, tmp_path.rglob("*")))
