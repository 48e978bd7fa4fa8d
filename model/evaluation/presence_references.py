"""Model-free presence scores that put a presence AUROC in proportion.

    python -m model.evaluation.presence_references DATA [DATA ...] [--manifest JSON]

``DATA``: folders with ``videos/`` and ``annotations.json`` whose entries mark negatives (``ssl-synth
--negatives``; a pooled set also lists what is in view, ``"visible"``). Every matched clip against each
kind of negative, as ``ssl-eval``'s ``presence``:

- **level meter**: the clip's RMS level alone (louder = "in view"). Where it separates the kinds, a presence
  score may be reading the loudness, not the picture.
- **class matcher**: the best a classifier of the heard classes (the manifest's ``heard`` split) could do
  when it knows the true class of the sound and of every object in view: 1 when the sound is of a heard class
  in view, 0 when it is of a heard class not in view; for a sound of no heard class (an unheard class, or
  room noise) it cannot tell, 0.5 when an object of no heard class is in view, else 0. Where it reaches 100, the
  negatives can be told apart by "is this familiar sound's class among the familiar things in view" alone.

Off-screen negatives are also split by the split of the class they play (``offscreen_heard``,
``offscreen_unheard``) where the annotations say (``"offscreen_split"``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.synth.assets import DEFAULT_MANIFEST, load_manifest
from model.data.video_io import decode_audio_track
from model.evaluation.presence_metrics import auroc
from model.networks.presence import level_dbfs

RATE = 16000


def class_matcher(sounds: list[str], visible: list[str], heard: set[str]) -> float:
    """The class matcher's score of one clip: ``sounds`` the classes heard in it ([] for room noise),
    ``visible`` the classes in view."""
    if any(s in heard and s in visible for s in sounds):
        return 1.0
    if sounds and all(s in heard for s in sounds):
        return 0.0
    return 0.5 if any(v not in heard for v in visible) else 0.0


def _sounds(entry: dict) -> list[str]:
    """The classes heard in a clip: its class (each of "a + b"), a silence negative's quiet sound, or none."""
    if entry.get("negative") == "silence":
        return [entry["quiet"]] if entry.get("quiet") else []
    return [name for name in entry.get("class", "").split(" + ") if name]


def _kind(entry: dict) -> str:
    kind = entry.get("negative", "")
    return f"{kind}_{entry['offscreen_split']}" if kind == "offscreen" and "offscreen_split" in entry else kind


def clip_scores(folders, heard: set[str]) -> list[tuple[str, float, float]]:
    """(kind, level in dBFS, class matcher score) of every clip of ``folders``; kind '' for a matched clip."""
    rows = []
    for folder in map(Path, folders):
        for entry in json.loads((folder / "annotations.json").read_text()):
            level = level_dbfs(decode_audio_track(folder / "videos" / f"{entry['file']}.mp4", RATE))
            visible = entry.get("visible") or _sounds(entry)  # an unpooled matched clip shows its own class
            kind = _kind(entry)
            rows.append((kind, level, class_matcher(_sounds(entry), visible, heard)))
    return rows


def reference_aurocs(rows) -> dict:
    """``{"level meter" | "class matcher": {"auroc_<kind>": %}, "n_<kind>": count}`` for every negative kind,
    and for all off-screen negatives together where they are split."""
    matched = [r for r in rows if not r[0]]
    kinds = sorted({r[0] for r in rows if r[0]})
    if any(k.startswith("offscreen_") for k in kinds):
        kinds.append("offscreen")
    result: dict = {"n_matched": len(matched)}
    for column, name in ((1, "level meter"), (2, "class matcher")):
        result[name] = {}
        for kind in kinds:
            negatives = [r[column] for r in rows if r[0] == kind or (kind == "offscreen" and r[0].startswith(kind))]
            result[name][f"auroc_{kind}"] = auroc([r[column] for r in matched], negatives)
            result[f"n_{kind}"] = len(negatives)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluation.presence_references",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="annotated folders (their clips are pooled)")
    parser.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="the asset manifest (its heard split)")
    args = parser.parse_args(argv)
    try:
        heard = {c.name for c in load_manifest(args.manifest).split("heard")}
        rows = clip_scores(args.data, heard)
    except (OSError, ValueError, KeyError) as exc:
        print(f"presence_references: error: {exc!r}", file=sys.stderr)
        return 2
    print(json.dumps(reference_aurocs(rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
