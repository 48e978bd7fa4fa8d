"""The field's localization and retrieval metrics, exactly as ``shared/EVALUATION.md`` writes them out.

Maps are 224x224 arrays (numpy or torch). A heatmap is the raw cosine map resized bilinear and min-max
normalised to [0, 1] (``model.inference.heatmap.to_heatmap``); a ground-truth map is 1 where the sound source is.
Thresholding follows the published SSL-Align evaluation code: a pixel is predicted "sounding" when it is
strictly greater (``>``) than the threshold (EZ-VSL's code uses ``>=``; on real maps the two differ by
the few pixels equal to the threshold).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

SIZE = 224
THRESHOLDS = np.linspace(0.0, 1.0, 21)  # t = 0, 0.05, ..., 1.0: the success-rate curve and its AUC


def _array(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)


def median_threshold(heatmap) -> float:
    """The value at index floor(H*W/2) of the sorted pixels: above it lies the top half of the map."""
    flat = np.sort(_array(heatmap).ravel())
    return float(flat[flat.size // 2])


def adaptive_threshold(heatmap, gt_mask) -> float:
    """The k-th largest pixel, k = number of ground-truth pixels (half the image when the ground truth is empty)."""
    flat = np.sort(_array(heatmap).ravel())
    k = int(np.count_nonzero(_array(gt_mask))) or flat.size // 2
    return float(flat[flat.size - k])


def ciou_score(prediction, gt_map) -> float:
    """``sum(pred * gt) / (sum(gt) + sum(pred * (gt == 0)))`` for a binary prediction and a ground-truth map
    (0 when both are empty)."""
    pred = _array(prediction).astype(np.float64)
    gt = _array(gt_map).astype(np.float64)
    denominator = gt.sum() + (pred * (gt == 0)).sum()
    return float((pred * gt).sum() / denominator) if denominator > 0 else 0.0


def ciou(heatmap, gt_mask, threshold: str = "median") -> float:
    """Consensus IoU of one heatmap (H, W) in [0, 1] against its ground-truth map (H, W).

    ``threshold="median"``: predicted = heat > the median (the cIoU of VGG-SS / Flickr tables);
    ``"adaptive"``: predicted = heat > the k-th largest value, k = ground-truth pixel count (IS3).
    Both use the published code's strict ``>``. The ground truth may be soft, with values in [0, 1].
    """
    heat = _array(heatmap)
    if threshold == "median":
        thr = median_threshold(heat)
    elif threshold == "adaptive":
        thr = adaptive_threshold(heat, gt_mask)
    else:
        raise ValueError(f"unknown threshold {threshold!r}: use 'median' or 'adaptive'")
    return ciou_score(heat > thr, gt_mask)


def box_cious(heatmaps, boxes: Sequence, threshold: str = "median") -> np.ndarray:
    """``ciou`` of each heatmap (N, SIZE, SIZE) against the union of its item's normalised boxes; nan for an
    item without boxes."""
    return np.array([ciou(h, gt_mask_from_boxes(b), threshold) if b else np.nan for h, b in zip(heatmaps, boxes)])


def _box_pixels(box: Sequence[float], size: int, normalized: bool) -> tuple[int, int, int, int]:
    """[x1, y1, x2, y2] -> integer pixel bounds (truncated, as the published code), clipped to the image.

    The 1e-6 keeps a pixel box that went through normalisation (61 / 224 * 224 = 60.99999999999999)
    on its own pixel."""
    scale = size if normalized else 1.0
    x1, y1, x2, y2 = (int(np.clip(v * scale + 1e-6, 0, size)) for v in box)
    return x1, y1, x2, y2


def gt_mask_from_boxes(boxes: Iterable[Sequence[float]], size: int = SIZE, normalized: bool = True) -> np.ndarray:
    """Union of boxes ``[x1, y1, x2, y2]`` -> float map (size, size): 1 inside any box, 0 elsewhere.

    ``normalized=True``: coordinates in 0..1 (VGG-SS); ``False``: pixels of the size x size image (IS3).
    """
    mask = np.zeros((size, size), dtype=np.float64)
    for box in boxes:
        x1, y1, x2, y2 = _box_pixels(box, size, normalized)
        mask[y1:y2, x1:x2] = 1.0
    return mask


def success_curve(cious: Sequence[float]) -> np.ndarray:
    """Share of samples with ciou >= t for each t in ``THRESHOLDS`` (21 values in [0, 1])."""
    values = np.asarray(cious, dtype=np.float64)
    if values.size == 0:
        return np.zeros_like(THRESHOLDS)
    return np.array([(values >= t).mean() for t in THRESHOLDS])


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(((y[1:] + y[:-1]) * np.diff(x)).sum() / 2.0)


def summarize(per_sample_cious: Sequence[float]) -> dict[str, float]:
    """``{"ciou": % of samples with ciou >= 0.5, "auc": % area under the success curve (trapezoid)}``."""
    values = np.asarray(per_sample_cious, dtype=np.float64)
    if values.size == 0:
        return {"ciou": 0.0, "auc": 0.0}
    return {
        "ciou": 100.0 * float((values >= 0.5).mean()),
        "auc": 100.0 * _trapezoid(success_curve(values), THRESHOLDS),
    }


def summary_intervals(per_sample_cious: Sequence[float], resamples: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """95 % intervals of ``summarize``'s numbers: ``{"ciou": [lo, hi], "auc": [lo, hi]}`` in %, the 2.5th and
    97.5th percentiles over ``resamples`` bootstrap resamples of the items (a fixed ``seed``: the same data
    gives the same interval)."""
    values = np.asarray(per_sample_cious, dtype=np.float64)
    if values.size == 0:
        return {"ciou": [0.0, 0.0], "auc": [0.0, 0.0]}
    picks = values[np.random.default_rng(seed).integers(0, values.size, (resamples, values.size))]  # (B, n)
    curves = (picks[:, :, None] >= THRESHOLDS).mean(axis=1)  # (B, 21) success curves
    cious = 100.0 * (picks >= 0.5).mean(axis=1)
    aucs = 100.0 * ((curves[:, 1:] + curves[:, :-1]) * np.diff(THRESHOLDS)).sum(axis=1) / 2.0
    return {name: [float(v) for v in np.percentile(x, [2.5, 97.5])] for name, x in (("ciou", cious), ("auc", aucs))}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> list[float]:
    """The Wilson score interval (95 % with ``z`` = 1.96) of a share of ``successes`` in ``n`` trials, in %."""
    if n == 0:
        return [0.0, 0.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)]


def interactive_summary(per_scene_cious: Mapping[object, Sequence[float]] | Sequence[Sequence[float]]) -> dict[str, float]:
    """iIoU / iAUC for multi-source scenes: a scene succeeds at t only if all its sources have ciou >= t.

    Takes ``{scene: [ciou of each source]}`` or a list of such lists; returns ``{"iiou": %, "iauc": %}``.
    """
    scenes = per_scene_cious.values() if isinstance(per_scene_cious, Mapping) else per_scene_cious
    worst = [min(cious) for cious in scenes if len(cious)]  # a scene's success at t is its worst source's
    summary = summarize(worst)
    return {"iiou": summary["ciou"], "iauc": summary["auc"]}


def ranked_hits(similarity, query_labels: Sequence, gallery_labels: Sequence) -> np.ndarray:
    """(Q, G) bool: whether the gallery item at each rank (by ``similarity`` (Q, G), highest first) is of the
    query's class."""
    order = torch.as_tensor(similarity, dtype=torch.float32).argsort(dim=1, descending=True, stable=True)
    gallery = np.asarray(list(gallery_labels), dtype=object)
    queries = np.asarray(list(query_labels), dtype=object)
    return np.asarray(gallery[order.numpy()] == queries[:, None], dtype=bool).reshape(len(queries), len(gallery))


def retrieval_hits(query_emb, gallery_emb, query_labels: Sequence, gallery_labels: Sequence) -> np.ndarray:
    """``ranked_hits`` by cosine similarity. Query i's own pair (gallery item i) is a hit like any other item of
    its class."""
    q = torch.nn.functional.normalize(torch.as_tensor(query_emb, dtype=torch.float32), dim=1)  # (Q, D)
    g = torch.nn.functional.normalize(torch.as_tensor(gallery_emb, dtype=torch.float32), dim=1)  # (G, D)
    return ranked_hits(q @ g.T, query_labels, gallery_labels)


def hits_at_k(same_class: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Ranked hits (Q, G) -> ``{k: % of queries with an item of their class in the top k}``."""
    if same_class.shape[0] == 0:
        return {int(k): 0.0 for k in ks}
    return {int(k): 100.0 * float(same_class[:, :k].any(axis=1).mean()) for k in ks}


def hits_intervals(same_class: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, list[float]]:
    """95 % Wilson intervals of ``hits_at_k`` over the queries (the gallery held fixed): ``{k: [lo, hi]}``."""
    return {int(k): wilson_interval(int(same_class[:, :k].any(axis=1).sum()), same_class.shape[0]) for k in ks}


def recall_at_k(query_emb, gallery_emb, query_labels: Sequence, gallery_labels: Sequence,
                ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Cross-modal retrieval by cosine similarity: ``{k: % of queries with an item of their class in the top k}``.

    Query i's own pair (gallery item i) is a hit like any other item of its class. ``k`` larger than the
    gallery counts the whole gallery.
    """
    return hits_at_k(retrieval_hits(query_emb, gallery_emb, query_labels, gallery_labels), ks)


def recall_intervals(query_emb, gallery_emb, query_labels: Sequence, gallery_labels: Sequence,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[int, list[float]]:
    """95 % Wilson intervals of ``recall_at_k`` over the queries (the gallery held fixed): ``{k: [lo, hi]}``."""
    return hits_intervals(retrieval_hits(query_emb, gallery_emb, query_labels, gallery_labels), ks)


def retrieval_chance(query_labels: Sequence, gallery_labels: Sequence,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """``recall_at_k`` of a random ranking, from the class counts alone: ``{k: %}``.

    A query of class c finds none of the ``n_c`` gallery items of its class in a random top k with
    probability ``C(G - n_c, k) / C(G, k)``; chance is 1 minus that, averaged over the queries. As in
    ``recall_at_k``, the query's own pair is in the gallery and counts, so with the same labels on both
    sides the chance of R@1 is ``sum(n_c ** 2) / N ** 2``.
    """
    queries, gallery = list(query_labels), list(gallery_labels)
    if not queries or not gallery:
        return {int(k): 0.0 for k in ks}
    counts, size = Counter(gallery), len(gallery)
    result = {}
    for k in ks:
        top = min(int(k), size)
        miss = [math.comb(size - counts[label], top) / math.comb(size, top) for label in queries]
        result[int(k)] = 100.0 * (1.0 - float(np.mean(miss)))
    return result
