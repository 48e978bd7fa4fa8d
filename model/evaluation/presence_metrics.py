"""How well presence scores tell matched items from negatives: AUROC, the best threshold, ssl-eval's summary."""
from __future__ import annotations

import math

import numpy as np

from model.data.annotations import NEGATIVE_KINDS


def auroc(positives, negatives) -> float:
    """Area under the ROC curve of scores that should be higher for ``positives`` (ties count half), in %."""
    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    if not len(pos) or not len(neg):
        return math.nan
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return 100.0 * float(greater + 0.5 * ties)


def best_threshold(positives, negatives) -> float:
    """The threshold that best separates the two sets (largest true-positive minus false-positive
    rate, the midpoint between two neighbouring scores; of equally good ones, the lowest)."""
    pos, neg = np.sort(np.asarray(positives, float)), np.sort(np.asarray(negatives, float))
    scores = np.unique(np.concatenate([pos, neg]))
    candidates = np.concatenate([[scores[0] - 1e-6], (scores[1:] + scores[:-1]) / 2, [scores[-1] + 1e-6]])
    tpr = 1 - np.searchsorted(pos, candidates, side="left") / len(pos)  # share of positives >= t
    fpr = 1 - np.searchsorted(neg, candidates, side="left") / len(neg)
    return float(candidates[int(np.argmax(np.round(tpr - fpr, 12)))])  # rounded: ties are ties


def summarize(scores, negatives: list[str], threshold: float | None = None) -> dict:
    """Per-item scores and negative kinds ('' for a matched item) -> AUROC matched vs each kind present,
    the threshold that best separates matched items from all negatives (``best_threshold``) and the
    accuracy at ``threshold`` when given. With ``threshold``, also ``in_view``: the share of matched items
    at or over it, those the app shows a heatmap for (with or without negatives in the set). {} with
    neither negatives nor threshold."""
    scores = np.asarray(scores, float)
    kinds = np.asarray(negatives, dtype=object)
    matched = scores[kinds == ""]
    out = {}
    for kind in NEGATIVE_KINDS:
        if (kinds == kind).any():
            out[f"auroc_{kind}"] = auroc(matched, scores[kinds == kind])
            out[f"n_{kind}"] = int((kinds == kind).sum())
    has_negatives = bool(out)
    if has_negatives and len(matched):
        out["best_threshold"] = best_threshold(matched, scores[kinds != ""])
    if threshold is not None and len(matched):
        out["threshold"] = threshold
        out["in_view"] = 100.0 * float(np.mean(matched >= threshold))
        if has_negatives:
            out["accuracy"] = 100.0 * float(np.mean((scores >= threshold) == (kinds == "")))
    return out
