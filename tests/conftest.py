import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import torch

from model import AudioConfig, ModelConfig, SSLModel, save_model


@pytest.fixture
def tiny_model():
    """A real SSLModel with random weights, fixed seed."""
    torch.manual_seed(0)
    return SSLModel(ModelConfig()).eval()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A saved model with random weights at 112 px and 0.5 s of sound: quick to evaluate on the CPU."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_model(path, SSLModel(ModelConfig(image_size=112), AudioConfig(seconds=0.5)))
    return path


@pytest.fixture
def one_thread():
    """Two OpenMP threads fighting other jobs for two busy cores run several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def private_settings(tmp_path_factory):
    """The window's QSettings (the devices remembered) live in a temporary folder, never the user's."""
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("settings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder
