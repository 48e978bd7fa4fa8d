"""The evaluation report: ``report.md`` and PNG plots drawn with OpenCV (no plotting library needed).

- ``success.png``: success rate over the IoU threshold (median and adaptive thresholds; AUC in the legend);
- ``examples.png``: the best and the worst localised items, heatmap over the frame, boxes in green;
- ``retrieval.png``: audio queries and their top-5 images (green border: same class).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from model.common.atomic import atomic_path, write_image
from model.evaluation import metrics
from model.inference.heatmap import to_heatmap
from model.inference.overlay import blend, overlay_lut
from model.preprocess.image import denormalize_image

TILE = 224
FONT = cv2.FONT_HERSHEY_SIMPLEX
REPORT_COLORMAP, REPORT_OPACITY = "inferno", 0.7  # the app's default look
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (160, 160, 160)
GREEN, RED, BLUE, ORANGE = (40, 180, 60), (220, 50, 40), (40, 90, 220), (240, 140, 20)  # RGB


def _text(img: np.ndarray, text: str, org, scale=0.45, color=BLACK, thickness=1) -> None:
    cv2.putText(img, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


def _save_rgb(path: Path, rgb: np.ndarray) -> None:
    write_image(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # an OSError when it cannot be written


def success_plot(curves: dict[str, np.ndarray], path, size=(640, 440)) -> None:
    """Success rate (0..1) at ``metrics.THRESHOLDS`` for each named curve, as a line plot."""
    w, h = size
    left, right, top, bottom = 60, 20, 30, 50
    img = np.full((h, w, 3), 255, np.uint8)

    def xy(t, s):
        return int(left + t * (w - left - right)), int(h - bottom - s * (h - top - bottom))

    for v in np.linspace(0, 1, 6):  # grid and tick labels on both axes
        cv2.line(img, xy(v, 0), xy(v, 1), (230, 230, 230), 1)
        cv2.line(img, xy(0, v), xy(1, v), (230, 230, 230), 1)
        _text(img, f"{v:.1f}", (xy(v, 0)[0] - 10, h - bottom + 18), 0.4)
        _text(img, f"{v:.1f}", (left - 32, xy(0, v)[1] + 4), 0.4)
    cv2.rectangle(img, xy(0, 1), xy(1, 0), BLACK, 1)
    _text(img, "IoU threshold", (w // 2 - 50, h - 12), 0.5)
    _text(img, "success rate", (8, top - 10), 0.5)
    for k, ((name, curve), color) in enumerate(zip(curves.items(), (BLUE, ORANGE, GREEN, RED))):
        points = np.array([xy(t, s) for t, s in zip(metrics.THRESHOLDS, curve)], np.int32)
        cv2.polylines(img, [points], False, color, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(img, tuple(int(v) for v in p), 3, color, -1, cv2.LINE_AA)
        cv2.line(img, (w - 250, top + 15 + 20 * k), (w - 225, top + 15 + 20 * k), color, 2)
        _text(img, name, (w - 218, top + 20 + 20 * k), 0.45)
    _save_rgb(Path(path), img)


def frame_of(image: torch.Tensor) -> np.ndarray:
    """Normalised model input (3, S, S) -> RGB uint8 (TILE, TILE, 3)."""
    rgb = denormalize_image(image.float().cpu()).permute(1, 2, 0).numpy()
    return cv2.resize((rgb * 255).round().astype(np.uint8), (TILE, TILE), interpolation=cv2.INTER_AREA)


def overlay(frame: np.ndarray, heat: np.ndarray, boxes=()) -> np.ndarray:
    """RGB frame (S, S, 3), heatmap (S, S) in [0, 1], normalised boxes -> the tile as the app shows it, with boxes."""
    tile = blend(frame, heat, overlay_lut(REPORT_COLORMAP), REPORT_OPACITY)
    size = frame.shape[0]
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(tile, (int(x1 * size), int(y1 * size)), (int(x2 * size), int(y2 * size)), GREEN, 2)
    return tile


def _caption(tile: np.ndarray, text: str, border=None) -> np.ndarray:
    tile = tile.copy()
    cv2.rectangle(tile, (0, TILE - 20), (TILE, TILE), BLACK, -1)
    _text(tile, text[:34], (4, TILE - 6), 0.42, WHITE)
    if border is not None:
        cv2.rectangle(tile, (0, 0), (TILE - 1, TILE - 1), border, 4)
    return tile


def grid(tiles: list[np.ndarray], cols: int, pad: int = 4) -> np.ndarray:
    """Tiles (TILE, TILE, 3) -> one image, ``cols`` per row, white gaps."""
    rows = max(1, -(-len(tiles) // cols))
    out = np.full((rows * (TILE + pad) + pad, cols * (TILE + pad) + pad, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        out[pad + r * (TILE + pad):pad + r * (TILE + pad) + TILE, pad + c * (TILE + pad):pad + c * (TILE + pad) + TILE] = tile
    return out


def examples_grid(pred, dataset, per_side: int = 4) -> np.ndarray | None:
    """The ``per_side`` best and worst items by cIoU (first row best, second worst)."""
    scored = np.flatnonzero(pred.annotated)
    if scored.size == 0:
        return None
    order = scored[np.argsort(-pred.ciou[scored], kind="stable")]
    best, worst = order[:per_side], order[::-1][:per_side]
    tiles = []
    for i in [*best, *worst]:
        heat = to_heatmap(pred.maps[i], (TILE, TILE)).numpy()
        tile = overlay(frame_of(dataset[pred.position(int(i))]["image"]), heat, pred.boxes[i])
        tiles.append(_caption(tile, f"cIoU {pred.ciou[i]:.2f} {pred.labels[i] or pred.files[i]}"))
    return grid(tiles, max(len(best), 1))


def retrieval_grid(pred, dataset, queries: int = 4, k: int = 5) -> np.ndarray:
    """Rows: an audio query (its own frame, left) and the k images most similar to its audio."""
    labels = pred.retrieval_labels()
    n = len(labels)
    picks = np.unique(np.linspace(0, n - 1, min(queries, n)).round().astype(int))
    sims = pred.audio_emb[picks] @ pred.image_emb.T  # (Q, N)
    top = sims.topk(min(k, n), dim=1).indices.tolist()  # (Q, k)
    frames: dict[int, np.ndarray] = {}

    def frame(i: int) -> np.ndarray:
        if i not in frames:
            frames[i] = frame_of(dataset[pred.position(i)]["image"])
        return frames[i]

    tiles = []
    for q, row in zip(picks.tolist(), top):
        tiles.append(_caption(frame(q), f"query: {labels[q]}", GREY))
        for rank, i in enumerate(row, 1):
            hit = labels[i] == labels[q]
            tiles.append(_caption(frame(i), f"{rank}. {labels[i]}", GREEN if hit else RED))
        tiles += [np.full((TILE, TILE, 3), 255, np.uint8)] * (k - len(row))
    return grid(tiles, k + 1)


def _interval(bounds) -> str:
    return f" [{bounds[0]:.1f}, {bounds[1]:.1f}]"


def markdown(result: dict, images: list[str]) -> str:
    """``report.md``: the headline numbers, retrieval, per-class table, skipped files, plots."""
    r = result["retrieval"]
    lines = ["# Evaluation report", "",
             f"- checkpoint: `{result.get('checkpoint', '?')}`",
             f"- data: `{result.get('data', '?')}`, {result['n']} items, {result['n_boxes']} with boxes"]
    if "split" in result:
        s = result["split"]
        lines.append(f"- split: **{s['name']}** (`{s['file']}`): {s['found']} of {s['listed']} listed ids found")
    two = "iiou" in result
    lines += ["", "| map | cIoU | AUC | cIoU (adaptive) | AUC (adaptive) |" + (" iIoU | iAUC |" if two else ""),
              "| --- | --- | --- | --- | --- |" + (" --- | --- |" if two else "")]
    guided = result.get("object_guided")
    for name, m in (("cosine", result), *([(f"object-guided ({guided['weight']:g})", guided)] if guided else [])):
        cells = [f"{m[key]:.2f}" + (_interval(m["ci95"][key]) if "ci95" in m else "")
                 for key in ("ciou", "auc", "ciou_adaptive", "auc_adaptive")]
        lines.append(f"| {name} | {' | '.join(cells)} |" + (f" {m['iiou']:.2f} | {m['iauc']:.2f} |" if two else ""))
    for name, m in result.get("by_box_size", {}).items():
        if m["n"]:
            lines.append(f"| cosine, {name} boxes ({m['n']}) | {m['ciou']:.2f} | {m['auc']:.2f} | "
                         f"{m['ciou_adaptive']:.2f} | {m['auc_adaptive']:.2f} |" + (" | |" if two else ""))
    lines += ["", "| retrieval | R@1 | R@5 | R@10 |", "| --- | --- | --- | --- |"]
    for name, key in (("audio -> image", "audio_to_image"), ("image -> audio", "image_to_audio")):
        cells = [f"{r[key][k]:.2f}{_interval(r[key]['ci95'][k])} (chance {r[key][c]:.2f})" for k, c in
                 (("r1", "chance"), ("r5", "chance_r5"), ("r10", "chance_r10"))]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", "cIoU: share of items with IoU >= 0.5 (median threshold); AUC: area under the success curve; "
              "adaptive: top-k pixels, k = box area; [lo, hi]: 95 % interval; small boxes: under a quarter of the frame "
              "(the median threshold cannot reach IoU 0.5 there)" + ("; iIoU/iAUC: a scene counts only when all its "
              "sources are found (adaptive threshold)." if two else ".")
              + (" object-guided: the cosine map mixed with the visual encoder's objectness "
                 "(model.networks.object_guidance), as the app shows it." if guided else ""), ""]
    if result.get("by_instance"):
        lines += ["## Per kind of instance", "", "| instance | n | cIoU | AUC | cIoU (adaptive) | AUC (adaptive) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {kind} | {m['n']} | {m['ciou']:.2f} | {m['auc']:.2f} | {m['ciou_adaptive']:.2f} | "
                  f"{m['auc_adaptive']:.2f} |" for kind, m in result["by_instance"].items()]
        lines.append("")
    if result["per_class"]:
        lines += ["## Per class", "", "| class | n | cIoU | AUC |", "| --- | --- | --- | --- |"]
        lines += [f"| {name} | {c['n']} | {c['ciou']:.2f} | {c['auc']:.2f} |" for name, c in result["per_class"].items()]
        lines.append("")
    if result["skipped"]:
        lines += ["## Skipped files", ""] + [f"- `{s['path']}`: {s['reason']}" for s in result["skipped"]] + [""]
    lines += ["## Plots", ""] + [f"![{Path(name).stem}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def write_report(out_dir, result: dict, pred, dataset) -> list[Path]:
    """Write the PNGs and ``report.md`` into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    written = []
    ok = pred.annotated
    success_plot({f"median (AUC {result['auc']:.1f})": metrics.success_curve(pred.ciou[ok]),
                  f"adaptive (AUC {result['auc_adaptive']:.1f})": metrics.success_curve(pred.ciou_adaptive[ok])},
                 out / "success.png")
    written.append(out / "success.png")
    examples = examples_grid(pred, dataset)
    if examples is not None:
        _save_rgb(out / "examples.png", examples)
        written.append(out / "examples.png")
    _save_rgb(out / "retrieval.png", retrieval_grid(pred, dataset))
    written.append(out / "retrieval.png")
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown(result, [p.name for p in written]))
    return [*written, out / "report.md"]
