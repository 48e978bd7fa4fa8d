"""Weight averaging ("model soup"): one checkpoint whose weights are a weighted mean of several.

Checkpoints of one training run, or fine-tuned from one checkpoint, usually lie in one basin of the loss:
the mean of their weights is a model of its own that often keeps the best of each (Wortsman et al., "Model
soups", ICML 2022; WiSE-FT, CVPR 2022). Along one run of ours an early epoch localizes and generalizes to
unheard classes better while a late one retrieves and says "not in view" better; their mean is one way
to have both without a second forward pass. Every checkpoint must have the same configs and tensors; the
presence threshold and object-guidance weight of the first are kept, so calibrate the result afresh::

    python -m model.evaluation.calibrate average A.safetensors B.safetensors [--weights 0.5 0.5] --out SOUP.safetensors
    python -m model.evaluation.calibrate presence --data VAL --checkpoint SOUP.safetensors
    python -m model.evaluation.calibrate object-guidance --data VAL --checkpoint SOUP.safetensors
"""
from __future__ import annotations

import json
import math

import torch

from model.checkpoints.store import CheckpointError, read_safetensors, write_safetensors_atomic


def average_tensors(states: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same keys and shapes, in the first one's dtypes (float
    tensors are averaged in float64; other tensors, e.g. batch-norm counters, are the first one's)."""
    first = states[0]
    for i, state in enumerate(states[1:], start=2):
        if state.keys() != first.keys():
            raise CheckpointError(f"checkpoint {i} has other tensors than the first: "
                                  f"{sorted(set(state) ^ set(first))[:5]}")
        for key, value in state.items():
            if value.shape != first[key].shape:
                raise CheckpointError(f"checkpoint {i}: {key} has shape {tuple(value.shape)}, "
                                      f"the first has {tuple(first[key].shape)}")
    out = {}
    for key, value in first.items():
        if value.is_floating_point():
            mean = sum(w * state[key].double() for w, state in zip(weights, states))
            out[key] = mean.to(value.dtype)
        else:
            out[key] = value.clone()
    return out


def average_checkpoints(paths: list[str], out: str, weights: list[float] | None = None) -> list[float]:
    """Write to ``out`` the weighted mean (``weights`` sum to 1; default: equal) of the model checkpoints
    ``paths``, which must share their model and audio configs; the first one's metadata is kept. Returns
    the weights used."""
    if len(paths) < 2:
        raise ValueError("averaging needs two checkpoints or more")
    weights = [1.0 / len(paths)] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise ValueError(f"{len(weights)} weights for {len(paths)} checkpoints")
    if any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise ValueError(f"weights must be >= 0 and sum to 1, not {weights}")
    read = [read_safetensors(p) for p in paths]
    for path, (_, metadata) in zip(paths[1:], read[1:]):
        for key in ("format", "model_config", "audio_config"):
            if metadata.get(key) != read[0][1].get(key):
                raise CheckpointError(f"{path} has another {key} than {paths[0]}: only checkpoints of one "
                                      "architecture and front end can be averaged")
    tensors = average_tensors([tensors for tensors, _ in read], weights)
    metadata = {**read[0][1], "averaged_from": json.dumps({"checkpoints": list(map(str, paths)), "weights": weights})}
    write_safetensors_atomic(out, tensors, metadata)
    return weights
