"""Video decoding, annotation loaders and datasets, on tiny videos written here with PyAV."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from model.preprocess.audio import AudioConfig
from model.data import video_io
from model.data.annotations import AnnotationError, AnnotationWarning, load_is3, load_split, load_vggss_annotations
from model.data.datasets import IS3Dataset, VideoFolderDataset, collate
from model.data.video_io import (
    VideoReadError,
    decode_audio_track,
    iter_frames,
    probe,
    read_clip,
    read_frame,
    read_frames,
)

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
FPS = 10
SECONDS = 2.0
SILENCE = 0.5  # every test file is silent for its first half second, then plays one tone per channel
SIZE = (64, 48)


def sound_from(path, start: float, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """The sound window ``read_clip`` decodes (seeking) from ``start`` s for ``seconds``."""
    return read_clip(path, start + seconds / 2, seconds, sample_rate=sample_rate).waveform


def colour(i: int) -> np.ndarray:
    """The RGB colour of frame i: 12 levels apart from one frame to the next, 21 distinct colours."""
    return np.array([12 * (i % 21), 255 - 12 * (i % 21), 128], np.uint8)


def write_video(path, vcodec="libx264", acodec="aac", rate=48000, freqs=(440, 1000), seconds=SECONDS,
                silence=SILENCE, frame_offset=0, muxer_options=None, audio_options=None):
    """Solid-colour frames (``colour(i + frame_offset)``) and ``len(freqs)`` channels, tone k on channel k
    after ``silence`` s. ``vcodec=None`` or ``acodec=None`` leaves that stream out."""
    layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}[len(freqs)]
    with av.open(str(path), "w", options=muxer_options or {}) as out:  # streams first, then packets
        video = vcodec and out.add_stream(vcodec, rate=FPS, options={"g": "5"} if vcodec == "libx264" else {})
        audio = acodec and out.add_stream(acodec, rate=rate, layout=layout, options=audio_options or {})
        if video:
            video.width, video.height = SIZE
            video.pix_fmt = "yuvj420p" if vcodec == "mjpeg" else "yuv420p"
            for i in range(int(seconds * FPS)):
                image = np.empty((SIZE[1], SIZE[0], 3), np.uint8)
                image[:] = colour(i + frame_offset)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, FPS)
                out.mux(video.encode(frame))
            out.mux(video.encode(None))
        if audio:
            t = np.arange(int(seconds * rate)) / rate
            signal = np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)
            signal[:, : int(silence * rate)] = 0
            # packed frames through a resampler: PyAV's planar from_ndarray fails on 8 channels
            to_codec = av.AudioResampler(format=audio.codec_context.format.name, layout=layout, rate=rate)
            for start in range(0, len(t), 1024):
                chunk = signal[:, start:start + 1024]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk.T).reshape(1, -1),
                                                   format="flt", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                for converted in to_codec.resample(frame):
                    out.mux(audio.encode(converted))
            out.mux(audio.encode(None))
    return Path(path)


def write_wav(path, freq=500.0, rate=22050, seconds=1.0):
    write_video(path, vcodec=None, acodec="pcm_s16le", rate=rate, freqs=(freq,), seconds=seconds)
    return Path(path)


def write_image(path, rgb) -> Path:
    """A 224x224 JPEG of colour ``rgb`` under 8 rows of noise (a JPEG of a few kB, as real frames are:
    PyAV fails to decode one after a seek, where it decodes a tiny one)."""
    image = np.empty((224, 224, 3), np.uint8)
    image[:] = rgb
    image[:8] = np.random.default_rng(0).integers(0, 256, (8, 224, 3))
    cv2.imwrite(str(path), image[:, :, ::-1])
    return Path(path)


SURROUND = (440, 1000, 1500, 2500, 3000, 3500, 4500, 5000)  # 7.1: 8 channels crash PyAV's planar to_ndarray

FORMATS = {  # name: (file name, writer arguments, first-channel tone, second-channel tone or None)
    "webm-vp9-opus48k": ("a.webm", dict(vcodec="libvpx-vp9", acodec="libopus", rate=48000), 440, 1000),
    "mkv-h264-vorbis44k": ("b.mkv", dict(acodec="vorbis", rate=44100,
                                         audio_options={"strict": "experimental"}), 440, 1000),
    "mp4-h264-aac48k-stereo": ("c.mp4", dict(acodec="aac", rate=48000), 440, 1000),
    "avi-mpeg4-pcm8k-mono": ("d.avi", dict(vcodec="mpeg4", acodec="pcm_s16le", rate=8000, freqs=(300,)),
                             300, None),
    "mov-mjpeg-pcm8k-mono": ("e.mov", dict(vcodec="mjpeg", acodec="pcm_s16le", rate=8000, freqs=(300,)),
                             300, None),
    # every channel's tone but the LFE's (channel 4: AAC keeps only its lowest frequencies)
    "mkv-h264-aac48k-7.1": ("f.mkv", dict(acodec="aac", rate=48000, freqs=SURROUND), SURROUND[:3] + SURROUND[4:],
                            None),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """One file per format, plus broken ones, written once for the module."""
    root = tmp_path_factory.mktemp("media")
    files = {name: write_video(root / file, **kw) for name, (file, kw, _, _) in FORMATS.items()}
    files["silent"] = write_video(root / "silent.mp4", acodec=None)
    files["audio_only"] = write_wav(root / "tone.wav")
    whole = files["mp4-h264-aac48k-stereo"].read_bytes()
    (root / "half.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "garbage.mkv").write_bytes(np.random.default_rng(0).bytes(4000))
    files["half"], files["garbage"] = root / "half.mp4", root / "garbage.mkv"
    return files


def dominant_frequency(x: np.ndarray, rate=16000) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x))


# --- decoding -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_window_is_16k_mono_mean_of_channels_and_aligned(media, fmt):
    _, kw, first, second = FORMATS[fmt]
    info = probe(media[fmt])
    assert (info.audio_rate, info.audio_channels) == (kw["rate"], len(kw.get("freqs", (1, 2))))
    start, seconds = 0.25, 1.5
    window = sound_from(media[fmt], start, seconds)
    assert window.dtype == np.float32 and window.shape == (24000,)
    onset = int(np.argmax(np.abs(window) > 0.1))  # the tone starts at SILENCE s (above Vorbis pre-echo, 0.06)
    assert abs(onset - (SILENCE - start) * 16000) < 48  # within 3 ms
    tone = window[8000:]  # 1 s of tone: FFT bins 1 Hz apart
    assert_tones(tone, first, second)


def assert_tones(tone, first, second):
    """One tone, or (the mean of two channels) both: the first channel alone would have the second tone
    under 5 % of the first (Vorbis' joint stereo weakens the second to about 40 %). ``first`` a tuple: one
    tone per channel, every one of them heard in the mean."""
    if isinstance(first, tuple):
        spectrum = np.abs(np.fft.rfft(tone))
        levels = spectrum[list(first)]
        assert levels.min() > 0.25 * levels.max(), dict(zip(first, levels.round(1)))
    elif second is None:
        assert dominant_frequency(tone) == pytest.approx(first, abs=1)
    else:
        spectrum = np.abs(np.fft.rfft(tone))
        assert 0.25 < spectrum[second] / spectrum[first] < 4
        assert {dominant_frequency(tone)} <= {float(first), float(second)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_frame_gives_the_frame_at_t(media, fmt):
    for t, index in [(0.0, 0), (0.35, 3), (1.0, 10), (1.57, 15), (5.0, 19)]:  # past the end: the last
        frame = read_frame(media[fmt], t)
        assert frame.shape == (SIZE[1], SIZE[0], 3) and frame.dtype == np.uint8
        assert np.abs(frame[10:-10, 10:-10].astype(int) - colour(index)).max() <= 6, (t, frame[20, 30])


def test_read_frames_keeps_the_order_of_times(media):
    path = media["mp4-h264-aac48k-stereo"]
    times = [1.25, 0.1, 0.75]
    for frame, t in zip(read_frames(path, times), times):
        np.testing.assert_array_equal(frame, read_frame(path, t))


def test_iter_frames_yields_every_frame_in_order(media):
    frames = list(iter_frames(media["webm-vp9-opus48k"]))
    assert [round(t, 3) for t, _ in frames] == [round(i / FPS, 3) for i in range(int(SECONDS * FPS))]
    assert all(np.abs(f[20, 30].astype(int) - colour(i)).max() <= 6 for i, (_, f) in enumerate(frames))


@pytest.mark.parametrize("start", [0.0, 0.52, 1.3, 9.0])
def test_iter_frames_from_a_start_seeks_to_the_frame_shown_then(media, start):
    path = media["mp4-h264-aac48k-stereo"]
    every = list(iter_frames(path))
    shown = max(i for i, (t, _) in enumerate(every) if t <= start + 1e-4)  # the last one past the end
    frames = list(iter_frames(path, start))
    assert [round(t, 3) for t, _ in frames] == [round(t, 3) for t, _ in every[shown:]]
    np.testing.assert_array_equal(frames[0][1], every[shown][1])


def test_audio_window_is_zero_padded_at_the_edges(media):
    path = media["mp4-h264-aac48k-stereo"]
    before = sound_from(path, -1.0, 2.0)  # 1 s before the file, then silence, then tone
    assert before.shape == (32000,) and np.abs(before[:24000]).max() < 0.01 and np.abs(before[26000:]).max() > 0.3
    after = sound_from(path, 1.5, 1.0)  # 0.5 s of tone, then 0.5 s past the end
    assert np.abs(after[:7000]).max() > 0.3 and np.abs(after[8200:]).max() < 0.01
    assert sound_from(path, 0.0, 0.3337).shape == (round(0.3337 * 16000),)
    assert sound_from(path, 0.0, 1.0, sample_rate=8000).shape == (8000,)


def test_read_clip_centres_audio_on_the_frame(media):
    path = media["mp4-h264-aac48k-stereo"]
    clip = read_clip(path, seconds=1.0, sample_rate=16000)
    assert clip.t == pytest.approx(SECONDS / 2) and clip.duration == pytest.approx(SECONDS)
    assert np.abs(clip.frame[20, 30].astype(int) - colour(10)).max() <= 6
    assert clip.waveform.shape == (16000,) and np.abs(clip.waveform).max() > 0.3
    clip = read_clip(path, t=0.25, seconds=1.0, sample_rate=16000)  # window [-0.25, 0.75): padding, silence, tone from 0.5 s
    onset = int(np.argmax(np.abs(clip.waveform) > 0.05))
    assert abs(onset - 12000) < 48
    randoms = [read_clip(path, rng=np.random.default_rng(seed), sample_rate=16000).t for seed in range(3)]
    assert all(0 <= t < SECONDS for t in randoms) and len(set(randoms)) == 3
    assert read_clip(path, rng=np.random.default_rng(1), sample_rate=16000).t == randoms[1]


def test_read_clip_near_the_start_keeps_the_first_audio(tmp_path):
    """Reading the frame moves the demuxer on; the audio must still start at the file's first sample."""
    path = write_video(tmp_path / "tone.mp4", silence=0.0)
    for t in (0.0, 0.3):
        waveform = read_clip(path, t=t, seconds=1.0, sample_rate=16000).waveform
        first = int(round((0.5 - t) * 16000))  # the window starts 0.5 - t s before the file
        assert np.abs(waveform[:first - 48]).max() < 0.01
        energy = np.abs(waveform[first + 48:]).reshape(-1, 8).max(axis=1)  # 0.5 ms blocks
        assert energy.min() > 0.05, t


def test_decode_audio_track_is_the_whole_track_in_mono(media):
    track = decode_audio_track(media["mkv-h264-vorbis44k"], 16000)
    assert abs(len(track) - SECONDS * 16000) < 0.02 * 16000
    assert abs(int(np.argmax(np.abs(track) > 0.1)) - SILENCE * 16000) < 48
    assert_tones(track[8000:24000], 440, 1000)


@pytest.mark.parametrize("codec", ["aac", "pcm_s16le"])
def test_eight_channel_audio_decodes_in_every_reader(tmp_path, codec):
    """7.1 audio killed the process (segfault) in PyAV's planar to_ndarray: run the readers in a child."""
    path = write_video(tmp_path / "surround.mkv", acodec=codec, freqs=SURROUND)
    script = ("import sys; from model.data.video_io import decode_audio_track, read_clip; p = sys.argv[1]; "
              "print(len(read_clip(p, 1.0, 1.5, sample_rate=16000).waveform), len(decode_audio_track(p, 16000)), len(read_clip(p, sample_rate=16000).waveform))")
    child = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    window, track, clip = map(int, child.stdout.split())
    assert (window, clip) == (24000, 48000) and abs(track - SECONDS * 16000) < 0.02 * 16000
    tones = SURROUND[:3] + SURROUND[4:]  # the standard downmix drops the LFE (channel 4), whatever the codec
    assert_tones(sound_from(path, 0.5, 1.0), tones, None)


def test_audio_less_file_raises_mentioning_audio(media):
    path = media["silent"]
    assert probe(path).has_audio is False
    for read in (lambda p: read_clip(p, sample_rate=16000), lambda p: decode_audio_track(p, 16000)):
        with pytest.raises(VideoReadError, match="no audio stream") as error:
            read(path)
        assert str(path) in str(error.value)


def test_audio_only_file_reads_audio_but_not_frames(media):
    path = media["audio_only"]
    assert dominant_frequency(decode_audio_track(path, 16000)[8000:16000]) == pytest.approx(500, abs=2)
    with pytest.raises(VideoReadError, match="no video stream"):
        read_frame(path, 0.0)


@pytest.mark.parametrize("name", ["half", "garbage"])
def test_truncated_or_corrupt_file_raises(media, name):
    for read in (probe, lambda p: read_frame(p, 0.5), lambda p: decode_audio_track(p, 16000),
                 lambda p: read_clip(p, sample_rate=16000)):
        with pytest.raises(VideoReadError, match="cannot decode: truncated or corrupt file") as error:
            read(media[name])
        assert str(media[name]) in str(error.value)


def test_missing_file_raises(tmp_path):
    for read in (probe, lambda p: read_frame(p, 0.0), lambda p: decode_audio_track(p, 16000),
                 lambda p: read_clip(p, sample_rate=16000)):
        with pytest.raises(VideoReadError, match="file not found"):
            read(tmp_path / "nope.mp4")


def test_truncated_file_with_index_first_fails_past_the_cut(tmp_path):
    """moov before the data (faststart): the header survives the cut, the missing part cannot decode."""
    path = write_video(tmp_path / "fast.mp4", seconds=4.0, muxer_options={"movflags": "faststart"})
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    assert np.abs(read_frame(path, 0.5)[20, 30].astype(int) - colour(5)).max() <= 6
    with pytest.raises(VideoReadError, match="truncated or corrupt"):
        read_frame(path, 3.5)


# --- annotation files ---------------------------------------------------------------------------

def test_load_vggss_annotations_and_splits(tmp_path):
    entries = [{"file": "a_000001", "class": "dog barking", "bbox": [[0.1, 0.2, 0.5, 0.6]]},
               {"file": "b_000002", "class": "playing cello", "bbox": [[0, 0, 1, 1], [0.2, 0.2, 0.4, 0.4]]}]
    (tmp_path / "vggss.json").write_text(json.dumps(entries))
    annotations = load_vggss_annotations(tmp_path / "vggss.json")
    assert [(a.file, a.label, len(a.boxes)) for a in annotations] == [("a_000001", "dog barking", 1),
                                                                      ("b_000002", "playing cello", 2)]
    (tmp_path / "test.csv").write_text("a_000001\nb_000002\n\n")
    (tmp_path / "flickr.csv").write_text("10000130166,202\n10007936344,0")
    assert load_split(tmp_path / "test.csv") == ["a_000001", "b_000002"]
    assert load_split(tmp_path / "flickr.csv") == ["10000130166", "10007936344"]


@pytest.mark.parametrize("content, message", [
    ('{"file": "a", "bbox": [[0, 0, 1, 1]]}', "must be a JSON list of entries, not a dict"),
    ('[{"file": "a", "bbox": [[0.1, NaN, 0.5, 0.6]]}]', r"entry 0 \(a\).*NaN or infinity"),
    ('[{"file": "a", "bbox": [[0, 0, 1, 1]]}, {"file": "b", "bbox": [0.1, 0.2, 0.5, 0.6]}]',
     r"entry 1 \(b\): bbox must be a list of \[x1, y1, x2, y2\] boxes"),
    ('[{"file": "a", "class": "dog"}]', r"entry 0 \(a\) has no bbox"),
    ('[{"file": "a", "bbox": [[0, 0, 1]]}]', r"entry 0 \(a\): a box must be 4 numbers"),
    ('[["a", [0, 0, 1, 1]]]', "entry 0 must be an object"),
    ('[{"file": "a", "bbox": [[0, 0, 1, 1]]', "not a JSON file"),
])
def test_malformed_vggss_annotations_name_the_file_and_entry(tmp_path, content, message):
    path = tmp_path / "annotations.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=message) as error:
        load_vggss_annotations(path)
    assert str(path) in str(error.value)


def test_an_inverted_box_is_warned_about(tmp_path):
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps([{"file": "a", "bbox": [[0.6, 0.2, 0.1, 0.5]]}, {"file": "b", "bbox": [[0, 0, 1, 1]]}]))
    with pytest.warns(AnnotationWarning, match=r"1 box\(es\) with x2 < x1 or y2 < y1 cover nothing.*entry 0 \(a\)"):
        assert len(load_vggss_annotations(path)) == 2


