"""The encoders as the app runs them, frame after frame, on the path ``bench/model.py`` and ``bench/live.py`` chose.

``prepare_for_inference(model, device)`` is the one place that decides it; ``model.localize.Localizer``
calls it, so the live view, the inspector and the MP4 export all run the same path.

- CPU: the inference thread runs one core short of the machine (``InferenceConfig.cpu_threads``): on 2
  cores shared with the GUI, two intra-op threads wait on each other whenever the GUI takes a core.
  Both encoders are exported to ONNX and run by ONNX Runtime (``model.inference.onnx_runtime``): 0.6-0.7x the
  time of TorchScript's traced encoders, about 1 s of export each. Without ONNX Runtime, the
  EfficientNet-Lite0 visual encoder is traced and frozen by TorchScript (1.5-1.9x less CPU than eager)
  and the ResNet-18s run eager (their 1.2x from tracing costs 3-4 s of start-up and 150-250 MB).
- int8 (asked for with ``InferenceConfig.int8_calibration``; the app's ``--int8`` asks for it in the live view
  only, the inspector and the export stay float32): the ONNX visual encoder quantized (``model.inference.quantize``).
- CUDA: fp16 autocast and channels-last (tensor cores); written for CUDA, tested on the CPU only.

A compiled encoder takes only the shape it was made for; other shapes go through the eager model.
The live view compiles in the background (``InferenceConfig.background``): meanwhile the eager model
(same maps within 1e-6) already gives heatmaps.
"""
from __future__ import annotations

import copy
import os
import threading
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from model.inference.onnx_runtime import onnx_encoder, onnx_runtime_available
from model.networks.sslmodel import SSLModel

ENGINES = ("onnxruntime", "torchscript", "eager")  # InferenceConfig.engine on the CPU


@dataclass
class InferenceConfig:
    """How the per-frame encoders run; the defaults are what bench/model.py and bench/live.py chose."""

    # CPU: "onnxruntime" (both encoders exported to ONNX), "torchscript" (both traced + frozen: batch
    # norm folded, one C++ call per forward) or "eager"; None: onnxruntime where it is installed, else
    # TorchScript for the EfficientNet-Lite0 visual encoder only
    engine: str | None = None
    channels_last: bool | None = None  # channels-last copy of the weights; None: on CUDA only
    cuda_dtype: torch.dtype | None = torch.float16  # CUDA autocast precision; None: float32
    threads: int | None = None  # CPU intra-op threads of the inference thread; None: all cores but one
    background: bool = False  # compile in a thread of its own; the eager model answers until it is done
    # videos whose frames calibrate an int8 visual encoder (ONNX Runtime only, ``model.inference.quantize``): 1.5x
    # faster on this CPU, maps correlated ~0.9 with float32's; empty: float32
    int8_calibration: tuple[str, ...] = ()

    def __post_init__(self):
        if self.engine is not None and self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)} or None, not {self.engine!r}")

    def cpu_plan(self, visual_backbone: str) -> tuple[str, bool, bool]:
        """(engine, compile the visual encoder, compile the audio encoder) on the CPU."""
        if self.engine is not None:
            return self.engine, self.engine != "eager", self.engine != "eager"
        if onnx_runtime_available():
            return "onnxruntime", True, True
        return "torchscript", visual_backbone == "efficientnet_lite0", False

    def cpu_threads(self) -> int:
        """Intra-op threads for the thread that runs the encoders on the CPU."""
        if self.threads is not None:
            return self.threads
        return max(1, len(os.sched_getaffinity(0)) - 1)


