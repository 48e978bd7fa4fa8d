"""Checkpoints: one ``.safetensors`` file, the configs as JSON in its metadata, written atomically."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .audio import AudioConfig
from .presence import PresenceConfig
from .sslmodel import ModelConfig, SSLModel

FORMAT = "ssl-desktop/1"
OWN_METADATA = ("format", "model_config", "audio_config", "presence")  # what save_model writes itself


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with a message a user can act on."""


def write_safetensors_atomic(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_safetensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, or a CheckpointError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}
            metadata = f.metadata() or {}
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint ({exc}). "
            "Published .pth/.pth.tar checkpoints must first be converted with `ssl-import`."
        ) from exc
    return tensors, metadata


def _dataclass_from_json(cls, text: str):
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in json.loads(text).items() if k in known})


def save_model(path, model: SSLModel, extra: dict[str, str] | None = None, dtype=None) -> None:
    """Save weights (optionally cast, e.g. ``torch.float16`` for a bundled model) with both configs."""
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
        for k, v in model.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(asdict(model.config)),
        "audio_config": json.dumps(asdict(model.audio_config)),
        "presence": json.dumps(asdict(model.presence)),
        **(extra or {}),
    }
    write_safetensors_atomic(path, tensors, metadata)


def model_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], source="checkpoint") -> SSLModel:
    """Rebuild the model from its configs and load the weights strictly (float32)."""
    if metadata.get("format") != FORMAT or "model_config" not in metadata:
        raise CheckpointError(
            f"{source} is a safetensors file but not an ssl-desktop model (no '{FORMAT}' metadata). "
            "Foreign checkpoints must be converted with `ssl-import`."
        )
    try:
        model = SSLModel(
            _dataclass_from_json(ModelConfig, metadata["model_config"]),
            _dataclass_from_json(AudioConfig, metadata.get("audio_config", "{}")),
        )
    except ValueError as exc:  # e.g. a visual backbone this version does not know
        raise CheckpointError(f"{source}: {exc}") from exc
    model.presence = _dataclass_from_json(PresenceConfig, metadata.get("presence", "{}"))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not match the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{source}: tensor {key} has shape {tuple(value.shape)}, the model needs {tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return model


def load_model(path, device="cpu") -> SSLModel:
    """Load an ssl-desktop checkpoint as an ``SSLModel`` in eval mode on ``device``."""
    tensors, metadata = read_safetensors(path)
    return model_from_tensors(tensors, metadata, source=str(path)).to(device).eval()
