"""The inference thread: heatmaps of the latest frame, "no faster than it can compute".

Frames are handed in through a single-item ``LatestSlot``: a frame that arrives while the model is busy
replaces the one waiting, so the heatmap is always of a recent frame and nothing queues up. The audio
embedding is refreshed at its own rate (every ``audio_refresh`` seconds of frame time) from a snapshot of
the sound around the frame, in a thread of its own (``HearingThread``). In the live view frames do not wait
for the sound (the audio encoder costs 1.7 frames' time on the CPU) but go on with the vector heard last,
except at the start, after a seek or after silence; the inspector's frames wait for their own sound
(``hear_in_background=False``: a paused file's frame is shown with the sound of its time). All tensor work
is done by the ``model`` package.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

import numpy as np
import torch
from PySide6.QtCore import QThread, Signal

from model import SSLModel
from model.inference.fast_path import InferenceConfig, use_inference_threads
from model.localize import AUDIO_REFRESH_SECONDS, Localizer, ViewSettings

from .capture import Frame


class LatestSlot:
    """Holds at most one item: ``put`` replaces a waiting item (counted in ``dropped``), ``take`` waits."""

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._closed = False
        self.dropped = 0

    def put(self, item) -> None:
        with self._condition:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._condition.notify()

    def take(self, timeout: float | None = None):
        """The waiting item (removing it); None after ``close`` or when ``timeout`` passes first."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake and end every ``take``; later puts are ignored by takers."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class HearingThread(threading.Thread):
    """Encodes the sound for a frame time beside the frame loop, one request at a time.

    ``ask(localizer, t)`` hands it the sound of frame time ``t`` (``audio_window(t, n)``; None: no sound)
    once the request before is done; ``wait()`` returns when the sound asked for is heard. What it hears
    goes to ``on_spectrogram``, what fails to ``on_failed`` (a message, not repeated while it repeats).
    """

    def __init__(self, audio_window: Callable[[float, int], np.ndarray | None],
                 on_spectrogram: Callable[[np.ndarray], None], on_failed: Callable[[str], None]):
        super().__init__(name="inference-hearing", daemon=True)
        self.audio_window, self.on_spectrogram, self.on_failed = audio_window, on_spectrogram, on_failed
        self._slot = LatestSlot()
        self._idle = threading.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def ask(self, localizer: Localizer, t: float) -> None:
        self._idle.wait()
        self._idle.clear()
        self._slot.put((localizer, t))

    def wait(self) -> None:
        self._idle.wait()

    def close(self) -> None:
        """End the thread after the sound it is encoding (if any)."""
        self._slot.close()
        self.join()
        self._idle.set()

    def run(self) -> None:
        last_error = None
        with torch.inference_mode():
            while (request := self._slot.take()) is not None:
                localizer, t = request
                try:
                    waveform = self.audio_window(t, localizer.model.audio_config.num_samples)
                    if waveform is None:
                        localizer.forget_sound()
                    else:
                        self.on_spectrogram(localizer.hear(waveform, t).spectrogram)
                    last_error = None
                except Exception as exc:  # shown to the user; the next request is served as usual
                    message = f"inference failed: {exc!r}"
                    if message != last_error:
                        self.on_failed(message)
                        last_error = message
                finally:
                    self._idle.set()


# the encoders are compiled in the background: the eager model gives the first heatmaps meanwhile
WORKER_INFERENCE = InferenceConfig(background=True)
# Linux niceness of the worker thread and all it starts (hearing, background compile, export child): on 2 cores
# the GUI thread would wait for a core behind them; niced, it paints on time (docs/BENCHMARKS.md).
WORKER_NICENESS = 5


