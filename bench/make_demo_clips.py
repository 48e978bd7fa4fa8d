"""Make the bundled demo clips: ``python bench/make_demo_clips.py`` writes resources/demo/.

Six real-content clips (``ssl-synth --content real``: photo cut-outs and their recordings, seed 777, heard
classes, 320x240, 4 s each, H.264 + AAC, needs ``make assets``) and their annotations.json and masks: what
the app plays, as if it were a camera and a microphone, when there is no camera. ``--content procedural``
makes the shapes-and-tones clips of earlier versions.
"""
import argparse
import shutil
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project: bench/model.py is not the model package
from model.synth.assets import DEFAULT_DIR, DEFAULT_MANIFEST  # noqa: E402
from model.synth.generator import generate  # noqa: E402

DEMO_DIR = Path(__file__).resolve().parent.parent / "resources" / "demo"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--content", choices=("real", "procedural"), default="real")
    parser.add_argument("--assets", default=str(DEFAULT_DIR), help="real content: the ssl-assets folder")
    parser.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="real content: the asset manifest")
    args = parser.parse_args(argv)
    for old in ("videos", "masks"):
        shutil.rmtree(args.out / old, ignore_errors=True)
    real = {"content": "real", "assets": args.assets, "manifest": args.manifest} if args.content == "real" else {}
    annotations = generate(args.out, clips=args.clips, seed=args.seed, split="heard" if real else "all",
                           size=(320, 240), **real)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {len(annotations)} clips to {args.out} ({size / 1e6:.2f} MB): "
          + ", ".join(a["class"] for a in annotations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
