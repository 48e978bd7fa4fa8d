import torch

from model import ModelConfig, SSLModel, to_heatmap


def test_shapes_and_unit_norm(tiny_model):
    images = torch.randn(2, 3, 224, 224)
    specs = torch.randn(2, 1, 257, 299)
    with torch.no_grad():
        vmap = tiny_model.encode_image_map(images)
        img = tiny_model.encode_image(images)
        aud = tiny_model.encode_audio(specs)
        maps = tiny_model.localize(images, specs)
    assert vmap.shape == (2, 512, 14, 14)
    assert img.shape == aud.shape == (2, 512)
    assert maps.shape == (2, 14, 14)
    torch.testing.assert_close(vmap.norm(dim=1), torch.ones(2, 14, 14))
    torch.testing.assert_close(aud.norm(dim=1), torch.ones(2))
    assert maps.abs().max() <= 1 + 1e-5


def test_localize_is_cosine_of_encodings(tiny_model):
    images, specs = torch.randn(1, 3, 224, 224), torch.randn(1, 1, 257, 299)
    with torch.no_grad():
        maps = tiny_model.localize(images, specs)
        vmap, aud = tiny_model.encode_image_map(images), tiny_model.encode_audio(specs)
    expected = torch.nn.functional.cosine_similarity(vmap, aud[:, :, None, None], dim=1)
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=1e-5)


def test_ezvsl_variant_has_7x7_map_and_projection_heads():
    model = SSLModel(ModelConfig(layer4_stride=2, audio_layer4_stride=2, projection=True)).eval()
    with torch.no_grad():
        maps = model.localize(torch.randn(1, 3, 224, 224), torch.randn(1, 1, 257, 300))
    assert maps.shape == (1, 7, 7)
    assert "img_proj.weight" in model.state_dict() and "aud_proj.weight" in model.state_dict()


def test_heatmap_resizes_and_spans_unit_range():
    cos_map = torch.zeros(14, 14)
    cos_map[2:5, 9:12] = 0.8  # a hot spot top-right
    heat = to_heatmap(cos_map, (240, 320))
    assert heat.shape == (240, 320)
    assert heat.min() == 0 and heat.max() == 1
    ys, xs = torch.nonzero(heat > 0.9, as_tuple=True)
    assert ys.float().mean() < 120 and xs.float().mean() > 160


def _torchvision_trunk(in_channels: int, layer4_stride: int):
    """What model.networks.encoders built before it wrote ResNet-18 out: torchvision's, changed the same way."""
    from torch import nn
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if layer4_stride != 2:
        net.layer4[0].conv1.stride = (layer4_stride, layer4_stride)
        net.layer4[0].downsample[0].stride = (layer4_stride, layer4_stride)
    return net.eval()


def test_resnet_trunk_is_torchvisions_resnet18():
    """Same names, same seeded weights, same random numbers left, same output: checkpoints and seeded runs
    carry over."""
    from model.networks.encoders import ResNetTrunk

    for in_channels, stride in ((3, 1), (1, 1), (3, 2)):
        torch.manual_seed(5)
        net = _torchvision_trunk(in_channels, stride)
        after_torchvision = torch.rand(3)
        torch.manual_seed(5)
        trunk = ResNetTrunk(in_channels, stride).eval()
        assert torch.equal(torch.rand(3), after_torchvision)
        theirs = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
        ours = trunk.state_dict()
        assert list(ours) == list(theirs)
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
        x = torch.randn(2, in_channels, 64, 80)
        with torch.no_grad():
            expected = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
            assert torch.equal(trunk(x), expected)


def test_the_app_does_not_import_torchvision():
    """torchvision imports torch._dynamo: seconds of start-up and 200 MB for the app, which needs none of it."""
    import os
    import subprocess
    import sys

    code = "import sys, ssl_desktop.main_window, model.localize; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.stdout.strip() == "False"
