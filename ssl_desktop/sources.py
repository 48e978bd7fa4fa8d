"""Where frames and sound come from: camera, microphone, video files, the demo clips and test sources.

Every frame source has one interface (``open``, ``read``, ``close``) and every audio source another
(``start(ring)``, ``stop``): the app cannot tell a webcam from a looping video file or a test pattern.
Frame sources deliver frames at their own rate (``read`` blocks until the next one); audio sources write
16 kHz mono float32 samples into a ``RingBuffer`` from their own thread, as a device callback does.
A file whose frames or sound end before its duration is said to be cut short (``SequentialFrames.cut_short``,
``sound_fault``), in the live view and in the inspector alike. This module does not import Qt.
"""
from __future__ import annotations

import glob
import sys
import threading
import time
from abc import ABC, abstractmethod
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.data import video_io
from model.data.video_io import VideoReadError

from .resample import StreamResampler
from .ring_buffer import RingBuffer

PORTAUDIO_HINT = "install libportaudio2 (Debian/Ubuntu: sudo apt-get install libportaudio2)"
CUT_SHORT_SECONDS = 0.5  # frames or sound that end this much before the file's duration: the file is cut short


class SourceError(Exception):
    """A device or file that cannot be used, with a message a user can act on."""


def format_time(t: float) -> str:
    """Seconds as a player shows them: 1:05.20."""
    return f"{int(t // 60)}:{t % 60:05.2f}"


def sound_fault(name: str, heard: float, duration: float, reason: str | None = None) -> str:
    """What to tell the user of a file's sound decoded up to ``heard`` s of its ``duration`` ("" nothing);
    ``reason``: why the decoding broke off there."""
    if reason is not None:
        return f"the sound of {name} breaks off at {format_time(heard)} ({reason}): silence after it"
    if heard < duration - CUT_SHORT_SECONDS:
        return (f"the sound of {name} ends at {format_time(heard)} of its {format_time(duration)}: "
                "the file is cut short or damaged")
    return ""


# --- frame sources ------------------------------------------------------------------------------

class FrameSource(ABC):
    """A camera-like source of RGB uint8 frames (H, W, 3)."""

    name: str = "frames"

    def open(self) -> None:
        """Acquire the device or file; raises ``SourceError``."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame, blocking until it is due; None when the source has ended."""

    def close(self) -> None:
        """Release the device or file (safe to call twice)."""

    def playing(self) -> Path | None:
        """The video file whose frames come now (None: not a file)."""
        return None

    def fault(self) -> str:
        """What is wrong with what the source delivers, though it delivers ("": nothing), e.g. a file cut short."""
        return ""


class Pacer:
    """Sleeps until the next tick of a fixed rate; after a long stall it restarts instead of rushing."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self._next: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next is None or now - self._next > self.period:
            self._next = now
        else:
            time.sleep(max(self._next - now, 0.0))
        self._next += self.period


class CameraSource(FrameSource):
    """A webcam through OpenCV; frames come at the camera's own rate."""

    def __init__(self, index: int = 0, name: str | None = None):
        self.index = index
        self.name = name or f"camera {index}"
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{self.name} cannot be opened (in use by another program, or unplugged?)")
        self._capture = capture

    def read(self) -> np.ndarray | None:
        ok, bgr = self._capture.read()
        if not ok:
            raise SourceError(f"{self.name} stopped delivering frames")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class PatternSource(FrameSource):
    """A test camera: a bright disc circling over a colour gradient, drawn with numpy at ``fps``."""

    def __init__(self, size: tuple[int, int] = (320, 240), fps: float = 25.0, frames: int | None = None):
        self.name = "test pattern"
        self.fps = fps
        self.width, self.height = size
        self.frames = frames  # None: endless
        self._count = 0
        self._pacer = Pacer(fps)
        ys, xs = np.mgrid[0:self.height, 0:self.width]
        self._xs, self._ys = xs, ys
        self._background = np.stack(
            [80 + 100 * xs / self.width, 60 + 80 * ys / self.height, np.full_like(xs, 120.0)], axis=-1
        ).astype(np.uint8)

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self._count >= self.frames:
            return None
        self._pacer.wait()
        angle = 2 * np.pi * self._count / (4 * self.fps)  # one turn in 4 s
        cx = self.width * (0.5 + 0.3 * np.cos(angle))
        cy = self.height * (0.5 + 0.3 * np.sin(angle))
        frame = self._background.copy()
        frame[(self._xs - cx) ** 2 + (self._ys - cy) ** 2 < (self.height / 8) ** 2] = (250, 240, 60)
        self._count += 1
        return frame


