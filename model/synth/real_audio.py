"""Sounds of the real-content benchmark: a class's recordings, or its SoundFont instrument played.

A recording is decoded once per process, sped up or slowed down a little (pitch and tempo together),
then cut to a random excerpt or repeated with short random gaps to fill the clip. An instrument class
with a SoundFont plays a random phrase instead (``SOUNDFONT_SHARE`` of its clips): a melody (random
scale, register, tempo and rhythm), a drum groove, or single hits. The same phrases play from recorded single
notes (``notes_phrase``: the quad test's instruments).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from model.data.video_io import decode_audio_track
from model.synth.audio import resample
from model.synth.soundfont import open_soundfont

__all__ = ["SOUNDFONT_SHARE", "class_sound", "load_recording"]

SOUNDFONT_SHARE = 0.7
RECORDING_RATE = 48000
SPEED = (0.9, 1.12)  # playback speed factor of a recording (pitch and tempo)
GAP = (0.05, 0.6)  # seconds of silence between repeats of a short recording
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "pentatonic": (0, 2, 4, 7, 9)}
BEATS = (0.5, 1.0, 1.0, 1.5, 2.0)  # note lengths of a melody, in beats
NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
RELEASE = 0.15  # seconds a note of a melody fades out over at its end


@lru_cache(maxsize=512)
def load_recording(path: str) -> np.ndarray:
    """A recording's first channel at ``RECORDING_RATE``, float32; raises ``ValueError`` when silent."""
    x = decode_audio_track(path, RECORDING_RATE)
    if not np.any(x):
        raise ValueError(f"the recording {path} is silent")
    return x


def _fill(rng, x: np.ndarray, n: int, sr: int) -> np.ndarray:
    """``n`` samples: a random excerpt of ``x`` if it is long enough, else ``x`` repeated with gaps."""
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start:start + n]
    pieces, length = [], 0
    while length < n + len(x):
        gap = np.zeros(int(rng.uniform(*GAP) * sr), np.float32)
        pieces += [x, gap]
        length += len(x) + len(gap)
    track = np.concatenate(pieces)
    start = int(rng.integers(0, len(track) - n))
    return track[start:start + n]


def recording_track(rng, path: str, sr: int, seconds: float) -> np.ndarray:
    """The recording at ``path`` at a random speed, filling ``seconds`` at ``sr`` Hz."""
    speed = rng.uniform(*SPEED)
    x = resample(load_recording(path), int(round(RECORDING_RATE * speed)), sr)  # as if recorded at rate x speed
    return _fill(rng, x.astype(np.float32), int(round(seconds * sr)), sr)


def _melody(rng, keys, seconds):
    """(onset, key, length, velocity) notes of a random melody within ``keys`` = [low, high]."""
    beat = 60.0 / rng.uniform(70, 160)
    scale = SCALES[rng.choice(sorted(SCALES))]
    low, high = keys
    tonic = int(rng.integers(low, max(low + 1, high - 12)))
    pitches = [tonic + 12 * octave + step for octave in range(-2, 4) for step in scale]
    pitches = [p for p in pitches if low <= p <= high]
    index, t, notes = int(rng.integers(0, len(pitches))), -rng.uniform(0, beat), []
    while t < seconds:
        length = beat * float(rng.choice(BEATS))
        if rng.random() > 0.12:  # else a rest
            notes.append((t, pitches[index], 0.95 * length, int(rng.integers(70, 121))))
        index = int(np.clip(index + rng.integers(-3, 4), 0, len(pitches) - 1))
        t += length
    return notes


def _groove(rng, keys, seconds):
    """Drum-kit notes: ``keys`` = kick, snare, closed hi-hat, open hi-hat, toms..., crash, ride."""
    kick, snare, hat, open_hat, *rest = keys
    eighth = 30.0 / rng.uniform(80, 150)
    notes, t, step = [], -eighth * int(rng.integers(0, 8)), 0
    while t < seconds:
        beat_pos = step % 8
        hits = [open_hat if rng.random() < 0.1 else hat]
        if beat_pos in (0, 4) or rng.random() < 0.1:
            hits.append(kick)
        if beat_pos in (2, 6):
            hits.append(snare)
        if beat_pos == 7 and rng.random() < 0.25:
            hits.append(int(rng.choice(rest)))
        notes += [(t, key, 0.1, int(rng.integers(70, 121))) for key in hits]
        t, step = t + eighth, step + 1
    return notes


