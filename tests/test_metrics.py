"""The metrics on hand-made maps and vectors whose values are computed by hand."""
import numpy as np
import pytest
import torch

from model.evaluation import metrics
from model.inference.heatmap import to_heatmap

# 4x4 map with values 0/15 .. 15/15 row by row: the median threshold is 8/15 (index 16 // 2 = 8),
# and ">" predicts the 7 pixels 9..15 (row 2 columns 1-3, all of row 3).
RAMP = np.arange(16, dtype=np.float64).reshape(4, 4) / 15


def mask(rows, cols):
    m = np.zeros((4, 4))
    m[rows, cols] = 1
    return m


def test_median_threshold_and_ciou_by_hand():
    assert metrics.median_threshold(RAMP) == pytest.approx(8 / 15)
    assert metrics.ciou(RAMP, mask(slice(2, 4), slice(0, 4))) == pytest.approx(7 / 8)  # 7 hits, gt 8
    assert metrics.ciou(RAMP, mask(slice(0, 2), slice(0, 4))) == 0.0  # disjoint
    # gt = columns 2-3 (values 2,3,6,7,10,11,14,15): hits {10,11,14,15}, false positives {9,12,13}
    assert metrics.ciou(RAMP, mask(slice(0, 4), slice(2, 4))) == pytest.approx(4 / (8 + 3))


def test_adaptive_threshold_by_hand():
    # k = 8 gt pixels: threshold = sorted[16 - 8] = 8/15, the same 7 predicted pixels as the median
    assert metrics.ciou(RAMP, mask(slice(0, 4), slice(2, 4)), "adaptive") == pytest.approx(4 / 11)
    # k = 3 (values 13, 14, 15): threshold 13/15, ">" keeps 14 and 15: 2 hits of 3
    assert metrics.ciou(RAMP, mask(3, slice(1, 4)), "adaptive") == pytest.approx(2 / 3)
    # empty gt: k = half the image; nothing can be hit
    assert metrics.adaptive_threshold(RAMP, np.zeros((4, 4))) == pytest.approx(8 / 15)
    assert metrics.ciou(RAMP, np.zeros((4, 4)), "adaptive") == 0.0
    with pytest.raises(ValueError):
        metrics.ciou(RAMP, RAMP, "mean")


def test_ciou_on_a_full_size_gradient_and_torch_input():
    heat = torch.arange(224.0).div(223).expand(224, 224)  # heat[y, x] = x / 223
    gt = metrics.gt_mask_from_boxes([[0.5, 0.0, 1.0, 1.0]])  # columns 112..223
    # median = value at index 25088 = column 112; "> 112/223" predicts columns 113..223
    assert metrics.ciou(heat, gt) == pytest.approx(111 / 112)


def test_heatmap_pipeline_localizes_a_peak():
    raw = torch.zeros(14, 14)
    raw[3:6, 9:12] = 1.0  # a hot spot at the top right
    heat = to_heatmap(raw, (224, 224))
    gt = metrics.gt_mask_from_boxes([[9 / 14, 3 / 14, 12 / 14, 6 / 14]])
    assert metrics.ciou(heat, gt, "adaptive") > 0.5
    assert metrics.ciou(heat, 1 - gt, "adaptive") < 0.1


def test_gt_masks_from_boxes():
    m = metrics.gt_mask_from_boxes([[0.1, 0.1, 0.2, 0.2]])  # int(22.4)=22 .. int(44.8)=44
    assert m.shape == (224, 224) and m.sum() == 22 * 22 and m[22, 22] == 1 and m[44, 44] == 0
    union = metrics.gt_mask_from_boxes([[0, 0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]])
    assert union.max() == 1 and union.sum() == 2 * 112 * 112 - 56 * 56
    pixels = metrics.gt_mask_from_boxes([[10, 20, 30, 40], [-5, 0, 2, 300]], normalized=False)
    assert pixels.sum() == 20 * 20 + 2 * 224  # the second box is clipped to the image
    assert metrics.gt_mask_from_boxes([]).sum() == 0
    # IS3 pixel boxes arrive divided by 224: they must land on the same pixels
    for v in (61, 115, 122):
        assert metrics.gt_mask_from_boxes([[v / 224, 0, 1, 1]]).sum() == (224 - v) * 224


def test_summarize_by_hand():
    s = metrics.summarize([0.0, 0.25, 0.5, 0.75, 1.0])
    assert s["ciou"] == pytest.approx(60.0)
    # success: 1 at t=0, 0.8 to 0.25, 0.6 to 0.5, 0.4 to 0.75, 0.2 to 1; trapezoids sum to 10.4 * 0.05
    assert s["auc"] == pytest.approx(52.0)
    assert metrics.summarize([1.0, 1.0])["auc"] == pytest.approx(100.0)
    assert metrics.summarize([0.0])["auc"] == pytest.approx(100 * 0.5 * 0.05)  # only t=0 succeeds
    assert metrics.summarize([]) == {"ciou": 0.0, "auc": 0.0}


