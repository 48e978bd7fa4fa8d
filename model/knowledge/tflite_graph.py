"""A TensorFlow Lite graph of convolutions, run in torch.

Reads a ``.tflite`` flatbuffer with the ``tflite`` package (its schema's generated reader, Apache-2.0; nothing of
TensorFlow is run), turns its constant tensors into float32 torch tensors once (float16 weights, stored sparse
where ``DENSIFY`` expands them) and runs its operators in order, activations in NCHW. Only the operators of
BlazePose's person detector (``model.knowledge.bodies``) are known: convolutions, padding, additions,
depth-to-space, bilinear resizing, reshapes and concatenations; any other is refused when the file is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import tflite

NUMPY_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
ACTIVATIONS = {0: lambda x: x, 1: F.relu, 3: lambda x: x.clamp(0.0, 6.0)}
FOLDED = {"DEQUANTIZE", "DENSIFY"}  # applied to constants when the file is read
RUN = {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "ADD", "DEPTH_TO_SPACE", "RESIZE_BILINEAR", "RESHAPE",
       "CONCATENATION"}


@dataclass
class Operator:
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict


def _vector(union, kind: int) -> np.ndarray:
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
    vector = cls()
    vector.Init(union.Bytes, union.Pos)
    return vector.ValuesAsNumpy()


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity) -> np.ndarray:
    """A sparse constant's stored values -> the dense array (TFLite's format: each dimension, in traversal
    order, dense or compressed with segments and indices; block sparsity is refused)."""
    order = sparsity.TraversalOrderAsNumpy()
    if sparsity.BlockMapLength() or list(order) != list(range(len(shape))):
        raise ValueError("block-sparse or reordered TFLite tensors are not supported")
    levels = []
    for d in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(d)
        if meta.Format() == 0:
            levels.append(("dense", meta.DenseSize()))
        else:
            levels.append(("sparse", _vector(meta.ArraySegments(), meta.ArraySegmentsType()).astype(np.int64),
                           _vector(meta.ArrayIndices(), meta.ArrayIndicesType()).astype(np.int64)))
    index: list[np.ndarray] = []  # per dimension so far, the index of every stored entry reached
    at = np.zeros(1, np.int64)  # each one's position among its level's stored entries
    for level in levels:
        if level[0] == "dense":
            size = level[1]
            index = [np.repeat(i, size) for i in index] + [np.tile(np.arange(size), len(at))]
            at = (at[:, None] * size + np.arange(size)).ravel()
        else:
            _, segments, indices = level
            counts = segments[at + 1] - segments[at]
            first = np.repeat(segments[at] - np.cumsum(counts) + counts, counts)
            at = first + np.arange(int(counts.sum()))
            index = [np.repeat(i, counts) for i in index] + [indices[at]]
    dense = np.zeros(shape, values.dtype)
    dense[tuple(index)] = values[at]
    return dense


def _options(op, kind: str) -> dict:
    table = op.BuiltinOptions()
    reader = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
              "ADD": tflite.AddOptions, "DEPTH_TO_SPACE": tflite.DepthToSpaceOptions,
              "RESIZE_BILINEAR": tflite.ResizeBilinearOptions, "CONCATENATION": tflite.ConcatenationOptions}.get(kind)
    if reader is None or table is None:
        return {}
    options = reader()
    options.Init(table.Bytes, table.Pos)
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        if options.DilationHFactor() != 1 or options.DilationWFactor() != 1:
            raise ValueError("dilated TFLite convolutions are not supported")
        return {"same": options.Padding() == 0, "stride": (options.StrideH(), options.StrideW()),
                "act": options.FusedActivationFunction()}
    if kind == "ADD":
        return {"act": options.FusedActivationFunction()}
    if kind == "DEPTH_TO_SPACE":
        return {"block": options.BlockSize()}
    if kind == "RESIZE_BILINEAR":
        if options.AlignCorners() or not options.HalfPixelCenters():
            raise ValueError("only half-pixel bilinear resizing is supported")
        return {}
    return {"axis": options.Axis(), "act": options.FusedActivationFunction()}


class TFLiteGraph:
    """The first subgraph of a ``.tflite`` file: ``graph(x)`` with x in NHWC (N, H, W, C) float32 -> its outputs,
    each as the file shapes it (NHWC, or what its reshapes made), for a batch of N."""

    def __init__(self, path: str | Path):
        model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        graph = model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.constants: dict[int, torch.Tensor] = {}
        raw: dict[int, np.ndarray] = {}
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                values = np.frombuffer(data.tobytes(), NUMPY_TYPES[tensor.Type()])
                shape = tuple(int(s) for s in tensor.ShapeAsNumpy())
                raw[t] = densify(values, shape, tensor.Sparsity()) if tensor.Sparsity() else values.reshape(shape)
        self.operators: list[Operator] = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            inputs, outputs = [int(t) for t in op.InputsAsNumpy()], [int(t) for t in op.OutputsAsNumpy()]
            if kind in FOLDED and inputs[0] in raw:
                raw[outputs[0]] = raw[inputs[0]].astype(np.float32)
            elif kind in RUN:
                self.operators.append(Operator(kind, inputs, outputs, _options(op, kind)))
            else:
                raise ValueError(f"{path}: TFLite operator {kind} is not supported")
        used = {t for op in self.operators for t in op.inputs}
        for t, values in raw.items():
            if t not in used:  # the stored form of a folded constant
                continue
            dtype = np.float32 if values.dtype == np.float16 else values.dtype
            self.constants[t] = torch.from_numpy(np.array(values, dtype))  # a copy: the file's bytes are read-only
        self._prepare_weights()
        self._read_constant_operands()
        self.inputs = [int(t) for t in graph.InputsAsNumpy()]
        self.outputs = [int(t) for t in graph.OutputsAsNumpy()]
        # after each operator, the activations no later operator reads: freed as the graph runs
        last_use = {t: i for i, op in enumerate(self.operators) for t in op.inputs if t not in self.constants}
        self.done_with = [[t for t in op.inputs if last_use.get(t) == i and t not in self.outputs]
                          for i, op in enumerate(self.operators)]
        # tensors laid out as the file's reshapes made them (the rest are feature maps, NCHW here)
        self.flat = {op.outputs[0] for op in self.operators if op.kind in ("RESHAPE", "CONCATENATION")}

    def _prepare_weights(self) -> None:
        """Convolution weights to torch's layout: (O, kh, kw, I) -> (O, I, kh, kw); depthwise (1, kh, kw, C) ->
        (C, 1, kh, kw)."""
        done = set()
        for op in self.operators:
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and op.inputs[1] not in done:
                weight = self.constants[op.inputs[1]]
                order = (0, 3, 1, 2) if op.kind == "CONV_2D" else (3, 0, 1, 2)
                self.constants[op.inputs[1]] = weight.permute(*order).contiguous()
                done.add(op.inputs[1])

    def _read_constant_operands(self) -> None:
        """Paddings, shapes and sizes, given as constant tensors in the file, into the operators' options."""
        for op in self.operators:
            if op.kind == "PAD":
                (_, _), (top, bottom), (left, right), (c0, c1) = self.constants[op.inputs[1]].tolist()
                op.options["pads"] = (left, right, top, bottom, c0, c1)
            elif op.kind == "RESHAPE":
                op.options["shape"] = [int(v) for v in self.constants[op.inputs[1]].tolist()]
            elif op.kind == "RESIZE_BILINEAR":
                op.options["size"] = tuple(int(v) for v in self.constants[op.inputs[1]].tolist())

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        values: dict[int, torch.Tensor] = dict(self.constants)
        values[self.inputs[0]] = x.permute(0, 3, 1, 2)  # NCHW inside
        for op, done in zip(self.operators, self.done_with):
            a = values[op.inputs[0]]
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                out = self._convolve(op, a, values)
            elif op.kind == "PAD":
                out = F.pad(a, op.options["pads"])
            elif op.kind == "ADD":
                out = ACTIVATIONS[op.options["act"]](a + values[op.inputs[1]])
            elif op.kind == "DEPTH_TO_SPACE":
                b = op.options["block"]
                n, c, h, w = a.shape  # TensorFlow's channels are (row in block, column in block, channel)
                out = a.view(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, -1, h * b, w * b)
            elif op.kind == "RESIZE_BILINEAR":  # half-pixel centres: torch's align_corners=False
                out = F.interpolate(a, size=op.options["size"], mode="bilinear", align_corners=False)
            elif op.kind == "RESHAPE":
                nhwc = a if op.inputs[0] in self.flat else a.permute(0, 2, 3, 1)
                out = nhwc.reshape([nhwc.shape[0]] + op.options["shape"][1:])  # the file's batch of 1: any batch
            else:  # CONCATENATION of reshaped outputs
                if not all(t in self.flat for t in op.inputs):
                    raise ValueError("concatenating feature maps is not supported")
                out = ACTIVATIONS[op.options["act"]](torch.cat([values[t] for t in op.inputs], dim=op.options["axis"]))
            values[op.outputs[0]] = out
            for t in done:
                del values[t]
        return [values[t] if t in self.flat else values[t].permute(0, 2, 3, 1) for t in self.outputs]

    def _convolve(self, op: Operator, a: torch.Tensor, values: dict) -> torch.Tensor:
        weight = values[op.inputs[1]]
        bias = values[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        stride = op.options["stride"]
        if op.options["same"]:
            a = _pad_same(a, weight.shape[-2:], stride)
        groups = a.shape[1] if op.kind == "DEPTHWISE_CONV_2D" else 1
        return ACTIVATIONS[op.options["act"]](F.conv2d(a, weight, bias, stride, groups=groups))


def _pad_same(a: torch.Tensor, kernel, stride) -> torch.Tensor:
    """TensorFlow's "SAME" padding: the output has ceil(input / stride) positions, the extra pixel at the end."""
    pads = []
    for size, k, s in zip(a.shape[-2:], kernel, stride):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return F.pad(a, (left, right, top, bottom)) if top or bottom or left or right else a
