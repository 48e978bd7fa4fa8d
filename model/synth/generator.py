"""ssl-synth: a procedural audio-visual sound-source localization benchmark.

Writes ``OUT_DIR/videos/<id>.mp4`` (H.264 + AAC, 25 fps, 4 s) and ``OUT_DIR/annotations.json`` in
the VGG-SS layout (boxes of the sounding objects at t = 2.0 s, normalised). With ``--sources 2``
it also writes one wav per sounding object, the middle frame at 224x224 and
``OUT_DIR/is3_annotations.json`` in the IS3 layout (boxes in pixels of the 224x224 frame, plus
each entry's class name).
``--content real`` draws real photo cut-outs and recordings (fetched by ``ssl-assets``, see
``model/synth/assets.py``) instead of shapes and tones, writes the exact mask of each sounding object
(``masks/<id>_<k>.png``, listed under ``"mask"``) and, with ``--negatives silence|offscreen``,
clips whose sound is not in the picture (``"bbox": []``, ``"negative"``). Real-content entries record the
files they were made from (``"source": {"photo", "recording", "background", ...}``, paths relative to the
assets folder; ``"sources"``, one per sounding object, with ``--sources 2``). ``--pool train|val|test`` draws
every file from that pool of ``model.synth.assets`` only (held-out photos, recordings and backgrounds; see
``model/synth/real.py`` for how a pooled set differs); without it every file may be drawn.
Every clip is drawn from ``numpy.random.default_rng([seed, index])``: same seed, same data.

    ssl-synth OUT_DIR --clips N --seed S [--split heard|unheard|all] [--sources 1|2]
              [--size WxH] [--workers K] [--content procedural|real] [--negatives silence|offscreen]
              [--pool train|val|test] [--assets DIR] [--manifest JSON]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import re
import sys
import time
import wave
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from model.synth.assets import DEFAULT_DIR, DEFAULT_MANIFEST, POOLS
from model.common.atomic import atomic_path, write_image
from model.data.video_writer import ClipWriter
from model.synth.audio import ClipAudio, make_audio, resample
from model.synth.classes import CLASSES, HEARD_CLASSES, SPEC_BY_NAME, UNHEARD_CLASSES
from model.synth.real import NEGATIVE_MODES, draw_real_clip, real_manifest
from model.synth.scene import Scene, sample_scene

__all__ = ["CLASSES", "HEARD_CLASSES", "UNHEARD_CLASSES", "SynthConfig", "generate", "main",
           "make_clip"]

FPS = 25
SECONDS = 4.0
N_FRAMES = int(FPS * SECONDS)
MID_FRAME = N_FRAMES // 2  # pts time 2.0 s: the frame the boxes describe
MAX_DISTRACTORS = 2  # silent objects of other classes; objects are large, so more would hide each other
SAMPLE_RATES = (44100, 48000)
STEREO_SHARE = 0.4  # share of clips with a stereo track
WAV_RATE = 16000
IS3_SIZE = 224
SPLITS = {"all": CLASSES, "heard": HEARD_CLASSES, "unheard": UNHEARD_CLASSES}
CONTENTS = ("procedural", "real")


@dataclass
class SynthConfig:
    """What to generate; mirrors the command-line options."""

    out_dir: str
    clips: int = 100
    seed: int = 0
    split: str = "all"
    sources: int = 1
    size: tuple[int, int] = (320, 240)
    workers: int = 1
    content: str = "procedural"
    negatives: str | None = None  # real content only: every clip's sound is "silence" or "offscreen"
    assets: str = str(DEFAULT_DIR)  # real content: the folder ssl-assets filled
    manifest: str = str(DEFAULT_MANIFEST)
    pool: str | None = None  # real content: draw photos, recordings and backgrounds from this pool only

    def __post_init__(self):
        self.size = tuple(int(v) for v in self.size)
        if self.content not in CONTENTS:
            raise ValueError(f"content must be one of {CONTENTS}, got {self.content!r}")
        if self.negatives is not None and (self.content != "real" or self.sources != 1
                                           or self.negatives not in NEGATIVE_MODES):
            raise ValueError(f"negatives must be one of {NEGATIVE_MODES}, with --content real and one source")
        if self.pool is not None and (self.content != "real" or self.pool not in POOLS):
            raise ValueError(f"pool must be one of {POOLS}, with --content real")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {self.split!r}")
        if self.sources not in (1, 2):
            raise ValueError(f"sources must be 1 or 2, got {self.sources}")
        if len(self.size) != 2 or min(self.size) < 64 or max(self.size) > 4096 or any(v % 2 for v in self.size):
            raise ValueError(f"size must be two even numbers from 64 to 4096, got {self.size}")
        if self.clips < 0 or self.workers < 1:
            raise ValueError("clips must be >= 0 and workers >= 1")

    @classmethod
    def from_argv(cls, argv=None) -> SynthConfig:
        """Parse the ``ssl-synth`` command line."""
        parser = argparse.ArgumentParser(prog="ssl-synth", description=__doc__.split("\n\n")[0],
                                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        parser.add_argument("out_dir", help="folder to write videos/ and annotations.json into")
        parser.add_argument("--clips", type=int, default=cls.clips, help="how many clips (4 s each) to make")
        parser.add_argument("--seed", type=int, default=cls.seed,
                            help="random seed: the same seed and options give the same clips")
        parser.add_argument("--split", choices=sorted(SPLITS), default=cls.split,
                            help="sound classes: heard (for training and its tests), unheard (held out), or all")
        parser.add_argument("--sources", type=int, choices=(1, 2), default=cls.sources,
                            help="sounding objects per scene; 2 also writes IS3-style is3_annotations.json")
        parser.add_argument("--size", default="x".join(map(str, cls.size)), help="frame size WxH, even, >= 64")
        parser.add_argument("--workers", type=int, default=cls.workers, help="processes generating clips at once")
        parser.add_argument("--content", choices=CONTENTS, default=cls.content,
                            help="procedural shapes and tones, or real photo cut-outs and recordings")
        parser.add_argument("--negatives", choices=NEGATIVE_MODES, default=None,
                            help="real content: every clip's sound is silence or a class not in the picture")
        parser.add_argument("--pool", choices=POOLS, default=None,
                            help="real content: draw photos, recordings and backgrounds from this pool only "
                                 "(held out from the others; default: from all)")
        parser.add_argument("--assets", default=cls.assets, help="real content: the ssl-assets folder")
        parser.add_argument("--manifest", default=cls.manifest, help="real content: the asset manifest")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace the clips of an earlier run in OUT_DIR (without it such a folder is refused)")
        args = parser.parse_args(argv)
        previous = earlier_output(Path(args.out_dir))
        if previous and not args.overwrite:
            parser.error(f"{args.out_dir} already holds generated clips ({', '.join(p.name for p in previous)}): "
                         "choose another folder, or pass --overwrite to replace them")
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
            return cls(args.out_dir, args.clips, args.seed, args.split, args.sources, size, args.workers,
                       args.content, args.negatives, args.assets, args.manifest, args.pool)
        except ValueError as error:
            parser.error(str(error))

    @property
    def classes(self) -> list[str]:
        """The class names this split draws from."""
        if self.content == "real":
            return [c.name for c in real_manifest(self.manifest).split(self.split)]
        return SPLITS[self.split]


@dataclass
class Clip:
    """One generated clip, before it is written."""

    id: str
    classes: list[str]  # the sounding classes, in the order of their boxes and stems
    scene: Scene  # or a RealScene
    audio: ClipAudio
    extra: dict = field(default_factory=dict)  # more annotation fields (real-content negatives)


def clip_id(seed: int, index: int) -> str:
    return f"s{seed}_{index:05d}"


def make_clip(config: SynthConfig, index: int) -> Clip:
    """Draw clip ``index`` of ``config``: depends only on (seed, index, split, sources, size), plus
    (content, negatives, pool, assets) for real content."""
    rng = np.random.default_rng([config.seed, index])
    if config.content == "real":
        sample_rate = int(rng.choice(SAMPLE_RATES))
        channels = 2 if rng.random() < STEREO_SHARE else 1
        draw = draw_real_clip(rng, config, sample_rate, channels, N_FRAMES, FPS, MID_FRAME, SECONDS, index)
        return Clip(clip_id(config.seed, index), draw.names, draw.scene, draw.audio, draw.extra)
    pool = config.classes
    n_distractors = int(rng.integers(0, min(MAX_DISTRACTORS, len(pool) - config.sources) + 1))
    names = [str(n) for n in rng.choice(pool, size=config.sources + n_distractors, replace=False)]
    specs = [SPEC_BY_NAME[n] for n in names]
    scene = sample_scene(rng, specs[:config.sources], specs[config.sources:], config.size,
                         N_FRAMES, FPS, MID_FRAME)
    boxes = [obj.box(MID_FRAME) for obj in scene.sounding]
    pans = [(x1 + x2) / config.size[0] - 1 for x1, _, x2, _ in boxes]  # -1 left .. 1 right
    sample_rate = int(rng.choice(SAMPLE_RATES))
    channels = 2 if rng.random() < STEREO_SHARE else 1
    sounds = [spec.sound for spec in specs[:config.sources]]
    audio = make_audio(rng, sounds, pans, sample_rate, channels, SECONDS)
    return Clip(clip_id(config.seed, index), names[:config.sources], scene, audio)


def write_mp4(path: Path, scene: Scene, audio: ClipAudio) -> None:
    """Encode the scene (libx264, yuv420p) and the audio mix (AAC), interleaved frame by frame."""
    height, width = scene.background.shape[:2]
    with atomic_path(path) as tmp:
        writer = ClipWriter(tmp, FPS, (width, height), audio.mix, audio.sample_rate)
        for i in range(N_FRAMES):
            writer.write(scene.render(i))
        writer.close()


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono wav."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def write_clip(config: SynthConfig, index: int) -> tuple[dict, list[dict]]:
    """Generate and write clip ``index``; returns its VGG-SS annotation and its IS3 entries."""
    clip = make_clip(config, index)
    out = Path(config.out_dir)
    width, height = config.size
    boxes = [obj.box(MID_FRAME) for obj in clip.scene.sounding]
    write_mp4(out / "videos" / f"{clip.id}.mp4", clip.scene, clip.audio)
    annotation = {"file": clip.id, "class": " + ".join(clip.classes),
                  "bbox": [[round(x1 / width, 6), round(y1 / height, 6), round(x2 / width, 6),
                            round(y2 / height, 6)] for x1, y1, x2, y2 in boxes]}
    if config.content == "real" and not config.negatives:
        annotation["mask"] = [f"masks/{clip.id}_{k}.png" for k in range(len(boxes))]
        for name, obj in zip(annotation["mask"], clip.scene.sounding):
            write_image(out / name, obj.visible_mask(MID_FRAME).astype(np.uint8) * 255)
    annotation.update(clip.extra)
    if config.sources == 1:
        return annotation, []
    image = f"frames/{clip.id}.jpg"
    small = cv2.resize(clip.scene.render(MID_FRAME), (IS3_SIZE, IS3_SIZE), interpolation=cv2.INTER_AREA)
    write_image(out / image, cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    entries = []
    for k, ((x1, y1, x2, y2), stem, name) in enumerate(zip(boxes, clip.audio.stems, clip.classes)):
        audio = f"audio/{clip.id}_{k}.wav"
        write_wav(out / audio, resample(stem, clip.audio.sample_rate, WAV_RATE), WAV_RATE)
        sx, sy = IS3_SIZE / width, IS3_SIZE / height
        gt_box = [float(np.floor(x1 * sx)), float(np.floor(y1 * sy)),
                  float(np.ceil(x2 * sx)), float(np.ceil(y2 * sy))]
        entries.append({"image": image, "audio": audio, "gt_box": gt_box, "class": name})
    return annotation, entries


OUTPUT_NAMES = ("videos", "audio", "frames", "annotations.json", "is3_annotations.json")
ANNOTATION_NAMES = ("annotations.json", "is3_annotations.json")
CLIP_FOLDERS = ("videos", "audio", "frames", "masks")
OWN_NAME = re.compile(r"s-?\d+_\d{5}(_\d+)?\.(mp4|wav|jpg|png)(\.tmp)?")  # clip_id's files, finished or not


def earlier_output(out: Path) -> list[Path]:
    """What an earlier run left in ``out`` (clip folders and annotation files)."""
    return [out / name for name in OUTPUT_NAMES if (out / name).exists()]


def _named_files(entry) -> list[str]:
    """The files an annotation entry of ours names, relative to the output folder."""
    if not isinstance(entry, dict):
        return []
    names = [f"videos/{entry['file']}.mp4"] if isinstance(entry.get("file"), str) else []
    for key in ("image", "audio", "mask"):
        value = entry.get(key)
        names += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return names


def own_files(out: Path) -> list[Path]:
    """The files an earlier run wrote into ``out``: its annotation files, the clip files they name, and the
    files named like a clip of ours in its clip folders (those of a run killed before its annotations)."""
    folders = [(out / name).resolve() for name in CLIP_FOLDERS]
    named = []
    for name in ANNOTATION_NAMES:
        try:
            entries = json.loads((out / name).read_text())
        except (OSError, ValueError):
            continue
        named += [n for entry in (entries if isinstance(entries, list) else []) for n in _named_files(entry)]
    found = [(out / name).resolve() for name in named]
    found = [p for p in found if p.parent in folders and p.is_file()]  # never a path outside our folders
    found += [p for folder in folders if folder.is_dir() for p in folder.iterdir()
              if p.is_file() and OWN_NAME.fullmatch(p.name)]
    return sorted(set(found)) + [out / name for name in ANNOTATION_NAMES if (out / name).is_file()]


def remove_earlier_output(out: Path) -> None:
    """``--overwrite``: delete what an earlier run wrote (``own_files``), never a file of anyone else's;
    clip folders left empty go too."""
    for path in own_files(out):
        path.unlink()
    for name in CLIP_FOLDERS:
        with contextlib.suppress(OSError):  # not there, or holding someone's files
            (out / name).rmdir()


def run(config: SynthConfig) -> list[dict]:
    """Generate every clip of ``config`` (in parallel with ``workers``) and write the json files."""
    out = Path(config.out_dir)
    if config.content == "real":
        missing = real_manifest(config.manifest).missing(config.assets)
        if missing:
            raise FileNotFoundError(f"--content real needs the assets: run `ssl-assets {config.assets}` "
                                    f"({len(missing)} files missing, e.g. {missing[0]})")
    folders = ["videos"] + (["audio", "frames"] if config.sources == 2 else [])
    folders += ["masks"] if config.content == "real" and not config.negatives else []
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    job = partial(write_clip, config)
    if config.workers > 1 and config.clips > 1:
        with multiprocessing.Pool(min(config.workers, config.clips)) as pool:
            results = pool.map(job, range(config.clips), chunksize=1)
    else:
        results = [job(i) for i in range(config.clips)]
    annotations = [annotation for annotation, _ in results]
    with atomic_path(out / "annotations.json") as tmp:
        tmp.write_text(json.dumps(annotations) + "\n")
    if config.sources == 2:
        entries = [entry for _, clip_entries in results for entry in clip_entries]
        with atomic_path(out / "is3_annotations.json") as tmp:
            tmp.write_text(json.dumps(entries) + "\n")
    return annotations


def generate(out_dir, clips: int, seed: int, split: str = "all", sources: int = 1,
             size: tuple[int, int] = (320, 240), workers: int = 1, **real) -> list[dict]:
    """Generate a benchmark into ``out_dir``; returns the annotations written to annotations.json.
    ``real``: ``content``, ``negatives``, ``assets``, ``manifest``, ``pool`` of ``SynthConfig``."""
    return run(SynthConfig(str(out_dir), clips, seed, split, sources, tuple(size), workers, **real))


def main(argv=None) -> int:
    config = SynthConfig.from_argv(argv)  # refuses a folder with earlier clips unless --overwrite
    start = time.perf_counter()
    try:
        remove_earlier_output(Path(config.out_dir))
        annotations = run(config)
    except (FileNotFoundError, ValueError) as error:
        print(f"ssl-synth: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a read-only or full disk, a file where a folder is needed
        print(f"ssl-synth: cannot write {config.out_dir}: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    print(f"wrote {len(annotations)} clips ({config.content}, {config.split}, {config.sources} source(s)) to "
          f"{config.out_dir} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
