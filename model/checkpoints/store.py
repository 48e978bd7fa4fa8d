"""Checkpoints: one ``.safetensors`` file, the configs as JSON in its metadata, written atomically.

Several files that belong together (a training run's model, resume state and best model) are written
as one save by ``write_together``: each file to ``NAME.pending``, then a journal naming them is renamed
into place (the save counts from that moment), then each pending file is renamed over its name. A save
interrupted before the journal leaves the previous files untouched; one interrupted after it is
finished by ``finish_interrupted_save``, which every reader of such a folder calls first.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from model.preprocess.audio import AudioConfig
from model.common.config_checks import FieldError
from model.knowledge.config import SemanticConfig
from model.networks.object_guidance import ObjectGuidance
from model.networks.presence import PresenceConfig
from model.networks.sslmodel import ModelConfig, SSLModel

FORMAT = "ssl-desktop/1"
OWN_METADATA = ("format", "model_config", "audio_config", "presence", "object_guidance", "semantic")  # what save_model writes itself


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with a message a user can act on."""


PENDING = ".pending"  # suffix of a file written by an unfinished ``write_together``
JOURNAL = ".saving.json"  # names of the files of a committed ``write_together`` not yet all renamed
SAFETENSORS_TMP = ".tmp*"  # safetensors' own temporary (``.tmpXXXXXX``, renamed to the name it was given)


def _fsync(path) -> None:
    """Flush a file or a folder (the renames in it) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path), metadata=metadata)
    except SafetensorError as exc:  # a full disk, a file size limit
        raise CheckpointError(f"cannot write {path}: {exc}") from exc
    os.chmod(path, 0o644)  # mkstemp creates 0600; a checkpoint is an ordinary file
    _fsync(path)


def write_safetensors_atomic(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write to a temporary file beside ``path``, then rename: a crash never leaves half a file. Tensors
    holding NaN or infinity are refused (a CheckpointError): no writer saves a diverged model."""
    path = Path(path)
    check_finite(tensors, f"cannot write {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _write_file(Path(tmp), tensors, metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_together(folder, files: dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]]) -> None:
    """Write ``{name: (tensors, metadata)}`` into ``folder`` as one save: after a crash at any point
    (and ``finish_interrupted_save``) the folder holds either all the new files or all the old ones."""
    folder = Path(folder)
    for name, (tensors, _) in files.items():  # a model that diverged never replaces a good save
        check_finite(tensors, f"cannot write {folder / name}")
    folder.mkdir(parents=True, exist_ok=True)
    finish_interrupted_save(folder)
    try:
        for name, (tensors, metadata) in files.items():
            _write_file(folder / (name + PENDING), tensors, metadata)
    except BaseException:
        for name in files:
            (folder / (name + PENDING)).unlink(missing_ok=True)
        raise
    journal = folder / (JOURNAL + PENDING)
    journal.write_text(json.dumps(sorted(files)))
    _fsync(journal)
    os.replace(journal, folder / JOURNAL)  # the commit point
    _fsync(folder)
    finish_interrupted_save(folder)


def finish_interrupted_save(folder) -> None:
    """Complete a committed ``write_together`` (rename its pending files into place), or, where none was
    committed, delete the temporary files that an interrupted save left in ``folder`` (ours and safetensors')."""
    folder = Path(folder)
    journal = folder / JOURNAL
    if journal.is_file():
        for name in json.loads(journal.read_text()):
            if (folder / (name + PENDING)).is_file():
                os.replace(folder / (name + PENDING), folder / name)
        _fsync(folder)
        journal.unlink()
    for stale in [*folder.glob("*" + PENDING), *folder.glob("*.safetensors.*.tmp"), *folder.glob(SAFETENSORS_TMP)]:
        stale.unlink(missing_ok=True)


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


def _dataclass_from_json(cls, text: str | None, key: str, source):
    """The ``cls`` config stored as JSON under metadata ``key``; a CheckpointError naming the file and
    the field when it is not JSON, not an object, or a value its field cannot take."""
    try:
        values = json.loads(text if text is not None else "{}")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source}: {key} is not JSON ({exc})") from exc
    if not isinstance(values, dict):
        raise CheckpointError(f"{source}: {key} must be a JSON object, not {type(values).__name__}")
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in known})  # the class checks its values' ranges
    except FieldError as exc:
        raise CheckpointError(f"{source}: {key}.{exc.field} {exc.problem}") from exc
    except (TypeError, ValueError) as exc:  # e.g. a visual backbone this version does not know
        raise CheckpointError(f"{source}: {key}: {exc}") from exc


def check_finite(tensors: dict[str, torch.Tensor], source) -> None:
    """A CheckpointError naming ``source`` and the tensors when any float tensor holds NaN or infinity."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source}: NaN or infinite weights in {', '.join(bad[:5])}"
                              f"{f' and {len(bad) - 5} more tensors' if len(bad) > 5 else ''}")


def model_tensors(model: SSLModel, extra: dict[str, str] | None = None,
                  dtype=None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a model checkpoint (see ``save_model``)."""
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
        for k, v in model.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(asdict(model.config)),
        "audio_config": json.dumps(asdict(model.audio_config)),
        "presence": json.dumps(asdict(model.presence)),
        "object_guidance": json.dumps(asdict(model.guidance)),
        "semantic": json.dumps(asdict(model.semantic)),
        **(extra or {}),
    }
    return tensors, metadata


def save_model(path, model: SSLModel, extra: dict[str, str] | None = None, dtype=None) -> None:
    """Save weights (optionally cast, e.g. ``torch.float16`` for a bundled model) with both configs."""
    write_safetensors_atomic(path, *model_tensors(model, extra, dtype))


def resave_model(source, out, model: SSLModel) -> None:
    """Save ``model`` (a calibration of it changed) to ``out`` in the float type of the file it was loaded
    from, ``source``, keeping that file's other metadata (training config, metrics...)."""
    tensors, metadata = read_safetensors(source)
    dtype = next(v.dtype for v in tensors.values() if v.is_floating_point())  # a float16 file stays so
    extra = {k: v for k, v in metadata.items() if k not in OWN_METADATA}
    save_model(out, model.cpu(), extra=extra, dtype=dtype)


def model_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], source="checkpoint") -> SSLModel:
    """Rebuild the model from its configs and load the weights strictly (float32)."""
    if metadata.get("format") != FORMAT or "model_config" not in metadata:
        raise CheckpointError(
            f"{source} is a safetensors file but not an ssl-desktop model (no '{FORMAT}' metadata). "
            "Foreign checkpoints must be converted with `ssl-import`."
        )
    audio_config = _dataclass_from_json(AudioConfig, metadata.get("audio_config"), "audio_config", source)
    model_config = _dataclass_from_json(ModelConfig, metadata["model_config"], "model_config", source)
    presence = _dataclass_from_json(PresenceConfig, metadata.get("presence"), "presence", source)
    guidance = _dataclass_from_json(ObjectGuidance, metadata.get("object_guidance"), "object_guidance", source)
    semantic = _dataclass_from_json(SemanticConfig, metadata.get("semantic"), "semantic", source)
    model = SSLModel(model_config, audio_config)  # every value checked before anything is allocated
    model.presence, model.guidance, model.semantic = presence, guidance, semantic
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
    check_finite(tensors, source)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return model


def load_model(path, device="cpu") -> SSLModel:
    """Load an ssl-desktop checkpoint as an ``SSLModel`` in eval mode on ``device``."""
    tensors, metadata = read_safetensors(path)
    return model_from_tensors(tensors, metadata, source=str(path)).to(device).eval()
