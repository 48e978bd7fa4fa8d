"""Real-content clips of ``ssl-synth --content real``: what a clip shows and what it sounds like.

A clip draws its classes from the split, one photo cut-out per class (the sounding one(s) in front,
0-2 silent distractors of other classes), a background photograph, and the sounding class's sound
(a recording, or its SoundFont instrument) mixed with background noise and, in ``OFFSCREEN_SHARE`` of
the clips, the sound of a class that is not in the picture at a lower level. With ``negatives`` the
picture is the same but the sound is silence (quiet noise) or a class that is not in the picture.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from model.assets import Manifest, load_manifest
from model.synth.audio import ClipAudio, background_noise, mix_sounds
from model.synth.real_audio import class_sound
from model.synth.real_scene import RealScene, compose_scene, load_cutout, load_photo

__all__ = ["NEGATIVE_MODES", "RealDraw", "draw_real_clip", "real_manifest"]

NEGATIVE_MODES = ("silence", "offscreen")
MAX_DISTRACTORS = 2
OFFSCREEN_SHARE = 0.3  # positive clips that also hear a class that is not in the picture
OFFSCREEN_DB = (6.0, 15.0)  # that sound's level below the sounding object(s)
SILENCE_RMS = (0.002, 0.02)  # level of the noise-only track of a "silence" negative


@dataclass
class RealDraw:
    """What ``draw_real_clip`` drew: the heard classes (in stem order), scene, audio, annotation extras."""

    names: list[str]
    scene: RealScene
    audio: ClipAudio
    extra: dict


@lru_cache(maxsize=4)
def real_manifest(path) -> Manifest:
    return load_manifest(path)


def _cutout(rng, cls, resolve):
    return (cls.name, *load_cutout(str(resolve(cls.images[int(rng.integers(len(cls.images)))]))))


def draw_real_clip(rng, config, sample_rate: int, channels: int, n_frames: int, fps: int,
                   mid_frame: int, seconds: float) -> RealDraw:
    """Draw one clip of ``config`` (a ``SynthConfig`` with ``content="real"``) from ``rng``."""
    manifest = real_manifest(config.manifest)
    resolve = partial(manifest.path, config.assets)
    pool = manifest.split(config.split)
    if len(pool) < config.sources + 1:
        raise ValueError(f"the {config.split!r} split of {config.manifest} has {len(pool)} classes: "
                         f"{config.sources + 1} needed (the sounding ones and one not in the picture)")
    classes = [pool[i] for i in rng.permutation(len(pool))]
    n = config.sources
    n_distractors = int(rng.integers(0, min(MAX_DISTRACTORS, len(pool) - n - 1) + 1))
    main, distractors, offscreen = classes[:n], classes[n:n + n_distractors], classes[n + n_distractors]
    photo = None
    if manifest.backgrounds:
        photo = load_photo(str(resolve(manifest.backgrounds[int(rng.integers(len(manifest.backgrounds)))].file)))
    scene = compose_scene(rng, [_cutout(rng, c, resolve) for c in main],
                          [_cutout(rng, c, resolve) for c in distractors], photo, config.size,
                          n_frames, fps, mid_frame)
    if config.negatives:
        extra = {"negative": config.negatives, "visible": [obj.class_name for obj in scene.objects]}
        for obj in scene.objects:
            obj.sounding = False
        scene.sounding = []
    else:
        extra = {}
    if config.negatives == "silence":
        noise = background_noise(rng, int(round(seconds * sample_rate)), sample_rate, channels)
        audio = ClipAudio(sample_rate, (noise * rng.uniform(*SILENCE_RMS)).astype(np.float32), [])
        return RealDraw(["silence"], scene, audio, extra)
    heard = [offscreen] if config.negatives == "offscreen" else main
    sounds = [rng.uniform(0.7, 1.0) * class_sound(rng, c, resolve, sample_rate, seconds) for c in heard]
    if scene.sounding:
        pans = [(x1 + x2) / config.size[0] - 1 for x1, _, x2, _ in (o.box(mid_frame) for o in scene.sounding)]
    else:
        pans = [rng.uniform(-1, 1)]
    ambient = None
    if not config.negatives and rng.random() < OFFSCREEN_SHARE:
        level = np.sqrt(np.mean(sum(sounds) ** 2)) * 10 ** (-rng.uniform(*OFFSCREEN_DB) / 20)
        ambient = level * class_sound(rng, offscreen, resolve, sample_rate, seconds)
    audio = mix_sounds(rng, sounds, pans, sample_rate, channels, ambient)
    return RealDraw([c.name for c in heard], scene, audio, extra)
