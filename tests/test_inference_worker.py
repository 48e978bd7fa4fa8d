"""The inference worker: latest-frame slot, results and errors as signals, cooperative stop."""
import os
import sys
import threading
import time

import numpy as np
import pytest
import torch

from model import ModelConfig, SSLModel
from model.inference.fast_path import InferenceConfig
from model.localize import Localizer
from ssl_desktop.capture import Frame
from model.common.device import choose_device
from ssl_desktop.inference_worker import WORKER_NICENESS, InferenceWorker, LatestSlot


class GatedModel(SSLModel):
    """A real random-weight model whose image encoder waits for ``gate`` on its first call."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(ModelConfig())
        self.entered = threading.Event()
        self.gate = threading.Event()

    def encode_visual(self, images):
        self.entered.set()
        self.gate.wait(10)
        return super().encode_visual(images)


def frame(i, t=0.0):
    rng = np.random.default_rng(i)
    return Frame(i, rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), time.monotonic(), t)


def tone(t, n):
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)


@pytest.fixture
def start_worker(qtbot):
    workers = []

    def start(audio_window=tone, model=None, **options):
        worker = InferenceWorker(audio_window, **options)
        worker.set_model(model)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
        assert worker.isFinished()


def test_latest_slot_keeps_only_the_newest_item():
    slot = LatestSlot()
    for i in range(10):
        slot.put(i)
    assert slot.take() == 9 and slot.dropped == 9
    assert slot.take(timeout=0.01) is None  # empty
    slot.close()
    assert slot.take() is None  # closed: never blocks


def test_stop_waits_for_the_background_compile(qtbot, start_worker):
    """The worker compiles the encoders in the background from its first frame; a stop right after leaves
    no compiling thread behind."""
    torch.manual_seed(0)
    worker = start_worker(model=SSLModel(ModelConfig(image_size=96, visual_backbone="efficientnet_lite0")).eval())
    processed = []
    worker.result.connect(lambda frame_id, heatmap, latency: processed.append(frame_id))
    worker.submit(frame(0))
    qtbot.waitUntil(lambda: any(t.name == "prepare-encoders" for t in threading.enumerate()) or bool(processed),
                    timeout=15000)
    worker.stop()
    assert worker.isFinished()
    assert not any(t.name == "prepare-encoders" for t in threading.enumerate())
    assert not worker.preparing


def test_the_worker_says_when_its_model_is_compiled(qtbot, start_worker):
    """``preparing`` ends once ONNX Runtime runs both encoders of the model (false before any model)."""
    torch.manual_seed(0)
    worker = start_worker(model=SSLModel(ModelConfig(image_size=96)).eval())
    assert not worker.preparing  # no model prepared yet
    processed = []
    worker.result.connect(lambda frame_id, heatmap, latency: processed.append(frame_id))
    worker.submit(frame(0))
    qtbot.waitUntil(lambda: bool(processed), timeout=15000)
    qtbot.waitUntil(lambda: not worker.preparing, timeout=60000)
    (model,) = worker._prepared
    assert model.engine == "onnxruntime" and model._image is not None and model._audio is not None


def test_frames_arriving_while_busy_replace_each_other(qtbot, start_worker):
    model = GatedModel()
    worker = start_worker(model=model)
    processed = []
    worker.result.connect(lambda frame_id, heatmap, latency: processed.append(frame_id))
    worker.submit(frame(0))
    assert model.entered.wait(10)  # the worker is now blocked inside the model with frame 0
    for i in range(1, 11):
        worker.submit(frame(i))
    model.gate.set()
    qtbot.waitUntil(lambda: len(processed) == 2, timeout=15000)
    qtbot.wait(300)
    assert processed == [0, 10]
    assert worker.frames_dropped == 9 and worker.frames_processed == 2


def test_result_is_a_frame_sized_non_uniform_cosine_map(qtbot, start_worker, tiny_model):
    worker = start_worker(model=tiny_model)
    specs = []
    worker.spectrogram_ready.connect(specs.append)
    with qtbot.waitSignal(worker.result, timeout=15000) as result:
        worker.submit(frame(1))
    frame_id, cosine, latency = result.args
    (spec,) = specs
    assert frame_id == 1 and cosine.shape == (120, 160) and cosine.dtype == np.float32
    assert -1 <= cosine.min() < cosine.max() <= 1 and cosine.std() > 1e-3  # raw cosine; the view scales it
    assert latency > 0
    assert spec.shape == (257, tiny_model.audio_config.num_frames)


def test_audio_embedding_is_refreshed_at_its_own_rate(qtbot, start_worker, tiny_model):
    asked = []
    worker = start_worker(lambda t, n: asked.append(t) or tone(t, n), tiny_model)
    for i, t in enumerate([0.0, 0.1, 0.2, 0.3, 0.35, 0.6]):
        with qtbot.waitSignal(worker.result, timeout=15000):
            worker.submit(frame(i, t))
        qtbot.waitUntil(lambda: not worker.hearing, timeout=15000)
    assert asked == [0.0, 0.3, 0.6]  # a new snapshot every 0.25 s of frame time


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_worker_and_its_helpers_yield_the_cpu_to_the_gui_thread(qtbot, start_worker, tiny_model):
    """The worker thread lowers its own priority; the hearing thread it starts inherits it (the sound is
    fetched there); the GUI thread keeps its own."""
    gui_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []
    worker = start_worker(lambda t, n: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
                          or tone(t, n), tiny_model)
    with qtbot.waitSignal(worker.result, timeout=15000):
        worker.submit(frame(0))
    assert seen and set(seen) == {max(gui_niceness, WORKER_NICENESS)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui_niceness


def chirp(t, n):
    """A different sound at every frame time."""
    return (0.3 * np.sin(2 * np.pi * (200 + 100 * t) * np.arange(n) / 16000)).astype(np.float32)


def test_frames_go_on_while_the_next_sound_is_encoded(qtbot, start_worker, tiny_model):
    """The refresh of the sound runs beside the frames: a frame due for a new sound is localized with the
    sound heard last while the new one is still being fetched and encoded."""
    fetching, release = threading.Event(), threading.Event()

    def slow_after_the_first(t, n):
        if t > 0:
            fetching.set()
            release.wait(20)
        return chirp(t, n)

    worker = start_worker(slow_after_the_first, tiny_model)
    heard = []
    worker.embeddings.connect(lambda audio, image: heard.append(audio))
    with qtbot.waitSignal(worker.result, timeout=15000):
        worker.submit(frame(0, 0.0))
    with qtbot.waitSignal(worker.result, timeout=15000):  # due for a new sound at 0.3 s
        worker.submit(frame(1, 0.3))
    assert fetching.is_set() and not release.is_set()  # answered while the new sound was still on its way
    assert torch.equal(heard[1], heard[0])  # with the sound heard last
    release.set()
    qtbot.waitUntil(lambda: not worker.hearing, timeout=15000)
    with qtbot.waitSignal(worker.result, timeout=15000):
        worker.submit(frame(2, 0.35))
    assert not torch.allclose(heard[2], heard[0], atol=1e-3)  # the sound of 0.3 s from then on


@pytest.mark.parametrize("hear_in_background, times", [(True, [0.0, 5.0]), (False, [0.0, 0.3])])
def test_a_frame_waits_for_its_own_sound_after_a_seek_or_in_the_inspector(qtbot, start_worker, tiny_model,
                                                                            hear_in_background, times):
    """After a seek (live view), or at every refresh with ``hear_in_background=False`` (the inspector), the
    frame's heatmap uses the sound of its own time."""
    worker = start_worker(chirp, tiny_model, hear_in_background=hear_in_background)
    heard = []
    worker.embeddings.connect(lambda audio, image: heard.append(audio))
    for i, t in enumerate(times):
        with qtbot.waitSignal(worker.result, timeout=15000):
            worker.submit(frame(i, t))
    with torch.inference_mode():
        expected = [Localizer(tiny_model, "cpu", inference=InferenceConfig(engine="eager")).hear(chirp(t, 16000 * 3), t)
                    .vector[0] for t in times]
    assert tiny_model.audio_config.num_samples == 16000 * 3
    assert torch.allclose(heard[0], expected[0], atol=1e-4) and torch.allclose(heard[1], expected[1], atol=1e-4)
    assert not torch.allclose(expected[0], expected[1], atol=1e-3)


