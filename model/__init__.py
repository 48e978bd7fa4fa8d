"""SSL-Align model package: encoders, losses, data, training and evaluation. Never imports Qt."""
from .audio import AudioConfig, spectrogram
from .checkpoint import CheckpointError, load_model, save_model
from .heatmap import to_heatmap
from .sslmodel import ModelConfig, SSLModel
from .transforms import preprocess_image

__all__ = [
    "AudioConfig", "CheckpointError", "ModelConfig", "SSLModel",
    "load_model", "preprocess_image", "save_model", "spectrogram", "to_heatmap",
]
