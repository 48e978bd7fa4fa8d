"""Datasets of clips: folders of videos (or frame + sound pairs) and IS3, and their collate function.

Boxes are normalised ``[x1, y1, x2, y2]`` in 0..1 in every item (IS3's pixel boxes are divided by 224).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from model.preprocess.audio import AudioConfig, spectrogram
from model.data import video_io
from model.data.annotations import (
    ANNOTATION_FILES,
    IS3_ANNOTATION_FILES,
    IS3_IMAGE_SIZE,
    Annotation,
    find_is3_annotations,
    load_is3,
    load_vggss_annotations,
)
from model.data.cache import CacheConfig, DecodedCache
from model.data.video_io import VIDEO_EXTENSIONS, VideoReadError
from model.preprocess.image import preprocess_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


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
    return video_io.centred_window(track, centre, config.num_samples, config.sample_rate)


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


class NoReadableClip(ValueError):
    """Training found no clip of the folder readable (each one probed well, then failed while reading)."""


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
        raise NoReadableClip(f"no readable clip in {self.root}: every one failed while reading "
                             f"({len(self.skipped)} skipped, e.g. {self.skipped[:2]})")

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index``'s RGB uint8 frame and its waveform, as the model would see them (the eval moment in
        eval mode); raises ``VideoReadError`` for an unreadable clip."""
        return self._read(self.sources[index])

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
    file name), ``scene``, ``label``, ``boxes`` (one normalised box). An unreadable file raises a ValueError
    naming it: an evaluation must not silently drop samples.
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
        try:
            waveform = _window(video_io.decode_audio_track(s.audio, config.sample_rate), config)
            frame = video_io.read_frame(s.image, 0.0)
        except VideoReadError as e:  # a ValueError: a message of one line, also from a DataLoader worker
            raise ValueError(f"{e} (an IS3 evaluation needs every file of its set)") from e
        return {
            "image": self.image_transform(frame),
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


