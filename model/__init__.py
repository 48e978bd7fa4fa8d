"""SSL-Align model package; never imports Qt, and has no import circle. Its layers, bottom up:

common (config checks, atomic files, safe pickles, the device) -> preprocess (spectrograms, images) ->
networks (the model and the calibrations it carries) -> checkpoints (its files) -> inference (the fast path,
heatmaps) -> localize.py (the per-frame path, ``Localizer``) -> gallery -> evaluation (ssl-eval, calibration) ->
train; beside them data (clips and annotations), knowledge (pretrained classifiers) and synth (generated sets).
"""
from .preprocess.audio import AudioConfig, spectrogram
from .checkpoints.store import CheckpointError, load_model, save_model
from .inference.heatmap import to_heatmap
from .networks.sslmodel import ModelConfig, SSLModel
from .preprocess.image import preprocess_image

__all__ = [
    "AudioConfig", "CheckpointError", "ModelConfig", "SSLModel",
    "load_model", "preprocess_image", "save_model", "spectrogram", "to_heatmap",
]
