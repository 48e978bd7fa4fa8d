"""Retrieval by the knowledge: the clips of an ``ssl-synth`` folder ranked by the bridge beside the embedding.

For a query sound and a gallery clip, the bridge's similarity is the peak of the semantic map of that sound over the
clip's frame (``model.knowledge.semantic.semantic_map``: what YAMNet hears, through the bridge, times the ImageNet
classes and people at every place); image -> audio ranks the sounds of the gallery by the same number. Beside it: the
alignment model's embedding (``ssl-eval``'s retrieval) and their fusion, the two similarities standardized per query
and added with the bridge at each weight of ``FUSION_WEIGHTS``. R@1 and R@5 with 95 % Wilson intervals; chance
from the class counts (``metrics.retrieval_chance``)::

    python -m model.evaluation.bridge_retrieval --data DATA [--checkpoint CKPT] [--limit N] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from model.data.video_io import VideoReadError
from model.evaluation import metrics
from model.knowledge.semantic import semantic_maps

FUSION_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
KS = (1, 5)


@dataclass
class Items:
    """The matched clips of a folder as the two sides see them."""

    labels: list[str]
    audio: torch.Tensor  # (N, D) unit audio vectors
    image: torch.Tensor  # (N, D) unit image vectors
    evidence: torch.Tensor  # (N, 1001) per visual class, ``model.knowledge.bridge.visual_evidence``
    classes: torch.Tensor  # (N, 1000, h, w) ImageNet probabilities per place
    people: torch.Tensor  # (N, h, w)


@torch.no_grad()
def read_items(model, dataset, limit: int | None = None) -> Items:
    """Every readable matched clip (a class, no negative kind) of ``dataset``, at most ``limit``."""
    from model.knowledge.scene import SceneReader
    from model.knowledge.semantic import heard
    from model.knowledge.yamnet import sound_scores
    from model.localize import encode_frame, encode_sound, image_vector

    reader = SceneReader("cpu", model.config.image_size)
    labels, audio, image, evidence, classes, people = [], [], [], [], [], []
    for i in range(len(dataset)):
        annotation = dataset.annotations.get(dataset.sources[i].file)
        if annotation is None or annotation.negative or not annotation.label:
            continue
        try:
            frame, waveform = dataset.raw(i)
        except VideoReadError:
            continue
        labels.append(annotation.label)
        audio.append(encode_sound(model, waveform, "cpu").vector[0].float())
        image.append(image_vector(encode_frame(model, frame, "cpu")[0])[0].float())
        evidence.append(heard(sound_scores(waveform, model.audio_config.sample_rate)).evidence)
        scene = reader.read(frame)
        classes.append(scene.classes)
        people.append(scene.people)
        if limit is not None and len(labels) >= limit:
            break
    if not labels:
        raise ValueError("no matched clip with a class to retrieve")
    unit = torch.nn.functional.normalize
    return Items(labels, unit(torch.stack(audio), dim=1), unit(torch.stack(image), dim=1), torch.stack(evidence),
                 torch.stack(classes), torch.stack(people))


def bridge_similarity(evidence: torch.Tensor, classes: torch.Tensor, people: torch.Tensor) -> torch.Tensor:
    """(Q, G): the peak of the semantic map of sound q over frame g (``semantic_maps``)."""
    return semantic_maps(evidence, classes, people).flatten(2).amax(dim=2)


def standardized(similarity: torch.Tensor) -> torch.Tensor:
    """Each query's row to zero mean and unit deviation, so that two similarities can be added."""
    return (similarity - similarity.mean(dim=1, keepdim=True)) / similarity.std(dim=1, keepdim=True).clamp_min(1e-6)


def report(items: Items) -> dict:
    """Per direction and ranking: R@k with intervals; and the chance."""
    embedding = items.audio @ items.image.T  # (audio, image)
    bridge = bridge_similarity(items.evidence, items.classes, items.people)
    out = {"n": len(items.labels), "classes": len(set(items.labels)),
           "chance": metrics.retrieval_chance(items.labels, items.labels, KS)}
    for direction, (emb, brg) in (("audio_to_image", (embedding, bridge)), ("image_to_audio", (embedding.T, bridge.T))):
        rankings = {"embedding": emb, "bridge": brg,
                    **{f"fused {w:g}": standardized(emb) + w * standardized(brg) for w in FUSION_WEIGHTS}}
        out[direction] = {}
        for name, similarity in rankings.items():
            hits = metrics.ranked_hits(similarity, items.labels, items.labels)
            out[direction][name] = {**{f"r{k}": v for k, v in metrics.hits_at_k(hits, KS).items()},
                                    "ci95": {f"r{k}": v for k, v in metrics.hits_intervals(hits, KS).items()}}
    return out


def print_report(result: dict, out=sys.stdout) -> None:
    chance = result["chance"]
    print(f"{result['n']} clips, {result['classes']} classes; chance R@1 {chance[1]:.1f}, R@5 {chance[5]:.1f}",
          file=out)
    for direction in ("audio_to_image", "image_to_audio"):
        for name, row in result[direction].items():
            ci = row["ci95"]["r1"]
            print(f"  {direction:15s} {name:12s} R@1 {row['r1']:5.1f} [{ci[0]:4.1f}, {ci[1]:4.1f}]"
                  f"  R@5 {row['r5']:5.1f}", file=out)


def main(argv=None) -> int:
    from model.checkpoints.store import CheckpointError, load_model
    from model.evaluation.evaluate import open_dataset

    p = argparse.ArgumentParser(prog="python -m model.evaluation.bridge_retrieval",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="an ssl-synth folder (annotations.json, videos/)")
    p.add_argument("--checkpoint", default="resources/model.safetensors")
    p.add_argument("--limit", type=int, help="the first N matched clips only")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    try:
        model = load_model(args.checkpoint).eval()
        result = report(read_items(model, open_dataset(args.data, model), args.limit))
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"bridge_retrieval: error: {exc}", file=sys.stderr)
        return 2
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
