"""ssl-synth --content real: real cut-outs and recordings, exact masks, negatives (on the checked-in sample)."""
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from support import REAL, REAL_SAMPLE

from model.evaluation.evaluate import mask_cious
from model.synth.generator import MID_FRAME, SynthConfig, generate, main, make_clip
from model.synth.real_scene import BOX_AREA_LEVELS, BOX_AREA_QUANTILES

HERE = Path(__file__).resolve().parent
VGGSS = HERE.parents[1] / "shared" / "reference" / "vggss.json"  # next to the checkout, when present


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """Four one-source real clips, seed 3."""
    out = tmp_path_factory.mktemp("real")
    return out, generate(out, clips=4, seed=3, **REAL)


def decode(path):
    with av.open(str(path)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        info = (video.codec_context.name, sound.codec_context.name, sound.rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        container.seek(0)
        samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return info, frames, samples


def pasted_mask(clip, obj) -> np.ndarray:
    """Where the cut-out's alpha (> 0.5) lands at the middle frame, minus what is pasted over it."""
    height, width = clip.scene.background.shape[:2]

    def paste(o):
        out = np.zeros((height, width), bool)
        x, y = o.positions[MID_FRAME]
        h, w = o.alpha.shape
        out[y:y + h, x:x + w] = o.alpha > 0.5
        return out

    later = clip.scene.objects[clip.scene.objects.index(obj) + 1:]
    return paste(obj) & ~np.any([paste(o) for o in later] + [np.zeros((height, width), bool)], axis=0)


def test_clips_decode_with_sound_and_show_the_sounding_object_inside_its_mask(single):
    out, annotations = single
    config = SynthConfig(str(out), 4, 3, **REAL)
    for index, annotation in enumerate(annotations):
        (vcodec, acodec, rate), frames, samples = decode(out / "videos" / f"{annotation['file']}.mp4")
        assert (vcodec, acodec, len(frames)) == ("h264", "aac", 100) and rate in (44100, 48000)
        assert np.sqrt(np.mean(samples ** 2)) > 0.02  # the recording is heard
        clip = make_clip(config, index)
        (obj,) = clip.scene.sounding
        mask = cv2.imread(str(out / annotation["mask"][0]), cv2.IMREAD_GRAYSCALE) > 127
        expected = pasted_mask(clip, obj)
        assert (mask & expected).sum() / (mask | expected).sum() > 0.99
        rows, cols = np.nonzero(expected)
        box = np.array(annotation["bbox"][0]) * [320, 240, 320, 240]
        assert np.allclose(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], atol=0.01)
        # the decoded frame differs from the scene rendered without the object inside the mask only
        clip.scene.objects.remove(obj)
        diff = np.abs(frames[MID_FRAME].astype(float) - clip.scene.render(MID_FRAME)).mean(axis=2)
        inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        outer = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        assert diff[inner].mean() > 3 * diff[outer].mean() + 5


def test_same_seed_same_annotations_and_masks_whatever_the_workers(tmp_path, single):
    out, _ = single
    again = tmp_path / "again"
    generate(again, clips=4, seed=3, workers=2, **REAL)
    assert (again / "annotations.json").read_bytes() == (out / "annotations.json").read_bytes()
    for mask in sorted((out / "masks").iterdir()):
        assert (again / "masks" / mask.name).read_bytes() == mask.read_bytes()
    first = json.loads((out / "annotations.json").read_text())[0]
    assert generate(tmp_path / "other", clips=1, seed=4, **REAL)[0] != first


@pytest.mark.parametrize("mode", ["silence", "offscreen"])
def test_negatives_carry_no_box_and_their_sound_is_not_in_the_picture(tmp_path, mode):
    annotations = generate(tmp_path, clips=2, seed=9, negatives=mode, **REAL)
    for annotation in annotations:
        assert annotation["bbox"] == [] and annotation["negative"] == mode and "mask" not in annotation
        assert annotation["visible"] and annotation["class"] not in annotation["visible"]
        _, _, samples = decode(tmp_path / "videos" / f"{annotation['file']}.mp4")
        level = np.sqrt(np.mean(samples ** 2))
        assert level < 0.03 if mode == "silence" else level > 0.02
    assert not (tmp_path / "masks").exists()


def test_two_sources_write_is3_entries_and_one_mask_each(tmp_path):
    (annotation,) = generate(tmp_path, clips=1, seed=2, sources=2, **REAL)
    entries = json.loads((tmp_path / "is3_annotations.json").read_text())
    assert [e["class"] for e in entries] == annotation["class"].split(" + ")
    masks = [cv2.imread(str(tmp_path / m), cv2.IMREAD_GRAYSCALE) > 127 for m in annotation["mask"]]
    assert len(masks) == 2 and all(m.any() for m in masks) and not (masks[0] & masks[1]).any()
    assert all((tmp_path / e["audio"]).is_file() for e in entries)


def test_sounding_box_areas_follow_vggss():
    config = SynthConfig("unused", 0, 21, **REAL)
    areas = []
    for index in range(60):
        clip = make_clip(config, index)
        x1, y1, x2, y2 = clip.scene.sounding[0].box(MID_FRAME)
        areas.append((x2 - x1) * (y2 - y1) / (320 * 240))
    median = BOX_AREA_QUANTILES[BOX_AREA_LEVELS.index(0.5)]
    assert abs(np.median(areas) - median) < 0.08 and min(areas) < 0.1 and max(areas) > 0.4


@pytest.mark.skipif(not VGGSS.is_file(), reason=f"{VGGSS} absent")
def test_box_area_constants_are_the_vggss_quantiles():
    entries = json.loads(VGGSS.read_text())
    largest = [max((b[2] - b[0]) * (b[3] - b[1]) for b in e["bbox"]) for e in entries]
    measured = np.quantile(largest, BOX_AREA_LEVELS[1:-1])
    assert np.allclose(measured, BOX_AREA_QUANTILES[1:-1], atol=5e-4)


def test_the_command_makes_the_same_clips_as_the_api(tmp_path, single):
    out, annotations = single
    assert main([str(tmp_path), "--clips", "1", "--seed", "3", "--content", "real", "--assets", str(REAL_SAMPLE),
                 "--manifest", str(REAL_SAMPLE / "manifest.json")]) == 0
    assert json.loads((tmp_path / "annotations.json").read_text()) == annotations[:1]


def test_missing_assets_and_bad_options_give_a_clear_message(tmp_path, capsys):
    assert main([str(tmp_path / "out"), "--clips", "1", "--content", "real", "--assets", str(tmp_path)]) == 1
    assert "ssl-assets" in capsys.readouterr().err
    with pytest.raises(ValueError, match="negatives"):
        SynthConfig(str(tmp_path), negatives="silence")  # procedural content has no negatives
    with pytest.raises(ValueError, match="pool"):
        SynthConfig(str(tmp_path), pool="test")  # procedural content has no pools
    with pytest.raises(SystemExit):
        main([str(tmp_path / "bad"), "--content", "real", "--pool", "holdout"])
    with pytest.raises(ValueError, match="classes"):
        generate(tmp_path / "few", clips=1, seed=0, split="unheard", **REAL)  # the sample has one unheard class


def test_mask_ciou_scores_a_map_against_the_exact_masks(tmp_path):
    mask = np.zeros((240, 320), np.uint8)
    mask[:, :160] = 255  # the left half: a perfect map scores 1 under the median threshold
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "a_0.png"), mask)
    (tmp_path / "annotations.json").write_text(json.dumps([
        {"file": "a", "class": "dog", "bbox": [[0, 0, 0.5, 1]], "mask": ["masks/a_0.png"]},
        {"file": "b", "class": "cow", "bbox": [[0, 0, 1, 1]]}]))
    x = torch.linspace(1, 0, 224).expand(224, 224)  # high on the left
    maps = torch.stack([x, x.flip(1)])
    scores = mask_cious(["a", "b"], maps, tmp_path)
    assert scores[0] == pytest.approx(1.0, abs=0.01) and np.isnan(scores[1])  # strict ">" median: one column less
    assert mask_cious(["a", "b"], maps.flip(2), tmp_path)[0] == pytest.approx(0.0)


