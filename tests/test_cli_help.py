"""The command lines explain themselves: help with defaults, a refused overwrite, a warning without boxes."""
import json
import os

import pytest
import torch

from model import AudioConfig, ModelConfig, SSLModel, save_model
from model.evaluation import evaluate
from model.synth import generator as synth
from model.train import cli as train
from model.train.config import TrainConfig


def help_text(main, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    return text[text.index("options:"):]  # after the usage lines


def test_ssl_synth_help_explains_every_option_with_its_default(capsys):
    text = help_text(synth.main, capsys)
    for option, says in (("--clips", "(default: 100)"), ("--seed", "same clips"), ("--split", "unheard"),
                         ("--sources", "is3_annotations.json"), ("--size", "(default: 320x240)"),
                         ("--workers", "processes"), ("--overwrite", "refused")):
        section = " ".join(text[text.index(option + " "):].split("\n  --")[0].split())  # unwrapped
        assert says in section, option


def test_ssl_train_help_shows_the_defaults_and_workers_fit_the_machine(capsys):
    text = " ".join(help_text(train.main, capsys).split())  # unwrapped
    defaults = TrainConfig()
    for option in ("--epochs", "--lr", "--temperature", "--loss", "--batch-size", "--seed"):
        default = getattr(defaults, option[2:].replace("-", "_"))
        assert f"(default: {default})" in text[text.index(option + " "):].split(" --")[0], option
    workers = min(4, os.cpu_count() or 1)
    assert f"(default: {workers})" in text[text.index("--workers WORKERS"):]
    config = train.parse_args(["--data", "d", "--out", "o"])
    assert config.workers == workers


def test_ssl_synth_refuses_a_folder_with_clips_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "set"
    assert synth.main([str(out), "--clips", "2", "--size", "96x64"]) == 0
    with pytest.raises(SystemExit) as exited:
        synth.main([str(out), "--clips", "1", "--size", "96x64", "--seed", "3"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "already holds generated clips" in error and "pass --overwrite" in error
    assert len(list((out / "videos").glob("*.mp4"))) == 2  # untouched
    assert synth.main([str(out), "--clips", "1", "--size", "96x64", "--seed", "3", "--overwrite"]) == 0
    assert len(list((out / "videos").glob("*.mp4"))) == 1  # old and new not mixed
    assert len(json.loads((out / "annotations.json").read_text())) == 1


def test_ssl_eval_on_a_set_without_boxes_warns(tmp_path, capsys, one_thread):
    data = tmp_path / "set"
    synth.generate(data, clips=2, seed=5, size=(96, 64))
    annotations = json.loads((data / "annotations.json").read_text())
    (data / "annotations.json").write_text(json.dumps([{**a, "bbox": []} for a in annotations]))
    torch.manual_seed(0)
    checkpoint = tmp_path / "model.safetensors"
    save_model(checkpoint, SSLModel(ModelConfig(image_size=64), AudioConfig(seconds=0.5)))
    assert evaluate.main(["--data", str(data), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "report"),
                          "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "warning: no clip" in captured.err and "bounding box" in captured.err
    assert "cIoU -" in captured.out and "cIoU 0.00" not in captured.out
