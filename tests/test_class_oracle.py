"""The class-oracle reference row: frozen maps and a class embedding trained with SSL-Align's loss."""
import json

import pytest
import torch
from support import REAL

from model.evaluation.class_oracle import main, oracle_maps, pointing, train_oracle
from model.synth.generator import generate

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(classes: int, per_class: int, seed: int):
    """Noise maps (N, 1280, 14, 14) with each item's class pattern (the same for every seed) at a random 4x4
    place, and those boxes."""
    patterns = torch.randn(classes, 1280, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    maps, labels, boxes = [], [], []
    for i in range(classes * per_class):
        c = i % classes
        m = torch.randn(1280, 14, 14, generator=g)
        y, x = torch.randint(0, 10, (2,), generator=g).tolist()
        m[:, y:y + 4, x:x + 4] += 3 * patterns[c][:, None, None]
        maps.append(m)
        labels.append(f"c{c}")
        boxes.append([[x / 14, y / 14, (x + 4) / 14, (y + 4) / 14]])
    return torch.stack(maps).half(), labels, boxes


def test_the_oracle_finds_a_planted_class_pattern_and_a_shuffled_one_does_not():
    classes = [f"c{c}" for c in range(16)]  # few repeats of a class in a batch of 16: they are negatives there
    train_maps, train_labels, _ = planted(16, 4, seed=0)
    test_maps, test_labels, test_boxes = planted(16, 1, seed=1)
    projection, table = train_oracle(train_maps, train_labels, classes, steps=150, seed=0)
    maps = oracle_maps(projection, table, test_maps, test_labels, classes)
    assert maps.shape == (16, 14, 14)
    assert pointing(test_boxes, maps) >= 90
    wrong = oracle_maps(projection, table, test_maps, test_labels[1:] + test_labels[:1], classes)  # other classes
    assert pointing(test_boxes, wrong) <= 50


def test_the_command_scores_real_content_clips(tmp_path, capsys):
    generate(tmp_path / "train", clips=3, seed=0, split="heard", size=(160, 120), **REAL)
    generate(tmp_path / "test", clips=2, seed=1, split="heard", size=(160, 120), **REAL)
    assert main([str(tmp_path / "train"), str(tmp_path / "test"), "--steps", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    row = result["class oracle"]
    assert result["n"] == 2 and row["n_boxes"] == 2 and 0.0 <= row["pointing"] <= 100.0
