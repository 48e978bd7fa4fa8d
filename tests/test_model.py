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