def test_malformed_is3_annotations_name_the_file_and_entry(tmp_path):
    is3 = tmp_path / "is3_annotations.json"
    is3.write_text(json.dumps([{"image": "f/s1.jpg", "audio": "a/s1_0.wav"}]))
    with pytest.raises(AnnotationError, match=r"entry 0 \(f/s1.jpg\): has no gt_box"):
        load_is3(is3)
    is3.write_text(json.dumps([{"image": "f/s1.jpg", "audio": "a/s1_0.wav", "gt_box": [0, 0, "x", 1]}]))
    with pytest.raises(AnnotationError, match="a box must be 4 numbers"):
        load_is3(is3)


def test_an_is3_set_with_missing_files_names_them(tmp_path):
    (tmp_path / "frames").mkdir()
    write_image(tmp_path / "frames" / "s1.jpg", (10, 200, 10))
    entries = [{"image": "frames/s1.jpg", "audio": "audio/s1_0.wav", "gt_box": [0, 0, 112, 224]}]
    (tmp_path / "is3_annotations.json").write_text(json.dumps(entries))
    with pytest.raises(FileNotFoundError, match=r"1 of the files it names are missing: .*s1_0.wav"):
        IS3Dataset(tmp_path)


def test_load_is3_shared_image_and_published_names(tmp_path):
    synth = [{"image": "frames/s1.jpg", "audio": "audio/s1_0.wav", "gt_box": [0, 0, 112, 224]},
             {"image": "frames/s1.jpg", "audio": "audio/s1_1.wav", "gt_box": [112, 0, 224, 224]}]
    (tmp_path / "is3_annotations.json").write_text(json.dumps(synth))
    samples = load_is3(tmp_path / "is3_annotations.json")
    assert [s.scene for s in samples] == ["s1", "s1"]
    assert samples[1].image == tmp_path / "frames/s1.jpg" and samples[1].audio == tmp_path / "audio/s1_1.wav"
    published = [{"image": f"/mnt/x/visual_frames/cat_piano_12_{name}.jpg",
                  "audio": f"/mnt/x/audio_wav/cat_piano_12_{name}.wav", "gt_box": [1.0, 2.0, 3.0, 4.0]}
                 for name in ("cat", "piano")]
    (tmp_path / "published.json").write_text(json.dumps(published))
    samples = load_is3(tmp_path / "published.json")
    assert [(s.scene, s.label) for s in samples] == [("cat_piano_12", "cat"), ("cat_piano_12", "piano")]
    assert samples[0].image == tmp_path / "visual_frames" / "cat_piano_12_cat.jpg"


needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is absent")


@needs_reference
def test_reference_vggss_annotations_and_splits():
    annotations = load_vggss_annotations(REFERENCE / "vggss.json")
    assert len(annotations) == 5158
    boxes = np.array([box for a in annotations for box in a.boxes])
    assert boxes.min() >= 0 and boxes.max() <= 1  # the file has 12 boxes with x2 or y2 = -2.9e16: clipped
    test = load_split(REFERENCE / "vggss_test.csv")
    heard = load_split(REFERENCE / "vggss_heard_test.csv")
    unheard = load_split(REFERENCE / "vggss_unheard_test.csv")
    assert set(test) == {a.file for a in annotations} and len(test) == 5158
    assert len(heard) == 2564 and len(unheard) == 2575 and set(heard) | set(unheard) <= set(test)
    label = {a.file: a.label for a in annotations}
    heard_classes, unheard_classes = {label[f] for f in heard}, {label[f] for f in unheard}
    assert len(heard_classes) == len(unheard_classes) == 110 and not heard_classes & unheard_classes
    flickr = load_split(REFERENCE / "flickr_test.csv")
    assert len(flickr) == 250 and all(f.isdigit() for f in flickr)


@needs_reference
def test_reference_is3_has_two_sources_per_image():
    samples = load_is3(REFERENCE / "synthetic3240_bbox.json")
    assert len(samples) == 6480
    scenes = {}
    for s in samples:
        scenes.setdefault(s.scene, []).append(s)
    assert len(scenes) == 3240 and all(len(pair) == 2 for pair in scenes.values())
    assert all(0 <= v <= 224 for s in samples for v in s.box)
    assert all(s.image.parent == REFERENCE / "visual_frames" for s in samples)


