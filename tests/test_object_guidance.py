"""Object-guided localization (``model.networks.object_guidance``): the mix, where its objectness comes from, its
choice on validation data, the checkpoint, ``ssl-eval``'s ``object_guided`` numbers and the app's heatmap."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import AudioConfig, CheckpointError, ModelConfig, SSLModel, load_model, save_model
from model.checkpoints.store import read_safetensors, write_safetensors_atomic
from model.evaluation.evaluate import main as ssl_eval
from model.evaluation.evaluate import open_dataset, predict
from model.evaluation.vision_only import score
from model.inference.fast_path import InferenceConfig
from model.inference.heatmap import upsample_map
from model.localize import Localizer, encode_frame
from model.knowledge.config import SemanticConfig
from model.evaluation.calibrate import GUIDANCE_WEIGHTS, choose_guidance
from model.evaluation.calibrate import main as calibrate
from model.networks.object_guidance import ObjectGuidance, guide, objectness
from model.synth.generator import generate

pytestmark = pytest.mark.usefixtures("one_thread")
BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"


def lite_model(weight: float = 0.0) -> SSLModel:
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(image_size=96, visual_backbone="efficientnet_lite0"), AudioConfig(seconds=0.5))
    model.guidance = ObjectGuidance(weight)
    return model.eval()


@pytest.fixture(scope="module")
def boxed_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("guided")
    generate(root, clips=6, seed=3, size=(128, 96))
    return root


def test_weight_zero_is_the_cosine_map_and_one_is_the_objectness_in_the_cosine_range():
    g = torch.Generator().manual_seed(0)
    cosine, objects = torch.rand(3, 5, 5, generator=g) * 0.4 - 0.1, torch.rand(3, 5, 5, generator=g) * 7
    assert torch.equal(guide(cosine, objects, 0.0), cosine)
    only_objects = guide(cosine, objects, 1.0)
    for c, o, m in zip(cosine, objects, only_objects):
        assert torch.isclose(m.min(), c.min()) and torch.isclose(m.max(), c.max())  # the colour scale keeps its meaning
        assert torch.allclose((m - c.min()) / (c.max() - c.min()), (o - o.min()) / (o.max() - o.min()), atol=1e-6)
    half = guide(cosine, objects, 0.5)[0]
    by_hand = 0.5 * (cosine[0] - cosine[0].min()) / (cosine[0].max() - cosine[0].min()) \
        + 0.5 * (objects[0] - objects[0].min()) / (objects[0].max() - objects[0].min())
    assert torch.allclose(half, cosine[0].min() + (cosine[0].max() - cosine[0].min()) * by_hand, atol=1e-6)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_a_weight_outside_zero_to_one_is_refused(weight):
    with pytest.raises(ValueError, match="within"):
        ObjectGuidance(weight)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet18"])
def test_objectness_is_the_norm_of_the_backbone_features_before_the_projection(backbone):
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(image_size=64, visual_backbone=backbone, projection=True)).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps, objects = model.encode_visual(images)
        features = model.imgnet.trunk(images) if backbone == "efficientnet_lite0" else model.imgnet(images)
        assert torch.equal(maps, model.encode_image_map(images))
    assert torch.allclose(objects, objectness(features))
    assert torch.allclose(objects.amin(dim=(1, 2)), torch.zeros(2)) and torch.allclose(objects.amax(dim=(1, 2)), torch.ones(2))
    if backbone == "efficientnet_lite0":
        assert features.shape[1] == 1280  # the ImageNet trunk's channels, not the projection's 512


def box_maps(n: int = 12, size: int = 14, seed: int = 0):
    """Boxes and, per item, a map that is high exactly inside its box and a map of noise."""
    rng = np.random.default_rng(seed)
    boxes, inside, noise = [], [], []
    for _ in range(n):
        x1, y1 = rng.uniform(0.05, 0.5, 2)
        w, h = rng.uniform(0.2, 0.45, 2)
        boxes.append([[x1, y1, x1 + w, y1 + h]])
        centres = (np.arange(size) + 0.5) / size
        m = np.outer((centres >= y1) & (centres <= y1 + h), (centres >= x1) & (centres <= x1 + w)).astype(np.float32)
        inside.append(m + 0.05 * rng.random((size, size), dtype=np.float32))
        noise.append(rng.random((size, size), dtype=np.float32))
    return boxes, torch.tensor(np.stack(inside)), torch.tensor(np.stack(noise))


def test_choose_follows_the_map_that_finds_the_boxes():
    boxes, inside, noise = box_maps()
    weight, scores = choose_guidance(noise, inside, boxes)  # the objectness finds the objects, the cosine is noise
    assert weight >= 0.6 and set(scores) == set(GUIDANCE_WEIGHTS)
    weight, scores = choose_guidance(inside, noise, boxes)  # the cosine finds them
    assert weight <= 0.3
    assert scores[0.0] > scores[1.0]


def test_guidance_travels_in_the_checkpoint_and_a_bad_one_is_a_clear_error(tmp_path):
    model = lite_model(0.3)
    model.guidance.chosen_on = "val"
    save_model(tmp_path / "m.safetensors", model, dtype=torch.float16)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.guidance == ObjectGuidance(0.3, "val")
    tensors, metadata = read_safetensors(tmp_path / "m.safetensors")
    del metadata["object_guidance"]  # a checkpoint made before object guidance: the cosine map alone
    write_safetensors_atomic(tmp_path / "old.safetensors", tensors, metadata)
    assert load_model(tmp_path / "old.safetensors").guidance.weight == 0.0
    metadata["object_guidance"] = json.dumps({"weight": 1.5})
    write_safetensors_atomic(tmp_path / "bad.safetensors", tensors, metadata)
    with pytest.raises(CheckpointError, match="object_guidance.*within"):
        load_model(tmp_path / "bad.safetensors")


def test_the_command_sets_or_chooses_the_weight_and_keeps_the_file_type(boxed_clips, tmp_path, capsys):
    source = tmp_path / "m.safetensors"
    save_model(source, lite_model(), dtype=torch.float16)
    assert calibrate(["object-guidance", "--checkpoint", str(source), "--weight", "0.25",
                      "--out", str(tmp_path / "set.safetensors"), "--device", "cpu"]) == 0
    assert load_model(tmp_path / "set.safetensors").guidance.weight == 0.25
    assert next(iter(read_safetensors(tmp_path / "set.safetensors")[0].values())).dtype == torch.float16
    assert calibrate(["object-guidance", "--checkpoint", str(source), "--data", str(boxed_clips), "--device", "cpu"]) == 0
    chosen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert load_model(source).guidance == ObjectGuidance(chosen["weight"], str(boxed_clips))
    assert chosen["weight"] in GUIDANCE_WEIGHTS and len(chosen["mean_adaptive_iou"]) == len(GUIDANCE_WEIGHTS)
    assert calibrate(["object-guidance", "--checkpoint", str(source), "--weight", "2", "--device", "cpu"]) == 2
    assert "within" in capsys.readouterr().err


def test_ssl_eval_scores_the_guided_map_beside_the_cosine_map(boxed_clips, tmp_path):
    plain, guided = tmp_path / "plain.safetensors", tmp_path / "guided.safetensors"
    save_model(plain, lite_model(0.0))
    save_model(guided, lite_model(0.4))
    assert ssl_eval(["--data", str(boxed_clips), "--checkpoint", str(plain), "--out", str(tmp_path / "a"),
                     "--device", "cpu"]) == 0
    cosine_only = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert "object_guided" not in cosine_only  # the checkpoint's weight is 0
    assert ssl_eval(["--data", str(boxed_clips), "--checkpoint", str(guided), "--out", str(tmp_path / "b"),
                     "--device", "cpu"]) == 0
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["object_guided"]["weight"] == 0.4
    assert "| object-guided (0.4) |" in (tmp_path / "b" / "report.md").read_text()
    assert "object-guided" not in (tmp_path / "a" / "report.md").read_text()
    assert {"ciou", "auc", "ciou_adaptive", "auc_adaptive"} <= set(m["object_guided"])
    for key in ("ciou", "auc", "ciou_adaptive", "retrieval"):  # the paper's numbers stay the cosine map's
        assert m[key] == cosine_only[key]
    # weight 1: the objectness alone, scored as the vision-only reference scores a map
    assert ssl_eval(["--data", str(boxed_clips), "--checkpoint", str(plain), "--out", str(tmp_path / "c"),
                     "--device", "cpu", "--object-weight", "1"]) == 0
    only_objects = json.loads((tmp_path / "c" / "metrics.json").read_text())["object_guided"]
    model = lite_model()
    pred = predict(model, open_dataset(boxed_clips, model), "cpu")
    reference = score(boxed_clips, pred.files, pred.boxes, pred.objectness)
    for key in ("ciou", "auc", "ciou_adaptive"):
        assert only_objects[key] == pytest.approx(reference[key])


def test_the_app_heatmap_follows_the_weight_and_presence_stays_the_cosine_peak():
    bundled = load_model(BUNDLED)  # trained: an untrained model's cosine maps are flat
    bundled.semantic = SemanticConfig()  # the object guidance alone (the semantic mix: tests/test_knowledge.py)
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    sound = np.random.default_rng(1).uniform(-0.3, 0.3, bundled.audio_config.num_samples).astype(np.float32)
    shown = {}
    for weight in (0.0, 1.0):
        bundled.guidance = ObjectGuidance(weight)
        localizer = Localizer(bundled, "cpu", inference=InferenceConfig(engine="eager"))
        with torch.inference_mode():  # as the app's inference worker runs it
            localizer.hear(sound, 0.0)
            shown[weight] = localizer.localize(frame)
    cos, objects_only = shown[0.0], shown[1.0]
    np.testing.assert_array_equal(objects_only.cosine, cos.cosine)  # the raw cosine is the same
    assert objects_only.presence == cos.presence
    assert np.isclose(objects_only.shown.max(), cos.cosine.max(), atol=1e-5)  # in the cosine's range
    assert np.isclose(objects_only.shown.min(), cos.cosine.min(), atol=1e-5)
    with torch.no_grad():
        _, objects = encode_frame(bundled, frame, "cpu")
    expected = upsample_map(guide(torch.from_numpy(cos.cosine)[None], objects, 1.0)[0], frame.shape[:2], smooth=True)
    np.testing.assert_allclose(objects_only.shown, expected.numpy(), atol=1e-5)  # the objectness, as shown
    assert not np.allclose(objects_only.shown, cos.shown, atol=1e-3)


def test_training_with_boxes_in_val_chooses_the_checkpoints_weight(boxed_clips, tmp_path):
    from model.train.cli import main as ssl_train

    run = tmp_path / "run"
    assert ssl_train(["--data", str(boxed_clips), "--val", str(boxed_clips), "--out", str(run), "--epochs", "1",
                      "--no-augment", "--no-neighbours", "--visual-backbone", "efficientnet_lite0",
                      "--image-size", "96", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0",
                      "--batch-size", "3"]) == 0
    epoch = [e for e in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "val_ciou" in e][-1]
    model = load_model(run / "last.safetensors")
    assert epoch["val_object_weight"] in GUIDANCE_WEIGHTS
    assert model.guidance == ObjectGuidance(epoch["val_object_weight"], str(boxed_clips))
    pred = predict(model, open_dataset(boxed_clips, model), "cpu")
    assert choose_guidance(pred.maps, pred.objectness, pred.boxes)[0] == model.guidance.weight  # the same choice, again
