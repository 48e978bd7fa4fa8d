"""Video and audio decoding with PyAV: probe a file, read the frame at a time, read an audio window.

Times are seconds from the start of the file (the container's start time), the clock a player shows.
Readers seek to the keyframe before the wanted time and decode forward; none decodes a whole file except
``decode_audio_track`` (``iter_audio_track``: the same, block by block) and ``iter_frames``. Audio comes back
at the rate asked for, mono float32: the mean of the channels of mono and stereo sound (as the published
loaders make stereo mono), FFmpeg's standard downmix of 5.1 and 7.1 (``_mono``: the dialogue of the centre
channel as loud as the same speech in stereo). Frames come back turned as the file's display matrix says
(phone videos).
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import av
import av.error
import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")  # what folders and file dialogs offer
SEEK_GAP_SECONDS = 5.0  # read_frames seeks again instead of decoding forward over a longer gap
AUDIO_PREROLL_SECONDS = 0.2  # audio seeks land this much early: codecs such as Opus need pre-roll
TIME_TOLERANCE = 1e-4  # a frame whose time is within this of the wanted time is "at" that time


class VideoReadError(Exception):
    """A file that cannot be read, with its path and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class VideoInfo:
    duration: float  # seconds
    fps: float
    width: int
    height: int
    has_audio: bool
    audio_rate: int  # Hz, 0 without audio
    audio_channels: int  # 0 without audio


@dataclass
class Clip:
    """A frame and the audio window centred on it."""

    frame: np.ndarray  # (H, W, 3) uint8 RGB
    waveform: np.ndarray  # (N,) float32 mono
    t: float  # seconds
    duration: float  # of the whole file, seconds


@contextmanager
def _open(path) -> Iterator[av.container.InputContainer]:
    """The opened container; FFmpeg errors, also those raised while decoding, become VideoReadError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoReadError(path, "file not found")
    try:
        with av.open(path, metadata_errors="ignore") as container:
            yield container
    except (PermissionError, av.error.FFmpegError) as e:
        # FFmpeg's generic failure -1 reads as EPERM ("Operation not permitted"): only EACCES is a file's permissions
        if e.errno == errno.EACCES:
            raise VideoReadError(path, "permission denied") from e
        detail = e.strerror if e.strerror and e.errno != errno.EPERM else "the decoder failed"
        raise VideoReadError(path, f"cannot decode: truncated or corrupt file ({detail})") from e


def _video_stream(container, path) -> av.VideoStream:
    if not container.streams.video:
        raise VideoReadError(path, "no video stream")
    return container.streams.video[0]


def _audio_stream(container, path) -> av.AudioStream:
    if not container.streams.audio:
        raise VideoReadError(path, "no audio stream")
    return container.streams.audio[0]


def _origin(container) -> float:
    """Presentation time (s) of the file's start: the zero of every time in this module."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def _duration(container) -> float:
    if container.duration is not None:
        return container.duration / av.time_base
    ends = [s.duration * s.time_base for s in container.streams if s.duration and s.time_base]
    return float(max(ends, default=0.0))


def _seek(container, stream, t: float) -> None:
    """Seek ``stream`` to the keyframe at or before presentation time ``t`` (s)."""
    container.seek(max(int(t / stream.time_base), 0), stream=stream, backward=True)


def _rewind(container, stream, path) -> None:
    """Seek ``stream`` to its first packet, also one before time 0 (AAC's priming packet in MP4: without
    it the first 21 ms decode as silence). Demuxers that refuse a time before 0 (AVI) start at 0, or at the
    first packet after it; a stream with no packet at all is an empty track."""
    for target, backward in ((int((_origin(container) - 1.0) / stream.time_base), True), (0, True), (0, False)):
        try:
            container.seek(target, stream=stream, backward=backward)
            return
        except av.error.FFmpegError:
            continue
    raise VideoReadError(path, f"no {stream.type} frames: the {stream.type} track is empty")


def _info(container, path) -> VideoInfo:
    video = _video_stream(container, path)
    audio = container.streams.audio[0] if container.streams.audio else None
    rate = video.average_rate or video.guessed_rate or 0
    return VideoInfo(
        duration=_duration(container),
        fps=float(rate),
        width=video.codec_context.width,
        height=video.codec_context.height,
        has_audio=audio is not None,
        audio_rate=audio.codec_context.sample_rate if audio else 0,
        audio_channels=audio.codec_context.channels if audio else 0,
    )


def probe(path) -> VideoInfo:
    """Duration, frame rate, size and audio format from the file's headers (decodes nothing)."""
    with _open(path) as container:
        return _info(container, path)


