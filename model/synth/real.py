"""Real-content clips of ``ssl-synth --content real``: what a clip shows and what it sounds like.

A clip draws its classes from the split, one photo cut-out per class (the sounding one(s) in front,
0-2 silent distractors of other classes), a background photograph, and the sounding class's sound
(a recording, or its SoundFont instrument) mixed with background noise and, in ``OFFSCREEN_SHARE`` of
the clips, the sound of a class that is not in the picture at a lower level. With ``negatives`` the
picture is the same but the sound is silence (quiet noise) or a class that is not in the picture.
Every clip records the files it was made from (``"source"``; ``"sources"`` with two sounding objects).

With ``pool`` (``train``, ``val``, ``test``: ``model.synth.assets``) every photo, recording and background comes
from that pool; a class without a file there uses its training file, and a val or test clip says which of
its sounding object's files are new to training (``"instance"``: ``INSTANCES``). A pooled set is the honest
benchmark, drawn a little differently from an unpooled one:
- levels are natural: every clip's RMS level is drawn from ``LEVEL_DBFS``, matched clips and off-screen
  negatives alike (no peak normalisation), so the loudness does not say which is which;
- an off-screen negative plays a class of any split (heard or unheard) that is not in the picture;
- a silence negative is room noise at ``ROOM_DBFS``, in ``QUIET_SHARE`` of them with a quiet sound of a
  class not in the picture (``QUIET_DBFS``);
- every scene has a distractor of a size similar to the sounding object's (``real_scene.SIMILAR_SIZE``);
- the sounding classes take turns (a permutation of the split per seed, cycled over the clips), so that every
  class sounds in about the same number of clips.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache, partial

import numpy as np

from model.synth.assets import Manifest, RealClass, load_manifest
from model.synth.audio import ClipAudio, background_noise, mix_sounds
from model.synth.real_audio import class_sound
from model.synth.real_scene import RealScene, compose_scene, load_cutout, load_photo

__all__ = ["INSTANCES", "NEGATIVE_MODES", "RealDraw", "draw_real_clip", "real_manifest"]

NEGATIVE_MODES = ("silence", "offscreen")
INSTANCES = ("seen instance", "new photo", "new recording", "both new", "unheard class")
MAX_DISTRACTORS = 2
OFFSCREEN_SHARE = 0.3  # positive clips that also hear a class that is not in the picture
OFFSCREEN_DB = (6.0, 15.0)  # that sound's level below the sounding object(s)
SILENCE_RMS = (0.002, 0.02)  # level of the noise-only track of a "silence" negative
LEVEL_DBFS = (-42.0, -14.0)  # pooled sets: RMS level of a clip with a sound, matched or off-screen
ROOM_DBFS = (-60.0, -40.0)  # pooled sets: RMS level of a silence negative's room noise
QUIET_SHARE = 0.5  # pooled silence negatives that also hear a quiet sound of a class not in the picture
QUIET_DBFS = (-48.0, -36.0)  # that sound's RMS level
PEAK = 0.99  # a level that would clip is lowered until the peak is this


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


def pooled(manifest: Manifest, cls: RealClass, pool: str | None) -> RealClass:
    """``cls`` with only its files of ``pool`` (those of the training pool where it has none there)."""
    if pool is None:
        return cls
    soundfont = cls.soundfont
    sounds, _ = manifest.in_pool([*cls.sounds, *(soundfont["files"] if soundfont else [])], pool)
    if soundfont:
        soundfont = {**soundfont, "files": [r for r in sounds if r in soundfont["files"]]}
    return replace(cls, images=manifest.in_pool(cls.images, pool)[0], sounds=tuple(r for r in sounds if r in cls.sounds),
                   soundfont=soundfont if soundfont and soundfont["files"] else None)


def _cutout(rng, cls, resolve):
    ref = cls.images[int(rng.integers(len(cls.images)))]
    return (cls.name, *load_cutout(str(resolve(ref)))), ref


def _at_level(audio: ClipAudio, dbfs: float) -> ClipAudio:
    """``audio`` scaled to an RMS level of ``dbfs`` (lower where that would clip)."""
    gain = min(10 ** (dbfs / 20) / (np.sqrt(np.mean(audio.mix.astype(np.float64) ** 2)) + 1e-12),
               PEAK / (np.abs(audio.mix).max() + 1e-12))
    return ClipAudio(audio.sample_rate, (audio.mix * gain).astype(np.float32),
                     [(s * gain).astype(np.float32) for s in audio.stems])


def instance(manifest: Manifest, cls: RealClass, photo: str, recording: str) -> str:
    """Which files of a sounding object a model trained on the training pool has not seen (``INSTANCES``)."""
    if cls.split == "unheard":
        return "unheard class"
    new_photo, new_recording = (manifest.pool(ref) != "train" for ref in (photo, recording))
    return INSTANCES[2 * new_recording + new_photo] if new_photo or new_recording else INSTANCES[0]


def _silence(rng, config, manifest, resolve, others, pan, sample_rate, channels, seconds) -> tuple[ClipAudio, dict]:
    """A silence negative's track: quiet noise; pooled, room noise and maybe a quiet sound of ``others``."""
    noise = background_noise(rng, int(round(seconds * sample_rate)), sample_rate, channels)
    if not config.pool:
        return ClipAudio(sample_rate, (noise * rng.uniform(*SILENCE_RMS)).astype(np.float32), []), {}
    mix, heard = noise * 10 ** (rng.uniform(*ROOM_DBFS) / 20), {}
    if rng.random() < QUIET_SHARE:
        cls = pooled(manifest, others[int(rng.integers(len(others)))], config.pool)
        sound, ref = class_sound(rng, cls, resolve, sample_rate, seconds)
        mix = mix + _at_level(mix_sounds(rng, [sound], [pan], sample_rate, channels), rng.uniform(*QUIET_DBFS)).mix
        heard = {"quiet": cls.name, "recording": ref}
    return ClipAudio(sample_rate, np.clip(mix, -1, 1).astype(np.float32), []), heard


