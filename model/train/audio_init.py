"""The audio encoder's start: the pretrained weights (the installed aisfx or YAMNet ones, or a user's aisfx file)
and how much of it is frozen."""
from __future__ import annotations

from model.checkpoints.store import CheckpointError, check_finite
from model.networks.sslmodel import SSLModel

AISFX = "aisfx"  # --audio-init value: the installed weights of the aisfx package
YAMNET = "yamnet"  # --audio-init value: the installed YAMNet (a new yamnet model starts from it anyway)
PRETRAINED = (AISFX, YAMNET)  # the audio backbones that have pretrained weights
# --freeze-audio: nothing frozen, all but the last block (yamnet), all but the projection
FREEZE_LEVELS = ("none", "last", "all")


def load_audio_init(model: SSLModel, path) -> None:
    """Load a pretrained audio encoder's weights into a model with that backbone: ``path`` "aisfx" or "yamnet"
    (the installed weights) or an aisfx weights file."""
    backbone = model.config.audio_backbone
    if backbone not in PRETRAINED:
        raise ValueError("--audio-init needs the pretrained audio backbone (--audio-backbone aisfx|yamnet)")
    if path in PRETRAINED and path != backbone:
        raise ValueError(f"--audio-init {path}: the audio backbone is {backbone}")
    try:
        if backbone == YAMNET:
            if path != YAMNET:
                raise ValueError(f"--audio-init {path}: the yamnet backbone takes the installed YAMNet only ('yamnet')")
            model.audnet.load_pretrained()
        else:
            model.audnet.load_pretrained(None if path == AISFX else path)
    except (FileNotFoundError, ValueError) as exc:
        raise CheckpointError(str(exc)) from exc
    check_finite(model.audnet.state_dict(), path)


def prepare_audio_training(model: SSLModel, freeze: str) -> None:
    """``--freeze-audio all``: only the pretrained encoder's projection trains; ``last`` (yamnet): its last block
    too."""
    if freeze == "none":
        return
    if model.config.audio_backbone not in PRETRAINED:
        raise ValueError("--freeze-audio needs the pretrained audio backbone (--audio-backbone aisfx|yamnet)")
    model.audnet.freeze(freeze)
