"""ssl-synth: the procedural benchmark decodes like real web video and its boxes are exact."""
import json
import wave

import av
import cv2
import numpy as np
import pytest

from model.synth.generator import CLASSES, HEARD_CLASSES, UNHEARD_CLASSES, SynthConfig, generate, main, make_clip

MID_FRAME = 50


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """Three one-source clips, seed 7."""
    out = tmp_path_factory.mktemp("single")
    return out, generate(out, clips=3, seed=7)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two two-source clips of unheard classes, seed 5."""
    out = tmp_path_factory.mktemp("pair")
    return out, generate(out, clips=2, seed=5, split="unheard", sources=2)


def decode_frame_at(path, seconds):
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if abs(frame.time - seconds) < 1e-6:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {seconds} s in {path}")


def test_class_tables():
    assert len(CLASSES) >= 20 and len(set(CLASSES)) == len(CLASSES)
    assert set(HEARD_CLASSES).isdisjoint(UNHEARD_CLASSES)
    assert sorted(HEARD_CLASSES + UNHEARD_CLASSES) == sorted(CLASSES)


def test_videos_decode_with_pyav(single):
    out, annotations = single
    for annotation in annotations:
        with av.open(str(out / "videos" / f"{annotation['file']}.mp4")) as container:
            video, sound = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264" and video.average_rate == 25
            assert (video.width, video.height) == (320, 240)
            assert sound.codec_context.name == "aac" and sound.rate in (44100, 48000)
            assert sound.channels in (1, 2)
            assert abs(container.duration / 1e6 - 4.0) < 0.1
            assert sum(1 for _ in container.decode(video=0)) == 100
            container.seek(0)
            samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
        assert abs(samples.shape[1] - 4 * sound.rate) < 4096
        assert np.abs(samples).max() > 0.1


def test_videos_decode_with_opencv(single):
    out, annotations = single
    for annotation in annotations:
        capture = cv2.VideoCapture(str(out / "videos" / f"{annotation['file']}.mp4"))
        assert capture.isOpened()
        assert capture.get(cv2.CAP_PROP_FPS) == 25
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 100
        ok, frame = capture.read()
        assert ok and frame.shape == (240, 320, 3)
        capture.release()


def test_box_encloses_rendered_object(single):
    out, annotations = single
    config = SynthConfig(str(out), clips=3, seed=7)
    for index, annotation in enumerate(annotations):
        clip = make_clip(config, index)
        (box,) = annotation["bbox"]
        x1, y1, x2, y2 = (round(v * s) for v, s in zip(box, (320, 240, 320, 240)))
        target = clip.scene.sounding[0]
        assert annotation["class"] == target.class_name
        assert (x1, y1, x2, y2) == target.box(MID_FRAME)
        mask = target.frame_mask(MID_FRAME, 240, 320)
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
        assert mask.sum() > 0.3 * (x2 - x1) * (y2 - y1)

        decoded = decode_frame_at(out / "videos" / f"{annotation['file']}.mp4", 2.0).astype(int)
        assert np.abs(decoded - clip.scene.render(MID_FRAME)).mean() < 6  # H.264 is lossy
        changed = np.abs(decoded - clip.scene.background).max(axis=2) > 40
        others = np.zeros_like(mask)
        for obj in clip.scene.objects:
            if obj is not target:
                others |= obj.frame_mask(MID_FRAME, 240, 320)
        others = cv2.dilate(others.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        in_box = np.zeros_like(mask)
        in_box[max(y1 - 3, 0):y2 + 3, max(x1 - 3, 0):x2 + 3] = True
        stray = changed & ~others & ~in_box  # changed pixels no object explains
        assert stray.sum() <= 5  # a few compression artefacts at most
        assert (changed & mask & ~others).sum() > 0.5 * (mask & ~others).sum()


def test_same_seed_same_bytes_other_seed_other_scenes(single, tmp_path):
    out, _ = single
    generate(tmp_path / "again", clips=3, seed=7, workers=2)
    expected = (out / "annotations.json").read_bytes()
    assert (tmp_path / "again" / "annotations.json").read_bytes() == expected
    other = generate(tmp_path / "other", clips=3, seed=8)
    assert json.dumps(other) != expected.decode().strip()
    assert [a["file"] for a in other] == ["s8_00000", "s8_00001", "s8_00002"]


def test_two_sources_write_is3_layout(pair):
    out, annotations = pair
    entries = json.loads((out / "is3_annotations.json").read_text())
    assert len(entries) == 2 * len(annotations)
    for annotation in annotations:
        first, second = annotation["class"].split(" + ")
        assert first != second and len(annotation["bbox"]) == 2
        mine = [e for e in entries if e["image"] == f"frames/{annotation['file']}.jpg"]
        assert len(mine) == 2 and mine[0]["audio"] != mine[1]["audio"]
        assert [entry["class"] for entry in mine] == [first, second]
        assert cv2.imread(str(out / mine[0]["image"])).shape == (224, 224, 3)
        for entry, box in zip(mine, annotation["bbox"]):
            x1, y1, x2, y2 = entry["gt_box"]
            assert 0 <= x1 < x2 <= 224 and 0 <= y1 < y2 <= 224
            assert np.allclose(entry["gt_box"], np.array(box) * 224, atol=1.0)
            with wave.open(str(out / entry["audio"])) as wav:
                assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
                assert wav.getnframes() == 64000


def test_splits_draw_only_their_classes(pair, tmp_path):
    _, annotations = pair
    for annotation in annotations:
        assert set(annotation["class"].split(" + ")) <= set(UNHEARD_CLASSES)
    for split, allowed in (("heard", HEARD_CLASSES), ("unheard", UNHEARD_CLASSES)):
        config = SynthConfig(str(tmp_path), clips=8, seed=3, split=split)
        for index in range(8):
            scene = make_clip(config, index).scene
            assert {obj.class_name for obj in scene.objects} <= set(allowed)


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path), "--clips", "1", "--seed", "2", "--size", "160x120"]) == 0
    assert "wrote 1 clips" in capsys.readouterr().out
    (annotation,) = json.loads((tmp_path / "annotations.json").read_text())
    assert annotation["file"] == "s2_00000" and annotation["class"] in CLASSES
    with av.open(str(tmp_path / "videos" / "s2_00000.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (160, 120)
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--size", "161x120"])
