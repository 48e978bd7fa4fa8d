"""Markdown tables of several ``ssl-eval`` reports, one table per test set, one row per run.

    python -m model.evaluation.results_table REPORTS_DIR     # folders named RUN_TESTSET, e.g. align_test_heard

The tables of docs/RESULTS.md are made with it from the ``metrics.json`` files ``bench/results.sh`` writes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

TEST_SETS = ("test_heard", "test_unheard", "test_two")
COLUMNS = ("cIoU", "AUC", "cIoU adapt.", "A->I R@1", "R@5", "R@10", "I->A R@1", "R@5", "R@10")


OPTIONAL = (  # columns shown when some run of the table has them ("-" for the others)
    ("mask cIoU", lambda m: m.get("ciou_mask")),
    ("iIoU", lambda m: m.get("iiou")),
    ("iAUC", lambda m: m.get("iauc")),
    ("presence AUROC silence", lambda m: m.get("presence", {}).get("auroc_silence")),
    ("presence AUROC off-screen", lambda m: m.get("presence", {}).get("auroc_offscreen")),
    ("in view", lambda m: m.get("presence", {}).get("in_view")),
    ("object-guided weight", lambda m: m.get("object_guided", {}).get("weight")),
    ("object-guided cIoU", lambda m: m.get("object_guided", {}).get("ciou")),
    ("object-guided cIoU adapt.", lambda m: m.get("object_guided", {}).get("ciou_adaptive")),
)


def row_values(m: dict) -> list[float]:
    """The numbers of one ``metrics.json`` in the order of ``COLUMNS``."""
    a2i, i2a = m["retrieval"]["audio_to_image"], m["retrieval"]["image_to_audio"]
    return [m["ciou"], m["auc"], m["ciou_adaptive"], a2i["r1"], a2i["r5"], a2i["r10"],
            i2a["r1"], i2a["r5"], i2a["r10"]]


def _cell(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def tables(reports: Path) -> str:
    """One Markdown table per test set found under ``reports`` (runs in the order their names sort)."""
    out = []
    for test in TEST_SETS:
        found = sorted(reports.glob(f"*_{test}/metrics.json"))
        if not found:
            continue
        rows = [(p.parent.name[: -len(test) - 1], json.loads(p.read_text())) for p in found]
        extra = [(name, get) for name, get in OPTIONAL if any(get(m) is not None for _, m in rows)]
        header = ("run", "n", *COLUMNS, *(name for name, _ in extra))
        out += [f"### {test}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        out += ["| " + " | ".join([run, str(m["n"])] + [_cell(v) for v in row_values(m)]
                                  + [_cell(get(m)) for _, get in extra]) + " |"
                for run, m in rows]
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluation.results_table", description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, help="folder of ssl-eval report folders RUN_TESTSET")
    print(tables(parser.parse_args(argv).reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