class Playlist:
    """Video files played one after the other in a loop on the wall clock, shared by a frame source and
    an audio source so that picture and sound stay in step (like a camera and a microphone).

    ``load`` reads only the files' headers: the picture plays at once. ``decode_sound`` decodes their sound
    in a thread of its own, block by block, into one array of the whole timeline sized from the durations
    (silence until decoded: ``decoded`` says how far); ``stop_sound`` ends it between two blocks.
    """

    def __init__(self, paths, sample_rate: int):
        self.paths = [Path(p) for p in paths]
        self.sample_rate = sample_rate  # of the decoded sound
        if not self.paths:
            raise SourceError("no video files to play")
        self.infos: list[video_io.VideoInfo] = []
        self.offsets: list[float] = []  # start of each clip on the playlist's timeline, s
        self.duration = 0.0
        self.audio = np.zeros(0, dtype=np.float32)  # the whole timeline's sound, mono at sample_rate
        self.decoded = 0  # samples of ``audio`` from its start that hold the files' sound (or a silence they have)
        self._faults: dict[tuple[str, Path], str] = {}  # what is wrong with a file's frames or sound
        self._start: float | None = None
        self._lock = threading.Lock()
        self._decoder: threading.Thread | None = None
        self._stopping = threading.Event()

    def load(self) -> None:
        """Probe every file (its headers only); raises ``SourceError`` if none plays."""
        if self.infos:
            return
        readable, infos, offsets, duration, problems = [], [], [], 0.0, []
        for path in self.paths:
            try:
                info = video_io.probe(path)
            except VideoReadError as exc:
                problems.append(str(exc))
                continue
            if info.duration <= 0:
                problems.append(f"{path}: empty video")
                continue
            readable.append(path)
            infos.append(info)
            offsets.append(duration)
            duration += info.duration
        if not readable:
            raise SourceError("cannot play " + "; ".join(problems))
        self.paths, self.offsets, self.duration, self.infos = readable, offsets, duration, infos

    def decode_sound(self) -> None:
        """Start decoding the files' sound tracks, in order, into ``audio`` (after ``load``)."""
        lengths = [int(round(info.duration * self.sample_rate)) for info in self.infos]
        self.audio = np.zeros(sum(lengths), dtype=np.float32)
        self.decoded = 0
        self._stopping.clear()
        self._decoder = threading.Thread(target=self._decode, args=(lengths,), name=f"sound of {self.name}",
                                         daemon=True)
        self._decoder.start()

    def _decode(self, lengths: list[int]) -> None:
        start = 0
        for path, info, length in zip(self.paths, self.infos, lengths):
            if info.has_audio and not self._decode_track(path, info.duration, start, length):
                return
            start += length
            self.decoded = start

    def _decode_track(self, path: Path, duration: float, start: int, length: int) -> bool:
        """Decode one file's sound into ``audio[start:start + length]`` (samples past it left out) and say what
        is wrong with it; False when stopped."""
        filled, reason = 0, None
        try:
            with closing(video_io.iter_audio_track(path, self.sample_rate)) as blocks:
                for block in blocks:
                    if self._stopping.is_set():
                        return False
                    taken = block[:length - filled]
                    self.audio[start + filled:start + filled + len(taken)] = taken
                    filled += len(taken)
                    self.decoded = start + filled
                    if filled == length:
                        break
        except VideoReadError as exc:
            reason = exc.reason
        self.report("sound", path, sound_fault(path.name, filled / self.sample_rate, duration, reason))
        return True

    def stop_sound(self) -> None:
        """Stop decoding between two blocks (safe to call twice)."""
        self._stopping.set()
        if self._decoder is not None:
            self._decoder.join()
            self._decoder = None

    def sound_decoded(self, sample: int) -> bool:
        """Whether sample ``sample`` of the looping timeline (not wrapped) holds the files' sound yet."""
        return len(self.audio) > 0 and sample % len(self.audio) < self.decoded

    def report(self, what: str, path: Path, text: str) -> None:
        """Say what is wrong with the ``what`` ("frames" or "sound") of ``path`` ("": nothing)."""
        if text:
            with self._lock:
                self._faults[(what, path)] = text

    def fault(self) -> str:
        """What is wrong with the files played ("": nothing), frames before sound."""
        with self._lock:
            return "; ".join(text for _, text in sorted(self._faults.items()))

    def position(self) -> float:
        """Seconds since playback started, on the looping timeline's own clock (not wrapped)."""
        with self._lock:
            now = time.monotonic()
            if self._start is None:
                self._start = now
            return now - self._start

    def locate(self, position: float) -> tuple[int, float]:
        """(clip index, seconds into that clip) of a position on the timeline (wrapped)."""
        t = position % self.duration
        index = max(i for i, offset in enumerate(self.offsets) if offset <= t)
        return index, t - self.offsets[index]

    def playing(self) -> Path | None:
        """The file playing now (None before the playlist is loaded)."""
        return self.paths[self.locate(self.position())[0]] if self.infos else None

    @property
    def name(self) -> str:
        return self.paths[0].name if len(self.paths) == 1 else f"{len(self.paths)} clips"