def test_pools_split_every_file_once_and_keep_a_training_file_per_class(pooled_assets):
    from model.synth.assets import POOLS, load_manifest, pool_of

    manifest = load_manifest(pooled_assets["manifest"])
    pools = {ref: manifest.pool(ref) for ref in manifest.refs()}
    assert set(pools.values()) == set(POOLS)
    for cls in manifest.classes:  # three files: one in each pool
        for group in (cls.images, cls.sounds):
            assert sorted(manifest.pool(ref) for ref in group) == sorted(POOLS)
    shipped = load_manifest()
    for cls in shipped.classes:
        assert "train" in {shipped.pool(r) for r in cls.images} and "train" in {shipped.pool(r) for r in cls.sounds}
    assert {pool_of(b.file) for b in shipped.backgrounds} == set(POOLS)


def test_no_file_of_a_test_clip_is_in_the_training_pool(tmp_path, pooled_assets):
    from model.synth.assets import load_manifest

    manifest = load_manifest(pooled_assets["manifest"])
    by_path = {manifest.relative(ref): manifest.pool(ref) for ref in manifest.refs()}
    used = {}
    for pool in ("train", "test"):
        entries = generate(tmp_path / pool, clips=6, seed=1, size=(160, 120), pool=pool, **pooled_assets)
        entries += generate(tmp_path / f"{pool}_off", clips=3, seed=2, size=(160, 120), pool=pool,
                            negatives="offscreen", **pooled_assets)
        files = set()
        for entry in entries:
            source = entry["source"]
            named = [source["photo"], source["recording"], source["background"], source["offscreen"], *source["others"]]
            assert source["recording"] and (source["photo"] or entry.get("negative"))
            assert len(source["others"]) == len(entry.get("visible", [])) - (not entry.get("negative"))
            assert all((Path(pooled_assets["assets"]) / f).is_file() for f in named if f)
            files |= {f for f in named if f}
            if pool == "test" and not entry.get("negative"):
                assert entry["instance"] in ("both new", "unheard class")  # every class has a test photo and recording
        used[pool] = files
        assert {by_path[f] for f in files} == {pool}  # every file of the set is of its pool
    assert used["train"] and used["test"] and not used["train"] & used["test"]