# --- datasets -----------------------------------------------------------------------------------

@pytest.fixture
def video_folder(tmp_path, media):
    """``videos/`` with three good clips (one in a sub-folder), a corrupt and an audio-less file; and the
    ``frames/`` + ``audio/`` folders ssl-synth writes for IS3 beside it, which must not be taken as clips."""
    videos = tmp_path / "ds" / "videos"
    (videos / "sub").mkdir(parents=True)
    shutil.copy(media["mp4-h264-aac48k-stereo"], videos / "clip_a.mp4")
    shutil.copy(media["webm-vp9-opus48k"], videos / "sub" / "clip_b.webm")
    shutil.copy(media["mkv-h264-vorbis44k"], videos / "clip_c.mkv")
    shutil.copy(media["garbage"], videos / "broken.mp4")
    shutil.copy(media["silent"], videos / "mute.mp4")
    (videos / "notes.txt").write_text("not a video")
    (tmp_path / "ds" / "frames").mkdir()
    (tmp_path / "ds" / "audio").mkdir()
    write_image(tmp_path / "ds" / "frames" / "clip_a.jpg", (0, 0, 0))
    write_wav(tmp_path / "ds" / "audio" / "clip_a_0.wav")
    annotations = [{"file": "clip_a", "class": "violin", "bbox": [[0.1, 0.1, 0.6, 0.9]]}]
    (tmp_path / "ds" / "annotations.json").write_text(json.dumps(annotations))
    return tmp_path / "ds"


