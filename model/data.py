"""Datasets: the published benchmarks' annotation files, folders of videos, and IS3.

Boxes are normalised ``[x1, y1, x2, y2]`` in 0..1 everywhere in dataset items (IS3's pixel boxes of its
224x224 images are divided by 224); ``Annotation`` and ``IS3Sample`` keep each file's own units.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import math
import multiprocessing
import os
import signal
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from . import video_io
from .audio import AudioConfig, spectrogram
from .presence import NEGATIVE_KINDS
from .transforms import preprocess_image
from .video_io import VideoReadError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
ANNOTATION_FILES = ("annotations.json", "vggss.json")
IS3_ANNOTATION_FILES = ("is3_annotations.json", "synthetic3240_bbox.json")
IS3_IMAGE_SIZE = 224
FLICKR_GRID = 256  # the published Flickr-SoundNet boxes are pixels of 256x256 images when <size> is absent


# --- annotation files ---------------------------------------------------------------------------

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


def load_flickr_xml(path) -> list[list[float]]:
    """Every annotator's box of a Flickr-SoundNet XML, normalised by the image size.

    Boxes are ``<bndbox>`` (PASCAL VOC) or ``<bbox>`` (the published files) elements holding
    xmin, ymin, xmax, ymax, by tag name or else as their last four children.
    """
    try:
        root = ET.parse(path).getroot()
        width = float(root.findtext("size/width") or FLICKR_GRID)
        height = float(root.findtext("size/height") or FLICKR_GRID)
    except (ET.ParseError, ValueError) as exc:
        raise AnnotationError(f"{path}: not a Flickr-SoundNet annotation ({exc})") from exc
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise AnnotationError(f"{path}: image size {width} x {height} must be positive")
    boxes = []
    for element in root.iter():
        if element.tag not in ("bndbox", "bbox"):
            continue
        named = [element.findtext(tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        values = named if None not in named else [child.text for child in list(element)[-4:]]
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise AnnotationError(f"{path}: box {len(boxes)}: {values} are not 4 numbers") from exc
        x1, y1, x2, y2 = _box(numbers, f"{path}: box {len(boxes)}")
        boxes.append([x1 / width, y1 / height, x2 / width, y2 / height])
    _warn_inverted(path, [f"box {i}" for i, b in enumerate(boxes) if b[2] < b[0] or b[3] < b[1]])
    return boxes


@dataclass
class IS3Sample:
    image: Path
    audio: Path
    box: list[float]  # [x1, y1, x2, y2] in pixels of the 224x224 image
    scene: str  # the two samples of one image share it
    label: str  # the sounding object's name when the file names tell it, else ''


def _reroot(path: str, base: Path) -> Path:
    """A relative path joined to ``base``; an absolute one that does not exist here (the published
    file names /mnt/...) moved to ``base/<its folder name>/<its file name>``."""
    p = Path(path)
    if not p.is_absolute():
        return base / p
    return p if p.exists() else base / p.parent.name / p.name


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
        samples.append(IS3Sample(_reroot(e["image"], path.parent), _reroot(e["audio"], path.parent),
                                 box, str(scene), str(label)))
    _warn_inverted(path, inverted)
    return samples


# --- decoded cache ------------------------------------------------------------------------------

@dataclass
class CacheConfig:
    frames_per_video: int = 9  # odd, so that the middle of the clip is one of the cached times
    short_side: int = 256  # cached frames are downscaled to this short side
    jpeg_quality: int = 90


@dataclass
class CachedVideo:
    times: np.ndarray  # (K,) seconds of the cached frames
    jpegs: list[bytes]  # K JPEG-encoded RGB frames
    audio: np.ndarray  # (N,) float16 mono waveform of the whole clip, sample 0 at time 0

    def frame(self, k: int) -> np.ndarray:
        bgr = cv2.imdecode(np.frombuffer(self.jpegs[k], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class DecodedCache:
    """Frames and audio decoded once per video, in ``<cache_dir>/<path hash>-<version hash>.npz``.

    The path hash covers the absolute path and the cache settings, the version hash the file's size and
    mtime: a changed file gets a new name (and its old entry is deleted), so it is decoded again.
    """

    def __init__(self, cache_dir, sample_rate: int, config: CacheConfig | None = None):
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.config = config or CacheConfig()

    def entry_path(self, video: Path) -> Path:
        c = self.config
        where = f"{video.resolve()}|{self.sample_rate}|{c.frames_per_video}|{c.short_side}|{c.jpeg_quality}"
        stat = video.stat()
        return self.dir / f"{_digest(where)}-{_digest(f'{stat.st_size}|{stat.st_mtime_ns}')[:12]}.npz"

    def load(self, video: Path) -> CachedVideo | None:
        """The cached decoding of ``video``, or None when it is absent, stale or unreadable."""
        try:
            with np.load(self.entry_path(video)) as f:
                ends = f["jpeg_ends"]
                blob = f["jpegs"].tobytes()
                jpegs = [blob[a:b] for a, b in zip(np.r_[0, ends[:-1]], ends)]
                return CachedVideo(f["times"], jpegs, f["audio"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def build(self, video: Path, duration: float) -> CachedVideo:
        """Decode ``video`` (frames at K evenly spaced times, the whole audio track) and store it."""
        c = self.config
        times = (np.arange(c.frames_per_video) + 0.5) / c.frames_per_video * duration
        frames = video_io.read_frames(video, times)
        audio = video_io.decode_audio_track(video, self.sample_rate).astype(np.float16)
        jpegs = [self._encode(frame) for frame in frames]
        entry = self.entry_path(video)
        for stale in self.dir.glob(f"{entry.name.split('-')[0]}-*.npz"):
            stale.unlink(missing_ok=True)
        tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, times=times, audio=audio, jpegs=np.frombuffer(b"".join(jpegs), np.uint8),
                     jpeg_ends=np.cumsum([len(j) for j in jpegs]))
        os.replace(tmp, entry)  # atomic: a concurrent reader sees the whole entry or none
        return CachedVideo(times, jpegs, audio)

    def _encode(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape[:2]
        scale = self.config.short_side / min(h, w)
        if scale < 1:
            frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        _, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        return data.tobytes()


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:20]


# --- datasets -----------------------------------------------------------------------------------

@dataclass
class _Source:
    """One clip: a video file, or a pre-extracted frame + audio file pair."""

    file: str
    video: Path | None = None
    image: Path | None = None
    audio: Path | None = None
    duration: float = 0.0  # of the video, from its probe (0 when it was not probed: cached)


def _window(track: np.ndarray, config: AudioConfig, centre: float | None = None) -> np.ndarray:
    """``config.seconds`` of a whole track (sample 0 at time 0) centred on ``centre`` s (None: the middle)."""
    if centre is None:
        centre = len(track) / config.sample_rate / 2
    start = centre - config.seconds / 2
    return video_io.slice_window(track, 0.0, start, config.num_samples, config.sample_rate)


def _find_layout(root: Path) -> tuple[list[_Source], list[tuple[str, str]]]:
    """The clips under ``root`` and the files skipped while listing them (path, reason).

    ``videos/`` wins over ``frames/`` + ``audio/``: ssl-synth writes both (the latter for IS3).
    """
    frames_dir, audio_dir, video_dir = root / "frames", root / "audio", root / "videos"
    if not video_dir.is_dir() and frames_dir.is_dir() and audio_dir.is_dir():
        sources, skipped = [], []
        for image in sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            audio = audio_dir / f"{image.stem}.wav"
            if audio.is_file():
                sources.append(_Source(image.stem, image=image, audio=audio))
            else:
                skipped.append((str(image), f"no audio file {audio.name}"))
        return sources, skipped
    video_dir = video_dir if video_dir.is_dir() else root
    videos = sorted(p for p in video_dir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    return [_Source(p.stem, video=p) for p in videos], []


class VideoFolderDataset(Dataset):
    """Clips of a folder: videos (recursively), ``videos/`` + ``annotations.json``, or the pre-extracted
    ``frames/<id>.jpg`` + ``audio/<id>.wav`` layout.

    Items are dicts: ``image`` (3, 224, 224), ``spectrogram`` (1, 257, T), ``index``, ``file`` (id),
    ``label`` ('' when unknown), ``boxes`` (normalised, [] when unknown), ``negative`` ('', "silence",
    "offscreen"); with an ``image_transform``
    (called on the RGB uint8 frame) also ``frame`` (H, W, 3) uint8 numpy and ``waveform`` (N,) float32.
    Training mode reads a random moment per call, eval mode the middle of the clip. Files found unreadable
    while listing are in ``skipped`` as (path, reason). One that fails while reading is, in training,
    replaced by the next readable item (and recorded in the ``skipped`` of the process that read it: each
    DataLoader worker has its own list); in eval mode its item is ``{"skipped": (path, reason)}``, which
    ``collate`` sets apart: an evaluation never counts one clip twice.
    A pre-extracted clip has a single frame; its audio window is the middle of its wav file in both modes.
    With ``cache_dir``, videos are decoded once into a ``DecodedCache`` and training draws one of its
    cached frame times.
    """

    def __init__(self, root, mode: str = "train", audio_config: AudioConfig | None = None,
                 cache_dir=None, image_transform=None, cache_config: CacheConfig | None = None):
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', not {mode!r}")
        self.root = Path(root)
        self.mode = mode
        self.audio_config = audio_config or AudioConfig()
        self.image_transform = image_transform
        self.cache = None
        if cache_dir:
            self.cache = DecodedCache(cache_dir, self.audio_config.sample_rate, cache_config)
        self.annotations = self._load_annotations()
        sources, self.skipped = _find_layout(self.root)
        self.sources = [s for s in sources if self._check(s)]
        self._failed: set[int] = set()

    def _load_annotations(self) -> dict[str, Annotation]:
        for name in ANNOTATION_FILES:
            if (self.root / name).is_file():
                return {a.file: a for a in load_vggss_annotations(self.root / name)}
        return {}

    def _check(self, source: _Source) -> bool:
        """Probe a video that is not cached; False (and recorded in ``skipped``) when it cannot serve."""
        if source.video is None or (self.cache and self.cache.entry_path(source.video).is_file()):
            return True
        try:
            info = video_io.probe(source.video)
        except VideoReadError as e:
            self.skipped.append((str(source.video), e.reason))
            return False
        if not info.has_audio:
            self.skipped.append((str(source.video), "no audio stream"))
            return False
        source.duration = info.duration
        return True

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict:
        if self.mode == "eval":
            try:
                return self._item(index, *self._read(self.sources[index]))
            except VideoReadError as e:
                return {"skipped": (e.path, e.reason)}
        for attempt in range(len(self.sources)):
            i = (index + attempt) % len(self.sources)
            if i in self._failed:
                continue
            try:
                frame, waveform = self._read(self.sources[i])
            except VideoReadError as e:
                self._failed.add(i)
                self.skipped.append((e.path, e.reason))
                continue
            return self._item(i, frame, waveform)
        raise RuntimeError(f"no readable clip in {self.root}; skipped: {self.skipped}")

    def _read(self, source: _Source) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 frame, 16 kHz mono waveform of ``audio_config.seconds``) of one clip."""
        config = self.audio_config
        if source.video is None:
            track = video_io.decode_audio_track(source.audio, config.sample_rate)
            return video_io.read_frame(source.image, 0.0), _window(track, config)
        if self.cache is not None:
            cached = self.cache.load(source.video) or self.cache.build(source.video, self._duration(source))
            k = int(torch.randint(len(cached.times), ())) if self.mode == "train" else len(cached.times) // 2
            return cached.frame(k), _window(cached.audio, config, float(cached.times[k]))
        t = float(torch.rand(())) * source.duration if self.mode == "train" else None
        clip = video_io.read_clip(source.video, t, config.seconds, sample_rate=config.sample_rate)
        return clip.frame, clip.waveform

    @staticmethod
    def _duration(source: _Source) -> float:
        return source.duration or video_io.probe(source.video).duration

    def _item(self, index: int, frame: np.ndarray, waveform: np.ndarray) -> dict:
        source = self.sources[index]
        annotation = self.annotations.get(source.file)
        item = {
            "image": self.image_transform(frame) if self.image_transform else preprocess_image(frame),
            "spectrogram": spectrogram(waveform, self.audio_config),
            "index": index,
            "file": source.file,
            "label": annotation.label if annotation else "",
            "boxes": annotation.boxes if annotation else [],
            "negative": annotation.negative if annotation else "",
        }
        if self.image_transform is not None:
            item["frame"] = frame
            item["waveform"] = torch.from_numpy(waveform)
        return item


