"""Make the bundled demo clips: ``python bench/make_demo_clips.py`` writes resources/demo/.

Six procedural clips (``model.synth``, seed 777, all classes, 320x240, 4 s each, H.264 + AAC) and their
annotations.json: what the app plays, as if it were a camera and a microphone, when there is no camera.
"""
import argparse
import shutil
import sys
from pathlib import Path

from model.synth import generate

DEMO_DIR = Path(__file__).resolve().parent.parent / "resources" / "demo"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seed", type=int, default=777)
    args = parser.parse_args(argv)
    shutil.rmtree(args.out / "videos", ignore_errors=True)
    annotations = generate(args.out, clips=args.clips, seed=args.seed, split="all", size=(320, 240))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {len(annotations)} clips to {args.out} ({size / 1e6:.2f} MB): "
          + ", ".join(a["class"] for a in annotations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
