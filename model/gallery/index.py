"""Gallery: a folder of clips indexed by the model, for "which known clips sound and look like this".

Each video (recursive; mp4/mkv/webm/avi/mov) is read at its middle frame with the ``seconds`` of sound
around it (``video_io.read_clip``) and keeps: the global unit visual vector, the unit audio vector, a
128x96 thumbnail and its class from ``annotations.json`` (in the folder, or in its parent when the folder
is a ``videos/`` folder) when there is one.

    gallery = load_or_build_gallery(folder, model)       # reuses <folder>/.ssl_gallery.safetensors
    gallery.images_for_sound(audio_emb, k)               # gallery IMAGES that match a sound
    gallery.sounds_for_image(image_emb, k)               # gallery SOUNDS that match an image
    gallery.audio_embedding(i)                          # clip i's sound as the query of the live view

Index file ``<folder>/.ssl_gallery.safetensors`` (written atomically), tensors:
``image_emb`` (N, D) float32, ``audio_emb`` (N, D) float32, ``thumbnails`` (N, 96, 128, 3) uint8; metadata (strings): ``format`` (``ssl-gallery/1``), ``model``
(fingerprint of the model's configs and weights), ``entries`` (JSON list of ``{file, size, mtime_ns,
label}``, ``file`` relative to the folder, row i of every tensor) and ``skipped`` (JSON list of
``{file, size, mtime_ns, reason}``). A file whose size and mtime are unchanged is not read again; a
different model fingerprint recomputes everything.

Queries are exact, except in a gallery of ``vector_search.INDEX_MIN_ROWS`` clips or more when FAISS is
installed: it is searched through an index (approximate; 3.4 ms from 1M clips instead of ~360 ms on the
2-core CPU of docs/BENCHMARKS.md; ``model.gallery.vector_search``).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from model.checkpoints.store import CheckpointError, read_safetensors, write_safetensors_atomic
from model.data.annotations import ANNOTATION_FILES, load_vggss_annotations
from model.data.video_io import VIDEO_EXTENSIONS, VideoReadError, read_clip
from model.localize import encode_frame, encode_sound, image_vector
from model.gallery.vector_search import VectorSearch

INDEX_NAME = ".ssl_gallery.safetensors"
FORMAT = "ssl-gallery/2"  # /1 also held every clip's visual map
THUMB_W, THUMB_H = 128, 96
TENSORS = ("image_emb", "audio_emb", "thumbnails")

log = logging.getLogger(__name__)


class GalleryIndexError(Exception):
    """An index file that cannot be used (it is then rebuilt)."""


@dataclass
class Entry:
    """One indexed clip: its path relative to the gallery folder, the stamp it was read at, its class."""

    file: str
    size: int
    mtime_ns: int
    label: str | None = None


@dataclass
class Skipped:
    """A video that could not be indexed, and why."""

    file: str
    size: int
    mtime_ns: int
    reason: str


@dataclass
class Match:
    """One query result: gallery row ``index``, its absolute path, class, cosine similarity, thumbnail."""

    index: int
    file: str
    label: str | None
    similarity: float
    thumbnail: np.ndarray  # (96, 128, 3) uint8 RGB


class BuildCancelled(Exception):
    """``should_stop()`` became true; ``partial`` holds the clips indexed so far."""

    def __init__(self, partial: Gallery):
        super().__init__("gallery build cancelled")
        self.partial = partial


@dataclass
class Gallery:
    """Row i of every tensor is ``entries[i]``; all vectors and maps are unit-norm (along D)."""

    root: Path
    entries: list[Entry]
    image_emb: torch.Tensor  # (N, D) float32
    audio_emb: torch.Tensor  # (N, D) float32
    thumbnails: torch.Tensor  # (N, THUMB_H, THUMB_W, 3) uint8
    model_id: str = ""
    skipped: list[Skipped] = field(default_factory=list)
    # exact top-k, or an index for large galleries (built here, in the thread that builds or loads)
    images: VectorSearch = field(init=False, repr=False, compare=False)
    sounds: VectorSearch = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.images, self.sounds = VectorSearch(self.image_emb), VectorSearch(self.audio_emb)

    def __len__(self) -> int:
        return len(self.entries)

    def path(self, index: int) -> Path:
        return self.root / self.entries[index].file

    def audio_embedding(self, index: int) -> torch.Tensor:
        """Clip ``index``'s unit audio vector (D,): use a gallery sound as the query."""
        return self.audio_emb[index]

    def images_for_sound(self, audio_emb: torch.Tensor, k: int) -> list[Match]:
        """The k gallery images whose global visual vector is most similar to a sound (D,)."""
        return self._matches(*self.images.top_k(_vector(audio_emb), k))

    def sounds_for_image(self, image_emb: torch.Tensor, k: int) -> list[Match]:
        """The k gallery sounds most similar to an image's global visual vector (D,)."""
        return self._matches(*self.sounds.top_k(_vector(image_emb), k))

    def _matches(self, values: torch.Tensor, rows: torch.Tensor) -> list[Match]:
        return [Match(int(i), str(self.path(int(i))), self.entries[int(i)].label, float(v),
                      self.thumbnails[int(i)].numpy()) for v, i in zip(values, rows)]

    def metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "model": self.model_id,
            "entries": json.dumps([asdict(e) for e in self.entries]),
            "skipped": json.dumps([asdict(s) for s in self.skipped]),
        }

    def save(self, path) -> None:
        write_safetensors_atomic(path, {name: getattr(self, name) for name in TENSORS}, self.metadata())

    @classmethod
    def load(cls, path, root=None) -> Gallery:
        """A saved index; ``root`` (default: the index's folder) is where its files are."""
        try:
            tensors, meta = read_safetensors(path)
            if meta.get("format") != FORMAT:
                raise GalleryIndexError(f"{path}: not a gallery index ({meta.get('format')!r})")
            entries = [Entry(**e) for e in json.loads(meta["entries"])]
            skipped = [Skipped(**s) for s in json.loads(meta["skipped"])]
            _check_tensors(path, tensors, len(entries))
            gallery = cls(Path(root or Path(path).parent), entries, *(tensors[n] for n in TENSORS),
                          model_id=meta["model"], skipped=skipped)
        except (CheckpointError, KeyError, TypeError, ValueError) as e:
            raise GalleryIndexError(f"{path}: unusable gallery index ({e})") from e
        return gallery