def test_no_sound_no_heatmap(qtbot, start_worker, tiny_model):
    worker = start_worker(lambda t, n: None, tiny_model)
    results = []
    worker.result.connect(lambda *args: results.append(args))
    worker.submit(frame(0))
    qtbot.wait(500)
    assert results == []


def test_errors_become_a_signal_and_the_worker_goes_on(qtbot, start_worker, tiny_model):
    calls = []

    def flaky(t, n):
        calls.append(t)
        if len(calls) == 1:
            raise RuntimeError("sound card exploded")
        return tone(t, n)

    worker = start_worker(flaky, tiny_model)
    with qtbot.waitSignal(worker.failed, timeout=15000) as failed:
        worker.submit(frame(0))
    assert "sound card exploded" in failed.args[0]
    with qtbot.waitSignal(worker.result, timeout=15000):
        worker.submit(frame(1))
    assert worker.isRunning()


def test_without_a_model_frames_are_dropped_quietly(qtbot, start_worker, tiny_model):
    worker = start_worker()
    results = []
    worker.result.connect(lambda *args: results.append(args))
    worker.submit(frame(0))
    qtbot.wait(200)
    assert results == []
    worker.set_model(tiny_model)  # a model arriving later is used from the next frame
    with qtbot.waitSignal(worker.result, timeout=15000):
        worker.submit(frame(1))


def test_stop_is_cooperative_and_prompt(start_worker):
    worker = start_worker()
    start = time.monotonic()
    worker.stop()
    assert worker.isFinished() and time.monotonic() - start < 2


def test_choose_device():
    assert choose_device("cpu") == ("cpu", None)
    device, problem = choose_device("cuda")
    assert device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (problem is None) == torch.cuda.is_available()
    assert choose_device("auto")[1] is None
