"""The ImageNet EfficientNet-Lite0: the loaded encoder is the published network, its map, freezing, the cache."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from model import ModelConfig, SSLModel, load_model, save_model
from model.networks.backbones import EfficientNetLite0, MapCache, imagenet_state, timm_name, weights_path

pytestmark = pytest.mark.usefixtures("one_thread")

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# stride of each of the 16 blocks in the published file's order (stages of 1, 2, 2, 3, 3, 4, 1 blocks)
BLOCK_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]


def _same(x, kernel, stride):
    """TensorFlow 'SAME' padding: the extra pixel goes right/bottom."""
    pads = []
    for size in reversed(x.shape[-2:]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def reference_logits(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite0 written out from the published file's own names, in [-1, 1] RGB: an
    independent forward (plain functional ops, no timm) to hold the encoder against."""
    def conv(h, name, stride=1):
        w = sd[name]
        groups = h.shape[1] if w.shape[1] == 1 and h.shape[1] > 1 else 1
        return F.conv2d(_same(h, w.shape[-1], stride), w, stride=stride, groups=groups)

    def bn(h, name):
        return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], training=False, eps=1e-3)

    h = F.relu6(bn(conv(x, "_conv_stem.weight", 2), "_bn0"))
    for i, stride in enumerate(BLOCK_STRIDES):
        p = f"_blocks.{i}."
        inp = h
        if p + "_expand_conv.weight" in sd:
            h = F.relu6(bn(conv(h, p + "_expand_conv.weight"), p + "_bn0"))
        h = F.relu6(bn(conv(h, p + "_depthwise_conv.weight", stride), p + "_bn1"))
        h = bn(conv(h, p + "_project_conv.weight"), p + "_bn2")
        if stride == 1 and h.shape == inp.shape:
            h = h + inp
    h = F.relu6(bn(conv(h, "_conv_head.weight"), "_bn1"))
    return F.linear(h.mean(dim=(2, 3)), sd["_fc.weight"], sd["_fc.bias"])


@pytest.fixture(scope="module")
def published():
    return torch.load(weights_path(), map_location="cpu", weights_only=True)


def test_every_published_tensor_has_a_timm_name_and_the_encoder_loads_them_all(published):
    names = {timm_name(k) for k in published}
    assert len(names) == len(published) == 296
    net = EfficientNetLite0(output_stride=32)
    assert names - {"classifier.weight", "classifier.bias"} == set(net.net.state_dict())
    assert timm_name("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert timm_name("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"


def test_imagenet_logits_equal_the_reference_forward(published):
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 128, 128, generator=g)  # fixed inputs in 0..1
    rgb[1] = torch.linspace(0, 1, 128).view(1, 1, 128).expand(3, 128, 128)  # and a smooth gradient
    net = EfficientNetLite0(output_stride=32).eval()
    net.load_imagenet()
    state = imagenet_state()
    with torch.no_grad():
        ours = F.linear(net((rgb - MEAN) / STD).mean(dim=(2, 3)), state["classifier.weight"], state["classifier.bias"])
        ref = reference_logits(published, rgb * 2 - 1)
    assert ours.shape == (2, 1000)
    assert ref.abs().max() > 1  # real logits, not a degenerate all-zero comparison
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_stride_16_gives_a_14x14_map_at_224_and_the_model_a_512_d_unit_map():
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(visual_backbone="efficientnet_lite0")).eval()
    with torch.no_grad():
        raw = model.imgnet.trunk(torch.zeros(1, 3, 224, 224))
        maps = model.encode_image_map(torch.zeros(1, 3, 64, 64))
    assert raw.shape == (1, 1280, 14, 14)
    assert maps.shape == (1, 512, 4, 4)
    torch.testing.assert_close(maps.norm(dim=1), torch.ones(1, 4, 4))


def test_an_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="visual_backbone"):
        ModelConfig(visual_backbone="vit")


def test_a_checkpoint_keeps_the_backbone_and_its_weights(tmp_path):
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(visual_backbone="efficientnet_lite0", image_size=64)).eval()
    model.imgnet.trunk.load_imagenet()
    save_model(tmp_path / "lite.safetensors", model)
    loaded = load_model(tmp_path / "lite.safetensors")
    assert loaded.config.visual_backbone == "efficientnet_lite0"
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image_map(x), model.encode_image_map(x))


def test_freezing_fixes_weights_and_batch_norm_of_the_frozen_part_only():
    net = EfficientNetLite0()
    net.freeze("early")
    net.train()
    pieces = net.pieces()
    assert not any(p.requires_grad for piece in pieces[:6] for p in piece.parameters())
    assert all(p.requires_grad for piece in pieces[6:] for p in piece.parameters())
    assert not pieces[0][1].training and pieces[6][0].bn1.training
    with pytest.raises(ValueError, match="freeze level"):
        net.freeze("most")


def test_the_map_cache_returns_the_map_of_that_input():
    net = EfficientNetLite0().eval()
    net.freeze("all")
    net.cache = MapCache(max_bytes=10**8)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 3, 32, 32, generator=g), torch.randn(1, 3, 32, 32, generator=g)
    first = net(torch.cat([a, b]))
    again = net(torch.cat([b, a, a]))
    assert (net.cache.misses, net.cache.hits) == (2, 3)
    assert torch.equal(again[0], first[1]) and torch.equal(again[1], first[0])
    net.cache = None
    torch.testing.assert_close(net(a)[0], first[0], atol=0.02, rtol=0.01)  # float16 rounding only
    tiny = MapCache(max_bytes=1)
    net.cache = tiny
    net(a)
    net(a)
    assert tiny.maps == {} and tiny.misses == 2  # full: computed, not kept


def test_a_wrong_weights_file_is_a_clear_error(tmp_path):
    net = EfficientNetLite0()
    with pytest.raises(FileNotFoundError, match="not found"):
        net.load_imagenet(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a torch state dict"):
        net.load_imagenet(tmp_path / "junk.pth")
    torch.save({"conv1.weight": torch.zeros(2)}, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        net.load_imagenet(tmp_path / "resnet.pth")
    torch.save({"_conv_stem.weight": torch.zeros(2)}, tmp_path / "short.pth")
    with pytest.raises(ValueError, match="does not fit"):
        net.load_imagenet(tmp_path / "short.pth")


@pytest.mark.parametrize("output_stride", [16, 32])
def test_the_written_out_network_equals_timm_s_at_both_output_strides(output_stride):
    """Same tensor names and the same map as timm's tf_efficientnet_lite0 (the app does not import timm)."""
    timm = pytest.importorskip("timm")
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0,
                                  output_stride=output_stride).eval()
    ours = EfficientNetLite0(output_stride=output_stride).eval()
    assert set(ours.net.state_dict()) == set(reference.state_dict())
    ours.load_imagenet()
    reference.load_state_dict(ours.net.state_dict())
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = reference.forward_features(x)
        got = ours.net(x)
    assert got.shape == expected.shape == (2, 1280, 128 // output_stride, 128 // output_stride)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_loading_the_bundled_model_does_not_import_timm():
    code = ("import sys; from model import load_model; load_model('resources/model.safetensors'); "
            "print('timm' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "False"]
