"""The published benchmarks' annotation files: VGG-SS-style JSON, split lists and IS3.

Boxes are normalised ``[x1, y1, x2, y2]`` in 0..1 in dataset items (IS3's pixel boxes of its 224x224
images are divided by 224); ``Annotation`` and ``IS3Sample`` keep each file's own units.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ANNOTATION_FILES = ("annotations.json", "vggss.json")
IS3_ANNOTATION_FILES = ("is3_annotations.json", "synthetic3240_bbox.json")
IS3_IMAGE_SIZE = 224
NEGATIVE_KINDS = ("silence", "offscreen")  # an entry's "negative": why its sound is not in the picture


@dataclass
class Annotation:
    file: str  # clip id, e.g. "zpWuikVorYg_000032"
    label: str  # class name
    boxes: list[list[float]]  # normalised [x1, y1, x2, y2]
    negative: str = ""  # "silence" | "offscreen": the sound is not in the picture (no box)


class AnnotationError(ValueError):
    """An annotation file that cannot be used, with the file and the entry named."""


class AnnotationWarning(UserWarning):
    """Annotations that load but probably do not mean what they say (inverted boxes)."""


def _read_json_list(path) -> list:
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: must be a JSON list of entries, not a {type(entries).__name__}")
    return entries


def _entry(path, i: int, entry, required: tuple[str, ...]) -> dict:
    """Entry ``i`` of an annotation list, checked to be an object holding the ``required`` keys."""
    if not isinstance(entry, dict):
        raise AnnotationError(f"{path}: entry {i} must be an object, not {entry!r:.60}")
    missing = [key for key in required if key not in entry]
    if missing:
        raise AnnotationError(f"{path}: entry {i} ({entry.get('file') or entry.get('image')}) has no "
                              f"{' or '.join(missing)}")
    return entry


def _box(values, where: str) -> list[float]:
    """``[x1, y1, x2, y2]`` as floats, or an AnnotationError naming ``where``."""
    if (not isinstance(values, (list, tuple)) or len(values) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise AnnotationError(f"{where}: a box must be 4 numbers [x1, y1, x2, y2], not {values!r:.80}")
    if not all(math.isfinite(v) for v in values):
        raise AnnotationError(f"{where}: box {values} holds NaN or infinity")
    return [float(v) for v in values]


def _warn_inverted(path, inverted: list[str]) -> None:
    if inverted:
        warnings.warn(f"{path}: {len(inverted)} box(es) with x2 < x1 or y2 < y1 cover nothing (cIoU 0): "
                      f"{', '.join(inverted[:5])}{' ...' if len(inverted) > 5 else ''}", AnnotationWarning,
                      stacklevel=3)


def load_vggss_annotations(path) -> list[Annotation]:
    """A VGG-SS style JSON list of ``{"file", "class", "bbox": [[x1, y1, x2, y2], ...]}``; an entry with
    ``"negative": "silence" | "offscreen"`` (and no ``bbox``) is a clip whose sound is not in the picture.

    Coordinates are clipped to 0..1 as the published evaluation does: the real vggss.json has 12 boxes
    with an x2 or y2 of -2.9e16, which become empty. A malformed entry raises ``AnnotationError``; an
    inverted box (empty after clipping too) gives an ``AnnotationWarning``.
    """
    annotations, inverted = [], []
    for i, e in enumerate(_read_json_list(path)):
        negative = e.get("negative", "") if isinstance(e, dict) else ""
        e = _entry(path, i, e, ("file",) if negative else ("file", "bbox"))
        where = f"{path}: entry {i} ({e['file']})"
        if not isinstance(e["file"], str) or not isinstance(e.get("class", ""), str):
            raise AnnotationError(f"{where}: file and class must be strings")
        if negative not in ("", *NEGATIVE_KINDS):
            raise AnnotationError(f"{where}: negative must be one of {NEGATIVE_KINDS}, not {negative!r:.40}")
        bbox = e.get("bbox", [])
        if not isinstance(bbox, list) or any(isinstance(v, (int, float)) for v in bbox):
            raise AnnotationError(f"{where}: bbox must be a list of [x1, y1, x2, y2] boxes, not {bbox!r:.80}")
        if negative and bbox:
            raise AnnotationError(f"{where}: a {negative} negative has no box")
        boxes = [_clip_box(_box(box, where)) for box in bbox]
        inverted += [f"entry {i} ({e['file']})" for b in boxes if b[2] < b[0] or b[3] < b[1]]
        annotations.append(Annotation(e["file"], e.get("class", ""), boxes, negative))
    _warn_inverted(path, inverted)
    return annotations


def _clip_box(box: list[float]) -> list[float]:
    return [min(max(v, 0.0), 1.0) for v in box]


def load_split(csv_path) -> list[str]:
    """Clip ids of a test list: one id per line, or ``id,frame_index`` lines (Flickr-SoundNet)."""
    with open(csv_path) as f:
        return [line.split(",")[0].strip() for line in f if line.strip()]


@dataclass
class IS3Sample:
    image: Path
    audio: Path
    box: list[float]  # [x1, y1, x2, y2] in pixels of the 224x224 image
    scene: str  # the two samples of one image share it
    label: str  # the sounding object's name when the file names tell it, else ''


def data_file(name, base: Path, where: str) -> Path:
    """The file an annotation entry names: a relative path joined to ``base``, the data folder; an absolute
    one outside it (the published file names /mnt/...) moved to ``base/<its folder name>/<its file name>``.
    An AnnotationError naming ``where`` when it is not a file name or leads out of the data folder."""
    if not isinstance(name, str) or not name:
        raise AnnotationError(f"{where}: a file name must be a string, not {name!r:.60}")
    folder = Path(os.path.abspath(base))
    p = Path(os.path.normpath(name))
    if p.is_absolute() and not p.is_relative_to(folder):
        p = Path(p.parent.name) / p.name
    full = Path(os.path.normpath(folder / p))
    if not full.is_relative_to(folder) or full == folder:
        raise AnnotationError(f"{where}: {name!r:.80} leads outside the data folder {base}")
    return Path(base) / full.relative_to(folder)


def find_is3_annotations(root) -> Path | None:
    """The IS3 annotation file of a folder (``IS3_ANNOTATION_FILES``, first found), or None."""
    return next((Path(root) / n for n in IS3_ANNOTATION_FILES if (Path(root) / n).is_file()), None)


def load_is3(path) -> list[IS3Sample]:
    """IS3 annotations: a JSON list of ``{"image", "audio", "gt_box"}``, two entries per scene.

    The scene id is a ``"scene"`` key if present; else the image name when both entries share one image,
    else the image name less its last ``_<object>`` part (the published files,
    ``visual_frames/<scene>_<object>.jpg``).
    """
    path = Path(path)
    entries = [_entry(path, i, e, ("image", "audio")) for i, e in enumerate(_read_json_list(path))]
    for i, e in enumerate(entries):
        if not isinstance(e["image"], str) or not isinstance(e["audio"], str):
            raise AnnotationError(f"{path}: entry {i}: image and audio must be file names")
    uses = Counter(e["image"] for e in entries)
    samples, inverted = [], []
    for i, e in enumerate(entries):
        where = f"{path}: entry {i} ({e['image']})"
        stem = Path(e["image"]).stem
        own_image = uses[e["image"]] == 1
        scene = e.get("scene") or (stem.rsplit("_", 1)[0] if own_image else stem)
        label = e.get("class") or e.get("label") or (stem[len(scene) + 1:] if own_image else "")
        if "gt_box" not in e and "bbox" not in e:
            raise AnnotationError(f"{where}: has no gt_box")
        box = _box(e.get("gt_box", e.get("bbox")), where)
        inverted += [f"entry {i}"] if box[2] < box[0] or box[3] < box[1] else []
        image, audio = (data_file(e[key], path.parent, where) for key in ("image", "audio"))
        samples.append(IS3Sample(image, audio, box, str(scene), str(label)))
    _warn_inverted(path, inverted)
    return samples