def draw_real_clip(rng, config, sample_rate: int, channels: int, n_frames: int, fps: int,
                   mid_frame: int, seconds: float, index: int = 0) -> RealDraw:
    """Draw clip ``index`` of ``config`` (a ``SynthConfig`` with ``content="real"``) from ``rng``."""
    manifest = real_manifest(config.manifest)
    resolve = partial(manifest.path, config.assets)
    rel = manifest.relative
    pool = manifest.split(config.split)
    if len(pool) < config.sources + 1:
        raise ValueError(f"the {config.split!r} split of {config.manifest} has {len(pool)} classes: "
                         f"{config.sources + 1} needed (the sounding ones and one not in the picture)")
    n = config.sources
    order = [int(i) for i in rng.permutation(len(pool))]
    if config.pool:  # the sounding classes take turns: every class sounds in len(pool) / clips of the set
        cycle = np.random.default_rng([config.seed, len(pool)]).permutation(len(pool))
        lead = [int(cycle[(index * n + k) % len(pool)]) for k in range(n)]
        order = lead + [i for i in order if i not in lead]
    classes = [pooled(manifest, pool[i], config.pool) for i in order]
    most = min(MAX_DISTRACTORS, len(pool) - n - 1)
    n_distractors = int(rng.integers(min(1, most) if config.pool else 0, most + 1))
    main, distractors, offscreen = classes[:n], classes[n:n + n_distractors], classes[n + n_distractors]
    backgrounds = [b.file for b in manifest.backgrounds]
    if config.pool:
        backgrounds = list(manifest.in_pool(backgrounds, config.pool)[0])
    photo = background = None
    if backgrounds:
        background = backgrounds[int(rng.integers(len(backgrounds)))]
        photo = load_photo(str(resolve(background)))
    cutouts = [_cutout(rng, c, resolve) for c in main]
    other_cutouts = [_cutout(rng, c, resolve) for c in distractors]
    scene = compose_scene(rng, [c for c, _ in cutouts], [c for c, _ in other_cutouts], photo, config.size,
                          n_frames, fps, mid_frame, similar=bool(config.pool))
    files = {"background": rel(background) if background and scene.photo_background else None,
             "others": [rel(ref) for _, ref in other_cutouts], "offscreen": None}
    visible = [obj.class_name for obj in scene.objects]
    not_in_view = [c for c in manifest.classes if c.name not in visible]  # pooled negatives: heard or unheard
    if config.negatives:
        extra = {"negative": config.negatives, "visible": visible}
        files["others"] = [rel(ref) for _, ref in cutouts] + files["others"]  # nothing in view sounds
        for obj in scene.objects:
            obj.sounding = False
        scene.sounding = []
    else:
        extra = {"visible": visible} if config.pool else {}
    if config.negatives == "silence":
        audio, quiet = _silence(rng, config, manifest, resolve, not_in_view, rng.uniform(-1, 1) if config.pool else 0,
                                sample_rate, channels, seconds)
        recording = quiet.pop("recording", None)
        extra.update(quiet, source={"photo": None, "recording": rel(recording) if recording else None, **files})
        return RealDraw(["silence"], scene, audio, extra)
    if config.negatives == "offscreen" and config.pool:
        offscreen = pooled(manifest, not_in_view[int(rng.integers(len(not_in_view)))], config.pool)
        extra["offscreen_split"] = offscreen.split
    heard = [offscreen] if config.negatives == "offscreen" else main
    sounds, refs = [], []
    for c in heard:
        gain = rng.uniform(0.7, 1.0)
        sound, ref = class_sound(rng, c, resolve, sample_rate, seconds)
        sounds.append(gain * sound)
        refs.append(ref)
    if scene.sounding:
        pans = [(x1 + x2) / config.size[0] - 1 for x1, _, x2, _ in (o.box(mid_frame) for o in scene.sounding)]
    else:
        pans = [rng.uniform(-1, 1)]
    ambient = None
    if not config.negatives and rng.random() < OFFSCREEN_SHARE:
        level = np.sqrt(np.mean(sum(sounds) ** 2)) * 10 ** (-rng.uniform(*OFFSCREEN_DB) / 20)
        ambient, ref = class_sound(rng, offscreen, resolve, sample_rate, seconds)
        ambient = level * ambient
        files["offscreen"] = rel(ref)
    audio = mix_sounds(rng, sounds, pans, sample_rate, channels, ambient)
    if config.pool:
        audio = _at_level(audio, rng.uniform(*LEVEL_DBFS))
    photos = [ref for _, ref in cutouts] if not config.negatives else [None]
    sources = [{"photo": rel(p) if p else None, "recording": rel(r), **files} for p, r in zip(photos, refs)]
    extra.update({"source": sources[0]} if len(sources) == 1 else {"sources": sources})
    if config.pool in ("val", "test") and not config.negatives:
        kinds = [instance(manifest, c, p, r) for c, p, r in zip(main, photos, refs)]
        extra["instance"] = kinds[0] if len(kinds) == 1 else kinds
    return RealDraw([c.name for c in heard], scene, audio, extra)
