import torch
import torch.nn.functional as F

from model import ModelConfig, SSLModel
from model.train.loss import ContrastiveLoss, LossConfig, multi_positive_nce, positive_mask


def aligned_batch(n=8, d=32, h=4, seed=0):
    """Unit audio vectors, and visual maps close to their clip's audio at every position."""
    g = torch.Generator().manual_seed(seed)
    audio = F.normalize(torch.randn(n, d, generator=g), dim=1)
    noise = 0.05 * torch.randn(n, d, h, h, generator=g)
    maps = F.normalize(audio[:, :, None, None] + noise, dim=1)
    return maps, audio


def test_loss_low_for_aligned_high_for_shuffled():
    maps, audio = aligned_batch()
    for kind in ("align", "ezvsl"):
        loss = ContrastiveLoss(LossConfig(kind=kind))
        aligned = loss(maps, audio).total
        shuffled = loss(maps, audio.roll(1, dims=0)).total
        assert aligned < 0.1 < 5 < shuffled, (kind, aligned, shuffled)


def test_positive_mask_of_hand_made_batch():
    # items: clip 10 (original, augmented view, neighbour clip 42), clip 11 (original, view),
    # and clip 42 itself as an anchor of its own group.
    groups = torch.tensor([0, 0, 0, 1, 1, 2])
    clip_ids = torch.tensor([10, 10, 42, 11, 11, 42])
    expected = torch.tensor([
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 1],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 1, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(positive_mask(groups, clip_ids), expected)


def test_multi_positive_nce_matches_hand_computation():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    positives = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.bool)
    lse = torch.logsumexp(logits, dim=1)
    by_hand = ((lse[0] - 2 + lse[0] - 1) / 2 + (lse[1] - 3) + (lse[2] - 1)) / 3
    torch.testing.assert_close(multi_positive_nce(logits, positives), by_hand)


def test_positives_must_agree_across_a_group():
    """With items 0 and 1 in one group, the loss is low when they look and sound alike."""
    maps, audio = aligned_batch(n=4)
    groups = torch.tensor([0, 0, 1, 2])
    loss = ContrastiveLoss(LossConfig(kind="align"))
    unrelated = loss(maps, audio, groups=groups).total  # item 1 is another clip
    maps[1], audio[1] = maps[0], audio[0]  # item 1 is a view of item 0
    alike = loss(maps, audio, groups=groups).total
    assert alike < 1.0 < 5 < unrelated


def test_gradients_reach_both_encoders():
    torch.manual_seed(0)
    model = SSLModel(ModelConfig()).train()
    maps, audio = model(torch.randn(4, 3, 112, 112), torch.randn(4, 1, 257, 64))
    out = ContrastiveLoss()(maps, audio, groups=torch.tensor([0, 0, 1, 1]))
    out.total.backward()
    for net in (model.imgnet, model.audnet):
        assert net.conv1.weight.grad is not None and net.conv1.weight.grad.abs().sum() > 0
    assert out.localization > 0 and out.alignment > 0
