"""The live pipeline: a frame source and an audio source feeding the inference worker.

frame source -> CaptureThread -> (display, InferenceWorker's latest-frame slot)
audio source -> RingBuffer (the last seconds of sound, at the model's rate) -> snapshot by the worker

The window talks to it, as to the inspector, through ``set_model``, ``set_audio_override``, the
``embeddings`` signal and ``waveform(seconds)``.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from model import AudioConfig
from model.inference.fast_path import InferenceConfig

from .capture import CaptureThread, Frame, Waveform
from .inference_worker import InferenceWorker
from .player import Monitor, Volume
from .ring_buffer import RingBuffer
from .sources import AudioSource, FrameSource, SilentSource, SourceError

RING_SECONDS = 5.0  # longer than any model's audio window (3 s)


class LivePipeline(QObject):
    frame_captured = Signal(object)  # Frame, for display
    result = Signal(int, object, float)  # frame id, heatmap, latency (s)
    spectrogram_ready = Signal(object)
    embeddings = Signal(object, object)  # unit audio vector, unit global image vector (for retrieval)
    inference_failed = Signal(str)
    presence = Signal(str, str)  # with each heatmap: '' or why the sound is not in the picture; what it hears
    source_failed = Signal(str)  # the frame source could not be opened or stopped working
    source_stalled = Signal(str)  # the frame source stopped delivering and is retried; "" once it delivers
    source_faulty = Signal(str)  # what is wrong with what the sources deliver (a file cut short); "" when nothing

    def __init__(self, device: str = "cpu", inference: InferenceConfig | None = None, parent=None):
        super().__init__(parent)
        self.model = None
        self.ring = RingBuffer(int(RING_SECONDS * self.sample_rate), self.sample_rate)
        self.frame_source: FrameSource | None = None
        self.audio_source: AudioSource | None = None
        self.capture: CaptureThread | None = None
        self.inference_enabled = True
        self.worker = InferenceWorker(self._audio_window, device, inference=inference, parent=self)
        self.worker.result.connect(self.result)
        self.worker.spectrogram_ready.connect(self.spectrogram_ready)
        self.worker.embeddings.connect(self.embeddings)
        self.worker.failed.connect(self.inference_failed)
        self.worker.presence.connect(self.presence)
        self.worker.start()

    @property
    def audio_config(self) -> AudioConfig:
        """How the model hears (the defaults without a model)."""
        return self.model.audio_config if self.model is not None else AudioConfig()

    @property
    def sample_rate(self) -> int:
        """The rate the model hears at (the sources are started at it)."""
        return self.audio_config.sample_rate

    def set_model(self, model) -> None:
        """Use ``model``; a model at another sample rate needs the sources started again (``start``)."""
        self.model = model
        self.worker.set_model(model)

    def set_view(self, view) -> None:
        """Show the heatmaps as ``view`` (``model.localize.ViewSettings``) says."""
        self.worker.set_view(view)

    def set_audio_override(self, audio) -> None:
        """Localize this sound's vector instead of the sound heard (None: the sound heard again)."""
        self.worker.set_audio_override(audio)

    def start(self, frame_source: FrameSource, audio_source: AudioSource) -> str | None:
        """Stop the current sources and run these; returns why the audio source is silent, if it is.

        The frame source is opened in the capture thread: a failure arrives as ``source_failed``.
        """
        self.stop_sources()
        problem = None
        if self.ring.sample_rate != self.sample_rate:
            self.ring.reset(int(RING_SECONDS * self.sample_rate), self.sample_rate)
        self.ring.clear()
        try:
            audio_source.start(self.ring)
        except SourceError as exc:
            problem = str(exc)
            audio_source = SilentSource()
            audio_source.start(self.ring)
        self.frame_source, self.audio_source = frame_source, audio_source
        self.capture = CaptureThread(frame_source, self._on_frame, parent=self)
        self.capture.frame_captured.connect(self.frame_captured)
        self.capture.failed.connect(self.source_failed)
        self.capture.stalled.connect(self.source_stalled)
        self.capture.faulty.connect(self.source_faulty)
        self.capture.start()
        return problem

    @property
    def silent(self) -> bool:
        """No sound (no microphone, or a file's not decoded yet): there is no heatmap."""
        source = self.audio_source
        return source is not None and not source.delivers_sound()

    def waveform(self, seconds: float) -> Waveform:
        """The newest ``seconds`` of sound (zeros before the first)."""
        samples = self.ring.snapshot(int(seconds * self.ring.sample_rate))
        return Waveform(samples, self.ring.sample_rate, -seconds)

    def playing(self) -> Path | None:
        """The video file whose frames are shown now (None: a camera, or nothing running)."""
        source = self.frame_source
        return source.playing() if source is not None else None

    def monitor(self, volume: Volume) -> Monitor:
        """A player of the live sound at ``volume`` (``start`` it)."""
        return Monitor(self.ring, volume)

    def _audio_window(self, t: float, num_samples: int):
        """The newest sound (called by the worker); None without a microphone or before a file's sound is
        decoded: then there is no heatmap."""
        return None if self.silent else self.ring.snapshot(num_samples)

    def _on_frame(self, frame: Frame) -> None:
        """Called in the capture thread."""
        if self.inference_enabled:
            self.worker.submit(frame)

    def stop_sources(self) -> None:
        """Stop capturing and release the camera and the microphone."""
        if self.capture is not None:
            self.capture.stop()
            self.capture.deleteLater()
            self.capture = None
        if self.audio_source is not None:
            self.audio_source.stop()
            self.audio_source = None
        self.frame_source = None

    def shutdown(self) -> None:
        """Stop every thread of the pipeline."""
        self.stop_sources()
        self.worker.stop()