def test_video_folder_skips_bad_files_and_yields_good_items(video_folder):
    dataset = VideoFolderDataset(video_folder, mode="eval")
    skipped = dict(dataset.skipped)
    assert set(skipped) == {str(video_folder / "videos" / "broken.mp4"), str(video_folder / "videos" / "mute.mp4")}
    assert "corrupt" in skipped[str(video_folder / "videos" / "broken.mp4")]
    assert "audio" in skipped[str(video_folder / "videos" / "mute.mp4")]
    items = [dataset[i] for i in range(len(dataset))]
    assert sorted(item["file"] for item in items) == ["clip_a", "clip_b", "clip_c"]
    for item in items:
        assert item["image"].shape == (3, 224, 224) and item["image"].dtype == torch.float32
        assert item["spectrogram"].shape == (1, 257, AudioConfig().num_frames)
    by_file = {item["file"]: item for item in items}
    assert by_file["clip_a"]["label"] == "violin" and by_file["clip_a"]["boxes"] == [[0.1, 0.1, 0.6, 0.9]]
    assert by_file["clip_b"]["label"] == "" and by_file["clip_b"]["boxes"] == []
    batch = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate)))
    assert batch["image"].shape == (3, 3, 224, 224) and batch["index"].tolist() == [0, 1, 2]
    assert isinstance(batch["boxes"], list) and len(batch["boxes"]) == 3


