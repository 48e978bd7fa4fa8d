"""Pickled weights (``.pth``) read safely: ``torch.load(weights_only=True)`` rebuilds tensors and plain
containers only; a file that carries code is refused (``PickleRefused``), and its code never runs."""
from __future__ import annotations

import pickle
import re

import torch


class PickleRefused(ValueError):
    """A pickle that carries code or Python objects other than tensors and plain data."""


def load_weights(path, allowed=()) -> object:
    """The tensors and plain data pickled in ``path`` (on the CPU); ``allowed``: the few classes beyond those
    that the file may name (``torch.serialization.safe_globals``), e.g. numpy scalars."""
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's text would suggest weights_only=False: never relayed
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if not found:  # not a pickle at all, or a damaged one
            raise ValueError(f"{path} is not a readable file of weights") from None
        raise PickleRefused(f"{path} contains code or Python objects that are not plain tensors (it references "
                            f"{found.group(1)}). It was refused and nothing in it was executed.") from None