class SequentialFrames:
    """Frames of one file by time, decoded forward; a jump back, or far ahead, seeks."""

    def __init__(self, path):
        self.path = path
        self._frames = None  # iterator over (t, frame)
        self._shown = self._upcoming = None
        self.exhausted = False  # the decoder gave its last frame: the one shown stays until a seek back

    def frame_at(self, t: float) -> tuple[float, np.ndarray]:
        """(time, frame) of the frame on screen at ``t`` s; raises ``SourceError``."""
        if self._frames is None or (self._shown is not None and not (
                self._shown[0] <= t < self._shown[0] + video_io.SEEK_GAP_SECONDS)):
            self.close()
            self._frames = video_io.iter_frames(self.path, max(t, 0.0))
        try:
            while True:
                self._upcoming = self._upcoming or next(self._frames, None)
                self.exhausted = self._upcoming is None
                if self._upcoming is None or (self._shown is not None and self._upcoming[0] > t):
                    break
                self._shown, self._upcoming = self._upcoming, None
        except VideoReadError as exc:
            raise SourceError(str(exc)) from exc
        if self._shown is None:
            raise SourceError(f"{self.path}: no frame could be decoded")
        return self._shown

    def cut_short(self, duration: float) -> str:
        """What to tell the user once the frames have ended ``CUT_SHORT_SECONDS`` or more before the file's
        ``duration`` (s); "" while they have not."""
        if not self.exhausted or self._shown is None or self._shown[0] >= duration - CUT_SHORT_SECONDS:
            return ""
        return (f"{Path(self.path).name} has no frames after {format_time(self._shown[0])} of its "
                f"{format_time(duration)}: the file is cut short or damaged")

    def close(self) -> None:
        """Close the decoder (from the thread that reads)."""
        if self._frames is not None:
            self._frames.close()
        self._frames = None
        self._shown = self._upcoming = None


