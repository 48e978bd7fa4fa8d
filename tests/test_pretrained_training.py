"""ssl-train with the ImageNet EfficientNet-Lite0: frozen parts stay as published, the map cache, the flags."""
import pytest
import torch

from model import load_model
from model.networks.backbones import imagenet_state
from model.train.cli import main, parse_args
from model.train.config import TrainConfig
from model.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--image-size", "64", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0", "--batch-size", "4"]
LITE = ["--visual-backbone", "efficientnet_lite0", "--image-init", "imagenet"]


def trunk_state(model) -> dict[str, torch.Tensor]:
    return {k.removeprefix("imgnet.trunk.net."): v for k, v in model.state_dict().items()
            if k.startswith("imgnet.trunk.net.")}


def test_a_frozen_backbone_stays_the_published_one_and_its_maps_are_cached(train_clips, tmp_path):
    run = tmp_path / "run"
    config = parse_args(["--data", str(train_clips), "--out", str(run), "--epochs", "2", *LITE,
                         "--freeze-visual", "all", "--cache", str(tmp_path / "cache"), "--cache-visual-maps", "64",
                         *FAST])
    trainer = Trainer(config)
    proj = trainer.model.imgnet.proj.weight.detach().clone()
    audio = trainer.model.audnet.layer4[1].conv2.weight.detach().clone()
    trainer.fit()
    assert trainer.step == 4
    cache = trainer.model.imgnet.trunk.cache
    assert cache.hits >= 4 * 4 and cache.maps  # each anchor's second view is its own frame: a hit

    model = load_model(run / "last.safetensors")
    assert model.config.visual_backbone == "efficientnet_lite0"
    published = imagenet_state()
    trunk = trunk_state(model)
    assert trunk.keys() == {k for k in published if not k.startswith("classifier.")}
    changed = [k for k, v in trunk.items() if not torch.equal(v, published[k])]
    assert changed == []  # weights and batch-norm statistics alike
    assert not torch.equal(model.imgnet.proj.weight, proj)
    assert not torch.equal(model.audnet.layer4[1].conv2.weight, audio)


def test_early_freezing_trains_the_last_stages_only(train_clips, tmp_path):
    trainer = Trainer(parse_args(["--data", str(train_clips), "--out", str(tmp_path / "run"), "--epochs", "1", *LITE,
                                  "--freeze-visual", "early", "--no-neighbours", *FAST]))
    trainer.fit()
    published = imagenet_state()
    trunk = trunk_state(trainer.model)
    changed = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("blocks") else "")
               for k, v in trunk.items() if not torch.equal(v, published[k])}
    assert changed == {"blocks.5", "blocks.6", "conv_head", "bn2"}


def test_the_checkpoint_backbone_is_kept_and_a_mismatch_is_refused(train_clips, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["--data", str(train_clips), "--out", str(run), "--epochs", "1", *LITE, "--no-neighbours", *FAST]) == 0
    again = Trainer(parse_args(["--data", str(train_clips), "--out", str(tmp_path / "b"), "--init",
                                str(run / "last.safetensors"), "--epochs", "1", *FAST]))
    assert again.model.config.visual_backbone == "efficientnet_lite0"
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "c"), "--init", str(run / "last.safetensors"),
                 "--visual-backbone", "resnet18", *FAST]) == 2
    assert "the checkpoint's is efficientnet_lite0" in capsys.readouterr().err


def test_flags_and_their_clear_errors(train_clips, tmp_path, capsys):
    c = parse_args(["--data", "d", "--out", "o", *LITE, "--freeze-visual", "early", "--cache", "c",
                    "--cache-visual-maps", "100"])
    assert (c.visual_backbone, c.image_init, c.freeze_visual, c.visual_cache_mb) == (
        "efficientnet_lite0", "imagenet", "early", 100)
    assert TrainConfig().visual_backbone is None and TrainConfig().freeze_visual == "none"
    with pytest.raises(SystemExit):  # the cache needs decoded frames that come back
        parse_args(["--data", "d", "--out", "o", *LITE, "--freeze-visual", "all", "--cache-visual-maps", "100"])
    with pytest.raises(SystemExit):  # and a frozen part
        parse_args(["--data", "d", "--out", "o", *LITE, "--cache", "c", "--cache-visual-maps", "100"])
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "r"), "--freeze-visual", "all", *FAST]) == 2
    assert "--visual-backbone efficientnet_lite0" in capsys.readouterr().err
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "r"), "--image-init", "imagenet", *FAST]) == 2
    assert "ImageNet ResNet-18 weights are not installed" in capsys.readouterr().err
