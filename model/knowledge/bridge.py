"""The bridge between what is heard and what is seen: AudioSet labels -> ImageNet classes and "person".

The tables are checked in beside this module and remade at build time by ``tools/make_bridge.py`` from
WordNet 3.0 (hypernyms: Dog -> every dog breed) and the reviewed ``hand_links.tsv`` (Bark -> dog, Moo -> ox,
Typing -> computer keyboard, ...); every AudioSet "Human sounds" label goes to "person". Nothing here reads
WordNet at run time.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import torch

TABLES = Path(__file__).resolve().parent
PERSON = "person"
AUDIOSET_CLASSES = 521
# AudioSet's branches in YAMNet's (the ontology's) order: Speech .. Children playing, Animal .. Whale vocalization
HUMAN_SOUNDS, ANIMAL_SOUNDS = slice(0, 67), slice(67, 132)
IMAGENET_CLASSES = 1000


def _rows(name: str) -> list[dict[str, str]]:
    with open(TABLES / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@functools.lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """ImageNet's 1000 class names in the classifier's order (the first of each class's synonyms)."""
    return tuple(row["name"].split(",")[0] for row in _rows("imagenet_classes.tsv"))


@dataclass(frozen=True)
class Bridge:
    """``links`` (521, 1001): > 0 where an AudioSet label's sound is made by a visual class (ImageNet's 1000,
    then "person"), the link's weight (1, less for a broad label); ``person_cues`` (1000,): ImageNet classes
    that people wear or carry; ``animals`` (1000,): ImageNet's animals (the classes AudioSet's "Animal" links to)."""

    links: torch.Tensor
    person_cues: torch.Tensor
    animals: torch.Tensor

    @property
    def person(self) -> int:
        """The column of "person" in ``links``."""
        return IMAGENET_CLASSES


@functools.lru_cache(maxsize=1)
def load_bridge() -> Bridge:
    """The checked-in tables as tensors (shared: treat them as read-only)."""
    wnid_index = {row["wnid"]: int(row["index"]) for row in _rows("imagenet_classes.tsv")}
    links = torch.zeros(AUDIOSET_CLASSES, IMAGENET_CLASSES + 1)
    for row in _rows("bridge.tsv"):
        target = IMAGENET_CLASSES if row["target"] == PERSON else wnid_index[row["target"]]
        links[int(row["audioset_index"]), target] = float(row["weight"])
    cues = torch.zeros(IMAGENET_CLASSES, dtype=torch.bool)
    cues[[int(row["index"]) for row in _rows("person_cues.tsv")]] = True
    return Bridge(links, cues, links[ANIMAL_SOUNDS.start, :IMAGENET_CLASSES] > 0)


def visual_evidence(sound: torch.Tensor, bridge: Bridge | None = None) -> torch.Tensor:
    """AudioSet probabilities (521,) -> per visual class (1001,: ImageNet's, then person) the highest
    probability of a heard label that such a thing makes, times the link's weight (0 for classes no heard
    label links to)."""
    bridge = bridge or load_bridge()
    return (sound[:, None] * bridge.links).amax(dim=0)


def linked_sound(sound: torch.Tensor, bridge: Bridge | None = None) -> float:
    """How sure YAMNet is that the sound is one that some visual class makes: the highest probability among
    the labels the bridge links to anything."""
    bridge = bridge or load_bridge()
    linked = bridge.links.amax(dim=1) > 0
    return float(sound[linked].max()) if linked.any() else 0.0
