"""Batch-1 latency of each encoder, eager float32 against the app's inference path and the other candidates.

Encoders: the visual ResNet-18 (stride-1 layer4) and EfficientNet-Lite0 (stride 16) at 96, 160 and 224 px,
the audio ResNet-18 and the pretrained sound-effects net (aisfx) on 1 s and 3 s windows; each with its normalisation (what ``model.localize`` calls).
Candidates, timed in alternation (one call of each per round, so that the machine's other load weighs on all
alike), median of ``--repeats`` rounds after ``--warmup``:

- eager_fp32: the model under ``torch.no_grad``
- inference_mode: the same under ``torch.inference_mode``
- channels_last: a channels-last copy, inference_mode
- jit_freeze: TorchScript trace + ``torch.jit.freeze`` (batch norm folded)
- jit_optimize: trace + ``torch.jit.optimize_for_inference`` (CPU: oneDNN layouts)
- jit_freeze_cl: ``model.inference.fast_path`` with ``engine="torchscript"`` and ``channels_last`` (the two together)
- onnxruntime: ``model.inference.fast_path`` with ``engine="onnxruntime"`` (exported to ONNX, run by ONNX Runtime)
- onnxruntime_int8 (visual encoders): the same, quantized to int8 and calibrated on the demo clips' frames
  (``model.inference.quantize``; the app's ``--int8``). Its ``max_abs_diff`` is the quantization's error on random
  weights.
- bf16_autocast (CPUs with avx512_bf16 only) / fp16_autocast (CUDA only)
- compile: ``torch.compile`` (only with ``--compile``: minutes of compiling on a small CPU)
- app: ``model.inference.fast_path.prepare_for_inference`` with its defaults, what the app runs

``prepare_s`` is the time to build a candidate and run it twice (tracing, freezing, exporting, compiling). ``cpu_ms``
is the process's CPU time per call (all its threads; less sensitive than wall time to other jobs on a shared
machine, but it counts intra-op threads spinning).

Usage: python bench/model.py [--repeats 30] [--device cpu|cuda] [--threads N] [--compile] [--json OUT]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_file import write_json  # noqa: E402
from model import AudioConfig, ModelConfig, SSLModel  # noqa: E402
from model.inference.fast_path import InferenceConfig, prepare_for_inference  # noqa: E402
from model.inference.onnx_runtime import onnx_runtime_available  # noqa: E402
from model.networks.sslmodel import AUDIO_BACKBONES  # noqa: E402

IMAGE_SIZES = (96, 160, 224)
AUDIO_SECONDS = (1.0, 3.0)
VISUAL = ("resnet18", "efficientnet_lite0")


class Encoder(nn.Module):
    """One encoder of a model as a module: ``encode_image_map`` or ``encode_audio``."""

    def __init__(self, model: SSLModel, kind: str):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image_map(x) if self.kind == "visual" else self.model.encode_audio(x)


def has_avx512_bf16() -> bool:
    return "avx512_bf16" in Path("/proc/cpuinfo").read_text()


def candidates(model: SSLModel, kind: str, example: torch.Tensor, device: str, compile_too: bool) -> dict:
    """name -> a function building the candidate (returns a callable of one input)."""
    encoder = Encoder(model, kind).eval()

    def under(mode, fn):
        def call(x):
            with mode():
                return fn(x)
        return call

    def traced(finish):
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer warnings
            return under(torch.inference_mode, finish(torch.jit.trace(Encoder(model, kind).eval(), example)))

    def channels_last():
        moved = copy.deepcopy(encoder).to(memory_format=torch.channels_last)
        return under(torch.inference_mode, lambda x: moved(x.contiguous(memory_format=torch.channels_last)))

    def autocast(dtype):
        return under(torch.inference_mode, lambda x: _autocast(encoder, x, device, dtype))

    def prepared(config=None):
        fast = prepare_for_inference(model, device, config)
        return under(torch.inference_mode, fast.encode_image_map if kind == "visual" else fast.encode_audio)

    built = {
        "eager_fp32": lambda: under(torch.no_grad, encoder),
        "inference_mode": lambda: under(torch.inference_mode, encoder),
        "channels_last": channels_last,
        "jit_freeze": lambda: traced(torch.jit.freeze),
        "jit_optimize": lambda: traced(torch.jit.optimize_for_inference),
        "jit_freeze_cl": lambda: prepared(InferenceConfig(engine="torchscript", channels_last=True)),
    }
    if onnx_runtime_available() and device == "cpu":  # the CPU engine of the live view
        built["onnxruntime"] = lambda: prepared(InferenceConfig(engine="onnxruntime"))
        if kind == "visual":
            demo = tuple(map(str, sorted((ROOT / "resources" / "demo" / "videos").glob("*.mp4"))))
            built["onnxruntime_int8"] = lambda: prepared(InferenceConfig(engine="onnxruntime", int8_calibration=demo))
    if device.startswith("cuda"):
        built["fp16_autocast"] = lambda: autocast(torch.float16)
    elif has_avx512_bf16():
        built["bf16_autocast"] = lambda: autocast(torch.bfloat16)
    if compile_too:
        built["compile"] = lambda: under(torch.inference_mode, torch.compile(encoder))
    built["app"] = prepared
    return built


def _autocast(encoder, x, device, dtype):
    with torch.autocast(torch.device(device).type, dtype=dtype):
        return encoder(x).float()


def time_candidates(built: dict, example: torch.Tensor, device: str, repeats: int, warmup: int) -> dict:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fns, prepare_s, outputs = {}, {}, {}
    for name, build in built.items():
        start = time.perf_counter()
        fns[name] = build()
        outputs[name] = fns[name](example)
        fns[name](example)
        sync()
        prepare_s[name] = time.perf_counter() - start
    for _ in range(warmup):
        for fn in fns.values():
            fn(example)
    times = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(example)
            sync()
            times[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
    reference = outputs["eager_fp32"].float()
    return {name: {"ms": round(statistics.median(times[name]), 3), "cpu_ms": round(statistics.median(cpu[name]), 3),
                   "prepare_s": round(prepare_s[name], 2),
                   "max_abs_diff": float((outputs[name].float() - reference).abs().max())} for name in fns}


def encoders(device: str):
    """(key, model, kind, example input) of each encoder and size measured."""
    for backbone in VISUAL:
        for size in IMAGE_SIZES:
            torch.manual_seed(0)
            model = SSLModel(ModelConfig(visual_backbone=backbone, image_size=size), AudioConfig(seconds=1.0))
            yield f"visual_{backbone}_{size}", model.eval().to(device), "visual", torch.randn(1, 3, size, size)
    for backbone, frontend in AUDIO_BACKBONES.items():
        for seconds in AUDIO_SECONDS:
            torch.manual_seed(0)
            model = SSLModel(ModelConfig(image_size=96, audio_backbone=backbone),
                             AudioConfig(seconds=seconds, frontend=frontend))
            shape = (1, 1, model.audio_config.num_bins, model.audio_config.num_frames)
            key = f"audio_{seconds:g}s" if backbone == "resnet18" else f"audio_{backbone}_{seconds:g}s"
            yield key, model.eval().to(device), "audio", torch.randn(shape)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=InferenceConfig().cpu_threads(),
                        help="torch threads (default: the app's inference thread's, all cores but one)")
    parser.add_argument("--only", nargs="+", help="encoder keys to measure (default: all)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"avx512_bf16 {has_avx512_bf16()}, median of {args.repeats} after {args.warmup} warm-up rounds")
    result = {}
    for key, model, kind, example in encoders(args.device):
        if args.only and key not in args.only:
            continue
        context = torch.no_grad() if args.device == "cpu" else nullcontext()
        with context:
            rows = time_candidates(candidates(model, kind, example.to(args.device), args.device, args.compile),
                                   example.to(args.device), args.device, args.repeats, args.warmup)
        eager, app = rows["eager_fp32"]["ms"], rows["app"]["ms"]
        result[key] = {"eager_fp32_ms": eager, "app_ms": app, "speedup": round(eager / app, 3), "candidates": rows}
        print(f"\n{key}: eager fp32 {eager:.2f} ms, app {app:.2f} ms, speedup {eager / app:.2f}")
        for name, row in rows.items():
            print(f"  {name:>15} {row['ms']:9.2f} ms  x{eager / row['ms']:5.2f}  CPU {row['cpu_ms']:8.2f} ms"
                  f"  prepare {row['prepare_s']:6.2f} s"
                  f"  max |diff| {row['max_abs_diff']:.1e}")
        sys.stdout.flush()
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