class PlaylistFrameSource(FrameSource):
    """The frames of a ``Playlist`` at ``fps``, in step with its ``PlaylistAudioSource``."""

    def __init__(self, playlist: Playlist, fps: float = 25.0):
        self.playlist = playlist
        self._pacer = Pacer(fps)
        self._clip: SequentialFrames | None = None

    @property
    def name(self) -> str:
        return self.playlist.name

    def open(self) -> None:
        self.playlist.load()

    def playing(self) -> Path | None:
        return self.playlist.playing()

    def fault(self) -> str:
        return self.playlist.fault()

    def read(self) -> np.ndarray | None:
        self._pacer.wait()
        index, t = self.playlist.locate(self.playlist.position())
        path = self.playlist.paths[index]
        if self._clip is None or self._clip.path != path:
            self.close()
            self._clip = SequentialFrames(path)
        image = self._clip.frame_at(t)[1]
        self.playlist.report("frames", path, self._clip.cut_short(self.playlist.infos[index].duration))
        return image

    def close(self) -> None:
        if self._clip is not None:
            self._clip.close()
            self._clip = None


# --- audio sources ------------------------------------------------------------------------------

class AudioSource(ABC):
    """A microphone-like source writing mono float32 at the ring buffer's rate from its own thread.

    ``overflows`` counts the blocks of sound the device lost because they were not taken in time."""

    name: str = "sound"
    overflows: int = 0

    @abstractmethod
    def start(self, ring: RingBuffer) -> None:
        """Begin writing into ``ring``; raises ``SourceError``."""

    @abstractmethod
    def stop(self) -> None:
        """Stop writing and release the device (safe to call twice)."""

    def delivers_sound(self) -> bool:
        """Whether what it writes now is its sound (False: silence stands in for a sound not there yet, or none)."""
        return True