def test_pooled_sets_let_every_class_sound_equally_often():
    config = SynthConfig("unused", 0, 3, pool="val", **REAL)  # all four classes of the sample
    names = [make_clip(config, index).classes[0] for index in range(8)]
    assert sorted(names.count(name) for name in set(names)) == [2, 2, 2, 2]


def test_a_class_with_one_photo_and_one_recording_gives_seen_instance_test_clips(tmp_path):
    entries = generate(tmp_path, clips=4, seed=1, size=(160, 120), split="heard", pool="test", **REAL)
    assert {e["instance"] for e in entries} == {"seen instance"}  # the sample has one file of each
    assert all(e["source"]["photo"].endswith(".png") and e["source"]["recording"].endswith(".ogg") for e in entries)
    two = generate(tmp_path / "two", clips=1, seed=1, size=(160, 120), sources=2, split="heard", pool="val", **REAL)
    assert len(two[0]["sources"]) == 2 and two[0]["instance"] == ["seen instance"] * 2


def test_every_pooled_scene_has_a_distractor_of_similar_size(pooled_assets):
    config = SynthConfig("unused", 0, 8, size=(160, 120), pool="val", **pooled_assets)
    for index in range(12):
        scene = make_clip(config, index).scene
        (sounding,) = scene.sounding

        def area(obj):
            x1, y1, x2, y2 = obj.full_box(MID_FRAME)
            return (x2 - x1) * (y2 - y1)

        ratios = [area(obj) / area(sounding) for obj in scene.objects if obj is not sounding]
        assert any(0.5 <= r <= 2.0 for r in ratios), ratios