def _timed_frames(container, stream) -> Iterator[tuple[float, av.VideoFrame]]:
    """(time in s, frame) of each decoded frame; a frame without timestamp follows the previous one."""
    origin = _origin(container)
    period = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
    t = None
    for frame in container.decode(stream):
        t = frame.time - origin if frame.pts is not None else (t + period if t is not None else 0.0)
        yield t, frame


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """RGB uint8 (H, W, 3) as the file is meant to be shown: turned by its display matrix (phone videos)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _frames_at(container, path, times: Sequence[float]) -> list[np.ndarray]:
    """RGB frames shown at each time (s): the last frame that starts at or before it.

    Expects a container that has not been read yet: a time of 0 decodes from where it stands.
    """
    stream = _video_stream(container, path)
    origin = _origin(container)
    frames: list[np.ndarray | None] = [None] * len(times)
    decoded = None  # (time, frame) iterator since the last seek
    shown = upcoming = None  # the (time, frame) on screen at the current target, the next one decoded
    for i in np.argsort(times):
        target = max(float(times[i]), 0.0)
        if decoded is None or (shown is not None and target - shown[0] > SEEK_GAP_SECONDS):
            if target > 0:  # a fresh container is at the start already; image files cannot seek back to it
                _seek(container, stream, origin + target)
            decoded = _timed_frames(container, stream)
            shown = upcoming = None
        while True:
            upcoming = upcoming or next(decoded, None)
            if upcoming is None or (shown is not None and upcoming[0] > target + TIME_TOLERANCE):
                break
            shown, upcoming = upcoming, None
        if shown is None:
            raise VideoReadError(path, "cannot decode: truncated or corrupt file (no video frame decoded)")
        frames[i] = _to_rgb(shown[1])
    return frames


def read_frame(path, t: float) -> np.ndarray:
    """The RGB uint8 frame (H, W, 3) shown at time ``t`` (s); the last frame past the end."""
    with _open(path) as container:
        return _frames_at(container, path, [t])[0]


def read_frames(path, times: Sequence[float]) -> list[np.ndarray]:
    """The frames at several times in one forward pass (a new seek only across long gaps)."""
    with _open(path) as container:
        return _frames_at(container, path, times)


# FFmpeg's mono downmix takes each channel of stereo at 1/sqrt(2), the mean at 1/2: its downmix of more channels,
# times this, is at the level of the mean of stereo (centre 0.71, fronts 0.5, surrounds 0.35, LFE dropped)
DOWNMIX_GAIN = 0.5 ** 0.5


def _resampler(layout: av.AudioLayout, sample_rate: int) -> av.AudioResampler:
    """To packed float32 at ``sample_rate``: mono and stereo keep their channels (``_mono`` averages them);
    more channels (5.1, 7.1) are downmixed to mono by FFmpeg's matrix, where a mean would bury the centre
    channel's dialogue under five silent or quiet ones (15.6 dB down in 5.1)."""
    return av.AudioResampler(format="flt", layout=layout if layout.nb_channels <= 2 else "mono", rate=sample_rate)


def _mono(packed: np.ndarray, channels: int) -> np.ndarray:
    """The mono signal of ``_resampler``'s packed samples (1, N * C) of a sound with ``channels`` channels."""
    if channels <= 2:
        return packed.reshape(-1, channels).mean(axis=1)
    return packed.reshape(-1) * DOWNMIX_GAIN


def _mono_blocks(container, path, sample_rate: int, start: float, stop: float | None,
                 rewound=False) -> Iterator[tuple[float, np.ndarray]]:
    """Decode audio from the packet before ``start`` to ``stop`` (s, None: the end), a block at a time.

    Yields (t0, samples): mono (``_mono``) resampled to ``sample_rate``, one block after the other, the first
    block's first sample at time t0. Every frame goes through a resampler to packed float: PyAV's ``to_ndarray``
    on planar audio with 8 channels crashes the process, on packed audio it does not.
    """
    stream = _audio_stream(container, path)
    origin = _origin(container)
    if start - AUDIO_PREROLL_SECONDS > 0 and not rewound:
        _seek(container, stream, origin + start - AUDIO_PREROLL_SECONDS)
    elif not rewound:
        _rewind(container, stream, path)
    resampler = t0 = None
    for frame in container.decode(stream):
        if t0 is None:
            t0 = (frame.time if frame.pts is not None else origin) - origin
            if t0 > max(start, 0.0) + TIME_TOLERANCE and not rewound:
                # the demuxer overshot (some containers index only video keyframes): decode from the start
                _rewind(container, stream, path)
                yield from _mono_blocks(container, path, sample_rate, start, stop, rewound=True)
                return
            channels = frame.layout.nb_channels
            resampler = _resampler(frame.layout, sample_rate)
        for out in resampler.resample(frame):
            yield t0, _mono(out.to_ndarray(), channels).astype(np.float32, copy=False)
        if stop is not None and frame.time is not None and frame.time - origin > stop:
            break
    if resampler is None:
        raise VideoReadError(path, "cannot decode: truncated or corrupt file (no audio decoded)")
    for out in resampler.resample(None):
        yield t0, _mono(out.to_ndarray(), channels).astype(np.float32, copy=False)


