"""An encoder exported to ONNX and run by ONNX Runtime on the CPU: the live view's fastest CPU path.

Measured with the bundled model, batch 1, one thread (bench/model.py): ONNX Runtime's convolutions take
0.6-0.7x the time of the TorchScript-traced encoders, and exporting takes about 1 s an encoder where
trace + freeze takes 2-3 s. The export uses torch's TorchScript-based exporter (``dynamo=False``): the
newer torch.export-based one gives the same graph but takes 10-20 s an encoder here, at every start.

The exporter runs in a forked child process where the platform has ``fork``: in the app's process it held
the GIL for 0.8 s of its 2 s (gaps of up to 220 ms in every other Python thread: the camera lost frames,
the GUI hitched); forked, the app's threads wait 0.3-0.4 s in all, for the fork and the sessions' creation.

ONNX Runtime's telemetry is off: left on, importing it writes a device id and an event database under
``~/.cache/Microsoft/DeveloperTools/``. ``ORT_DISABLE_TELEMETRY`` stops that, and is read at its import.
"""
from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from model.inference.quantize import calibration_images, quantize_graph

# before onnxruntime is imported, here or by model.inference.quantize
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def onnx_runtime_available() -> bool:
    """True when ONNX Runtime and the exporter's ``onnx`` package are installed (found, not imported: the
    import, 0.5 s, happens in the thread that compiles)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


EXPORT_TIMEOUT_S = 120.0  # then the export child is killed (2 s is usual, 6 s with int8)


def _export_here(module: nn.Module, example: torch.Tensor, path: str, calibration: Sequence[str]) -> None:
    """Writes the graph under a temporary name and renames it to ``path`` once complete."""
    torch.set_num_threads(1)
    partial = f"{path}.part"
    float_graph = f"{path}.float.onnx" if calibration else partial
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, trace warnings
        torch.onnx.export(module.eval(), (example,), float_graph, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
        if calibration:
            quantize_graph(float_graph, partial, calibration_images(calibration, example.shape[-1]))
    os.replace(partial, path)


def export(module: nn.Module, example: torch.Tensor, path: str, calibration: Sequence[str] = ()) -> None:
    """Write ``module`` for images shaped like ``example`` to the ONNX file ``path``, quantized to int8
    when ``calibration`` names videos (``model.inference.quantize``: their frames are decoded there too): in a
    forked child process (the module's memory shared copy-on-write, nothing pickled), else in this process.
    The file appears only complete, so it alone says the export succeeded: the child's exit status may have
    been collected by another part of the process (a SIGCHLD handler, a library waiting on any child), and then
    reads None. Raises RuntimeError when no file came, or the child took longer than ``EXPORT_TIMEOUT_S``."""
    if "fork" not in multiprocessing.get_all_start_methods():
        _export_here(module, example, path, calibration)
        return
    child = multiprocessing.get_context("fork").Process(target=_export_here,
                                                        args=(module, example, path, tuple(calibration)),
                                                        name="onnx-export", daemon=True)
    child.start()
    child.join(EXPORT_TIMEOUT_S)
    if child.is_alive() and not Path(path).is_file():
        child.kill()
        child.join()
    if not Path(path).is_file():
        raise RuntimeError(f"the ONNX export process ended with exit code {child.exitcode}")


class OnnxEncoder:
    """``module`` (eval mode, one tensor in, one tensor out) as an ONNX Runtime session for inputs shaped
    like ``example``; called with a float32 CPU tensor, it returns one. With ``calibration`` videos, the
    session runs the int8 graph calibrated on their frames (``model.inference.quantize``)."""

    def __init__(self, module: nn.Module, example: torch.Tensor, threads: int, calibration: Sequence[str] = ()):
        self.int8 = bool(calibration)
        with tempfile.TemporaryDirectory(prefix="ssl-onnx-") as folder:
            graph = str(Path(folder) / "encoder.onnx")
            export(module, example, graph, calibration)
            self.session = self._session(graph, threads)
        return_freed_memory()

    @staticmethod
    def _session(graph: str, threads: int):
        import onnxruntime

        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # never busy-wait beside the GUI
        return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        (y,) = self.session.run(None, {"x": x.detach().contiguous().numpy()})
        return torch.from_numpy(y)


def return_freed_memory() -> None:
    """Give the heap freed while a session was made back to the system (glibc's ``malloc_trim``; elsewhere
    nothing). Measured with the bundled model: the process keeps 70 MB less once both sessions exist."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass


def onnx_encoder(module: nn.Module, example: torch.Tensor, threads: int,
                 calibration: Sequence[str] = ()) -> OnnxEncoder | None:
    """The ONNX Runtime encoder (int8 with ``calibration`` inputs), or None (with a warning) when the export,
    the quantization or the session fails: the caller then runs another path, the fast path must never
    cost a heatmap."""
    try:
        return OnnxEncoder(module, example, threads, calibration)
    except Exception as exc:  # an exporter or runtime error of any kind: the torch path runs instead
        what = "int8 ONNX Runtime" if calibration else "ONNX Runtime"
        warnings.warn(f"{what} not used: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                      RuntimeWarning)
        return None