class ClockedAudioSource(AudioSource):
    """An audio source fed by a thread that writes, every ``block`` seconds, the samples due by then."""

    block = 0.02

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.rate = 0  # samples per second, the ring's

    def start(self, ring: RingBuffer) -> None:
        self.rate = ring.sample_rate
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, args=(ring,), name=f"audio: {self.name}", daemon=True)
        self._thread.start()

    def _run(self, ring: RingBuffer) -> None:
        written = self.samples_due()
        while not self._stopping.wait(self.block):
            due = self.samples_due()
            if due > written:
                ring.write(self.samples(written, due))
                written = due

    @abstractmethod
    def samples_due(self) -> int:
        """How many samples the source has produced by now, counted from its start."""

    @abstractmethod
    def samples(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` of the source's endless signal."""

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class PlaylistAudioSource(ClockedAudioSource):
    """The sound of a ``Playlist``, advancing with its clock: silence until the playlist's sound is decoded there."""

    def __init__(self, playlist: Playlist):
        super().__init__()
        self.playlist = playlist

    @property
    def name(self) -> str:
        return f"sound of {self.playlist.name}"

    def start(self, ring: RingBuffer) -> None:
        self.playlist.load()
        if not any(info.has_audio for info in self.playlist.infos):  # silence would still give heatmaps
            raise SourceError(f"{self.playlist.name} has no sound track")
        if self.playlist.sample_rate != ring.sample_rate:
            raise ValueError(f"the playlist's sound is at {self.playlist.sample_rate} Hz, "
                             f"the ring at {ring.sample_rate}")
        self.playlist.decode_sound()
        super().start(ring)

    def stop(self) -> None:
        self.playlist.stop_sound()
        super().stop()

    def delivers_sound(self) -> bool:
        return self.playlist.sound_decoded(self.samples_due())

    def samples_due(self) -> int:
        return int(self.playlist.position() * self.rate)

    def samples(self, start: int, stop: int) -> np.ndarray:
        return np.take(self.playlist.audio, np.arange(start, stop), mode="wrap")


class ToneSource(ClockedAudioSource):
    """A test microphone: a 440 Hz tone pulsing twice a second, with a little noise."""

    def __init__(self, amplitude: float = 0.3):
        super().__init__()
        self.name = "test tone"
        self.amplitude = amplitude
        self._start = time.monotonic()

    def samples_due(self) -> int:
        return int((time.monotonic() - self._start) * self.rate)

    def samples(self, start: int, stop: int) -> np.ndarray:
        t = np.arange(start, stop) / self.rate
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t)
        noise = np.random.default_rng(start).normal(0.0, 0.02, len(t))
        return (self.amplitude * envelope * np.sin(2 * np.pi * 440.0 * t) + noise).astype(np.float32)


class SilentSource(AudioSource):
    """No sound at all: what the app uses when there is no microphone."""

    name = "no microphone"

    def start(self, ring: RingBuffer) -> None:
        ring.clear()

    def delivers_sound(self) -> bool:
        return False

    def stop(self) -> None:
        pass


def import_sounddevice():
    """The sounddevice module, or ``SourceError`` when the PortAudio library is missing."""
    try:
        import sounddevice
    except (OSError, ImportError) as exc:  # OSError: the PortAudio library is not installed
        raise SourceError(f"no sound devices: the PortAudio library is missing ({exc}); {PORTAUDIO_HINT}") from exc
    return sounddevice


class MicrophoneSource(AudioSource):
    """A microphone through PortAudio (sounddevice), mono, its callback writing into the ring at the ring's
    rate. A device that cannot record at that rate is opened at its own default rate and resampled."""

    def __init__(self, device: int | None = None, name: str | None = None):
        self.device = device
        self.name = name or "default microphone"
        self.rate = 0  # the rate the device records at, once started
        self._stream = None

    def start(self, ring: RingBuffer) -> None:
        sd = import_sounddevice()
        if self.device is None and sd.default.device[0] < 0:
            raise SourceError("no microphone found")
        try:
            self.rate = self._device_rate(sd, ring.sample_rate)
            resampler = StreamResampler(self.rate, ring.sample_rate) if self.rate != ring.sample_rate else None

            def callback(indata, frames, time_info, status):
                if status.input_overflow:
                    self.overflows += 1
                ring.write(resampler.process(indata[:, 0]) if resampler else indata[:, 0])

            self._stream = sd.InputStream(device=self.device, samplerate=self.rate, channels=1,
                                          dtype="float32", callback=callback)
            self._stream.start()
        except Exception as exc:  # PortAudioError or ValueError for a missing or busy device
            self._stream = None
            raise SourceError(f"{self.name} cannot be opened at {self.rate} Hz mono: {exc}") from exc

    def _device_rate(self, sd, wanted: int) -> int:
        """``wanted`` when the device takes it, else the device's default rate."""
        try:
            sd.check_input_settings(device=self.device, samplerate=wanted, channels=1, dtype="float32")
            return wanted
        except Exception:  # PortAudioError: invalid sample rate
            return int(sd.query_devices(self.device, "input")["default_samplerate"])

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


# --- device lists -------------------------------------------------------------------------------

@dataclass
class Device:
    index: int
    name: str


def list_cameras() -> list[Device]:
    """Video capture devices. On Linux from /dev/video* without opening them; elsewhere by probing."""
    if sys.platform.startswith("linux"):
        devices = []
        for node in sorted(glob.glob("/dev/video*"), key=lambda p: int(p[len("/dev/video"):] or 0)):
            index = int(node[len("/dev/video"):] or 0)
            name_file = Path(f"/sys/class/video4linux/video{index}/name")
            name = name_file.read_text().strip() if name_file.is_file() else node
            devices.append(Device(index, f"{name} ({node})"))
        return devices
    devices = []
    for index in range(4):
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            devices.append(Device(index, f"camera {index}"))
        capture.release()
    return devices


def list_microphones() -> list[Device]:
    """Input devices; raises ``SourceError`` when PortAudio is missing."""
    sd = import_sounddevice()
    return [Device(i, d["name"]) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def has_output_device() -> bool:
    """Whether sound can be played (a default output device exists and PortAudio is installed)."""
    try:
        sd = import_sounddevice()
        return any(d["max_output_channels"] > 0 for d in sd.query_devices())
    except SourceError:
        return False