def _decode_mono(container, path, sample_rate: int, start: float, stop: float | None):
    """(t0, samples) of ``_mono_blocks`` in one array."""
    t0, chunks = None, []
    for t0, block in _mono_blocks(container, path, sample_rate, start, stop):
        chunks.append(block)
    return t0, np.concatenate(chunks)


def slice_window(samples: np.ndarray, t0: float, start: float, num_samples: int,
                 sample_rate: int) -> np.ndarray:
    """``num_samples`` float32 samples from time ``start`` (s) of a signal whose first sample is at ``t0``,
    zeros where the window leaves the signal."""
    window = np.zeros(num_samples, dtype=np.float32)
    offset = int(round((start - t0) * sample_rate))  # index in samples of the window's first sample
    src_from, src_to = max(offset, 0), min(offset + num_samples, len(samples))
    if src_to > src_from:
        window[src_from - offset:src_to - offset] = samples[src_from:src_to]
    return window


def _audio_window(container, path, start: float, seconds: float, sample_rate: int) -> np.ndarray:
    num_samples = int(round(seconds * sample_rate))
    t0, samples = _decode_mono(container, path, sample_rate, start, start + seconds)
    return slice_window(samples, t0, start, num_samples, sample_rate)


def centred_window(track: np.ndarray, t: float, num_samples: int, sample_rate: int) -> np.ndarray:
    """``num_samples`` of a whole track (sample 0 at time 0) centred on time ``t`` (s), zeros outside it."""
    return slice_window(track, 0.0, t - num_samples / sample_rate / 2, num_samples, sample_rate)


def iter_audio_track(path, sample_rate: int) -> Iterator[np.ndarray]:
    """The whole audio track, mono, float32, a block at a time as it is decoded: sample 0 of the first block is at
    time 0 (zeros before a track that starts late; the samples before 0 of one that starts early left out).
    A reader that stops early closes the file by closing the iterator."""
    with _open(path) as container:
        to_drop = None  # samples before time 0 still to leave out
        for t0, block in _mono_blocks(container, path, sample_rate, 0.0, None):
            if to_drop is None:
                offset = int(round(t0 * sample_rate))
                if offset > 0:
                    yield np.zeros(offset, dtype=np.float32)
                to_drop = max(-offset, 0)
            dropped = min(to_drop, len(block))
            to_drop -= dropped
            if dropped < len(block):
                yield block[dropped:]


def decode_audio_track(path, sample_rate: int) -> np.ndarray:
    """The whole audio track, mono, float32 (N,); sample 0 is at time 0."""
    blocks = list(iter_audio_track(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def read_clip(path, t: float | None = None, seconds: float = 3.0, rng: np.random.Generator | None = None, *,
              sample_rate: int) -> Clip:
    """The frame at ``t`` and ``seconds`` of audio centred on it. ``t=None``: the middle of the file,
    or a uniformly random time when ``rng`` is given (training)."""
    with _open(path) as container:
        duration = _info(container, path).duration
        _audio_stream(container, path)  # fail on a missing audio track before decoding any video
        if t is None:
            t = float(rng.uniform(0.0, duration)) if rng is not None else duration / 2
        frame = _frames_at(container, path, [t])[0]
        waveform = _audio_window(container, path, t - seconds / 2, seconds, sample_rate)
    return Clip(frame=frame, waveform=waveform, t=t, duration=duration)


def iter_frames(path, start: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """(time in s, RGB uint8 frame) for every frame, in order, for sequential playback.

    With ``start`` > 0 it seeks: the first frame is the one shown at ``start`` (frames between the
    keyframe and it are decoded, not converted)."""
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        if start > 0:
            _seek(container, stream, _origin(container) + start)
            timed = _from(_timed_frames(container, stream), start)
        else:
            timed = _timed_frames(container, stream)
        for t, frame in timed:
            yield t, _to_rgb(frame)


def _from(timed: Iterator[tuple[float, av.VideoFrame]], start: float) -> Iterator[tuple[float, av.VideoFrame]]:
    """The (time, frame) shown at ``start`` (the first one when all start later), then the rest."""
    shown = None
    for item in timed:
        if shown is not None and item[0] > start + TIME_TOLERANCE:
            yield shown
            yield item
            yield from timed
            return
        shown = item
    if shown is not None:  # all frames start at or before ``start``: the last one stays on screen
        yield shown