def test_file_that_breaks_after_listing_is_replaced_in_training_and_set_apart_in_eval(video_folder):
    victim = VideoFolderDataset(video_folder).sources[0].video
    train, evaluation = VideoFolderDataset(video_folder, mode="train"), VideoFolderDataset(video_folder, mode="eval")
    victim.write_bytes(b"\0" * 1000)
    item = train[0]
    assert item["file"] != victim.stem and item["index"] == 1
    assert "corrupt" in dict(train.skipped)[str(victim)]
    path, reason = evaluation[0]["skipped"]  # never the neighbouring clip in its place
    assert path == str(victim) and "corrupt" in reason
    batch = collate([evaluation[i] for i in range(len(evaluation))])
    assert batch["kept"] == [1, 2] and batch["file"] == [s.file for s in evaluation.sources[1:]]
    assert batch["skipped"] == [(path, reason)] and batch["image"].shape[0] == 2
    assert collate([evaluation[0]]) == {"skipped": [(path, reason)], "kept": []}


def test_train_mode_draws_random_moments_and_returns_raw_views(video_folder):
    torch.manual_seed(0)
    dataset = VideoFolderDataset(video_folder, mode="train", image_transform=lambda frame: torch.zeros(3, 8, 8))
    items = [dataset[0] for _ in range(6)]
    assert all(item["image"].shape == (3, 8, 8) for item in items)
    assert all(item["frame"].dtype == np.uint8 and item["frame"].shape == (SIZE[1], SIZE[0], 3) for item in items)
    assert all(item["waveform"].shape == (AudioConfig().num_samples,) for item in items)
    assert len({tuple(item["frame"][20, 30]) for item in items}) > 1  # different frames: different moments
    batch = collate(items)
    assert batch["waveform"].shape == (6, AudioConfig().num_samples) and isinstance(batch["frame"], list)


