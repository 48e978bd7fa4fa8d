"""Per-part time of the pretrained knowledge (``model.knowledge``) on this machine, batch 1, one thread.

What the live path pays: YAMNet once per audio refresh (the bundled model's window, heard six ways:
``model.knowledge.yamnet.hearings``), a scene read (ImageNet classes at every location, the face detector and the
person detector) once a second in the hearing thread and at a cut, and per frame the semantic map and its mix into
the heatmap.
The parts are timed in alternation (one call of each per round), so that the machine's other load affects all
alike; medians.

Usage: python bench/knowledge.py [--repeats 30] [--threads 1] [--json OUT]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # the project: bench/model.py is not the model package
import cv2  # noqa: E402

from bench.bench_encoders import alternating_median_ms  # noqa: E402
from bench.results_file import write_json  # noqa: E402
from model.checkpoints.store import load_model  # noqa: E402
from model.data.video_io import read_frame  # noqa: E402
from model.knowledge.bodies import detect_people  # noqa: E402
from model.knowledge.faces import detect_faces  # noqa: E402
from model.knowledge.scene import SceneReader  # noqa: E402
from model.knowledge.semantic import combine, heard, semantic_map  # noqa: E402
from model.knowledge.yamnet import sound_scores  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    demo = sorted((ROOT / "resources" / "demo" / "videos").glob("*.mp4"))[0]
    frame = cv2.resize(read_frame(demo, 1.0), (640, 480))  # a demo frame at a webcam's VGA size
    window = load_model(ROOT / "resources" / "model.safetensors").audio_config
    sound = (0.1 * rng.standard_normal(window.num_samples)).astype(np.float32)
    reader = SceneReader()
    scene = reader.read(frame)
    what = heard(sound_scores(sound, window.sample_rate))
    cosine = torch.rand(14, 14)
    parts = {
        "yamnet_window_ms": lambda: sound_scores(sound, window.sample_rate),
        "scene_read_vga_ms": lambda: reader.read(frame),
        "faces_vga_ms": lambda: detect_faces(frame),
        "people_vga_ms": lambda: detect_people(frame),
        "semantic_map_and_mix_ms": lambda: combine(cosine, semantic_map(what, scene), 0.5),
    }
    result = {**alternating_median_ms(parts, args.repeats), "threads": args.threads}
    for name, value in result.items():
        print(f"{name:26s} {value:8.2f}" if isinstance(value, float) else f"{name:26s} {value}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
