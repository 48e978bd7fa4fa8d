"""ssl-eval on generated sets: the metrics.json contract, the report files, splits, two-source scenes."""
import json

import av
import cv2
import numpy as np
import pytest
import torch

from model.evaluation import metrics
from model.evaluation.evaluate import Predictions, evaluate, main, open_dataset, summarize_predictions
from model.synth.generator import generate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def one_source(tmp_path_factory):
    """6 generated clips and one corrupt file."""
    root = tmp_path_factory.mktemp("vggss_like")
    generate(root, clips=6, seed=5, size=(160, 120))
    (root / "videos" / "corrupt.mp4").write_bytes(b"not a video at all" * 100)
    return root


def percent(value):
    return isinstance(value, float) and 0.0 <= value <= 100.0


def test_ssl_eval_writes_the_metrics_contract_and_lists_the_corrupt_clip(one_source, checkpoint, tmp_path):
    out = tmp_path / "report"
    assert main(["--data", str(one_source), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 6 and m["n_boxes"] == 6
    assert [s["path"].endswith("corrupt.mp4") for s in m["skipped"]] == [True] and m["skipped"][0]["reason"]
    for key in ("ciou", "auc", "ciou_adaptive", "auc_adaptive"):
        assert percent(m[key]), key
    for direction in ("audio_to_image", "image_to_audio"):
        r = m["retrieval"][direction]
        assert all(percent(r[k]) for k in ("r1", "r5", "r10")) and r["r1"] <= r["r5"] <= r["r10"] == 100.0
        assert percent(r["chance"]) and r["chance"] <= r["chance_r5"] <= r["chance_r10"] == 100.0
    assert sum(c["n"] for c in m["per_class"].values()) == 6
    assert all(percent(c["ciou"]) and percent(c["auc"]) for c in m["per_class"].values())
    assert "iiou" not in m and "split" not in m
    for name in ("success.png", "examples.png", "retrieval.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100, name
    report = (out / "report.md").read_text()
    assert "corrupt.mp4" in report and "![success](success.png)" in report
    assert f"(chance {m['retrieval']['audio_to_image']['chance']:.2f})" in report
    lo, hi = m["ci95"]["ciou"]
    assert lo <= m["ciou"] <= hi and f"{m['ciou']:.2f} [{lo:.1f}, {hi:.1f}]" in report


def faststart_half(source, target):
    """``source`` remuxed with its index first, then cut at half: it probes, but reading its middle fails."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    whole = target.read_bytes()
    target.write_bytes(whole[: len(whole) // 2])


def test_a_clip_that_fails_while_reading_is_skipped_not_replaced(one_source, checkpoint, tmp_path):
    """Its neighbour must not be counted twice: n is the number of readable clips."""
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    videos = sorted(v for v in (one_source / "videos").glob("*.mp4") if v.name != "corrupt.mp4")[:4]
    for video in videos[1:]:
        (data / "videos" / video.name).write_bytes(video.read_bytes())
    faststart_half(videos[0], data / "videos" / videos[0].name)
    (data / "annotations.json").write_text((one_source / "annotations.json").read_text())
    out = tmp_path / "report"
    assert main(["--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu",
                 "--batch-size", "2"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 3 and m["n_boxes"] == 3
    assert [s["path"] for s in m["skipped"]] == [str(data / "videos" / videos[0].name)]
    assert sum(c["n"] for c in m["per_class"].values()) == 3


def test_split_file_keeps_the_listed_clips(one_source, checkpoint, tmp_path):
    ids = [e["file"] for e in json.loads((one_source / "annotations.json").read_text())][:3]
    split = tmp_path / "heard_test.csv"
    split.write_text("\n".join(ids + ["not_in_the_folder"]) + "\n")
    out = tmp_path / "report"
    assert main(["--data", str(one_source), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--split-file", str(split), "--device", "cpu"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 3
    assert m["split"] == {"file": str(split), "name": "heard_test", "listed": 4, "found": 3}
    assert "heard_test" in (out / "report.md").read_text()


def test_two_source_scenes_add_interactive_metrics(checkpoint, tmp_path):
    root = tmp_path / "is3_like"
    generate(root, clips=3, seed=2, sources=2, size=(128, 96))
    out = tmp_path / "report"
    assert main(["--data", str(root), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 6  # two sources, each with its own audio, per scene
    assert percent(m["iiou"]) and percent(m["iauc"])
    assert m["iauc"] <= m["auc_adaptive"] + 1e-9  # a scene needs all its sources


def test_missing_checkpoint_is_a_clear_error(one_source, tmp_path, capsys):
    assert main(["--data", str(one_source), "--checkpoint", str(tmp_path / "nope.safetensors"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (["--data", "MISSING"], "--data: folder not found"),
    (["--out", "FILE"], "is a file, not a report folder"),
    (["--split-file", "MISSING"], "--split-file: file not found"),
    (["--out", "OTHER"], "holds the report of other.safetensors on elsewhere"),
])
def test_arguments_are_checked_before_the_checkpoint_is_read(one_source, tmp_path, capsys, change, message):
    """The checkpoint named does not exist: each bad argument is reported first."""
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "OTHER").mkdir()
    (tmp_path / "OTHER" / "metrics.json").write_text(json.dumps({"checkpoint": "other.safetensors",
                                                                  "data": "elsewhere"}))
    args = {"--data": str(one_source), "--checkpoint": str(tmp_path / "nope.safetensors"),
            "--out": str(tmp_path / "r"), change[0]: str(tmp_path / change[1])}
    assert main([x for pair in args.items() for x in pair]) == 2
    assert message in capsys.readouterr().err


def test_a_report_of_another_checkpoint_is_replaced_only_with_overwrite(one_source, checkpoint, tmp_path):
    out = tmp_path / "report"
    args = ["--data", str(one_source), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    other = tmp_path / "other.safetensors"
    other.write_bytes(checkpoint.read_bytes())
    before = (out / "metrics.json").read_text()
    assert main([*args[:3], str(other), *args[4:]]) == 2
    assert (out / "metrics.json").read_text() == before
    assert main([*args[:3], str(other), *args[4:], "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["checkpoint"] == str(other)
    assert main([*args[:3], str(other), *args[4:]]) == 0  # the same evaluation again: allowed


def test_summary_by_hand():
    eye = torch.eye(3)
    pred = Predictions(files=["x", "y", "z"], labels=["a", "a", ""], boxes=[[[0, 0, 1, 1]]] * 2 + [[]],
                       scenes=["s", "s", "t"], maps=torch.zeros(3, 7, 7), image_emb=eye, audio_emb=eye,
                       ciou=np.array([0.6, 0.2, np.nan]), ciou_adaptive=np.array([0.7, 0.5, np.nan]))
    m = summarize_predictions(pred, [("bad.mp4", "corrupt")])
    assert (m["n"], m["n_boxes"], m["ciou"], m["ciou_adaptive"]) == (3, 2, 50.0, 100.0)
    assert m["per_class"] == {"a": {"n": 2, "ciou": 50.0, "auc": pytest.approx(m["auc"])}}
    assert m["skipped"] == [{"path": "bad.mp4", "reason": "corrupt"}]
    chance = 100 * (2 ** 2 + 1) / 3 ** 2  # classes a (2 items) and "#z" (the unlabelled item is its own class)
    interval = metrics.wilson_interval(3, 3)  # three queries, all hits
    assert m["retrieval"]["audio_to_image"] == {"r1": 100.0, "r5": 100.0, "r10": 100.0, "chance": pytest.approx(chance),
                                                "chance_r5": 100.0, "chance_r10": 100.0,
                                                "ci95": {"r1": interval, "r5": interval, "r10": interval}}
    assert m["ci95"]["ciou"][0] <= 50.0 <= m["ci95"]["ciou"][1] and m["ci95"]["ciou_adaptive"] == [100.0, 100.0]
    assert m["retrieval"]["image_to_audio"]["chance"] == pytest.approx(chance)
    assert m["iiou"] == 100.0  # scene s: worst adaptive cIoU 0.5; t has no box
    assert m["by_box_size"]["large"] == {"n": 2, "ciou": 50.0, "auc": pytest.approx(m["auc"]), "ciou_adaptive": 100.0,
                                         "auc_adaptive": pytest.approx(m["auc_adaptive"])}
    assert m["by_box_size"]["small"]["n"] == 0
    small = Predictions(files=["x", "y"], labels=["a", "b"], boxes=[[[0, 0, 0.4, 0.4]], [[0, 0, 0.6, 0.6]]], scenes=None,
                        maps=torch.zeros(2, 7, 7), image_emb=eye[:2], audio_emb=eye[:2], ciou=np.array([0.1, 0.6]),
                        ciou_adaptive=np.array([0.7, 0.2]))
    sizes = summarize_predictions(small)["by_box_size"]  # 0.16 and 0.36 of the frame
    assert (sizes["small"]["n"], sizes["small"]["ciou"], sizes["small"]["ciou_adaptive"]) == (1, 0.0, 100.0)
    assert (sizes["large"]["n"], sizes["large"]["ciou"], sizes["large"]["ciou_adaptive"]) == (1, 100.0, 0.0)


def test_evaluate_api_matches_the_command(one_source, checkpoint):
    from model import load_model

    model = load_model(checkpoint)
    model.train()
    m = evaluate(model, open_dataset(one_source, model), "cpu")
    assert m["n"] == 6 and set(m["retrieval"]) == {"audio_to_image", "image_to_audio"}
    assert model.training  # evaluation restores the mode the trainer left


def test_by_instance_groups_the_items_by_what_training_saw(tmp_path):
    from model.evaluation.evaluate import by_instance

    (tmp_path / "annotations.json").write_text(json.dumps([
        {"file": "x", "class": "a", "bbox": [[0, 0, 1, 1]], "instance": "seen instance"},
        {"file": "y", "class": "a", "bbox": [[0, 0, 1, 1]], "instance": "both new"},
        {"file": "z", "class": "b", "bbox": [[0, 0, 1, 1]], "instance": "both new"},
        {"file": "w", "class": "b", "bbox": [[0, 0, 1, 1]]}]))
    eye = torch.eye(4)
    pred = Predictions(files=["x", "y", "z", "w"], labels=["a", "a", "b", "b"], boxes=[[[0, 0, 1, 1]]] * 4, scenes=None,
                       maps=torch.zeros(4, 7, 7), image_emb=eye, audio_emb=eye, ciou=np.array([0.6, 0.2, 0.7, 0.9]),
                       ciou_adaptive=np.array([0.7, 0.5, 0.1, 0.9]))
    groups = by_instance(pred, tmp_path)
    assert set(groups) == {"seen instance", "both new"}  # w has no instance: in no group
    assert (groups["both new"]["n"], groups["both new"]["ciou"], groups["both new"]["ciou_adaptive"]) == (2, 50.0, 50.0)
    assert (groups["seen instance"]["n"], groups["seen instance"]["ciou"]) == (1, 100.0)
    (tmp_path / "annotations.json").write_text(json.dumps([{"file": "x", "class": "a", "bbox": [[0, 0, 1, 1]]}]))
    assert by_instance(pred, tmp_path) is None
