"""Import the published SSL-Align and EZ-VSL checkpoints (``.pth`` / ``.pth.tar``) as our safetensors.

Published checkpoints are pickles. They are read with ``torch.load(weights_only=True)``, which rebuilds
tensors and plain containers only: a file that carries code is refused, and its code is never run.

    ssl-import --format ssl-align ours_sup.pth.tar resources/ssl_align.safetensors
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from model.preprocess.audio import AudioConfig
from model.checkpoints.store import CheckpointError, check_finite, save_model
from model.common.pickles import PickleRefused, load_weights
from model.networks.sslmodel import ModelConfig, SSLModel

try:
    from numpy._core.multiarray import scalar as _numpy_scalar  # numpy >= 1.26
except ImportError:
    from numpy.core.multiarray import scalar as _numpy_scalar

# numpy scalars are plain data (EZ-VSL saves its best cIoU / AUC as numpy floats); allowed under the
# names numpy 1.x and 2.x pickle them with, so such files load with weights_only=True.
NUMPY_SCALAR_GLOBALS = [
    (_numpy_scalar, "numpy.core.multiarray.scalar"),
    (_numpy_scalar, "numpy._core.multiarray.scalar"),
    np.dtype,
    *{type(np.dtype(code)) for code in "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]},
]


@dataclass(frozen=True)
class PublishedFormat:
    """Where a published checkpoint keeps its weights, and which of our architectures they fit."""

    title: str
    state_dict_key: str  # the checkpoint dictionary's entry holding the model's state dict
    model_config: ModelConfig
    audio_config: AudioConfig  # the spectrogram the published inference computes
    renamed: dict[str, str] = field(default_factory=dict)  # our key -> published key, where they differ


FORMATS = {
    # AVENet (github.com/kaistmm/SSLalignment, model_lvs.py): ResNet-18s with three stems each
    # (conv1, conv1_a, conv1_flow) and an fc; the audio net runs conv1_a. Loaded with strict=False.
    "ssl-align": PublishedFormat(
        "SSL-Align", "model_state_dict",
        ModelConfig(layer4_stride=1, audio_layer4_stride=1, projection=False), AudioConfig(noverlap=353),
        renamed={"audnet.conv1.weight": "audnet.conv1_a.weight"},
    ),
    # EZVSL (github.com/stoneMo/EZ-VSL, model.py): torchvision ResNet-18s (fc = Identity) and
    # img_proj / aud_proj heads, saved from (Distributed)DataParallel with a "module." prefix.
    "ezvsl": PublishedFormat(
        "EZ-VSL", "model",
        ModelConfig(layer4_stride=2, audio_layer4_stride=2, projection=True), AudioConfig(noverlap=274),
    ),
}


@dataclass
class ImportReport:
    """What an import took from a published file, and the tensors it ignored."""

    format: str
    source: Path
    ignored_keys: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{FORMATS[self.format].title} checkpoint {self.source.name}"
        if self.ignored_keys:
            text += (f"; ignored {len(self.ignored_keys)} tensors the model does not use: "
                     + ", ".join(self.ignored_keys))
        return text


def read_published(path) -> object:
    """``torch.load`` a published file safely (tensors and plain data only), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return load_weights(path, NUMPY_SCALAR_GLOBALS)
    except PickleRefused as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # a damaged or foreign file makes torch.load raise almost anything
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc


def import_checkpoint(path, fmt: str) -> tuple[SSLModel, ImportReport]:
    """A published checkpoint (``fmt``: "ssl-align" or "ezvsl") as an ``SSLModel`` in eval mode.

    Extra tensors in the file are ignored and listed in the report, as the published strict=False
    loader does; a missing tensor or a wrong shape is a ``CheckpointError``.
    """
    if fmt not in FORMATS:
        raise CheckpointError(f"unknown checkpoint format {fmt!r}; known: {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    published = _published_state_dict(read_published(path), spec, path)
    model = SSLModel(replace(spec.model_config), replace(spec.audio_config))
    weights, missing = {}, []
    for key, needed in model.state_dict().items():
        published_key = spec.renamed.get(key, key)
        value = published.get(published_key)
        if not isinstance(value, torch.Tensor):
            missing.append(published_key)
        elif value.shape != needed.shape:
            raise CheckpointError(
                f"{path}: tensor {published_key} has shape {tuple(value.shape)}, "
                f"the {spec.title} model needs {tuple(needed.shape)}"
            )
        else:
            weights[key] = value
    if missing:
        listed = ", ".join(missing[:10]) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise CheckpointError(f"{path} is not a complete {spec.title} checkpoint: missing {listed}")
    check_finite(weights, path)
    model.load_state_dict(weights)
    used = {spec.renamed.get(key, key) for key in weights}
    return model.eval(), ImportReport(fmt, Path(path), sorted(set(published) - used))


def _published_state_dict(checkpoint: object, spec: PublishedFormat, path) -> dict[str, object]:
    """The model's state dict from a published checkpoint dictionary, "module." prefixes removed."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    state_dict = checkpoint.get(spec.state_dict_key)
    if not isinstance(state_dict, dict):
        keys = [repr(key) for key in checkpoint]
        shown = ", ".join(keys[:8]) + (f" ... ({len(keys)} in all)" if len(keys) > 8 else "")
        hints = [f" It looks like an {other.title} checkpoint: use --format {name}."
                 for name, other in FORMATS.items()
                 if other is not spec and isinstance(checkpoint.get(other.state_dict_key), dict)]
        raise CheckpointError(
            f"{path} is not an {spec.title} checkpoint: it has no {spec.state_dict_key!r} entry; "
            f"its top-level keys are [{shown}].{''.join(hints)}"
        )
    return {str(key).removeprefix("module."): value for key, value in state_dict.items()}


def convert(in_path, fmt: str, out_path) -> ImportReport:
    """Import ``in_path`` and write it to ``out_path`` as an ssl-desktop safetensors file (atomically)."""
    if Path(out_path).resolve() == Path(in_path).resolve():
        raise CheckpointError(f"the output {out_path} is the published checkpoint itself: "
                              "write the .safetensors to another file")
    model, report = import_checkpoint(in_path, fmt)
    save_model(out_path, model, extra={"imported_from": f"{FORMATS[fmt].title} {Path(in_path).name}"})
    return report


def main(argv=None) -> int:
    """``ssl-import --format ssl-align|ezvsl IN.pth[.tar] OUT.safetensors``."""
    parser = argparse.ArgumentParser(
        prog="ssl-import", description="Convert a published SSL-Align or EZ-VSL checkpoint to ssl-desktop's format.")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="which published code saved it")
    parser.add_argument("checkpoint", type=Path, help="published .pth / .pth.tar file")
    parser.add_argument("output", type=Path, help="the .safetensors file to write")
    args = parser.parse_args(argv)
    try:
        report = convert(args.checkpoint, args.format, args.output)
    except CheckpointError as exc:
        print(f"ssl-import: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a read-only or full disk, an output that is a folder
        print(f"ssl-import: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    spec = FORMATS[args.format]
    print(f"wrote {args.output} (audio noverlap {spec.audio_config.noverlap}) from {report.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
