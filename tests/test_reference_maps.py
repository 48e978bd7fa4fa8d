"""Reference maps: the centre prior and the box oracle on hand-computed boxes."""
import json

import pytest

from model.evaluation import metrics
from model.evaluation.reference_maps import box_oracle, centre_prior, evaluate_references, ground_truths

CENTRED = [0.2, 0.2, 0.8, 0.8]  # 36 % of the frame
CORNER = [0.0, 0.0, 0.3, 0.3]  # 9 %


def test_the_oracle_predicts_half_the_frame_around_the_box():
    for box, iou in ((CENTRED, 0.36 / 0.5), (CORNER, 0.09 / 0.5)):
        gt = metrics.gt_mask_from_boxes([box])
        assert metrics.ciou(box_oracle(gt), gt, "median") == pytest.approx(iou, abs=0.01)
        assert metrics.ciou(box_oracle(gt), gt, "adaptive") == pytest.approx(1.0, abs=1e-3)  # strict >: k - 1 pixels


def test_the_centre_prior_finds_centred_boxes_only():
    centred, corner = (metrics.gt_mask_from_boxes([b]) for b in (CENTRED, CORNER))
    assert metrics.ciou(centre_prior(), centred, "median") > 0.6
    assert metrics.ciou(centre_prior(), corner, "median") < 0.1


def test_references_of_an_annotation_file(tmp_path):
    entries = [{"file": "a", "class": "x", "bbox": [CENTRED]}, {"file": "b", "class": "x", "bbox": [CORNER]},
               {"file": "c", "class": "x", "bbox": []}]
    (tmp_path / "annotations.json").write_text(json.dumps(entries))
    gts = ground_truths(tmp_path)
    assert len(gts) == 2  # the item without boxes is left out
    result = evaluate_references(gts)
    assert result["box oracle"]["ciou"] == 50.0 and result["box oracle"]["ciou_adaptive"] == 100.0
    assert result["centre prior"]["ciou"] == 50.0  # the centred box only
