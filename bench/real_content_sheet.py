"""Docs numbers for the real-content benchmark: a contact sheet, box areas against VGG-SS, speed.

Generates N real-content clips (one worker, wall and CPU time), draws the middle frame of 24 of them with their
box (green) and mask outline (yellow), writes the sheet, and prints the box-area quantiles of the
generated set next to those of VGG-SS (shared/reference/vggss.json).

    python bench/real_content_sheet.py --clips 48 --out docs/img/real_contact_sheet.png
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project: bench/model.py is not the model package
from model.synth.generator import MID_FRAME, SynthConfig, make_clip, run  # noqa: E402
from model.synth.real_scene import BOX_AREA_LEVELS  # noqa: E402

VGGSS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "vggss.json"  # next to the checkout


def largest_box_areas(annotations) -> np.ndarray:
    """The area of each clip's largest box, boxes clipped to the frame (VGG-SS has a few outside it)."""
    boxes = [np.clip(np.array(a["bbox"], float), 0, 1) for a in annotations if a["bbox"]]
    return np.array([((b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)).max() for b in boxes])


def sheet(config: SynthConfig, count: int, columns: int = 6) -> np.ndarray:
    """The middle frames of clips 0..count-1, boxes and mask outlines drawn, class names written."""
    tiles = []
    for index in range(count):
        clip = make_clip(config, index)
        image = cv2.cvtColor(clip.scene.render(MID_FRAME), cv2.COLOR_RGB2BGR)
        for obj in clip.scene.sounding:
            contours, _ = cv2.findContours(obj.visible_mask(MID_FRAME).astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(image, contours, -1, (0, 230, 255), 1)
            x1, y1, x2, y2 = obj.box(MID_FRAME)
            cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), 2)
        cv2.putText(image, " + ".join(clip.classes), (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3)
        cv2.putText(image, " + ".join(clip.classes), (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        tiles.append(image)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--assets", default="data/assets")
    parser.add_argument("--out", default="docs/img/real_contact_sheet.png")
    parser.add_argument("--vggss", type=Path, default=VGGSS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        config = SynthConfig(folder, args.clips, args.seed, content="real", assets=args.assets)
        start, cpu = time.perf_counter(), time.process_time()
        annotations = run(config)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    cv2.imwrite(args.out, sheet(config, 24))
    ours = np.quantile(largest_box_areas(annotations), BOX_AREA_LEVELS)
    theirs = np.quantile(largest_box_areas(json.loads(args.vggss.read_text())), BOX_AREA_LEVELS)
    print(f"{args.clips} clips in {seconds:.1f} s ({cpu:.1f} s CPU) on one worker: "
          f"{args.clips / cpu:.2f} clips per CPU second, {size / args.clips / 1e3:.0f} kB per clip")
    print("quantile | " + " | ".join(f"{q:g}" for q in BOX_AREA_LEVELS))
    print("VGG-SS   | " + " | ".join(f"{v:.3f}" for v in theirs))
    print("real     | " + " | ".join(f"{v:.3f}" for v in ours))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
