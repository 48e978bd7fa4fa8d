"""The decoded cache: frames and audio of each video decoded once, stored as ``.npz``."""
from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.data import video_io


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
