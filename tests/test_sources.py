"""Sources and the ring buffer, without Qt: the same classes the app uses for devices and files."""
import threading
import time

import numpy as np
import pytest
from support import write_clip

from model.data import video_io
from ssl_desktop import sources
from ssl_desktop.ring_buffer import RingBuffer
from ssl_desktop.sources import (
    MicrophoneSource,
    PatternSource,
    Playlist,
    PlaylistAudioSource,
    PlaylistFrameSource,
    SequentialFrames,
    SourceError,
    ToneSource,
)

RATE = 16000  # the sample rate these tests run the sources at


# --- ring buffer --------------------------------------------------------------------------------

def test_ring_buffer_keeps_the_newest_samples_in_order_across_wraparound():
    ring = RingBuffer(10, RATE)
    assert np.array_equal(ring.snapshot(), np.zeros(10))
    ring.write(np.arange(7))
    assert np.array_equal(ring.snapshot(4), [3, 4, 5, 6])
    ring.write(np.arange(7, 15))  # wraps around the end of the storage
    assert np.array_equal(ring.snapshot(), np.arange(5, 15))
    for start in range(15, 102, 3):  # many small writes, each crossing the end at some point
        ring.write(np.arange(start, start + 3))
    assert np.array_equal(ring.snapshot(), np.arange(92, 102))
    assert ring.samples_written == 102


def test_ring_buffer_long_write_keeps_only_the_tail():
    ring = RingBuffer(5, RATE)
    ring.write(np.arange(3))
    ring.write(np.arange(100, 112))
    assert np.array_equal(ring.snapshot(), np.arange(107, 112))
    ring.clear()
    assert np.array_equal(ring.snapshot(), np.zeros(5)) and ring.samples_written == 0


# --- test sources -------------------------------------------------------------------------------

def test_pattern_source_delivers_moving_frames_at_its_rate():
    source = PatternSource(size=(160, 120), fps=50, frames=10)
    source.open()
    start = time.monotonic()
    frames = [source.read() for _ in range(10)]
    elapsed = time.monotonic() - start
    assert source.read() is None  # ended
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[5])
    assert elapsed >= 9 / 50 - 0.02


def test_tone_source_writes_into_the_ring_buffer_in_real_time():
    ring = RingBuffer(RATE, RATE)
    tone = ToneSource()
    tone.start(ring)
    time.sleep(0.3)
    tone.stop()
    written = ring.samples_written
    assert 0.15 * RATE < written < 0.6 * RATE
    assert np.abs(ring.snapshot(written)).max() > 0.1
    time.sleep(0.05)
    assert ring.samples_written == written  # stopped means stopped


# --- files --------------------------------------------------------------------------------------

def test_playlist_sources_stay_in_step_and_loop(tmp_path):
    clip = write_clip(tmp_path / "tone.mp4", seconds=1.0)
    playlist = Playlist([clip], RATE)
    frames, sound = PlaylistFrameSource(playlist, fps=25), PlaylistAudioSource(playlist)
    ring = RingBuffer(3 * RATE, RATE)
    frames.open()
    sound.start(ring)
    try:
        images = [frames.read() for _ in range(30)]  # 1.2 s: past the end of the 1 s clip
        position = playlist.position()
        time.sleep(0.05)
        written = ring.samples_written
    finally:
        sound.stop()
        frames.close()
    assert playlist.duration == pytest.approx(1.0, abs=0.05)
    assert all(image.shape == (240, 320, 3) for image in images)
    assert np.array_equal(images[0], images[25]) or np.abs(images[0].astype(int) - images[25]).mean() < 3
    assert abs(written / RATE - position) < 0.15  # the sound advanced with the picture
    assert np.abs(ring.snapshot(written)[-RATE // 2:]).max() > 0.2  # the clip's tone, looped


def test_a_playlist_s_sound_is_decoded_in_a_thread_that_stops_between_blocks(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "tone.mp4", seconds=2.0)
    decode = video_io.iter_audio_track

    def slow(*args):
        for block in decode(*args):
            time.sleep(0.01)
            yield block

    monkeypatch.setattr(video_io, "iter_audio_track", slow)
    playlist = Playlist([clip], RATE)
    playlist.load()
    sound = PlaylistAudioSource(playlist)
    sound.start(RingBuffer(RATE, RATE))
    assert len(playlist.audio) == 2 * RATE  # one array sized from the duration, silence until decoded
    while not playlist.decoded:
        time.sleep(0.001)
    sound.stop()
    decoded = playlist.decoded
    assert 0 < decoded < len(playlist.audio) and not playlist.audio[decoded:].any()
    assert np.array_equal(playlist.audio[:decoded], video_io.decode_audio_track(clip, RATE)[:decoded])
    assert not [t for t in threading.enumerate() if t.name == "sound of tone.mp4"]


def test_sequential_frames_go_forward_and_back(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", seconds=1.0)
    frames = SequentialFrames(clip)
    t1, a = frames.frame_at(0.5)
    t2, _ = frames.frame_at(0.9)
    t3, b = frames.frame_at(0.5)  # back in time
    t4, c = frames.frame_at(0.04)
    frames.close()
    assert t1 == pytest.approx(0.48, abs=0.05) and t2 > t1 and t3 == t1 and t4 < t1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_unreadable_files_raise_a_source_error(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError, match="broken.mp4"):
        Playlist([broken], RATE).load()


# --- devices ------------------------------------------------------------------------------------

def test_missing_portaudio_says_what_to_install(monkeypatch):
    def no_portaudio():
        raise SourceError(f"no sound devices: the PortAudio library is missing; {sources.PORTAUDIO_HINT}")

    monkeypatch.setattr(sources, "import_sounddevice", no_portaudio)
    with pytest.raises(SourceError, match="sudo apt-get install libportaudio2"):
        MicrophoneSource().start(RingBuffer(10, RATE))
    assert not sources.has_output_device()


def test_portaudio_oserror_becomes_a_source_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(SourceError, match="libportaudio2"):
        sources.import_sounddevice()


def test_device_lists_are_lists():
    assert isinstance(sources.list_cameras(), list)
    try:
        microphones = sources.list_microphones()
    except SourceError as exc:
        assert "libportaudio2" in str(exc)
    else:
        assert all(isinstance(m.name, str) for m in microphones)