def test_mode_must_be_train_or_eval(video_folder):
    with pytest.raises(ValueError):
        VideoFolderDataset(video_folder, mode="test")


class CountingDecoder:
    """Counts the cache's decoding calls; ``forbid()`` turns any decoding into a test failure."""

    def __init__(self, monkeypatch):
        self.calls = []
        self.monkeypatch = monkeypatch
        for name in ("read_frames", "decode_audio_track"):
            monkeypatch.setattr(video_io, name, self._counting(getattr(video_io, name)))

    def _counting(self, function):
        def wrapper(path, *args, **kwargs):
            self.calls.append(Path(path).name)
            return function(path, *args, **kwargs)
        return wrapper

    def forbid(self):
        def fail(*args, **kwargs):
            raise AssertionError("decoded a video although the cache is valid")
        for name in ("probe", "read_frame", "read_frames", "read_clip", "decode_audio_track"):
            self.monkeypatch.setattr(video_io, name, fail)


def test_cache_is_written_reused_and_refreshed(tmp_path, media, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("mp4-h264-aac48k-stereo", "webm-vp9-opus48k"):
        shutil.copy(media[name], videos / media[name].name)
    cache = tmp_path / "cache"
    decoder = CountingDecoder(monkeypatch)

    first = VideoFolderDataset(tmp_path, mode="eval", cache_dir=cache)
    eval_items = [first[i] for i in range(len(first))]
    assert sorted(decoder.calls) == ["a.webm", "a.webm", "c.mp4", "c.mp4"]  # frames + audio, once each
    assert len(list(cache.glob("*.npz"))) == 2
    middle = read_frame(videos / "c.mp4", SECONDS / 2)
    cached_middle = first.cache.load(videos / "c.mp4").frame(first.cache.config.frames_per_video // 2)
    assert np.abs(cached_middle.astype(int) - middle).max() <= 8

    with monkeypatch.context() as no_decoding:
        CountingDecoder(no_decoding).forbid()
        again = VideoFolderDataset(tmp_path, mode="eval", cache_dir=cache)
        for i, item in enumerate(again[i] for i in range(len(again))):
            torch.testing.assert_close(item["image"], eval_items[i]["image"])
            torch.testing.assert_close(item["spectrogram"], eval_items[i]["spectrogram"])
        train = VideoFolderDataset(tmp_path, mode="train", cache_dir=cache)
        torch.manual_seed(0)
        spectrograms = [train[0]["spectrogram"] for _ in range(5)]
        assert any(not torch.equal(spectrograms[0], s) for s in spectrograms[1:])

    decoder.calls.clear()
    write_video(videos / "c.mp4", frame_offset=5)  # a changed file: new content, size and mtime
    os.utime(videos / "c.mp4", ns=(1, 1))
    changed = VideoFolderDataset(tmp_path, mode="eval", cache_dir=cache)
    item = changed[[s.file for s in changed.sources].index("c")]
    assert decoder.calls == ["c.mp4", "c.mp4"]
    assert len(list(cache.glob("*.npz"))) == 2  # the stale entry was replaced, not kept beside
    assert not torch.allclose(item["image"], eval_items[1]["image"])


def test_pre_extracted_frames_and_audio_layout(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "audio").mkdir()
    write_image(tmp_path / "frames" / "x_000010.jpg", (200, 30, 60))
    write_wav(tmp_path / "audio" / "x_000010.wav", freq=700, seconds=4.0)
    write_image(tmp_path / "frames" / "lonely.jpg", (0, 0, 0))
    annotations = [{"file": "x_000010", "class": "bird", "bbox": [[0, 0, 0.5, 0.5]]}]
    (tmp_path / "annotations.json").write_text(json.dumps(annotations))
    dataset = VideoFolderDataset(tmp_path, mode="eval", image_transform=lambda frame: torch.zeros(1))
    assert len(dataset) == 1
    assert dataset.skipped == [(str(tmp_path / "frames" / "lonely.jpg"), "no audio file lonely.wav")]
    item = dataset[0]
    assert (item["file"], item["label"], item["boxes"]) == ("x_000010", "bird", [[0, 0, 0.5, 0.5]])
    assert np.abs(item["frame"][20, 30].astype(int) - (200, 30, 60)).max() <= 4
    waveform = item["waveform"].numpy()
    assert waveform.shape == (48000,) and np.abs(waveform).max() > 0.3
    assert dominant_frequency(waveform[8000:40000]) == pytest.approx(700, abs=1)


def test_is3_dataset_items(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "audio").mkdir()
    write_image(tmp_path / "frames" / "s1.jpg", (10, 200, 10))
    write_wav(tmp_path / "audio" / "s1_0.wav", freq=400)
    write_wav(tmp_path / "audio" / "s1_1.wav", freq=900)
    entries = [{"image": "frames/s1.jpg", "audio": "audio/s1_0.wav", "gt_box": [0, 0, 112, 224]},
               {"image": "frames/s1.jpg", "audio": "audio/s1_1.wav", "gt_box": [112, 0, 224, 224]}]
    (tmp_path / "is3_annotations.json").write_text(json.dumps(entries))
    dataset = IS3Dataset(tmp_path)
    items = [dataset[0], dataset[1]]
    assert [item["scene"] for item in items] == ["s1", "s1"]
    assert [item["boxes"] for item in items] == [[[0, 0, 0.5, 1]], [[0.5, 0, 1, 1]]]
    assert items[0]["image"].shape == (3, 224, 224)
    assert items[0]["spectrogram"].shape == (1, 257, AudioConfig().num_frames)
    assert not torch.equal(items[0]["spectrogram"], items[1]["spectrogram"])
