"""Where the people are: MTCNN's three stages (P-Net proposes faces, R-Net and O-Net check them).

The weights are the files that the PyPI wheel ``facenet-pytorch`` (2.6.0, MIT, Timothy Esler; the networks of
Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional Networks", 2016)
ships, ``facenet_pytorch/data/pnet.pt``, ``rnet.pt`` and ``onet.pt``, read with ``torch.load(weights_only=True)``; the
package is installed with ``--no-deps`` and never imported (it pins an old torch; docs/LICENSES.md). The
box regression and the landmarks are left out: the face map only needs where faces are. ``face_map`` gives,
per cell of a grid over the frame, the most confident face that covers it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.knowledge.boxes import box_map
from model.knowledge.package_files import package_file

WEIGHTS_PACKAGE = "facenet_pytorch"
INSTALL_HINT = "pip install --no-deps facenet-pytorch==2.6.0 (make installs it)"
CELL, STRIDE = 12, 2  # P-Net's window and step, in pixels of a scaled frame
SCALE_STEP = 0.709  # MTCNN's image pyramid


@dataclass(frozen=True)
class FaceConfig:
    """How faces are looked for."""

    min_face: int = 20  # smallest face looked for, in pixels of the analysed frame
    frame_side: int = 448  # the frame's longer side is scaled to this before looking
    propose: float = 0.6  # P-Net probability for a proposal
    refine: float = 0.7  # R-Net probability for O-Net to check a proposal
    # O-Net probability for a face: between the quad test's validation photos' faces (>= 0.97) and others (<= 0.94)
    accept: float = 0.96
    max_proposals: int = 48  # the most likely proposals R-Net checks


def _weights(name: str) -> Path:
    return package_file(WEIGHTS_PACKAGE, f"data/{name}.pt", "the face detector's weights", INSTALL_HINT)


class PNet(nn.Module):
    """RGB scaled to [-1, 1] (B, 3, H, W) -> face probability per 12-px window every 2 px (B, H', W')."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """24x24 RGB crops scaled to [-1, 1] (B, 3, 24, 24) -> face probability (B,)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).flatten(1)  # the published weights' order
        return torch.softmax(self.dense5_1(self.prelu4(self.dense4(x))), dim=1)[:, 1]


class ONet(nn.Module):
    """48x48 RGB crops scaled to [-1, 1] (B, 3, 48, 48) -> face probability (B,)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)  # the published weights' order
        return torch.softmax(self.dense6_1(self.prelu5(self.dense5(x))), dim=1)[:, 1]


@functools.lru_cache(maxsize=1)
def load_nets() -> tuple[PNet, RNet, ONet]:
    """P-Net, R-Net and O-Net with the installed weights, in eval mode (shared: treat them as read-only)."""
    nets = PNet(), RNet(), ONet()
    for net, name in zip(nets, ("pnet", "rnet", "onet")):
        path = _weights(name)
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # a file that is not these weights: a message to act on
            raise ValueError(f"{path} is not MTCNN's {name} ({exc})") from exc
        net.eval().requires_grad_(False)
    return nets


def _normalised(image: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() - 127.5) / 128.0


def detect_faces(image: np.ndarray, config: FaceConfig = FaceConfig()) -> np.ndarray:
    """RGB uint8 frame (H, W, 3) -> faces (N, 5): x1, y1, x2, y2 in the frame's pixels and probability."""
    h, w = image.shape[:2]
    resize = min(1.0, config.frame_side / max(h, w))
    small = cv2.resize(image, (max(1, round(w * resize)), max(1, round(h * resize))), interpolation=cv2.INTER_AREA) \
        if resize < 1 else image
    sh, sw = small.shape[:2]
    pnet, rnet, onet = load_nets()
    proposals = []
    scale = CELL / config.min_face
    with torch.no_grad():
        while min(sh, sw) * scale >= CELL:
            scaled = cv2.resize(small, (max(CELL, round(sw * scale)), max(CELL, round(sh * scale))),
                                interpolation=cv2.INTER_AREA)
            prob = pnet(_normalised(scaled)[None])[0].numpy()
            ys, xs = np.nonzero(prob >= config.propose)
            for y, x in zip(ys, xs):
                proposals.append((STRIDE * x / scale, STRIDE * y / scale, (STRIDE * x + CELL) / scale,
                                  (STRIDE * y + CELL) / scale, prob[y, x]))
            scale *= SCALE_STEP
        if not proposals:
            return np.zeros((0, 5), np.float32)
        boxes = np.array(sorted(proposals, key=lambda b: -b[4])[:config.max_proposals], np.float32)
        boxes = boxes[rnet(_crops(small, boxes, 24)).numpy() >= config.refine]
        if not len(boxes):
            return np.zeros((0, 5), np.float32)
        boxes[:, 4] = onet(_crops(small, boxes, 48)).numpy()
    faces = boxes[boxes[:, 4] >= config.accept]
    faces[:, :4] /= resize
    return faces


def _crops(image: np.ndarray, boxes: np.ndarray, side: int) -> torch.Tensor:
    """The boxes' pixels of ``image``, each resized to ``side`` x ``side`` and normalised (N, 3, side, side)."""
    crops = [cv2.resize(image[int(y1):max(int(y1) + 1, int(np.ceil(y2))), int(x1):max(int(x1) + 1, int(np.ceil(x2)))],
                        (side, side), interpolation=cv2.INTER_AREA) for x1, y1, x2, y2, _ in boxes]
    return torch.stack([_normalised(c) for c in crops])


def face_map(image: np.ndarray, size: tuple[int, int], config: FaceConfig = FaceConfig()) -> np.ndarray:
    """RGB frame -> (h, w) grid over it: per cell, the probability of the most likely face covering the
    cell's centre (0 where no face was found)."""
    return box_map(detect_faces(image, config), image.shape[:2], size)