def _check_tensors(path, tensors: dict[str, torch.Tensor], rows: int) -> None:
    """A GalleryIndexError unless an index's tensors are what a ``Gallery`` of ``rows`` clips holds."""
    if any(name not in tensors for name in TENSORS):
        raise GalleryIndexError(f"{path}: no {' or '.join(n for n in TENSORS if n not in tensors)} tensor")
    image, audio, thumbnails = (tensors[name] for name in TENSORS)
    if (image.dim() != 2 or image.shape != audio.shape or len(image) != rows
            or image.dtype != torch.float32 or audio.dtype != torch.float32
            or tuple(thumbnails.shape) != (rows, THUMB_H, THUMB_W, 3) or thumbnails.dtype != torch.uint8):
        raise GalleryIndexError(f"{path}: tensors of other shapes or types than an index of {rows} clips holds")
    if not (torch.isfinite(image).all() and torch.isfinite(audio).all()):
        raise GalleryIndexError(f"{path}: NaN or infinite vectors")


def _vector(x: torch.Tensor) -> torch.Tensor:
    """A query (D,) or (1, D) on any device -> (D,) float32 on the CPU."""
    return x.detach().reshape(-1).float().cpu()


def model_fingerprint(model) -> str:
    """A hash of the model's configs and weights: an index made by another model is not reused."""
    digest = hashlib.sha256(json.dumps([asdict(model.config), asdict(model.audio_config)]).encode())
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """RGB frame (H, W, 3) -> (THUMB_H, THUMB_W, 3) uint8, aspect kept, letterboxed in black."""
    h, w = frame.shape[:2]
    scale = min(THUMB_W / w, THUMB_H / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((THUMB_H, THUMB_W, 3), np.uint8)
    y0, x0 = (THUMB_H - nh) // 2, (THUMB_W - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def index_path(folder) -> Path:
    return Path(folder) / INDEX_NAME


def scan(folder) -> list[tuple[str, int, int]]:
    """(path relative to ``folder``, size, mtime_ns) of every video under it, sorted."""
    folder = Path(folder)
    found = []
    for p in folder.rglob("*"):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            stat = p.stat()
            found.append((p.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def read_labels(folder) -> dict[str, str]:
    """Clip id (file stem) -> class, from the folder's annotation file (or its parent's, for ``videos/``)."""
    folder = Path(folder)
    for base in (folder, folder.parent) if folder.name == "videos" else (folder,):
        for name in ANNOTATION_FILES:
            if (base / name).is_file():
                return {Path(a.file).stem: a.label for a in load_vggss_annotations(base / name) if a.label}
    return {}


@torch.no_grad()
def encode_clip(path: Path, model, device) -> dict[str, torch.Tensor]:
    """One gallery row (CPU tensors without the batch dimension) for the video at ``path``."""
    audio_config = model.audio_config
    clip = read_clip(path, seconds=audio_config.seconds, sample_rate=audio_config.sample_rate)
    vmap, _ = encode_frame(model, clip.frame, device)  # (1, D, h, w)
    return {
        "image_emb": image_vector(vmap)[0].float().cpu(),
        "audio_emb": encode_sound(model, clip.waveform, device).vector[0].float().cpu(),
        "thumbnails": torch.from_numpy(thumbnail(clip.frame)),
    }


def _assemble(root, entries, rows, model_id, skipped, embed_dim) -> Gallery:
    if rows:
        tensors = [torch.stack([row[name] for row in rows]) for name in TENSORS]
    else:
        tensors = [torch.zeros(0, embed_dim), torch.zeros(0, embed_dim),
                   torch.zeros(0, THUMB_H, THUMB_W, 3, dtype=torch.uint8)]
    return Gallery(Path(root), entries, *tensors, model_id=model_id, skipped=skipped)


def build_gallery(folder, model, device="cpu", progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, previous: Gallery | None = None) -> Gallery:
    """Index every video under ``folder`` with ``model`` (in eval mode, on ``device``).

    Rows of ``previous`` (same model, same file size and mtime) are reused, not read again.
    ``progress(done, total)`` counts the files that are read; ``should_stop()`` is asked before each
    one and, once true, no more files are read and ``BuildCancelled`` is raised with the clips indexed
    so far (reused ones included).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    model_id = model_fingerprint(model)
    labels = read_labels(folder)
    same_model = previous is not None and previous.model_id == model_id
    old_rows = {e.file: (i, e) for i, e in enumerate(previous.entries)} if same_model else {}
    old_skips = {s.file: s for s in previous.skipped} if previous is not None else {}
    files = scan(folder)

    def reusable(file, size, mtime):
        old = old_rows[file][1] if file in old_rows else old_skips.get(file)
        return old is not None and (old.size, old.mtime_ns) == (size, mtime)

    total = sum(not reusable(*f) for f in files)
    done, stopped = 0, False
    entries, rows, skipped = [], [], []
    if progress:
        progress(0, total)
    for file, size, mtime in files:
        label = labels.get(Path(file).stem)
        if reusable(file, size, mtime):
            if file in old_rows:
                i = old_rows[file][0]
                entries.append(Entry(file, size, mtime, label))
                rows.append({name: getattr(previous, name)[i] for name in TENSORS})
            else:
                skipped.append(old_skips[file])
            continue
        stopped = stopped or bool(should_stop and should_stop())
        if stopped:  # keep every reusable row, read nothing more
            continue
        try:
            rows.append(encode_clip(folder / file, model, device))
            entries.append(Entry(file, size, mtime, label))
        except (VideoReadError, OSError) as e:
            skipped.append(Skipped(file, size, mtime, getattr(e, "reason", str(e))))
        done += 1
        if progress:
            progress(done, total)
    gallery = _assemble(folder, entries, rows, model_id, skipped, model.config.embed_dim)
    if stopped:
        raise BuildCancelled(gallery)
    return gallery


def load_or_build_gallery(folder, model, device="cpu", progress=None, should_stop=None) -> Gallery:
    """The folder's gallery: its saved index, brought up to date (only new or changed files are read)
    and saved again when anything changed. A cancelled build saves what it indexed, then re-raises."""
    path = index_path(folder)
    previous = None
    if path.is_file():
        try:
            previous = Gallery.load(path, root=folder)
            if previous.image_emb.shape[1] != model.config.embed_dim:  # tampered, or of another model
                raise GalleryIndexError(f"{path}: vectors of {previous.image_emb.shape[1]} values, the model's "
                                        f"have {model.config.embed_dim}")
        except GalleryIndexError as e:
            previous = None
            log.warning("rebuilding the gallery index: %s", e)
    try:
        gallery = build_gallery(folder, model, device, progress, should_stop, previous)
    except BuildCancelled as stop:
        _save(stop.partial, path)
        raise
    if previous is None or gallery.metadata() != previous.metadata():
        _save(gallery, path)
    return gallery


def _save(gallery: Gallery, path: Path) -> None:
    """Save the index; a read-only folder still gets its (unsaved) gallery."""
    try:
        gallery.save(path)
    except (OSError, CheckpointError) as e:
        log.warning("gallery index not saved: %s", e)
