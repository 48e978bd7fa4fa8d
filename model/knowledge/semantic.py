"""The semantic map: where in the frame is something that makes the sound heard, by pretrained knowledge.

For a sound window, YAMNet gives AudioSet probabilities; the bridge turns them into evidence for each visual
class (``model.knowledge.bridge.visual_evidence``), the evidence for "person" and for things that are not animals
explained away by an animal (``heard``: a cat's cry that YAMNet also hears as a baby's is a cat's, and so is a purr it
also hears as an engine); the map at a location is the evidence of the classes
seen there, weighed by their ImageNet probability, and the evidence for "person" where people are::

    semantic(x) = max( sum_c evidence[c] * P(c at x),  evidence[person] * people(x) )     in [0, 1]

It knows hundreds of classes the alignment model never heard, but not which of two dogs barks. When it knows what
makes the sound (``is_sure``) the app mixes it into the cosine map with the checkpoint's ``semantic`` weight
(``SemanticConfig``, ``combine``; its ``person_weight`` for a person's sound, which the alignment model never
heard, ``is_persons``), and where its peak is high it decides presence (``judge``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from model.knowledge.config import SemanticConfig
from model.knowledge.bridge import ANIMAL_SOUNDS, IMAGENET_CLASSES, linked_sound, load_bridge, visual_evidence
from model.knowledge.scene import Scene
from model.knowledge.yamnet import class_names

HEARING_MIN = 0.2  # a sound class is named in "hearing: ..." from this probability
# a person's sound from this evidence: below it, animals' calls heard as grunts or speech would count (chosen on the
# quad test's and the pooled validation sets)
PERSONS_MIN = 0.7


@dataclass
class Heard:
    """What YAMNet made of a sound window."""

    scores: torch.Tensor  # (521,) AudioSet probabilities
    evidence: torch.Tensor  # (1001,) per visual class, ``visual_evidence``
    linked: float  # ``linked_sound``: how sure it is that something visible could make it

    @property
    def is_persons(self) -> bool:
        """A person's sound (speech, singing, laughter): "person" has the most evidence of all visual classes,
        at least ``PERSONS_MIN``."""
        return int(self.evidence.argmax()) == IMAGENET_CLASSES and float(self.evidence[IMAGENET_CLASSES]) >= PERSONS_MIN


def heard(scores: torch.Tensor) -> Heard:
    """AudioSet probabilities (521,) -> what they say about the picture. A sound heard as an animal's is not a
    person's, nor a thing's: the evidence for "person" and for every visual class that is not an animal is scaled
    by one minus the highest score of AudioSet's Animal branch (speech scores there near 0; a bird's call heard as
    whistling, a cat's as crying, a purr or a roar also heard as a vehicle, near 1)."""
    bridge = load_bridge()
    evidence = visual_evidence(scores, bridge)
    not_animal = torch.cat([~bridge.animals, torch.ones(1, dtype=torch.bool)])  # ImageNet's others, then person
    evidence[not_animal] *= 1.0 - float(scores[ANIMAL_SOUNDS].max())
    return Heard(scores, evidence, linked_sound(scores, bridge))


def semantic_maps(evidence: torch.Tensor, classes: torch.Tensor, people: torch.Tensor) -> torch.Tensor:
    """The semantic maps (Q, G, h, w) in [0, 1] of Q heard sounds (``Heard.evidence``, (Q, 1001)) over G scenes
    (``Scene.classes`` (G, 1000, h, w), ``Scene.people`` (G, h, w))."""
    things = torch.einsum("qk,gkhw->qghw", evidence[:, :IMAGENET_CLASSES], classes)
    person = evidence[:, IMAGENET_CLASSES, None, None, None] * people[None]
    return torch.maximum(things, person).clamp(0.0, 1.0)


def semantic_map(sound: Heard, scene: Scene) -> torch.Tensor:
    """The semantic map (h, w) in [0, 1] of a heard sound over a scene."""
    return semantic_maps(sound.evidence[None], scene.classes[None], scene.people[None])[0, 0]


def combine(shown: torch.Tensor, semantic: torch.Tensor, weight: float, sure: bool = True) -> torch.Tensor:
    """A heatmap in the cosine map's range (h, w) and a semantic map (h, w) -> the mix, in that same range:
    ``lo + (hi - lo) * ((1 - weight) * minmax(shown) + weight * semantic)``. The semantic map keeps its
    absolute scale: a sound nothing visible makes adds nothing. Not ``sure`` (``is_sure``): the map shown is
    the alignment model's, so that a sound half recognised (a grunt heard as speech 0.2) never outweighs it."""
    if weight == 0.0 or not sure:
        return shown
    lo, hi = shown.min(), shown.max()
    unit = (shown - lo) / (hi - lo).clamp_min(1e-12)
    return lo + (hi - lo) * ((1.0 - weight) * unit + weight * semantic.to(shown.dtype))


def is_sure(linked: float, config: SemanticConfig) -> bool:
    """Whether the knowledge knows what makes the sound (``Heard.linked``): a linked label at least as likely as
    ``in_view``."""
    return config.in_view is None or linked >= config.in_view


def names_surely(linked: float, config: SemanticConfig) -> bool:
    """Whether YAMNet names a sound that things make at least ``known`` likely (``Heard.linked``): such a sound is
    no silence however quiet it is (a voice far from the microphone), and ``judge`` decides."""
    return config.known is not None and linked >= config.known


def judge(peak: float, linked: float, config: SemanticConfig) -> bool | None:
    """True: something visible makes the sound (peak at or over ``in_view``); False: the sound is one that
    things make (``linked`` at or over ``known``) and none of them is visible; None: no opinion (the
    alignment model's presence score decides)."""
    if config.in_view is not None and peak >= config.in_view:
        return True
    if names_surely(linked, config):
        return False
    return None


def hearing_text(scores: torch.Tensor, k: int = 2) -> str:
    """The most likely sound classes, e.g. "speech 0.93, dog 0.41" ('' when none reaches ``HEARING_MIN``)."""
    names = class_names()
    values, idx = scores.topk(k)
    return ", ".join(f"{names[i].split(',')[0].lower()} {v:.2f}"
                     for v, i in zip(values.tolist(), idx.tolist()) if v >= HEARING_MIN)
