"""The inference thread: heatmaps of the latest frame, "no faster than it can compute".

Frames are handed in through a single-item ``LatestSlot``: a frame that arrives while the model is busy
replaces the one waiting, so the heatmap is always of a recent frame and nothing queues up. The audio
embedding is refreshed at its own rate (every ``audio_refresh`` seconds of frame time) from a snapshot of
the sound around the frame. All tensor work is done by the ``model`` package.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np
import torch
from PySide6.QtCore import QThread, Signal

from model import SSLModel
from model.fast_path import InferenceConfig, use_inference_threads
from model.localize import AUDIO_REFRESH_SECONDS, Localizer

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


class InferenceWorker(QThread):
    """Computes the heatmap of the latest submitted frame with the sound around it.

    ``audio_window(t, num_samples)`` returns the waveform the model should hear for frame time ``t``
    (the newest samples of a ring buffer, or a window of a file's track), or None when there is no sound:
    such frames get no heatmap. ``inference`` says how the encoders run (``model.fast_path``).
    """

    result = Signal(int, object, float)  # frame id, raw cosine map (H, W) float32 at frame size, latency in s
    spectrogram_ready = Signal(object)  # (257, T): what the model hears now
    embeddings = Signal(object, object)  # unit audio vector (D,), unit global image vector (D,), CPU tensors
    error = Signal(str)
    presence = Signal(str)  # with each result: '' (the sound is in the picture), "silence", "the sound is not in view"

    def __init__(self, audio_window: Callable[[float, int], np.ndarray | None], device: str = "cpu",
                 audio_refresh: float = AUDIO_REFRESH_SECONDS, inference: InferenceConfig | None = None,
                 parent=None):
        super().__init__(parent)
        self.audio_window = audio_window
        self.device = device
        self.audio_refresh = audio_refresh
        # the encoders are compiled in the background: the eager model gives the first heatmaps meanwhile
        self.inference = inference or InferenceConfig(background=True)
        self.frames_processed = 0
        self._slot = LatestSlot()
        self._model: SSLModel | None = None
        self._model_lock = threading.Lock()
        self._model_changed = False
        self._audio_override: torch.Tensor | None = None
        self._prepared: list = []  # models prepared here whose background compile may still run

    @property
    def preparing(self) -> bool:
        """True while the encoders of a model given to this worker are still being compiled."""
        return not all(m.wait_prepared(0) for m in list(self._prepared))

    @property
    def frames_dropped(self) -> int:
        return self._slot.dropped

    def set_model(self, model: SSLModel | None) -> None:
        """Use ``model`` (in eval mode, on this worker's device) from the next frame on (None: nothing)."""
        with self._model_lock:
            self._model = model
            self._model_changed = True

    @property
    def audio_override(self) -> torch.Tensor | None:
        return self._audio_override

    def set_audio_override(self, audio: torch.Tensor | None) -> None:
        """Localize this unit audio vector (D,) instead of the sound around the frame (None: the sound)."""
        with self._model_lock:
            self._audio_override = audio
            self._model_changed = True  # recompute the audio vector

    def submit(self, frame: Frame) -> None:
        """Offer a frame (any thread); it replaces a frame still waiting."""
        self._slot.put(frame)

    def run(self) -> None:
        try:
            self._serve()
        finally:  # a background compile ends before this thread
            for inference_model in self._prepared:
                inference_model.wait_prepared()

    def _serve(self) -> None:
        localizer, model = None, None  # the localizer of this model
        last_error = None
        with torch.inference_mode():
            while (frame := self._slot.take()) is not None:
                with self._model_lock:
                    changed, self._model_changed = self._model_changed, False
                    wanted, override = self._model, self._audio_override
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
                    if localizer is None:
                        continue
                    if localizer.needs_sound(frame.t):
                        waveform = self.audio_window(frame.t, localizer.model.audio_config.num_samples)
                        if waveform is None:
                            localizer.forget_sound()
                        else:
                            self.spectrogram_ready.emit(localizer.hear(waveform, frame.t).spectrogram)
                    localized = localizer.localize(frame.image)
                    if localized is None:
                        continue
                    self.embeddings.emit(localized.audio, localized.image)
                except Exception as exc:  # shown to the user; the worker goes on with the next frame
                    message = f"inference failed: {exc!r}"
                    if message != last_error:
                        self.error.emit(message)
                        last_error = message
                    continue
                last_error = None
                self.frames_processed += 1
                self.result.emit(frame.id, localized.shown, time.monotonic() - frame.captured_at)
                self.presence.emit(localized.presence)

    def stop(self) -> None:
        """Finish the current frame, then end the thread (cooperative; never terminate())."""
        self._slot.close()
        self.wait()
