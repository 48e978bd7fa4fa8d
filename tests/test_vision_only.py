"""The vision-only reference row: ImageNet feature saliency scored like ssl-eval, no sound at all."""
import json

import pytest
import torch
from support import REAL

from model.evaluation.vision_only import main, score
from model.synth.generator import generate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_score_of_maps_that_are_the_boxes_is_perfect(tmp_path):
    boxes = [[[0.0, 0.0, 0.5, 1.0]], [[0.5, 0.0, 1.0, 1.0]], []]  # the third item has no box: not scored
    x = torch.linspace(1, 0, 14).expand(14, 14)  # high on the left
    maps = torch.stack([x, x.flip(1), x])
    result = score(tmp_path, ["a", "b", "c"], boxes, maps)
    assert result["n_boxes"] == 2 and result["ciou"] == pytest.approx(100.0)
    flipped = score(tmp_path, ["a", "b", "c"], boxes, maps.flip(2))
    assert flipped["ciou"] == pytest.approx(0.0)


def test_the_command_scores_real_content_clips_with_their_masks(tmp_path, capsys):
    generate(tmp_path, clips=3, seed=0, split="heard", size=(160, 120), **REAL)
    assert main([str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    row = result["vision only"]
    assert result["n"] == 3 and row["n_boxes"] == 3
    assert 0.0 <= row["ciou"] <= 100.0 and 0.0 <= row["ciou_mask"] <= 100.0 and row["auc"] > 0.0
