"""Bridge-mined positives: clips that pretrained knowledge says sound and look like the same kind of thing.

For each training clip, YAMNet hears its sound window and the bridge turns AudioSet's probabilities into
evidence for each of ImageNet's classes (``model.knowledge.bridge.visual_evidence``), by its specific links
only (Bark -> dogs, not Animal -> every animal: a broad label would pair a rooster's crow with a cow's
picture); the published ImageNet EfficientNet-Lite0 classifies its frame (``SceneReader.classify``: the
probabilities of the pooled features). People are left out: the face detector finds faces in animals' pictures
often enough to pair every sound it hears as human with them. The sound of clip i agrees with the picture of
clip j by

    a[i, j] = sum_c evidence_i[c] * seen_j[c]                                   in [0, 1]

and i and j are positives for each other, weighing min(a[i, j], a[j, i], a[i, i], a[j, j]) (each one's sound
is made by what both pictures show), when that reaches ``min_agreement``. The clips' own agreements keep out
the clips the pretrained networks do not understand: on 128 real-content clips of 50 classes (train pool), a
clip's best partner was of its class for 6 % of the clips with the two cross terms alone, 13 % (of the 30 clips
with a partner) with all four; chance is 1.3 %. Each clip keeps its ``k`` best partners; a batch draws one per
anchor with a probability proportional to the weight, and the loss weighs the pair by it
(``model.train.loss.positive_weights``). The paper's nearest neighbours are found by the model's own features;
these by what YAMNet and ImageNet know, across clips and classes the model has never matched.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from model.knowledge.bridge import IMAGENET_CLASSES, Bridge, load_bridge, visual_evidence
from model.knowledge.scene import SceneReader
from model.knowledge.yamnet import sound_scores

MIN_AGREEMENT = 0.1  # the weight from which two clips count as positives
ROW_CHUNK = 1024  # clips whose agreements are computed at once: (ROW_CHUNK, N) floats, twice


@dataclass
class ClipKnowledge:
    """What pretrained knowledge makes of each clip: ``evidence`` (N, 1000) per ImageNet class that its sound is
    made by such a thing; ``seen`` (N, 1000) the probability that its picture shows one."""

    evidence: torch.Tensor
    seen: torch.Tensor


def specific_bridge() -> Bridge:
    """The bridge without its broad links (those that weigh less than a specific one)."""
    bridge = load_bridge()
    links = bridge.links
    return Bridge(torch.where(links >= links.max(), links, torch.zeros_like(links)), bridge.person_cues, bridge.animals)


def read_clips(dataset, device="cpu") -> ClipKnowledge:
    """Items with ``frame`` (RGB uint8) and ``waveform`` (16 kHz mono), or ``skipped`` -> their ``ClipKnowledge``."""
    bridge = specific_bridge()
    reader = SceneReader(device)
    evidence, seen = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        if "skipped" in item:  # unreadable: knowledge of nothing, no partners
            evidence.append(torch.zeros(IMAGENET_CLASSES))
            seen.append(torch.zeros(IMAGENET_CLASSES))
            continue
        scores = sound_scores(item["waveform"], as_it_came=True)  # one hearing, as validated
        evidence.append(visual_evidence(scores, bridge)[:IMAGENET_CLASSES])  # (1000,)
        seen.append(reader.classify(item["frame"]))  # (1000,)
    return ClipKnowledge(torch.stack(evidence), torch.stack(seen))


def agreement(knowledge: ClipKnowledge, rows: torch.Tensor) -> torch.Tensor:
    """Clips ``rows`` (r,) -> their positive weights (r, N) with every clip: min(a[i, j], a[j, i], a[i, i],
    a[j, j]), 0 with themselves."""
    heard_here = knowledge.evidence[rows] @ knowledge.seen.T  # (r, N): row's sound, column's picture
    seen_here = knowledge.seen[rows] @ knowledge.evidence.T  # (r, N): column's sound, row's picture
    own = (knowledge.evidence * knowledge.seen).sum(dim=1)  # (N,): each clip's sound with its own picture
    weights = torch.minimum(torch.minimum(heard_here, seen_here), torch.minimum(own[rows, None], own[None]))
    weights[torch.arange(len(rows)), rows] = 0.0
    return weights


class BridgePositives:
    """Each clip's ``k`` best partners (N, k) and their weights (N, k): -1 and 0 where fewer reach
    ``min_agreement``."""

    def __init__(self, knowledge: ClipKnowledge, k: int, min_agreement: float = MIN_AGREEMENT):
        n = len(knowledge.evidence)
        k = min(k, max(n - 1, 1))
        self.partners = torch.full((n, k), -1, dtype=torch.long)
        self.weights = torch.zeros(n, k)
        for start in range(0, n, ROW_CHUNK):
            rows = torch.arange(start, min(start + ROW_CHUNK, n))
            values, nearest = agreement(knowledge, rows).topk(k, dim=1)  # (r, k)
            keep = values >= min_agreement
            self.partners[rows] = torch.where(keep, nearest, -1)
            self.weights[rows] = torch.where(keep, values, 0.0)

    def draw(self, anchors: list[int], draws: list[float]) -> list[tuple[int, float]]:
        """One (partner, weight) per anchor, drawn with probability proportional to the weight by a uniform
        number in [0, 1) each; an anchor without partners gets itself (weight 1: the batch keeps its size)."""
        chosen = []
        for anchor, u in zip(anchors, draws):
            weights = self.weights[anchor]
            total = float(weights.sum())
            if total <= 0:
                chosen.append((anchor, 1.0))
                continue
            pick = int(torch.searchsorted(weights.cumsum(0), torch.tensor(u * total), right=True))
            pick = min(pick, len(weights) - 1)
            chosen.append((int(self.partners[anchor, pick]), float(weights[pick])))
        return chosen


def share_with_partners(positives: BridgePositives) -> float:
    """The share of clips with at least one partner."""
    return float((positives.partners[:, 0] >= 0).float().mean())

