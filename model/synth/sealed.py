"""The sealed test: held-out test sets generated once and scored only for a release decision.

Their seeds are written here and nowhere else: no training, validation, calibration or choice of the
repository (``bench/``, ``tools/``, the Makefile, ``model/``) uses them (tests/test_sealed.py checks it).
Every set draws from the test pool of ``model.synth.assets`` (photos, recordings and backgrounds held out from
training and validation). docs/RESULTS.md says how many checkpoints were ever scored on them.

    python -m model.synth.sealed OUT_DIR [--clips 500] [--negatives 100] [--two 100] [--workers K]

writes ``OUT_DIR/<name>`` for every set of ``SEALED_SEEDS``: heard classes, their silence and off-screen
negatives, unheard classes, two-source scenes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.synth.assets import DEFAULT_DIR, DEFAULT_MANIFEST
from model.synth.generator import generate

#: set name -> (seed, ssl-synth options); every set with --content real --pool test.
SEALED_SEEDS = {
    "test_heard": (90417, {"split": "heard"}),
    "test_silence": (90419, {"split": "heard", "negatives": "silence"}),
    "test_offscreen": (90421, {"split": "heard", "negatives": "offscreen"}),
    "test_unheard": (90427, {"split": "unheard"}),
    "test_two": (90433, {"split": "heard", "sources": 2}),
}
SEALED_POOL = "test"


def generate_sealed(out_dir, clips: int = 500, negatives: int = 100, two: int = 100, workers: int = 1,
                    assets: str = str(DEFAULT_DIR), names=None, manifest: str = str(DEFAULT_MANIFEST),
                    size: tuple[int, int] = (320, 240)) -> dict[str, int]:
    """Generate the sealed sets ``names`` (default: all) into ``out_dir``; returns clips per set."""
    sizes = {"test_heard": clips, "test_silence": negatives, "test_offscreen": negatives, "test_unheard": clips,
             "test_two": two}
    written = {}
    for name in names or SEALED_SEEDS:
        seed, options = SEALED_SEEDS[name]
        written[name] = len(generate(Path(out_dir) / name, sizes[name], seed, size=size, workers=workers,
                                     content="real", pool=SEALED_POOL, assets=assets, manifest=manifest, **options))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.synth.sealed", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to write the sealed sets into")
    parser.add_argument("--clips", type=int, default=500, help="clips of test_heard and of test_unheard")
    parser.add_argument("--negatives", type=int, default=100, help="clips of each negative set")
    parser.add_argument("--two", type=int, default=100, help="two-source scenes")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--assets", default=str(DEFAULT_DIR))
    args = parser.parse_args(argv)
    if any((Path(args.out_dir) / name).exists() for name in SEALED_SEEDS):
        parser.error(f"{args.out_dir} already holds sealed sets: they are generated once")
    try:
        written = generate_sealed(args.out_dir, args.clips, args.negatives, args.two, args.workers, args.assets)
    except (FileNotFoundError, ValueError) as error:
        print(f"sealed: {error}", file=sys.stderr)
        return 1
    print(f"sealed sets in {args.out_dir}: " + ", ".join(f"{name} {n}" for name, n in written.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
