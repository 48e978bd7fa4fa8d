"""The visual encoder in int8 for ONNX Runtime: static post-training quantization, calibrated on video frames.

Measured with EfficientNet-Lite0 at 224 px on this 2-core AVX2 CPU, one thread: 17-19 ms a frame against 27-29 ms
in float32 (``bench/model.py``). The price is in the maps: their correlation with float32's is about 0.90 on the
real-content test clips and their peak moves to another cell for most frames, while the benchmark's numbers move by
a few items (``bench/int8_accuracy.py``, docs/BENCHMARKS.md).
So it is a choice for the live view (``ssl-desktop --int8``), never the default.

Weights are quantized per output channel (int8), activations per tensor (uint8) with ranges taken from the
calibration frames. The first convolution (it sees the raw normalised pixels) and the last (the projection
whose output is compared by cosine) stay float32: with them quantized too the maps' correlation fell from
0.90 to 0.87 for 1.5 ms. So does the last concatenation, which packs the map with its objectness.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from model.data.video_io import probe, read_frames
from model.preprocess.image import preprocess_image

FRAMES_PER_VIDEO = 8  # evenly spread over each calibration video
MAX_CALIBRATION_FRAMES = 64


def calibration_images(videos: Sequence[str | os.PathLike], size: int) -> np.ndarray:
    """Model inputs (N, 3, size, size) float32 from frames spread over ``videos``; raises VideoReadError
    for a file that cannot be read and ValueError when there is none."""
    images = []
    for video in videos:
        duration = probe(video).duration
        times = [duration * (i + 0.5) / FRAMES_PER_VIDEO for i in range(FRAMES_PER_VIDEO)]
        images += [preprocess_image(frame, size).numpy() for frame in read_frames(video, times)]
    if not images:
        raise ValueError("int8 calibration needs at least one video")
    return np.stack(images[:MAX_CALIBRATION_FRAMES]).astype(np.float32)


class _Frames:
    """The calibration frames one at a time, as ONNX Runtime's calibration reader protocol asks."""

    def __init__(self, images: np.ndarray, input_name: str):
        self._items = iter([{input_name: image[None]} for image in images])

    def get_next(self):
        return next(self._items, None)


def quantize_graph(graph: str, out: str, images: np.ndarray, input_name: str = "x") -> None:
    """Write the int8 version of the float32 ONNX file ``graph`` to ``out``, calibrated on ``images``."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="ssl-int8-") as folder:
        prepared = str(Path(folder) / "prepared.onnx")
        quant_pre_process(graph, prepared)  # shapes inferred, batch norms folded: what the quantizer expects
        nodes = onnx.load(prepared).graph.node
        convolutions = [node.name for node in nodes if node.op_type == "Conv"]
        packing = [node.name for node in nodes if node.op_type == "Concat"][-1:]  # map + objectness (fast_path)
        quantize_static(prepared, out, _Frames(images, input_name), quant_format=QuantFormat.QOperator,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=([convolutions[0], convolutions[-1]] if convolutions else []) + packing)
