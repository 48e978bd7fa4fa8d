"""What is where in a frame: ImageNet class probabilities at every location, and where the people are.

The probabilities come from the published ImageNet EfficientNet-Lite0 (``model.networks.backbones.imagenet_network``,
the weights before any fine-tuning), its classifier applied to every position of its 14x14 map at stride
16 (a class activation map turned into a per-location softmax). People are where the face detector
(``model.knowledge.faces``) finds a face, where the person detector (``model.knowledge.bodies``) finds someone's
head and upper body (people too far or turned away for a face) or, weaker evidence, where ImageNet sees what people
wear (``person_cues.tsv``); a face or person found where ImageNet sees mostly an animal is the animal's (a dog's
face, a mandrill's: ``ANIMAL_FACE_FROM``).
A ``Scene`` carries a small grey thumbnail of its frame, so that a new picture can be told from the same view.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model.networks.backbones import imagenet_network, imagenet_state
from model.knowledge.bridge import load_bridge
from model.knowledge.bodies import BodyConfig, body_map
from model.knowledge.faces import FaceConfig, face_map
from model.preprocess.image import preprocess_image

THUMBNAIL = 16  # pixels a side
WORN_WEIGHT = 0.3  # what people wear is weaker evidence of a person than a face (a shirt on a hanger, a mask)
# a person found where ImageNet's animal classes hold more than this share (per location, averaged over 3x3
# locations) fades out, gone where they hold all of it (chosen on the quad test's validation pool)
ANIMAL_FACE_FROM = 0.3
NEW_VIEW_DIFFERENCE = 24.0  # mean absolute grey difference (0-255) of thumbnails above which a frame is a new picture


@dataclass
class Scene:
    classes: torch.Tensor  # (1000, h, w) ImageNet probabilities per location
    people: torch.Tensor  # (h, w) in [0, 1]: a face or a person found there, or WORN_WEIGHT x P(what people wear)
    thumbnail: np.ndarray  # (16, 16) float32 grey of the frame


def thumbnail(image: np.ndarray) -> np.ndarray:
    """RGB frame -> its 16x16 grey thumbnail (float32, 0-255)."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).astype(np.float32)


def same_view(scene: Scene | None, thumb: np.ndarray) -> bool:
    """True when a frame with this thumbnail shows the scene's picture (a camera that moved a little, a
    person who turned), False for another picture (a cut, another file)."""
    return scene is not None and float(np.abs(scene.thumbnail - thumb).mean()) <= NEW_VIEW_DIFFERENCE


def animal_excess(classes: torch.Tensor, animals: torch.Tensor) -> torch.Tensor:
    """(1000, h, w) ImageNet probabilities -> (h, w) in [0, 1]: how far the animal classes' share, averaged over
    3x3 locations, is above ``ANIMAL_FACE_FROM`` (0 there and below, 1 where it is all)."""
    share = classes[animals].sum(dim=0).clamp(max=1.0)
    share = F.avg_pool2d(share[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    return ((share - ANIMAL_FACE_FROM) / (1.0 - ANIMAL_FACE_FROM)).clamp(0.0, 1.0)


@functools.lru_cache(maxsize=1)
def _classifier() -> tuple[torch.Tensor, torch.Tensor]:
    state = imagenet_state()
    return state["classifier.weight"], state["classifier.bias"]


class SceneReader:
    """Reads scenes of RGB frames on ``device`` with the ImageNet network, the face detector and the person
    detector (``bodies`` None: without it)."""

    def __init__(self, device="cpu", image_size: int = 224, faces: FaceConfig = FaceConfig(),
                 bodies: BodyConfig | None = BodyConfig()):
        self.device, self.image_size, self.faces, self.bodies = device, image_size, faces, bodies
        self.network = _network().to(device)
        weight, bias = _classifier()
        self.weight, self.bias = weight.to(device), bias.to(device)
        bridge = load_bridge()
        self.cues, self.animals = bridge.person_cues.to(device), bridge.animals.to(device)

    def read(self, image: np.ndarray) -> Scene:
        with torch.no_grad():
            features = self.network(preprocess_image(image, self.image_size)[None].to(self.device))[0]  # (1280, h, w)
            logits = torch.einsum("chw,kc->khw", features, self.weight) + self.bias[:, None, None]
            classes = torch.softmax(logits, dim=0)  # (1000, h, w)
            worn = WORN_WEIGHT * classes[self.cues].sum(dim=0).clamp(max=1.0)
            size = tuple(classes.shape[1:])
            found = face_map(image, size, self.faces)
            if self.bodies is not None:
                found = np.maximum(found, body_map(image, size, self.bodies))
            people = torch.maximum(worn, torch.from_numpy(found).to(classes.device))
            people = people * (1.0 - animal_excess(classes, self.animals))
        return Scene(classes.cpu(), people.cpu(), thumbnail(image))

    def classify(self, image: np.ndarray) -> torch.Tensor:
        """The published classifier's ImageNet probabilities of the whole frame (1000,): of its pooled features."""
        with torch.no_grad():
            features = self.network(preprocess_image(image, self.image_size)[None].to(self.device))[0]  # (1280, h, w)
            return torch.softmax(self.weight @ features.mean(dim=(1, 2)) + self.bias, dim=0).cpu()


@functools.lru_cache(maxsize=1)
def _network():
    return imagenet_network(16).requires_grad_(False)
