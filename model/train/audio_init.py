"""The audio encoder's start: the pretrained sound-effects weights (installed or a user's file) and whether
they are frozen."""
from __future__ import annotations

from model.checkpoint import CheckpointError, check_finite
from model.sslmodel import SSLModel

AISFX = "aisfx"  # --audio-init value: the installed weights of the aisfx package


def load_audio_init(model: SSLModel, path) -> None:
    """Load the sound-effects net's published weights (``path`` "aisfx": the installed file) into an
    ``audio_backbone="aisfx"`` model."""
    if model.config.audio_backbone != "aisfx":
        raise ValueError("--audio-init needs the pretrained audio backbone (--audio-backbone aisfx)")
    try:
        model.audnet.load_pretrained(None if path == AISFX else path)
    except (FileNotFoundError, ValueError) as exc:
        raise CheckpointError(str(exc)) from exc
    check_finite(model.audnet.state_dict(), path)


def prepare_audio_training(model: SSLModel, freeze: str) -> None:
    """``--freeze-audio all``: only the projection of the sound-effects encoder trains."""
    if freeze == "none":
        return
    if model.config.audio_backbone != "aisfx":
        raise ValueError("--freeze-audio needs the pretrained audio backbone (--audio-backbone aisfx)")
    model.audnet.freeze(freeze)
