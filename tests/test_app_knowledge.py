"""The app with the bundled model's semantic side: a person talking, a sound the alignment model never heard,
is "in view" and said to be speech; a silent microphone is "silence"."""
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from window_support import wait_for_heatmaps

from model.checkpoints.store import load_model, resave_model
from model.data.video_writer import ClipWriter
from model.evaluation.quad import grid, load_spec, photo_cell
from model.knowledge.yamnet import to_16k
from model.knowledge.config import SemanticConfig
from model.networks.presence import NOT_IN_VIEW, SILENCE
from ssl_desktop.app import BUNDLED_CHECKPOINT

ASSETS = Path(__file__).resolve().parent.parent / "data" / "assets"
STAMPS = ASSETS / "tuxpaint-stamps-default" / "usr/share/tuxpaint/stamps"
RATE = 16000


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The bundled model with its semantic side on at a fixed weight and threshold (the test does not
    depend on the values chosen on validation), and with it off (the alignment model alone)."""
    model = load_model(BUNDLED_CHECKPOINT)
    folder = tmp_path_factory.mktemp("knowing")
    for name, semantic in (("knowing", SemanticConfig(0.9, 0.25)), ("alignment", SemanticConfig())):
        model.semantic = semantic
        resave_model(BUNDLED_CHECKPOINT, folder / f"{name}.safetensors", model)
    return {name: folder / f"{name}.safetensors" for name in ("knowing", "alignment")}


def speech(seconds: float) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    path = Path(subprocess.run(["mktemp", "--suffix=.wav"], capture_output=True, text=True, check=True).stdout.strip())
    try:
        subprocess.run(["espeak-ng", "-w", str(path), "Hello! I am talking to you, can you see where I am? "
                        "This is my voice, and I am right here in the picture."], check=True)
        with wave.open(str(path)) as f:
            x = np.frombuffer(f.readframes(f.getnframes()), np.int16) / 32768.0
            x = to_16k(x, f.getframerate())
    finally:
        path.unlink()
    return np.tile(x, int(np.ceil(seconds * RATE / len(x))))[:int(seconds * RATE)].astype(np.float32)


def person_clip(path: Path, sound: np.ndarray, seconds: float) -> Path:
    """A still grid of four real photos, a person in the top right, with ``sound`` as its track."""
    person = load_spec().path(ASSETS, "python-matplotlib-data:grace_hopper.jpg")
    if not person.is_file():
        pytest.skip(f"{person} is missing (make assets)")
    cells = [photo_cell(STAMPS / "animals/mammals/wildboar.png"), photo_cell(person),
             photo_cell(STAMPS / "hobbies/music/string/guitar2.png"), photo_cell(STAMPS / "animals/birds/pigeon.png")]
    picture = grid(cells)
    writer = ClipWriter(path, 10, (picture.shape[1], picture.shape[0]), sound, RATE)
    for _ in range(int(seconds * 10)):
        writer.write(picture)
    writer.close()
    return path


@pytest.mark.skipif(not STAMPS.is_dir(), reason="data/assets is missing (make assets)")
def test_a_person_talking_is_in_view_and_heard_as_speech_and_silence_is_silence(qtbot, make_window,
                                                                                checkpoints, tmp_path):
    talking = person_clip(tmp_path / "talking.mp4", speech(6.0), 6.0)
    quiet = person_clip(tmp_path / "quiet.mp4", np.zeros(6 * RATE, np.float32), 6.0)
    window = make_window(load_model=False)
    assert window.load_checkpoint(checkpoints["alignment"])
    assert not window.menus.map_menu.isEnabled()
    view = window.live_view
    window.start_source(str(talking))
    wait_for_heatmaps(qtbot, view)
    qtbot.waitUntil(lambda: view.presence.startswith(NOT_IN_VIEW), timeout=30000)  # it never heard speech

    assert window.load_checkpoint(checkpoints["knowing"])
    assert "knowledge 0.9" in window.model_label.text() and window.menus.map_menu.isEnabled()
    qtbot.waitUntil(lambda: "hearing: speech" in view.presence_text.toPlainText(), timeout=30000)
    qtbot.waitUntil(lambda: not view.faded, timeout=30000)
    wait_for_heatmaps(qtbot, view)
    heat = view.heatmap
    h, w = heat.shape
    assert heat[:h // 2, w // 2:].max() == heat.max()  # hottest on the person's quadrant

    window.start_source(str(quiet))
    qtbot.waitUntil(lambda: view.presence.startswith(SILENCE), timeout=30000)
    assert view.faded
