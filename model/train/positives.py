"""The positives of each anchor clip as view requests, the views themselves, and their batches.

A batch holds, for each anchor (one group id per anchor, its dataset index): the original pair, one
hand-crafted augmented view, and, once the neighbour bank is filled, one of its k nearest clips.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from model.audio import AudioConfig
from model.train.augment import AudioAugment, AugmentConfig, ImageAugment
from model.train.neighbours import FeatureBank


class TrainViews(Dataset):
    """A view request ``(index, group, role)`` -> the clip's original view, plus an augmented view when
    ``role == "anchor"`` and augmentation is on (a neighbour contributes its original view only)."""

    def __init__(self, dataset, image_size: int, audio_config: AudioConfig, augment: bool,
                 augment_images: bool = True, strength: AugmentConfig | None = None):
        self.dataset = dataset
        self.image_augment = ImageAugment(strength, size=image_size) if augment and augment_images else None
        self.audio_augment = AudioAugment(strength, audio_config=audio_config) if augment else None
        self.augment = augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, request: tuple[int, int, str]) -> dict:
        index, group, role = request
        item = self.dataset[index]
        images, specs = [item["image"]], [item["spectrogram"]]
        if role == "anchor" and self.augment:  # without image augmentation the view is the frame itself
            images.append(self.image_augment(item["frame"]) if self.image_augment else item["image"])
            specs.append(self.audio_augment(item["waveform"]))
        return {"images": torch.stack(images), "specs": torch.stack(specs), "group": group,
                "clip": item["index"], "anchor": role == "anchor"}


def collate_views(views: list[dict]) -> dict:
    """View items -> one batch: images (N, 3, S, S), specs (N, 1, 257, T), groups (N,), clip_ids (N,)
    and first (N,): the rows holding an anchor's original view (their embeddings refresh the bank)."""
    groups, clips, first = [], [], []
    for v in views:
        n = len(v["images"])
        groups += [v["group"]] * n
        clips += [v["clip"]] * n
        first += [v["anchor"]] + [False] * (n - 1)
    return {
        "images": torch.cat([v["images"] for v in views]),  # (N, 3, S, S)
        "specs": torch.cat([v["specs"] for v in views]),  # (N, 1, 257, T)
        "groups": torch.tensor(groups),  # (N,)
        "clip_ids": torch.tensor(clips),  # (N,)
        "first": torch.tensor(first),  # (N,)
    }


class ViewBatchSampler(Sampler):
    """This process's anchors, ``batch_size`` per step, as view requests: ``(i, i, "anchor")`` for each
    anchor i and, while ``use_neighbours``, ``(n, i, "neighbour")`` with n drawn from i's k nearest clips
    in the bank (the clip itself while it has none, so every rank's batch keeps the same size).

    The anchor order is the ``DistributedSampler``'s (seed + epoch); ``skip`` leaves out the batches of
    an epoch already trained before a resume. One full batch or more: the last partial one is dropped.
    """

    def __init__(self, sampler: DistributedSampler, batch_size: int, bank: FeatureBank | None, k: int,
                 seed: int, rank: int):
        self.sampler, self.batch_size, self.bank, self.k = sampler, batch_size, bank, k
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
            if b < self.skip:
                continue
            requests = [(i, i, "anchor") for i in batch]
            if self.use_neighbours:
                requests += [(n, i, "neighbour") for i, n in zip(batch, self._neighbours(batch, picks))]
            yield requests

    def _neighbours(self, batch: list[int], picks: list[int]) -> list[int]:
        nearest = self.bank.neighbours(torch.tensor(batch), self.k).tolist()  # (B, k), -1 where none
        chosen = []
        for i, row, pick in zip(batch, nearest, picks):
            valid = [n for n in row if n >= 0]
            chosen.append(valid[pick % len(valid)] if valid else i)
        return chosen