class IS3Dataset(Dataset):
    """IS3 (two sources per image): one item per (image, audio) pair, from ``is3_annotations.json`` or the
    published ``synthetic3240_bbox.json`` (its /mnt/... paths re-rooted to the folder).

    Items: ``image``, ``spectrogram`` (the middle ``seconds`` of the wav), ``index``, ``file`` (audio
    file name), ``scene``, ``label``, ``boxes`` (one normalised box). Unreadable files raise VideoReadError:
    an evaluation must not silently drop samples.
    """

    def __init__(self, root, audio_config: AudioConfig | None = None, image_transform=None):
        root = Path(root)
        found = find_is3_annotations(root) if root.is_dir() else root
        if found is None:
            raise FileNotFoundError(f"no {' or '.join(IS3_ANNOTATION_FILES)} in {root}")
        self.samples = load_is3(found)
        missing = [str(p) for s in self.samples for p in (s.image, s.audio) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{found}: {len(missing)} of the files it names are missing: "
                                    f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        self.audio_config = audio_config or AudioConfig()
        self.image_transform = image_transform or preprocess_image

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        config = self.audio_config
        track = video_io.decode_audio_track(s.audio, config.sample_rate)
        waveform = _window(track, config)
        return {
            "image": self.image_transform(video_io.read_frame(s.image, 0.0)),
            "spectrogram": spectrogram(waveform, config),
            "index": index,
            "file": s.audio.stem,
            "scene": s.scene,
            "label": s.label,
            "boxes": [[v / IS3_IMAGE_SIZE for v in s.box]],
        }


def collate(batch: list[dict]) -> dict:
    """Dict items -> dict batch: same-shape tensors stacked, ints as a tensor, anything else (boxes,
    names, raw frames of different sizes) as lists. Items that are ``{"skipped": (path, reason)}`` are
    left out; the batch's ``skipped`` lists them and ``kept`` the positions in ``batch`` of the others."""
    out = {"skipped": [item["skipped"] for item in batch if "skipped" in item],
           "kept": [j for j, item in enumerate(batch) if "skipped" not in item]}
    batch = [batch[j] for j in out["kept"]]
    for key in batch[0] if batch else ():
        values = [item[key] for item in batch]
        if all(torch.is_tensor(v) for v in values) and len({v.shape for v in values}) == 1:
            out[key] = torch.stack(values)
        elif all(isinstance(v, int) for v in values):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C and SIGTERM reach the whole process group, but it is the
    main process that decides when to stop (and saves first); a worker that died of them would break it.

    The main process must call ``kill_workers_at_exit``: multiprocessing ends daemonic children at exit
    with SIGTERM and waits for them, which would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def kill_workers_at_exit() -> None:
    """At interpreter exit (also after an uncaught error), SIGKILL the daemonic child processes (the
    DataLoader workers, which ignore SIGTERM) before multiprocessing's own exit handler joins them.
    Registered once; atexit runs it before the handler multiprocessing registered on import."""
    global _KILL_REGISTERED
    if not _KILL_REGISTERED:
        atexit.register(_kill_daemonic_children)
        _KILL_REGISTERED = True


_KILL_REGISTERED = False


def _kill_daemonic_children() -> None:
    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()
            child.join(5)