def lower_this_thread_priority(niceness: int) -> None:
    """Raise the calling thread's niceness to ``niceness`` (never lower it), for it and the threads and
    processes it starts later; Linux only, where niceness is per thread (elsewhere, or refused: as it was)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < niceness:
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
    except OSError:
        pass


class InferenceWorker(QThread):
    """Computes the heatmap of the latest submitted frame with the sound around it.

    ``audio_window(t, num_samples)`` returns the waveform the model should hear for frame time ``t``
    (the newest samples of a ring buffer, or a window of a file's track), or None when there is no sound:
    such frames get no heatmap. ``inference`` says how the encoders run (``model.inference.fast_path``).
    ``hear_in_background``: a frame due for a new sound goes on with the sound heard last while the new one
    is encoded (False: it waits for its own). ``niceness``: this thread's and its helpers' (Linux), so that
    the GUI thread gets a core first.
    """

    result = Signal(int, object, float)  # frame id, raw cosine map (H, W) float32 at frame size, latency in s
    spectrogram_ready = Signal(object)  # (257, T): what the model hears now
    embeddings = Signal(object, object)  # unit audio vector (D,), unit global image vector (D,), CPU tensors
    failed = Signal(str)  # what went wrong with a frame or a sound (not repeated while it repeats)
    # with each result: '' (the sound is in the picture), "silence" or "the sound is not in view"; and what the model
    # hears ("speech 0.93, dog 0.41"; '' when unknown)
    presence = Signal(str, str)

    def __init__(self, audio_window: Callable[[float, int], np.ndarray | None], device: str = "cpu",
                 audio_refresh: float = AUDIO_REFRESH_SECONDS, inference: InferenceConfig | None = None,
                 hear_in_background: bool = True, niceness: int = WORKER_NICENESS, parent=None):
        super().__init__(parent)
        self.niceness = niceness
        self.audio_window = audio_window
        self.hear_in_background = hear_in_background
        self.device = device
        self.audio_refresh = audio_refresh
        self.inference = inference or WORKER_INFERENCE
        self.frames_processed = 0
        self._slot = LatestSlot()
        self._model: SSLModel | None = None
        self._model_lock = threading.Lock()
        self._model_changed = False
        self._audio_override: torch.Tensor | None = None
        self._view = ViewSettings()
        self._prepared: list = []  # models prepared here whose background compile may still run
        self._hearing: HearingThread | None = None  # while running

    @property
    def preparing(self) -> bool:
        """True while the encoders of a model given to this worker are still being compiled."""
        return not all(m.wait_prepared(0) for m in list(self._prepared))

    @property
    def hearing(self) -> bool:
        """True while the sound for a frame is being fetched or encoded."""
        return self._hearing is not None and self._hearing.busy

    @property
    def frames_dropped(self) -> int:
        return self._slot.dropped

    def set_model(self, model: SSLModel | None) -> None:
        """Use ``model`` (in eval mode, on this worker's device) from the next frame on (None: nothing)."""
        with self._model_lock:
            self._model = model
            self._model_changed = True

    def set_view(self, view: ViewSettings) -> None:
        """Show the heatmaps as ``view`` says from the next frame on."""
        with self._model_lock:
            self._view = view

    @property
    def audio_override(self) -> torch.Tensor | None:
        return self._audio_override

    def set_audio_override(self, audio: torch.Tensor | None) -> None:
        """Localize this unit audio vector (D,) instead of the sound around the frame (None: the sound)."""
        with self._model_lock:
            self._audio_override = audio
            self._model_changed = True  # recompute the audio vector

    def forget_sound(self) -> None:
        """The sound is another one now (another file): the next frame hears its own, never the vector (and the
        level: silence or not) heard last, and a knowing model reads its picture afresh."""
        with self._model_lock:
            self._model_changed = True  # the localizer takes the sound afresh (or the override again)

    def submit(self, frame: Frame) -> None:
        """Offer a frame (any thread); it replaces a frame still waiting."""
        self._slot.put(frame)

    def run(self) -> None:
        lower_this_thread_priority(self.niceness)
        self._hearing = HearingThread(self.audio_window, self.spectrogram_ready.emit, self.failed.emit)
        self._hearing.start()
        try:
            self._serve(self._hearing)
        finally:  # the hearing thread and a background compile end before this thread
            self._hearing.close()
            for inference_model in self._prepared:
                inference_model.wait_prepared()

    def _serve(self, hearing: HearingThread) -> None:
        localizer, model = None, None  # the localizer of this model
        last_error = None
        with torch.inference_mode():
            while (frame := self._slot.take()) is not None:
                with self._model_lock:
                    changed, self._model_changed = self._model_changed, False
                    wanted, override, view = self._model, self._audio_override, self._view
                try:
                    if changed:  # outside the lock: preparing a model takes a moment, set_model must not wait
                        if wanted is not model:
                            model, localizer = wanted, None
                            if model is not None:
                                use_inference_threads(self.device, self.inference)
                                localizer = Localizer(model, self.device, self.audio_refresh, self.inference)
                                # keep no swapped-out model, only those still compiling
                                self._prepared = [m for m in self._prepared if not m.wait_prepared(0)]
                                self._prepared.append(localizer.model)
                        if localizer is not None:
                            localizer.listen_to(override)
                            localizer.forget_picture()  # another file or query: its picture is read afresh
                    if localizer is None:
                        continue
                    localizer.set_view(view)
                    if localizer.needs_sound(frame.t):
                        if self.hear_in_background and localizer.heard_recently(frame.t):
                            if not hearing.busy:  # heard while this and the next frames use the last sound
                                hearing.ask(localizer, frame.t)
                        else:  # this frame waits for its own sound
                            hearing.ask(localizer, frame.t)
                            hearing.wait()
                    localized = localizer.localize(frame.image)
                    if localized is None:
                        continue
                    self.embeddings.emit(localized.audio, localized.image)
                except Exception as exc:  # shown to the user; the worker goes on with the next frame
                    message = f"inference failed: {exc!r}"
                    if message != last_error:
                        self.failed.emit(message)
                        last_error = message
                    continue
                last_error = None
                self.frames_processed += 1
                self.result.emit(frame.id, localized.shown, time.monotonic() - frame.captured_at)
                self.presence.emit(localized.presence, localized.hearing)

    def stop(self) -> None:
        """Finish the current frame, then end the thread (cooperative; never terminate())."""
        self._slot.close()
        self.wait()