def test_summarize_matches_the_published_formula():
    rng = np.random.default_rng(0)
    cious = rng.uniform(0, 1, 50)
    rates = [np.sum(cious >= 0.05 * i) / len(cious) for i in range(21)]
    xs = [0.05 * i for i in range(21)]
    auc = sum((rates[i] + rates[i + 1]) / 2 * (xs[i + 1] - xs[i]) for i in range(20))
    s = metrics.summarize(cious)
    assert s["auc"] == pytest.approx(100 * auc)
    assert s["ciou"] == pytest.approx(100 * np.mean(cious >= 0.5))


def test_interactive_summary():
    scenes = {"a": [0.6, 0.7], "b": [0.4, 0.9], "c": [0.55, 0.5]}  # worst sources: 0.6, 0.4, 0.5
    s = metrics.interactive_summary(scenes)
    assert s["iiou"] == pytest.approx(200 / 3)
    assert s["iauc"] == pytest.approx(metrics.summarize([0.6, 0.4, 0.5])["auc"])
    assert metrics.interactive_summary([[0.6, 0.7], [0.4, 0.9], [0.55, 0.5]]) == s


def test_recall_at_k_by_hand():
    gallery = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.7, 0.7, 0]]
    gallery_labels = ["a", "b", "a", "b"]
    queries = [[1, 0.1, 0], [0.9, 0.8, 0], [0, 1, 0.2], [0.1, 0.2, 1]]
    query_labels = ["a", "b", "a", "b"]
    # rankings: q0 -> e0(a); q1 -> e3(b); q2 -> e1(b), e3(b), e2(a); q3 -> e2(a), e3(b)
    r = metrics.recall_at_k(queries, gallery, query_labels, gallery_labels, ks=(1, 2, 3, 10))
    assert r == {1: 50.0, 2: 75.0, 3: 100.0, 10: 100.0}
    # scale does not matter (cosine), and the query's own pair is a hit
    r = metrics.recall_at_k(torch.eye(3) * 5, torch.eye(3), [0, 1, 2], [0, 1, 2], ks=(1,))
    assert r == {1: 100.0}


def test_retrieval_chance_from_class_counts():
    labels = ["a", "a", "a", "b", "c", "c"]  # n_c = 3, 1, 2 of N = 6
    chance = metrics.retrieval_chance(labels, labels, ks=(1, 2, 6, 10))
    assert chance[1] == pytest.approx(100 * (9 + 1 + 4) / 36)  # sum(n_c^2) / N^2: the own pair counts
    # R@2, by hand: a misses with C(3,2)/C(6,2) = 3/15, b with 10/15, c with 6/15
    assert chance[2] == pytest.approx(100 * (3 * 12 + 1 * 5 + 2 * 9) / (6 * 15))
    assert chance[6] == chance[10] == pytest.approx(100.0)
    # what recall_at_k gives on random vectors, averaged, is that chance
    torch.manual_seed(0)
    trials = [metrics.recall_at_k(torch.randn(6, 16), torch.randn(6, 16), labels, labels, ks=(1, 2))
              for _ in range(3000)]
    for k in (1, 2):
        assert np.mean([t[k] for t in trials]) == pytest.approx(chance[k], abs=1.5)
    assert metrics.retrieval_chance([], labels) == {1: 0.0, 5: 0.0, 10: 0.0}


def test_wilson_interval_by_hand():
    assert metrics.wilson_interval(5, 10) == pytest.approx([23.66, 76.34], abs=0.01)  # the textbook case
    assert metrics.wilson_interval(0, 20) == pytest.approx([0.0, 16.11], abs=0.01)
    assert metrics.wilson_interval(0, 0) == [0.0, 0.0]


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_items():
    rng = np.random.default_rng(1)
    small, large = rng.uniform(0, 1, 50), rng.uniform(0, 1, 800)
    for values in (small, large):
        point, interval = metrics.summarize(values), metrics.summary_intervals(values)
        for key in ("ciou", "auc"):
            lo, hi = interval[key]
            assert lo <= point[key] <= hi and hi > lo
    width = {n: np.diff(metrics.summary_intervals(v)["ciou"])[0] for n, v in ((50, small), (800, large))}
    assert width[800] < width[50] / 2.5  # ~ 1 / sqrt(n): 4x narrower at 16x the items
    assert metrics.summary_intervals(small) == metrics.summary_intervals(small)  # a fixed seed
    assert metrics.summary_intervals([0.7] * 10)["ciou"] == [100.0, 100.0]


def test_recall_intervals_are_wilson_over_the_queries():
    labels = ["a", "b", "a", "b"]
    gallery = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.7, 0.7, 0]]
    queries = [[1, 0.1, 0], [0.9, 0.8, 0], [0, 1, 0.2], [0.1, 0.2, 1]]  # R@1 50 % (test_recall_at_k_by_hand)
    assert metrics.recall_intervals(queries, gallery, labels, labels, ks=(1,)) == {1: metrics.wilson_interval(2, 4)}
