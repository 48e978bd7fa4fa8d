"""``ssl-train --silence-negatives``: quiet noise among every image's candidates, with no image to match."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.preprocess.audio import AudioConfig
from model.networks.presence import level_dbfs
from model.synth.generator import generate
from model.train.cli import main, parse_args
from model.train.loss import ContrastiveLoss, symmetric_nce
from model.train.silence import QUIET_DBFS, quiet_noise, quiet_spectrograms
from model.checkpoints.store import read_safetensors

pytestmark = pytest.mark.usefixtures("one_thread")


def aligned_batch(n=6, d=16, h=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    audio = F.normalize(torch.randn(n, d, generator=g), dim=1)
    maps = F.normalize(audio[:, :, None, None] + 0.05 * torch.randn(n, d, h, h, generator=g), dim=1)
    return maps, audio


def test_quiet_noise_is_quiet_and_every_window_has_its_own_level():
    windows = quiet_noise(40, 16000, np.random.default_rng(0))
    levels = np.array([level_dbfs(w) for w in windows])
    assert windows.shape == (40, 16000) and windows.dtype == np.float32
    assert (levels >= QUIET_DBFS[0] - 1e-3).all() and (levels <= QUIET_DBFS[1] + 1e-3).all()
    assert levels.std() > 3  # spread over the range, not one level
    specs = quiet_spectrograms(3, AudioConfig(seconds=0.5), np.random.default_rng(1))
    assert specs.shape[:2] == (3, 1) and torch.isfinite(specs).all()


def test_negatives_join_only_the_image_to_audio_contrast():
    maps, audio = aligned_batch()
    loss = ContrastiveLoss()
    plain = loss(maps, audio).total
    assert torch.equal(loss(maps, audio, negative_audio=torch.zeros(0, 16)).total, plain)
    unlike = F.normalize(-audio.sum(0, keepdim=True), dim=1)  # far from every image
    like = audio[:2].clone()  # as close to two images as their own sounds are
    assert loss(maps, audio, negative_audio=unlike).total == pytest.approx(plain.item(), abs=1e-3)
    assert loss(maps, audio, negative_audio=like).total > plain + 0.1
    similarity = torch.randn(4, 4)
    positives = torch.eye(4, dtype=torch.bool)
    by_hand = 0.5 * (-torch.log_softmax(similarity / 0.5, 1).diag().mean()
                     - torch.log_softmax(torch.cat([similarity.T, torch.ones(4, 1)], 1) / 0.5, 1).diag().mean())
    assert symmetric_nce(similarity, positives, 0.5, torch.ones(1, 4)) == pytest.approx(by_hand.item(), abs=1e-6)


def test_gradient_pushes_a_matching_silence_away_from_the_images():
    maps, audio = aligned_batch()
    silence = audio[:1].clone().requires_grad_(True)
    ContrastiveLoss()(maps, audio, negative_audio=silence).total.backward()
    step = -silence.grad  # gradient descent's direction
    assert (step * audio[0]).sum() < 0  # away from the image it matched


def test_training_with_silence_negatives_runs_and_records_them(tmp_path):
    root = tmp_path / "clips"
    generate(root, clips=6, seed=0, size=(160, 120))
    run = tmp_path / "run"
    assert main(["--data", str(root), "--out", str(run), "--epochs", "1", "--no-augment", "--no-neighbours",
                 "--silence-negatives", "3", "--image-size", "64", "--audio-seconds", "0.5", "--device", "cpu",
                 "--workers", "0", "--batch-size", "3"]) == 0
    _, metadata = read_safetensors(run / "last.safetensors")
    assert json.loads(metadata["train_config"])["silence_negatives"] == 3
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(entry["loss"]) for entry in log if "loss" in entry)
    assert parse_args(["--data", "d", "--out", "o"]).silence_negatives == 0
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--out", "o", "--silence-negatives", "-1"])
