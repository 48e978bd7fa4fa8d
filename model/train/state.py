"""Optimizer state as safetensors tensors plus JSON metadata, and back."""
from __future__ import annotations

import json

import torch


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Optimizer state -> tensors ``optimizer.<param id>.<name>`` and JSON metadata (param groups, scalars)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"optimizer_param_groups": json.dumps(state["param_groups"]),
                     "optimizer_scalars": json.dumps(scalars)}


def optimizer_state(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict:
    """The inverse of ``optimizer_tensors``: a dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in json.loads(metadata.get("optimizer_scalars", "{}")).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": json.loads(metadata["optimizer_param_groups"])}
