"""The positives of each anchor clip as view requests, the views themselves, and their batches.

A batch holds, for each anchor (one group id per anchor, its dataset index): the original pair, one
hand-crafted augmented view, once the neighbour bank is filled one of its k nearest clips, and with
bridge-mined positives (``model.train.bridge_positives``) one of its partners, weighing its evidence.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from model.preprocess.audio import AudioConfig
from model.train.augment import AudioAugment, AugmentConfig, ImageAugment
from model.train.bridge_positives import BridgePositives
from model.train.neighbours import FeatureBank


class TrainViews(Dataset):
    """A view request ``(index, group, role, weight)`` -> the clip's original view, plus an augmented view when
    ``role == "anchor"`` and augmentation is on (a neighbour or bridge partner contributes its original view
    only); ``weight``: its weight as a positive of the group."""

    def __init__(self, dataset, image_size: int, audio_config: AudioConfig, augment: bool,
                 augment_images: bool = True, strength: AugmentConfig | None = None):
        self.dataset = dataset
        self.image_augment = ImageAugment(strength, size=image_size) if augment and augment_images else None
        self.audio_augment = AudioAugment(strength, audio_config=audio_config) if augment else None
        self.augment = augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, request: tuple[int, int, str, float]) -> dict:
        index, group, role, weight = request
        item = self.dataset[index]
        images, specs = [item["image"]], [item["spectrogram"]]
        if role == "anchor" and self.augment:  # without image augmentation the view is the frame itself
            images.append(self.image_augment(item["frame"]) if self.image_augment else item["image"])
            specs.append(self.audio_augment(item["waveform"]))
        return {"images": torch.stack(images), "specs": torch.stack(specs), "group": group,
                "clip": item["index"], "anchor": role == "anchor", "weight": weight}


def collate_views(views: list[dict]) -> dict:
    """View items -> one batch: images (N, 3, S, S), specs (N, 1, 257, T), groups (N,), clip_ids (N,),
    weights (N,) as positives of their group, and first (N,): the rows holding an anchor's original view (their
    embeddings refresh the bank)."""
    groups, clips, first, weights = [], [], [], []
    for v in views:
        n = len(v["images"])
        groups += [v["group"]] * n
        clips += [v["clip"]] * n
        first += [v["anchor"]] + [False] * (n - 1)
        weights += [v["weight"]] * n
    return {
        "images": torch.cat([v["images"] for v in views]),  # (N, 3, S, S)
        "specs": torch.cat([v["specs"] for v in views]),  # (N, 1, 257, T)
        "groups": torch.tensor(groups),  # (N,)
        "clip_ids": torch.tensor(clips),  # (N,)
        "first": torch.tensor(first),  # (N,)
        "weights": torch.tensor(weights, dtype=torch.float32),  # (N,)
    }


class ViewBatchSampler(Sampler):
    """This process's anchors, ``batch_size`` per step, as view requests: ``(i, i, "anchor", 1.0)`` for each
    anchor i; while ``use_neighbours``, ``(n, i, "neighbour", 1.0)`` with n drawn from i's k nearest clips
    in the bank (the clip itself while it has none, so every rank's batch keeps the same size); with
    ``bridge``, ``(j, i, "bridge", w)``: a partner j drawn by its weight w (``BridgePositives.draw``).

    The anchor order is the ``DistributedSampler``'s (seed + epoch); ``skip`` leaves out the batches of
    an epoch already trained before a resume. One full batch or more: the last partial one is dropped.
    """

    def __init__(self, sampler: DistributedSampler, batch_size: int, bank: FeatureBank | None, k: int,
                 seed: int, rank: int, bridge: BridgePositives | None = None):
        self.sampler, self.batch_size, self.bank, self.k, self.bridge = sampler, batch_size, bank, k, bridge
        self.seed, self.rank = seed, rank
        self.epoch = 0
        self.skip = 0
        self.use_neighbours = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return max(len(self.sampler) // self.batch_size, 1)

    def __iter__(self):
        anchors = list(self.sampler)
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 1009 + self.rank)
        for b in range(len(self)):
            batch = anchors[b * self.batch_size:(b + 1) * self.batch_size]
            picks = torch.randint(self.k, (len(batch),), generator=rng).tolist()  # drawn for skipped batches too
            draws = torch.rand(len(batch), generator=rng).tolist() if self.bridge is not None else []
            if b < self.skip:
                continue
            requests = [(i, i, "anchor", 1.0) for i in batch]
            if self.use_neighbours:
                requests += [(n, i, "neighbour", 1.0) for i, n in zip(batch, self._neighbours(batch, picks))]
            if self.bridge is not None:
                requests += [(j, i, "bridge", w) for i, (j, w) in zip(batch, self.bridge.draw(batch, draws))]
            yield requests

    def _neighbours(self, batch: list[int], picks: list[int]) -> list[int]:
        nearest = self.bank.neighbours(torch.tensor(batch), self.k).tolist()  # (B, k), -1 where none
        chosen = []
        for i, row, pick in zip(batch, nearest, picks):
            valid = [n for n in row if n >= 0]
            chosen.append(valid[pick % len(valid)] if valid else i)
        return chosen
