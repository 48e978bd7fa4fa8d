import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import torch
from support import write_clip
from window_support import python_threads

from model import AudioConfig, ModelConfig, SSLModel, save_model
from model.synth.generator import generate


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


@pytest.fixture(scope="session")
def app_checkpoint(tmp_path_factory):
    """A random-weight model at the app's default size, saved as the app's checkpoint format."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "random.safetensors"
    save_model(path, SSLModel(ModelConfig()).eval())
    return path


@pytest.fixture(scope="session")
def train_clips(tmp_path_factory):
    """8 generated clips (160x120, seed 0): a training folder."""
    root = tmp_path_factory.mktemp("train_clips")
    generate(root, clips=8, seed=0, size=(160, 120))
    return root


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Two generated clips (H.264 + AAC), a clip without sound and a corrupt file."""
    root = tmp_path_factory.mktemp("clips")
    generate(root / "synth", clips=2, seed=5, split="all", size=(320, 240))
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return {
        "synth": sorted((root / "synth" / "videos").glob("*.mp4")),
        "silent": write_clip(root / "silent.mp4", seconds=1.0, sound=False),
        "broken": broken,
    }


@pytest.fixture
def make_window(qtbot, app_checkpoint):
    """Factory of main windows with the random model; each is closed and checked for leftovers after the test."""
    from PySide6.QtCore import QThread

    from ssl_desktop.main_window import MainWindow

    before = python_threads()
    windows = []

    def make(load_model=True):
        window = MainWindow("cpu")
        qtbot.addWidget(window)
        window.resize(1000, 700)
        window.show()
        if load_model:
            assert window.load_checkpoint(app_checkpoint)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not [t for t in window.findChildren(QThread) if t.isRunning()]
    qtbot.waitUntil(lambda: python_threads() <= before, timeout=5000)


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


@pytest.fixture(scope="session")
def pooled_assets(tmp_path_factory):
    """The checked-in real sample with three copies of every photo and recording and six of the background,
    under other names: every class then has a file in each pool (``model.synth.assets``). Returns the keyword
    arguments of ``ssl-synth`` for it (content, assets, manifest)."""
    import json
    import shutil
    from pathlib import Path

    sample = Path(__file__).resolve().parent / "data" / "real_sample"
    root = tmp_path_factory.mktemp("pooled_assets")
    shutil.copytree(sample, root, dirs_exist_ok=True)
    manifest = json.loads((sample / "manifest.json").read_text())

    def copies(ref, n):
        package, _, rel = ref.partition(":")
        base = next(p["base"] for p in manifest["packages"] if p["name"] == package)
        source = root / package / base / rel
        names = [ref]
        for k in range(1, n):
            shutil.copy(source, source.with_name(f"{source.stem}_{k}{source.suffix}"))
            names.append(f"{package}:{Path(rel).with_name(f'{source.stem}_{k}{source.suffix}').as_posix()}")
        return names

    for cls in manifest["classes"]:
        cls["images"] = [name for ref in cls["images"] for name in copies(ref, 3)]
        cls["sounds"] = [name for ref in cls["sounds"] for name in copies(ref, 3)]
    manifest["backgrounds"] = [{**b, "file": name} for b in manifest["backgrounds"] for name in copies(b["file"], 6)]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return {"content": "real", "assets": str(root), "manifest": str(root / "manifest.json")}
