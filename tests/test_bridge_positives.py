"""Bridge-mined positives (``--positives bridge``): weighted positive pairs in the loss, partners from what YAMNet
hears and ImageNet sees, drawn by their weight, and a real training run with them."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from model.data.datasets import VideoFolderDataset
from model.synth.generator import generate
from model.train.bridge_positives import BridgePositives, ClipKnowledge, agreement, read_clips
from model.train.cli import main
from model.train.loss import ContrastiveLoss, positive_mask, positive_weights
from model.train.positives import ViewBatchSampler
from model.preprocess.image import preprocess_image

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLE = Path(__file__).resolve().parent / "data" / "real_sample"
FAST = ["--image-size", "64", "--audio-seconds", "3.0", "--device", "cpu", "--workers", "0", "--batch-size", "4"]


def test_positive_weights_of_a_hand_made_batch():
    groups = torch.tensor([0, 0, 1, 1, 0])  # anchor 0, its view, anchor 1, its view, anchor 0's bridge partner
    clips = torch.tensor([0, 0, 1, 1, 1])  # the partner is clip 1, also anchor 1 here
    weights = torch.tensor([1, 1, 1, 1, 0.3])
    w = positive_weights(groups, clips, weights)
    assert w[0, 1] == 1 and w[0, 4] == pytest.approx(0.3) and w[4, 1] == pytest.approx(0.3)
    assert w[4, 2] == 1 and w[2, 4] == 1  # the same clip seen twice
    assert w[0, 2] == 0  # another group, another clip
    assert torch.equal(positive_weights(groups, clips, torch.ones(5)), positive_mask(groups, clips).float())


def test_a_partner_of_weight_zero_is_a_plain_negative_and_weight_one_a_plain_positive():
    torch.manual_seed(0)
    maps = F.normalize(torch.randn(5, 8, 3, 3), dim=1)
    audio = F.normalize(torch.randn(5, 8), dim=1)
    groups, clips = torch.tensor([0, 0, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 4])
    loss = ContrastiveLoss()
    zero = loss(maps, audio, groups, clips, weights=torch.tensor([1, 1, 1, 1, 0.0])).total
    apart = loss(maps, audio, torch.tensor([0, 0, 1, 1, 2]), clips).total
    assert torch.allclose(zero, apart)
    one = loss(maps, audio, groups, clips, weights=torch.ones(5)).total
    assert torch.allclose(one, loss(maps, audio, groups, clips).total)
    half = loss(maps, audio, groups, clips, weights=torch.tensor([1, 1, 1, 1, 0.5])).total
    assert not torch.allclose(half, one) and not torch.allclose(half, zero)


def hand_made_knowledge() -> ClipKnowledge:
    """Four clips over three ImageNet classes: 0 and 1 sound and look like class 0; 2 sounds like class 0 but
    shows class 1 (not understood); 3 sounds and looks like class 2, alone."""
    evidence, seen = torch.zeros(4, 1000), torch.zeros(4, 1000)
    evidence[[0, 1, 2], 0] = torch.tensor([0.9, 0.6, 0.9])
    evidence[3, 2] = 0.8
    seen[[0, 1, 2, 3], [0, 0, 1, 2]] = torch.tensor([0.8, 0.5, 0.9, 0.7])
    return ClipKnowledge(evidence, seen)


def test_partners_are_clips_whose_sounds_and_pictures_all_agree():
    knowledge = hand_made_knowledge()
    w = agreement(knowledge, torch.arange(4))
    assert w[0, 1] == pytest.approx(min(0.9 * 0.5, 0.6 * 0.8, 0.9 * 0.8, 0.6 * 0.5))
    assert w[0, 2] == 0 and w[1, 2] == 0  # clip 2's own sound and picture disagree
    assert torch.equal(w, w.T) and torch.all(w.diag() == 0)
    bridge = BridgePositives(knowledge, k=2)
    assert bridge.partners[0].tolist() == [1, -1] and bridge.partners[1].tolist() == [0, -1]
    assert bridge.partners[2].tolist() == [-1, -1] and bridge.partners[3].tolist() == [-1, -1]
    drawn = bridge.draw([0, 2, 3], [0.5, 0.5, 0.5])
    assert drawn[0] == (1, pytest.approx(0.3)) and drawn[1:] == [(2, 1.0), (3, 1.0)]  # no partner: itself


def test_draws_follow_the_weights():
    knowledge = ClipKnowledge(torch.zeros(4, 1000), torch.zeros(4, 1000))
    bridge = BridgePositives(knowledge, k=3)
    bridge.partners[0] = torch.tensor([1, 2, 3])
    bridge.weights[0] = torch.tensor([0.6, 0.3, 0.1])
    picked = [j for j, _ in bridge.draw([0] * 10, [(i + 0.5) / 10 for i in range(10)])]
    assert picked == [1] * 6 + [2] * 3 + [3]


def test_batches_request_each_anchors_partner_with_its_weight():
    bridge = BridgePositives(hand_made_knowledge(), k=2)
    sampler = ViewBatchSampler(DistributedSampler(range(4), 1, 0, shuffle=False), 4, None, k=1, seed=0, rank=0,
                               bridge=bridge)
    requests = next(iter(sampler))
    assert requests[:4] == [(i, i, "anchor", 1.0) for i in range(4)]
    assert [(j, i, role) for j, i, role, _ in requests[4:]] == [(1, 0, "bridge"), (0, 1, "bridge"), (2, 2, "bridge"),
                                                                (3, 3, "bridge")]
    assert [w for *_, w in requests[4:]] == pytest.approx([0.3, 0.3, 1.0, 1.0])


@pytest.fixture(scope="module")
def real_clips(tmp_path_factory):
    """Twelve real-content clips of the checked-in sample (dog, cow, rooster, frog), 224 px."""
    root = tmp_path_factory.mktemp("real")
    generate(root, clips=12, seed=0, split="all", size=(224, 224), content="real", assets=str(SAMPLE),
             manifest=str(SAMPLE / "manifest.json"))
    return root


def test_partners_mined_from_real_clips_are_mostly_of_one_class(real_clips):
    dataset = VideoFolderDataset(real_clips, "eval", image_transform=preprocess_image)
    labels = [dataset.annotations[s.file].label for s in dataset.sources]
    knowledge = read_clips(dataset)
    assert knowledge.evidence.shape == knowledge.seen.shape == (12, 1000)
    assert torch.allclose(knowledge.seen.sum(dim=1), torch.ones(12), atol=1e-4)  # ImageNet's probabilities
    bridge = BridgePositives(knowledge, k=3)
    pairs = [(i, j) for i in range(12) for j in bridge.partners[i].tolist() if j >= 0]
    assert len(pairs) >= 2
    same = sum(labels[i] == labels[j] for i, j in pairs) / len(pairs)
    pairs_of_one_class = sum(a == b for i, a in enumerate(labels) for b in labels[i + 1:]) / 66
    assert same > 0.5 > pairs_of_one_class  # far above what pairs drawn at random would give


def test_training_with_bridge_positives(real_clips, tmp_path):
    run = tmp_path / "run"
    assert main(["--data", str(real_clips), "--out", str(run), "--epochs", "1", "--positives", "bridge",
                 *FAST]) == 0
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert 0 < start["bridge_partnered"] < 1 and start["config"]["positives"] == "bridge"
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 3 and all(s["items"] == 4 * 3 for s in steps)  # original, augmented view, partner
    assert not any(s["neighbours"] for s in steps)  # bridge only: no nearest neighbours
