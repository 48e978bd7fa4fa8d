"""ssl-import: published SSL-Align / EZ-VSL checkpoints, checked against the published forward passes.

The checkpoints are random tensors laid out exactly as the published files (the key/shape/dtype lists
in ../shared/reference), saved the way the published code saves them. The reference forward passes
below are written from the published code (SSLalignment's model_lvs.py + networks/base_models.py,
EZ-VSL's model.py) on plain torchvision ResNet-18s, independently of model/.
"""
import functools
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from model import CheckpointError, load_model
from model.checkpoints.import_published import import_checkpoint, main

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
LAYOUTS = {"ssl-align": "ssl_align_avenet_state_dict.tsv", "ezvsl": "ezvsl_state_dict.tsv"}
SSL_ALIGN_EXTRAS = [  # in the published AVENet, unused at inference
    "audnet.conv1.weight", "audnet.conv1_flow.weight", "audnet.fc.bias", "audnet.fc.weight",
    "imgnet.conv1_a.weight", "imgnet.conv1_flow.weight", "imgnet.fc.bias", "imgnet.fc.weight",
]


@functools.cache
def _random_published_state_dict(fmt: str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(len(fmt))
    state_dict = {}
    for line in (REFERENCE / LAYOUTS[fmt]).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        shape = json.loads(shape)
        if dtype == "int64":  # num_batches_tracked
            state_dict[key] = torch.tensor(3, dtype=torch.int64)
            continue
        noise = torch.randn(shape, generator=gen)
        if len(shape) > 1:  # conv / linear weight, He-scaled so activations neither vanish nor explode
            value = noise * (2.0 / noise[0].numel()) ** 0.5
        elif key.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith("weight"):  # BatchNorm scale
            value = 1.0 + 0.1 * noise
        else:  # biases, running means
            value = 0.1 * noise
        state_dict[key] = value.to(getattr(torch, dtype))
    return state_dict


def published_state_dict(fmt: str) -> dict[str, torch.Tensor]:
    """A fresh (shallow) copy of the random published-layout state dict; skips without the reference."""
    if not (REFERENCE / LAYOUTS[fmt]).is_file():
        pytest.skip(f"published layouts not available: {REFERENCE}")
    return dict(_random_published_state_dict(fmt))


def save_published(fmt: str, state_dict: dict, path: Path) -> Path:
    """``torch.save`` as the published code does (EZ-VSL: from DataParallel, with its bookkeeping)."""
    if fmt == "ssl-align":
        torch.save({"model_state_dict": state_dict, "epoch": 3}, path)
    else:
        torch.save({
            "model": {"module." + key: value for key, value in state_dict.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
            "epoch": 3, "best_cIoU": np.float64(0.38), "best_Auc": np.float64(0.39),
        }, path)
    return path


def _avenet_resnet18() -> nn.Module:
    """The published AVENet ResNet-18: three stems (conv1, conv1_a, conv1_flow), fc, layer4 stride 1."""
    net = resnet18(weights=None)
    net.conv1_a = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.conv1_flow = nn.Conv2d(6, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.layer4[0].conv1.stride = (1, 1)
    net.layer4[0].downsample[0].stride = (1, 1)
    return net


def _layer4(net: nn.Module, x: torch.Tensor, stem: nn.Module) -> torch.Tensor:
    x = net.maxpool(net.relu(net.bn1(stem(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def ssl_align_reference(state_dict, images, specs):
    """AVENet: normalised layer4 map, and max-pooled normalised audio through the conv1_a stem."""
    avenet = nn.ModuleDict({"imgnet": _avenet_resnet18(), "audnet": _avenet_resnet18()})
    avenet.load_state_dict(state_dict)  # strict: the published layout is exactly this module's
    imgnet, audnet = avenet.eval()["imgnet"], avenet["audnet"]
    visual = F.normalize(_layer4(imgnet, images, imgnet.conv1), dim=1)
    audio = F.adaptive_max_pool2d(_layer4(audnet, specs, audnet.conv1_a), 1).flatten(1)
    return visual, F.normalize(audio, dim=1)


def ezvsl_reference(state_dict, images, specs):
    """EZVSL: torchvision ResNet-18s (fc = Identity), 7x7 map -> img_proj; max pool -> aud_proj."""
    imgnet = resnet18(weights=None)
    imgnet.avgpool, imgnet.fc = nn.Identity(), nn.Identity()
    audnet = resnet18(weights=None)
    audnet.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    audnet.avgpool, audnet.fc = nn.AdaptiveMaxPool2d((1, 1)), nn.Identity()
    ezvsl = nn.ModuleDict({"imgnet": imgnet, "img_proj": nn.Conv2d(512, 512, kernel_size=1),
                           "audnet": audnet, "aud_proj": nn.Linear(512, 512)})
    ezvsl.load_state_dict(state_dict)
    ezvsl.eval()
    visual = F.normalize(ezvsl["img_proj"](imgnet(images).unflatten(1, (512, 7, 7))), dim=1)
    return visual, F.normalize(ezvsl["aud_proj"](audnet(specs)), dim=1)


REFERENCES = {"ssl-align": ssl_align_reference, "ezvsl": ezvsl_reference}


def cosine_maps(visual, audio):
    return torch.einsum("nchw,nc->nhw", visual, audio)


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(7)
    return torch.randn(2, 3, 224, 224, generator=gen), torch.randn(2, 1, 257, 64, generator=gen)


@pytest.mark.parametrize("fmt", ["ssl-align", "ezvsl"])
@torch.no_grad()
def test_imported_maps_equal_published_forward(tmp_path, inputs, fmt):
    state_dict = published_state_dict(fmt)
    model, _ = import_checkpoint(save_published(fmt, state_dict, tmp_path / "published.pth"), fmt)
    images, specs = inputs
    expected = cosine_maps(*REFERENCES[fmt](state_dict, images, specs))
    maps = model.localize(images, specs)
    side = 14 if fmt == "ssl-align" else 7
    assert maps.shape == expected.shape == (2, side, side)
    assert expected.std() > 1e-3  # random weights that still localize something
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=0)


@torch.no_grad()
def test_ssl_align_visual_map_and_layout(tmp_path, inputs):
    state_dict = published_state_dict("ssl-align")
    path = save_published("ssl-align", state_dict, tmp_path / "ours_sup.pth.tar")
    model, report = import_checkpoint(path, "ssl-align")
    assert not model.training
    assert model.config.layer4_stride == 1 and not model.config.projection
    assert model.audio_config.noverlap == 353
    assert report.ignored_keys == SSL_ALIGN_EXTRAS and "imgnet.conv1_flow.weight" in report.describe()
    assert torch.equal(model.audnet.conv1.weight, state_dict["audnet.conv1_a.weight"])
    images, specs = inputs
    expected_visual, _ = ssl_align_reference(state_dict, images, specs)
    torch.testing.assert_close(model.encode_image_map(images), expected_visual, atol=1e-5, rtol=0)


def test_ezvsl_with_or_without_module_prefix(tmp_path):
    state_dict = published_state_dict("ezvsl")
    with_prefix, report = import_checkpoint(save_published("ezvsl", state_dict, tmp_path / "dp.pth"), "ezvsl")
    torch.save({"model": state_dict}, tmp_path / "plain.pth")
    without_prefix, _ = import_checkpoint(tmp_path / "plain.pth", "ezvsl")
    assert report.ignored_keys == []
    assert with_prefix.config.layer4_stride == 2 and with_prefix.config.projection
    assert with_prefix.audio_config.noverlap == 274
    for key, value in with_prefix.state_dict().items():
        assert torch.equal(value, without_prefix.state_dict()[key]), key


@pytest.mark.parametrize("fmt, noverlap", [("ssl-align", 353), ("ezvsl", 274)])
@torch.no_grad()
def test_cli_round_trip(tmp_path, inputs, capsys, fmt, noverlap):
    published = save_published(fmt, published_state_dict(fmt), tmp_path / "published.pth")
    out = tmp_path / "resources" / "imported.safetensors"
    assert main(["--format", fmt, str(published), str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    imported, _ = import_checkpoint(published, fmt)
    loaded = load_model(out)
    assert loaded.audio_config.noverlap == noverlap and loaded.config == imported.config
    images, specs = inputs[0][:1], inputs[1][:1]
    torch.testing.assert_close(loaded.localize(images, specs), imported.localize(images, specs), atol=0, rtol=0)


def test_the_published_file_is_never_the_output(tmp_path, capsys):
    published = tmp_path / "published.pth"
    torch.save({"model_state_dict": {}}, published)  # refused before it is read
    before = published.read_bytes()
    for out in (published, tmp_path / "." / "published.pth"):
        assert main(["--format", "ssl-align", str(published), str(out)]) == 1
        assert "is the published checkpoint itself" in capsys.readouterr().err
    assert published.read_bytes() == before


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    state_dict = published_state_dict("ssl-align")
    state_dict["imgnet.layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    path = save_published("ssl-align", state_dict, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=re.escape(
            "imgnet.layer1.0.conv1.weight has shape (64, 64, 1, 1), the SSL-Align model needs (64, 64, 3, 3)")):
        import_checkpoint(path, "ssl-align")


def test_missing_tensors_are_listed(tmp_path):
    state_dict = published_state_dict("ssl-align")
    del state_dict["audnet.conv1_a.weight"], state_dict["imgnet.layer4.1.bn2.running_var"]
    path = save_published("ssl-align", state_dict, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="missing") as error:
        import_checkpoint(path, "ssl-align")
    assert "audnet.conv1_a.weight" in str(error.value)
    assert "imgnet.layer4.1.bn2.running_var" in str(error.value)


class MakesMarker:
    """Unpickling this runs ``os.mkdir(marker)``: a stand-in for a checkpoint that carries code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_pickle_with_code_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": {"imgnet.conv1.weight": torch.zeros(1)}, "hook": MakesMarker(marker)}, path)
    with pytest.raises(CheckpointError, match="not plain tensors.*nothing in it was executed"):
        import_checkpoint(path, "ssl-align")
    assert main(["--format", "ezvsl", str(path), str(tmp_path / "out.safetensors")]) == 1
    assert "nothing in it was executed" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()
    torch.load(path, weights_only=False)  # control: an unsafe load does run it, so the test can fail
    assert marker.exists()


def test_file_of_neither_format_names_its_top_level_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 1}, path)
    with pytest.raises(CheckpointError, match=r"top-level keys are \['state_dict', 'epoch'\]"):
        import_checkpoint(path, "ezvsl")
    torch.save({"model": {"module.w": torch.zeros(2)}, "epoch": 1}, path)
    with pytest.raises(CheckpointError, match="use --format ezvsl"):
        import_checkpoint(path, "ssl-align")


def test_unreadable_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        import_checkpoint(tmp_path / "nope.pth", "ssl-align")
    (tmp_path / "garbage.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        import_checkpoint(tmp_path / "garbage.pth", "ssl-align")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        import_checkpoint(tmp_path / "garbage.pth", "lvs")


def test_nan_weights_are_refused_and_nothing_is_written(tmp_path, capsys):
    state_dict = published_state_dict("ssl-align")
    state_dict["imgnet.layer1.0.conv1.weight"] = torch.full((64, 64, 3, 3), float("nan"))
    path = save_published("ssl-align", state_dict, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match="NaN or infinite weights in imgnet.layer1.0.conv1.weight"):
        import_checkpoint(path, "ssl-align")  # also the app's File > Import: a banner, the model stays
    out = tmp_path / "out.safetensors"
    assert main(["--format", "ssl-align", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert "NaN or infinite weights" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("output", ["folder", "file/out.safetensors"])
def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys, output):
    published = save_published("ezvsl", published_state_dict("ezvsl"), tmp_path / "published.pth")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file where a folder is needed")
    assert main(["--format", "ezvsl", str(published), str(tmp_path / output)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ssl-import: error: cannot write {tmp_path / output}") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "published.pth"]
    assert not list((tmp_path / "folder").iterdir())
