"""Remake the tables of model/knowledge from WordNet 3.0 (Debian's wordnet-base) and ImageNet's class list.

    apt-get install wordnet-base     # WordNet's data files in /usr/share/wordnet
    .venv/bin/python tools/make_bridge.py [--wordnet /usr/share/wordnet]

Writes ``imagenet_classes.tsv`` (ImageNet's 1000 classes: index, WordNet id, name; from timm's class list,
which the full set installs), ``bridge.tsv`` (AudioSet label -> the ImageNet classes or "person" that make
that sound) and ``person_cues.tsv`` (ImageNet classes that are worn or carried by people). A label's words
reach WordNet's first noun sense of each of its comma-separated names; every ImageNet class under that
sense is linked. A broad label's links weigh less (Animal's 398 classes: 0.33; every dog breed under Bark: 1),
so that "a dog barks" outweighs "an animal" on the dog. ``hand_links.tsv`` adds the links that words alone do not
make; AudioSet's "Human sounds" (its first 67 labels, Speech to Children playing) all go to "person", those
that animals make as well (a grunt, panting, footsteps: ``SHARED_WITH_ANIMALS``) at half weight. Run at
build time only: the app and the tests read the tables that are checked in.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path

KNOWLEDGE = Path(__file__).resolve().parent.parent / "model" / "knowledge"
sys.path.insert(0, str(KNOWLEDGE.parent.parent))
from model.knowledge.bridge import HUMAN_SOUNDS  # noqa: E402
from model.knowledge.yamnet import class_names  # noqa: E402

SHARED_WITH_ANIMALS = ("Whimper", "Wail, moan", "Groan", "Grunt", "Breathing", "Wheeze", "Snoring", "Gasp", "Pant",
                       "Snort", "Sniff", "Run", "Shuffle", "Walk, footsteps", "Chewing, mastication", "Biting",
                       "Stomach rumble", "Burping, eructation", "Hiccup", "Fart", "Heart sounds, heartbeat",
                       "Heart murmur", "Screaming")
SHARED_WEIGHT = 0.5  # a body sound that an animal could make is weaker evidence of a person than a voice
BROAD = 130  # a label linked to more ImageNet classes than this (Animal: 398) is broad: its links weigh BROAD / n
PERSON_SYNSETS = ("clothing.n.01", "headdress.n.01", "mask.n.01", "sunglasses.n.01", "wig.n.01", "lipstick.n.01",
                  "mask.n.04", "face_powder.n.01", "hairpiece.n.01", "necklace.n.01", "neckwear.n.01")


class WordNet:
    """The noun part of WordNet's database files: synsets, their hypernyms and the lemma index."""

    def __init__(self, folder: Path):
        self.words: dict[int, list[str]] = {}
        self.hypernyms: dict[int, list[int]] = defaultdict(list)
        for line in (folder / "data.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            offset, count = int(fields[0]), int(fields[3], 16)
            self.words[offset] = [fields[4 + 2 * i].lower() for i in range(count)]
            rest = fields[4 + 2 * count:]
            for i in range(int(rest[0])):
                symbol, target, pos = rest[1 + 4 * i: 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    self.hypernyms[offset].append(int(target))
        self.senses: dict[str, list[int]] = {}
        for line in (folder / "index.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split()
            synsets = int(fields[2])
            self.senses[fields[0]] = [int(x) for x in fields[-synsets:]]
        self.plurals = dict(line.split()[:2] for line in (folder / "noun.exc").read_text().splitlines() if line)

    def synset(self, name: str) -> int:
        """``lemma.n.NN`` -> its offset."""
        lemma, _, number = name.rsplit(".", 2)
        return self.senses[lemma.lower()][int(number) - 1]

    def first_sense(self, words: str) -> int | None:
        lemma = re.sub(r"\s+", "_", words.strip().lower())
        for candidate in (lemma, self.plurals.get(lemma), lemma[:-1] if lemma.endswith("s") else None):
            if candidate and candidate in self.senses:
                return self.senses[candidate][0]
        return None

    def ancestors(self, offset: int) -> set[int]:
        seen, todo = {offset}, [offset]
        while todo:
            for parent in self.hypernyms[todo.pop()]:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen


def imagenet_classes() -> list[tuple[str, str]]:
    info = resources.files("timm") / "data" / "_info"
    wnids = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    return [(wnid, lemmas[wnid]) for wnid in wnids]


def read_hand_links(path: Path) -> list[tuple[str, str, str]]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    return [(label, target, why) for label, target, why in rows]


def weight(label: str, target: str, links: int) -> float:
    """A link's weight: less for a broad label (``BROAD``), half for a body sound animals make too."""
    if target == "person" and label in SHARED_WITH_ANIMALS:
        return SHARED_WEIGHT
    return min(1.0, BROAD / links)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"), help="WordNet 3.0's dict folder")
    p.add_argument("--out", type=Path, default=KNOWLEDGE, help="where to write the tables (default model/knowledge)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wordnet = WordNet(args.wordnet)
    labels, classes = class_names(), imagenet_classes()
    ancestry = [wordnet.ancestors(int(wnid[1:])) for wnid, _ in classes]

    def under(offset: int) -> list[int]:
        return [i for i, seen in enumerate(ancestry) if offset in seen]

    links: dict[tuple[int, str], str] = {}
    for index, label in enumerate(labels):
        if index < HUMAN_SOUNDS.stop:
            links[(index, "person")] = "AudioSet's Human sounds"
            continue
        for name in re.sub(r"\(.*?\)", "", label).split(","):
            offset = wordnet.first_sense(name)
            for c in under(offset) if offset is not None else []:
                links.setdefault((index, classes[c][0]), f"WordNet: {name.strip().lower()}")
    by_name = {label: i for i, label in enumerate(labels)}
    if unknown := set(SHARED_WITH_ANIMALS) - set(by_name):
        raise SystemExit(f"SHARED_WITH_ANIMALS: not AudioSet labels: {sorted(unknown)}")
    for label, target, why in read_hand_links(KNOWLEDGE / "hand_links.tsv"):
        if label not in by_name:
            raise SystemExit(f"hand_links.tsv: {label!r} is not an AudioSet label")
        if target == "person":
            links[(by_name[label], "person")] = f"hand: {why}"
            continue
        found = under(wordnet.synset(target))
        if not found:
            raise SystemExit(f"hand_links.tsv: {target} has no ImageNet class under it")
        for c in found:
            links.setdefault((by_name[label], classes[c][0]), f"hand: {why}")

    with open(args.out / "imagenet_classes.tsv", "w", newline="", encoding="utf-8") as f:
        f.write("index\twnid\tname\n")
        f.writelines(f"{i}\t{wnid}\t{name}\n" for i, (wnid, name) in enumerate(classes))
    counts = defaultdict(int)
    for i, _ in links:
        counts[i] += 1
    with open(args.out / "bridge.tsv", "w", newline="", encoding="utf-8") as f:
        f.write("audioset_index\taudioset_label\ttarget\tweight\tvia\n")
        f.writelines(f"{i}\t{labels[i]}\t{target}\t{weight(labels[i], target, counts[i]):.3g}\t{via}\n"
                     for (i, target), via in sorted(links.items()))
    cues = sorted({c for name in PERSON_SYNSETS for c in under(wordnet.synset(name))})
    with open(args.out / "person_cues.tsv", "w", newline="", encoding="utf-8") as f:
        f.write("index\twnid\tname\n")
        f.writelines(f"{c}\t{classes[c][0]}\t{classes[c][1]}\n" for c in cues)
    linked = {i for i, _ in links}
    visual = {t for _, t in links}
    print(f"bridge: {len(linked)} AudioSet labels -> {len(visual)} visual classes ({len(links)} links); "
          f"{len(cues)} person cues")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
