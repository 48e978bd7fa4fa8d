"""SSL-Align model package: encoders, losses, data, training and evaluation. Never imports Qt."""
from .preprocess.audio import AudioConfig, spectrogram
from .checkpoints.store import CheckpointError, load_model, save_model
from .inference.heatmap import to_heatmap
from .networks.sslmodel import ModelConfig, SSLModel
from .preprocess.image import preprocess_image

__all__ = [
    "AudioConfig", "CheckpointError", "ModelConfig", "SSLModel",
    "load_model", "preprocess_image", "save_model", "spectrogram", "to_heatmap",
]