def _hits(rng, keys, seconds):
    """Single strikes of ``keys`` at random intervals."""
    notes, t = [], -rng.uniform(0, 1.0)
    while t < seconds:
        notes.append((t, int(rng.choice(keys)), 0.1, int(rng.integers(60, 128))))
        t += rng.uniform(0.25, 1.2)
    return notes


PHRASES = {"melody": _melody, "groove": _groove, "hits": _hits}


def add_at(out: np.ndarray, note: np.ndarray, onset: float, sr: int) -> None:
    """Adds ``note`` into ``out`` from ``onset`` seconds on (what falls before 0 or past the end left out)."""
    start = int(round(onset * sr))
    note = note[max(0, -start):]
    start = max(start, 0)
    end = min(len(out), start + len(note))
    out[start:end] += note[:end - start]


def soundfont_phrase(rng, path: str, spec: dict, sr: int, seconds: float) -> np.ndarray:
    """A random phrase of the instrument ``spec`` ({bank, preset, style, keys}) of the SoundFont at
    ``path``, ``seconds`` long."""
    font = open_soundfont(path)
    n = int(round(seconds * sr))
    out = np.zeros(n + 4 * sr, np.float32)
    for onset, key, length, velocity in PHRASES[spec["style"]](rng, spec["keys"], seconds):
        note = font.note(spec["bank"], spec["preset"], key, velocity, length, sr)
        add_at(out, note, onset, sr)
    return out[:n]


def note_key(path) -> int:
    """The MIDI key of a recorded note named by its note (A4 = 69): ``A4.mp3``, ``Cs4.mp3`` (C sharp),
    ``D#1v8.mp3``, ``Bb3.wav``."""
    match = re.match(r"([A-G])(s|#|b)?(-?\d)", Path(path).name)
    if match is None:
        raise ValueError(f"the note file {path} is not named by its note (A4.mp3, Cs4.mp3, ...)")
    letter, accidental, octave = match.groups()
    return 12 * (int(octave) + 1) + NOTE_NAMES[letter] + {"s": 1, "#": 1, "b": -1, None: 0}[accidental]


def notes_phrase(rng, paths: list[str], spec: dict, sr: int, seconds: float) -> np.ndarray:
    """A random phrase of recorded single notes, ``seconds`` long, the phrases of ``soundfont_phrase``
    (``spec["style"]``). A "melody" (its scales, tempi and rhythms) within the keys of the files, named by their
    notes (or ``spec["keys"]``, [low, high]): each note the recording of the nearest key, retuned by resampling,
    held for its length, then faded out over ``RELEASE`` s. A "groove" or "hits": the files are the drums, in the
    order of the groove's (kick, snare, closed hi-hat, open hi-hat, toms..., crash, ride), each hit
    ringing out."""
    style = spec["style"]
    melody = style == "melody"
    keys = [note_key(p) for p in paths] if melody else list(range(len(paths)))
    span = spec.get("keys", [min(keys), max(keys)]) if melody else keys
    n = int(round(seconds * sr))
    out = np.zeros(n + 4 * sr, np.float32)
    for onset, key, length, velocity in PHRASES[style](rng, span, seconds):
        nearest = min(range(len(paths)), key=lambda i: abs(keys[i] - key))
        rate = RECORDING_RATE * 2.0 ** ((key - keys[nearest]) / 12)  # as if recorded at that rate: retuned
        recording = load_recording(paths[nearest])
        if melody:
            recording = recording[:int(np.ceil((length + RELEASE) * rate))]
        note = resample(recording, int(round(rate)), sr).astype(np.float32) * (velocity / 127)
        if melody:
            fade = min(len(note), int(RELEASE * sr))
            note[len(note) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        add_at(out, note, onset, sr)
    return out[:n]


def class_sound(rng, cls, resolve, sr: int, seconds: float) -> tuple[np.ndarray, str]:
    """One sound of class ``cls`` (a ``RealClass``), unit RMS, and the file reference it was made from (the
    recording, or the SoundFont); ``resolve(ref)`` gives a file's path."""
    if cls.soundfont and (not cls.sounds or rng.random() < SOUNDFONT_SHARE):
        files = cls.soundfont["files"]
        ref = files[int(rng.integers(len(files)))]
        x = soundfont_phrase(rng, str(resolve(ref)), cls.soundfont, sr, seconds)
    else:
        ref = cls.sounds[int(rng.integers(len(cls.sounds)))]
        x = recording_track(rng, str(resolve(ref)), sr, seconds)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12), ref
