"""What the live view runs: a camera (the bundled demo clips when there is none or it fails), the demo clips or
a video file looped as if it were a camera, each heard through its own sound or a microphone; the camera and the
microphone chosen last are remembered. The sound of the demo or a file is played (muted until asked) where it can be.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from .live import LivePipeline
from .player import Monitor, Volume
from .sources import (
    CameraSource,
    Device,
    MicrophoneSource,
    Playlist,
    PlaylistAudioSource,
    PlaylistFrameSource,
    SourceError,
    has_output_device,
    list_cameras,
    list_microphones,
)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_DIR = RESOURCES / "demo"


def demo_clips() -> list[Path]:
    """The bundled demo videos, in name order."""
    return sorted((DEMO_DIR / "videos").glob("*.mp4"))


class LiveSources(QObject):
    """Chooses and starts the sources of ``pipeline``; ``settings`` remembers the devices.

    ``kind`` says what runs: "camera", "demo", "file", "custom" (any sources given to ``start``) or "" (none yet).
    """

    message = Signal(str, str, str)  # key ("source" or "sound"), text ("" clears), level
    note = Signal(str, int)  # a passing remark for the status bar, and for how many ms
    started = Signal(str)  # what runs now, e.g. "live: cam A + USB mic"

    def __init__(self, pipeline: LivePipeline, settings: QSettings, parent=None):
        super().__init__(parent)
        self.pipeline, self.settings = pipeline, settings
        self.kind = ""
        self.camera: Device | None = None  # the camera in use
        self.microphone: Device | None = self._remembered_microphone()  # None: the default input device
        self.sound_from_video = True  # with the demo or a file as the video: its own sound, else the microphone
        self.file: Path | None = None  # the file looped as the live source
        self.volume = Volume(muted=True)  # the demo's or a looped file's sound: M unmutes it
        self.monitor: Monitor | None = None  # plays that sound
        pipeline.source_failed.connect(self._on_source_failed)

    def start_choice(self, choice: str) -> None:
        """``camera`` (falls back to the demo), ``demo`` or the path of a video file to loop."""
        if choice == "camera":
            self.use_camera(None)
        elif choice == "demo":
            self.use_demo()
        else:
            self.use_file(Path(choice))

    def use_camera(self, camera: Device | None) -> None:
        """Go live with ``camera`` (None: the one chosen last, else the first) and the chosen microphone."""
        if camera is None:
            cameras = list_cameras()
            if not cameras:
                self.message.emit("source", "no camera found: showing the bundled demo clips instead", "info")
                self.use_demo(keep_message=True)
                return
            remembered = self.settings.value("camera")
            camera = next((c for c in cameras if c.name == remembered), cameras[0])
        self.camera = camera
        self.settings.setValue("camera", camera.name)
        self.message.emit("source", "", "info")
        self.start(CameraSource(camera.index, camera.name), self._microphone_source(), "camera")

    def use_microphone(self, microphone: Device | None) -> None:
        """Hear ``microphone`` (None: the default one), also with the demo or a file as the video."""
        self.microphone = microphone
        self.sound_from_video = False
        self.settings.setValue("microphone", microphone.name if microphone else "")
        self.restart()

    def use_video_sound(self) -> None:
        """Hear the demo's or the file's own sound again."""
        self.sound_from_video = True
        self.restart()

    def uses_video_sound(self) -> bool:
        return self.kind in ("demo", "file") and self.sound_from_video

    def restart(self) -> None:
        """Start the chosen sources again (another microphone, or the model hears at another rate)."""
        if self.kind == "camera":
            self.use_camera(self.camera)
        elif self.kind == "demo":
            self.use_demo()
        elif self.kind == "file":
            self.use_file(self.file)

    def use_demo(self, keep_message: bool = False) -> None:
        clips = demo_clips()
        if not clips:
            self.message.emit("source", f"no demo clips in {DEMO_DIR / 'videos'} "
                              "(make them with: python bench/make_demo_clips.py)", "error")
            return
        if not keep_message:
            self.message.emit("source", "", "info")
        self.start(*self._playlist_sources(Playlist(clips, self.pipeline.sample_rate)), "demo")

    def use_file(self, path: Path) -> None:
        """Loop a video file as if it were a camera and a microphone."""
        self.message.emit("source", "", "info")
        self.file = path
        self.start(*self._playlist_sources(Playlist([path], self.pipeline.sample_rate)), "file")

    def start(self, frame_source, audio_source, kind: str = "custom") -> None:
        """Run any frame and audio source live (the devices, the demo, or test sources)."""
        self.kind = kind
        problem = self.pipeline.start(frame_source, audio_source)
        self._start_monitor(isinstance(audio_source, PlaylistAudioSource))
        if problem:
            self.message.emit("sound", f"no sound ({problem}): the heatmap needs sound", "warning")
        else:
            self.message.emit("sound", "", "info")
        self.started.emit(f"live: {frame_source.name} + {self.pipeline.audio_source.name}")

    def unplayed_reason(self) -> str:
        """Why the live sound is not played ("" when it is)."""
        if self.monitor is not None:
            return ""
        return ("no sound output device" if self.uses_video_sound()
                else "a microphone is never played back (it would feed back)")

    def shutdown(self) -> None:
        """Stop playing the live sound (the pipeline stops the sources)."""
        self._start_monitor(False)

    def _remembered_microphone(self) -> Device | None:
        """The microphone chosen last time, when it is still there (None: the default one)."""
        name = self.settings.value("microphone", "")
        try:
            return next((m for m in list_microphones() if m.name == name), None) if name else None
        except SourceError:
            return None

    def _microphone_source(self) -> MicrophoneSource:
        return MicrophoneSource(self.microphone.index if self.microphone else None,
                                self.microphone.name if self.microphone else None)

    def _playlist_sources(self, playlist: Playlist):
        """The playlist's frames with its own sound, or with the microphone chosen instead."""
        sound = PlaylistAudioSource(playlist) if self.sound_from_video else self._microphone_source()
        return PlaylistFrameSource(playlist), sound

    def _start_monitor(self, wanted: bool) -> None:
        """Play the live sound (muted until M) when it comes from the demo or a file and can be played."""
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        if wanted and has_output_device():
            monitor = self.pipeline.monitor(self.volume)
            try:
                monitor.start()
                self.monitor = monitor
            except SourceError as exc:
                self.note.emit(f"the live sound is not played: {exc}", 8000)

    def _on_source_failed(self, text: str) -> None:
        if self.kind in ("camera", "file"):
            self.message.emit("source", f"{text}: showing the bundled demo clips instead", "warning")
            self.use_demo(keep_message=True)
        else:
            self.message.emit("source", text, "error")
