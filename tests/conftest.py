import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import torch

from model import ModelConfig, SSLModel


@pytest.fixture
def tiny_model():
    """A real SSLModel with random weights, fixed seed."""
    torch.manual_seed(0)
    return SSLModel(ModelConfig()).eval()