class _VisualMaps(nn.Module):
    """``SSLModel.encode_visual`` as one tensor (B, D + 1, h, w), the objectness last: what an ONNX or
    TorchScript encoder (one output) returns; ``InferenceModel.encode_visual`` splits it again."""

    def __init__(self, model: SSLModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps, objectness = self.model.encode_visual(images)
        return torch.cat([maps, objectness[:, None]], dim=1)


class _AudioVector(nn.Module):
    def __init__(self, model: SSLModel):
        super().__init__()
        self.model = model

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(spectrograms)


def _frozen(module: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule | None:
    """The traced and frozen module, or None (the eager model then runs) when tracing fails: the fast path
    must never cost a heatmap. Seen once, in the app's before / after thread, as a failed trace check."""
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit is deprecated in favour of torch.compile, which compiles far longer (bench/model.py)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes baked in: checked at each call
        try:
            return torch.jit.freeze(torch.jit.trace(module.eval(), example))
        except (torch.jit.TracingCheckError, RuntimeError) as exc:
            warnings.warn(f"inference runs eager: tracing failed ({str(exc).splitlines()[0]})", RuntimeWarning)
            return None


class InferenceModel:
    """An eval-mode ``SSLModel`` prepared for batch-1 inference on one device. It has what
    ``model.localize`` uses of a model: ``config``, ``audio_config``, ``presence``, ``guidance``, ``semantic``,
    ``encode_visual``, ``encode_image_map`` and ``encode_audio`` (same inputs, float32 outputs)."""

    def __init__(self, model: SSLModel, device, config: InferenceConfig | None = None):
        self.source = model
        self.device = torch.device(device)
        self.settings = config or InferenceConfig()
        cuda = self.device.type == "cuda"
        self.dtype = self.settings.cuda_dtype if cuda else None
        channels_last = cuda if self.settings.channels_last is None else self.settings.channels_last
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        network = model
        if channels_last:  # a copy: the caller's model keeps its layout
            network = copy.deepcopy(model).to(memory_format=torch.channels_last)
        self.image_shape = (1, 3, model.config.image_size, model.config.image_size)
        self.audio_shape = (1, 1, model.audio_config.num_bins, model.audio_config.num_frames)
        self._image = self._audio = None
        self.network = network
        self._preparing: threading.Thread | None = None
        self.engine, image, audio = self.settings.cpu_plan(model.config.visual_backbone)
        if cuda or model.training or not (image or audio):
            self.engine = "eager"
            return
        if self.settings.background:
            self._preparing = threading.Thread(target=self._prepare_in_background, args=(image, audio),
                                               name="prepare-encoders")
            self._preparing.start()
        else:
            self._prepare(image, audio)

    def _prepare(self, image: bool, audio: bool) -> None:
        network = self.network
        if image:
            self._image = self._compiled(_VisualMaps(network), self.image_shape, self._int8_calibration())
        if audio:
            self._audio = self._compiled(_AudioVector(network), self.audio_shape)
            self.network = self.source  # other shapes: the caller's model as it is (no copy kept)

    def _int8_calibration(self) -> tuple[str, ...]:
        """The videos that calibrate an int8 visual encoder; none (float32) with an engine other than
        ONNX Runtime (said in a warning)."""
        videos = self.settings.int8_calibration
        if videos and self.engine != "onnxruntime":
            warnings.warn(f"int8 needs ONNX Runtime; the {self.engine} engine runs float32", RuntimeWarning)
            return ()
        return videos

    @property
    def int8(self) -> bool:
        """True once the visual encoder runs in int8."""
        return bool(getattr(self._image, "int8", False))

    def _compiled(self, module: nn.Module, shape: tuple[int, ...], calibration: tuple[str, ...] = ()):
        if self.engine != "onnxruntime":
            return _frozen(module, self._example(shape))
        threads = self.settings.cpu_threads()
        compiled = onnx_encoder(module, self._example(shape), threads, calibration)
        if compiled is None and calibration:  # rather float32 ONNX Runtime than eager
            warnings.warn("the int8 visual encoder could not be made: float32 instead", RuntimeWarning)
            compiled = onnx_encoder(module, self._example(shape), threads)
        return compiled

    def _prepare_in_background(self, image: bool, audio: bool) -> None:
        torch.set_num_threads(self.settings.cpu_threads())
        self._prepare(image, audio)

    def wait_prepared(self, timeout: float | None = None) -> bool:
        """Wait for a background compile to end (at most ``timeout`` s); True when none is running."""
        if self._preparing is not None:
            self._preparing.join(timeout)
        return self._preparing is None or not self._preparing.is_alive()

    def _example(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, device=self.device).contiguous(memory_format=self.layout)

    @property
    def config(self):
        return self.source.config

    @property
    def audio_config(self):
        return self.source.audio_config

    @property
    def presence(self):
        return self.source.presence

    @property
    def guidance(self):
        return self.source.guidance

    @property
    def semantic(self):
        return self.source.semantic

    def encode_visual(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``SSLModel.encode_visual``."""
        if self._image is not None and tuple(images.shape) == self.image_shape:
            packed = self._image(images.contiguous(memory_format=self.layout))
        else:
            packed = self._eager(_VisualMaps(self.network), images)
        return packed[:, :-1], packed[:, -1]

    def encode_image_map(self, images: torch.Tensor) -> torch.Tensor:
        """As ``SSLModel.encode_image_map``."""
        return self.encode_visual(images)[0]

    def encode_audio(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """As ``SSLModel.encode_audio``."""
        if self._audio is not None and tuple(spectrograms.shape) == self.audio_shape:
            return self._audio(spectrograms.contiguous(memory_format=self.layout))
        return self._eager(self.network.encode_audio, spectrograms)

    def _eager(self, encode, x: torch.Tensor) -> torch.Tensor:
        if self.network is not self.source:
            x = x.contiguous(memory_format=self.layout)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            return encode(x).float()


def use_inference_threads(device, config: InferenceConfig | None = None) -> None:
    """Call in the thread that will run the encoders: on the CPU, its intra-op thread count."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads((config or InferenceConfig()).cpu_threads())


def prepare_for_inference(model, device, config: InferenceConfig | None = None) -> InferenceModel:
    """``model`` on the fast path for ``device`` (a model already prepared is returned as it is)."""
    if isinstance(model, InferenceModel):
        return model
    return InferenceModel(model, device, config)
