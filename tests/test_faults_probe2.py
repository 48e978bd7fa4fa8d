"""The second fault probe: no NaN saved, no user file deleted, no failed write reported as success, and a
one-line message instead of a traceback (docs/RELIABILITY.md lists each case with its test here)."""
import json
import os

import pytest

from model.synth.generator import generate
from model.train.cli import main as train

FAST = ["--image-size", "112", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0", "--batch-size", "4"]
RUN_NAMES = {"last.safetensors", "last.state.safetensors", "best.safetensors", "log.jsonl"}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    generate(root, clips=8, seed=0, size=(160, 120))
    return root


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A training folder of nothing but a broken clip."""
    root = tmp_path_factory.mktemp("broken")
    (root / "videos").mkdir()
    (root / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def train_args(data, out, *more):
    return ["--data", str(data), "--out", str(out), "--epochs", "1", "--loss", "ezvsl", *FAST, "--max-clips", "4",
            *more]


def test_overwrite_reads_the_init_first_and_never_deletes_it(clips, broken, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(train_args(clips, run)) == 0
    before = contents(run)
    init = ["--init", str(run / "best.safetensors"), "--overwrite"]
    assert train(train_args(broken, run, *init)) == 2  # fails after the init is read: nothing deleted
    assert "no readable clips" in capsys.readouterr().err
    assert contents(run) == before
    assert train(train_args(clips, run, *init)) == 0  # the run's own best fine-tuned into its folder
    assert {p.name for p in run.iterdir()} == RUN_NAMES
    log = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert log.count("start") == 1
