"""A training run's folder: ``last.safetensors`` (the model), ``last.state.safetensors`` (everything to resume),
``best.safetensors`` and ``log.jsonl``. Saves write last, state and best as one (``write_together``), so that
a run killed at any moment resumes from a complete save."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from model.checkpoints.store import (
    CheckpointError,
    finish_interrupted_save,
    model_tensors,
    read_safetensors,
    write_together,
)
from model.train.neighbours import FeatureBank
from model.train.state import optimizer_state, optimizer_tensors

LAST = "last.safetensors"
BEST = "best.safetensors"
STATE = "last.state.safetensors"
LOG = "log.jsonl"
RUN_FILES = (LAST, STATE, BEST, LOG)  # what makes a folder a run: --resume continues it, --overwrite replaces it
STATE_FORMAT = "ssl-desktop-train-state/1"


def recover(out: Path) -> None:
    """The newest complete save in ``out`` (an interrupted one finished or its temporaries deleted)."""
    if out.is_dir():
        finish_interrupted_save(out)


def clear(out: Path, keep: str | None) -> None:
    """Delete the run in ``out``; ``keep`` (an --init file among the run's files) stays: the new run's saves
    replace it."""
    kept = Path(keep).resolve() if keep else None
    for name in RUN_FILES:
        if (out / name).resolve() != kept:
            (out / name).unlink(missing_ok=True)


def last_model(out: Path) -> Path:
    """The model a resumed run continues, or a CheckpointError when its state is not beside it."""
    if not (out / LAST).is_file() or not (out / STATE).is_file():
        raise CheckpointError(f"nothing to resume in {out}: {LAST} and {STATE} are needed")
    return out / LAST


def run_metadata(config: dict, step: int, epoch: int, metrics: dict) -> dict[str, str]:
    """The metadata of every file of a save: the run's config, where it is, the metrics of the moment."""
    return {"train_config": json.dumps(config), "step": str(step), "epoch": str(epoch),
            "metrics": json.dumps(metrics)}


def save(out: Path, model, optimizer: torch.optim.Optimizer, metadata: dict[str, str], batch_in_epoch: int,
         best_so_far: dict | None, bank: FeatureBank | None, device: torch.device, best: bool) -> list[Path]:
    """``last`` (the model), ``state`` (optimizer, random generators, the neighbour ``bank`` when given, where
    the run is) and, when ``best``, ``best``, as one save; the paths written."""
    model_file = model_tensors(model, extra=metadata)
    tensors, state_metadata = optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    if bank is not None:
        tensors["bank.features"] = bank.features.half()  # (N, 2D)
        tensors["bank.filled"] = bank.filled  # (N,)
    state_metadata.update(metadata, format=STATE_FORMAT, batch_in_epoch=str(batch_in_epoch),
                          best=json.dumps(best_so_far))
    files = {LAST: model_file, STATE: (tensors, state_metadata), **({BEST: model_file} if best else {})}
    write_together(out, files)
    return [out / name for name in files]


def _whole_number(metadata: dict[str, str], key: str, path) -> int:
    """Metadata ``key`` of the resume state ``path`` as an int >= 0, or a CheckpointError naming both."""
    value = metadata.get(key)
    if value is None or not value.isdigit():
        raise CheckpointError(f"{path}: {key} must be a whole number >= 0, not {value!r}")
    return int(value)


@dataclass
class RunState:
    """Where a saved run is (``step``, ``epoch``, ``batch_in_epoch``, ``best``) and the tensors of its state."""

    step: int
    epoch: int
    batch_in_epoch: int
    best: dict | None
    rng: torch.Tensor  # torch's random generator
    tensors: dict[str, torch.Tensor]

    def restore_rng(self, device: torch.device) -> None:
        torch.set_rng_state(self.rng)
        if device.type == "cuda" and "rng.cuda" in self.tensors:
            torch.cuda.set_rng_state(self.tensors["rng.cuda"], device)

    def restore_bank(self, bank: FeatureBank) -> None:
        """The saved neighbour features, when the bank has as many clips as the saved one."""
        if "bank.features" not in self.tensors:
            return
        filled = self.tensors["bank.filled"].bool()  # (N,)
        if len(filled) == len(bank.filled):
            bank.update(filled.nonzero()[:, 0], self.tensors["bank.features"][filled].float())


def load_state(out: Path, optimizer: torch.optim.Optimizer) -> RunState:
    """The saved state of the run in ``out``, its optimizer state loaded into ``optimizer``; a CheckpointError
    when last and state are of different saves or the state is not one this run can continue."""
    path = out / STATE
    tensors, metadata = read_safetensors(path)
    _, model_metadata = read_safetensors(out / LAST)
    if model_metadata.get("step") != metadata.get("step"):
        raise CheckpointError(f"{out}: {LAST} (step {model_metadata.get('step')}) and {STATE} "
                              f"(step {metadata.get('step')}) do not match; cannot resume")
    step, epoch, batch_in_epoch = (_whole_number(metadata, key, path) for key in ("step", "epoch", "batch_in_epoch"))
    try:
        best = json.loads(metadata["best"])
        optimizer.load_state_dict(optimizer_state(tensors, metadata))
        rng = tensors["rng.torch"]
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # a state this run cannot continue
        raise CheckpointError(f"{path}: cannot resume from it ({type(exc).__name__}: {exc})") from exc
    return RunState(step, epoch, batch_in_epoch, best, rng, tensors)
