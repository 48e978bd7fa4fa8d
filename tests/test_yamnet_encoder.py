"""YAMNet's AudioSet embedding as the audio encoder (``--audio-backbone yamnet``): its front end, the installed
weights, training it frozen or its last block only, checkpoints and the app's per-frame path."""
import json

import numpy as np
import pytest
import torch

from model import ModelConfig, SSLModel, load_model, save_model
from model.preprocess.audio import AudioConfig, spectrogram
from model.common.config_checks import FieldError
from model.evaluation.evaluate import main as evaluate
from model.inference.fast_path import InferenceModel
from model.gallery.index import build_gallery, encode_clip
from model.knowledge.yamnet import layout, load_yamnet, patches
from model.localize import Localizer
from model.train.cli import main, parse_args
from model.train.trainer import Trainer
from model.networks.yamnet_encoder import YamNetAudioEncoder, to_patches

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--image-size", "64", "--audio-seconds", "1.5", "--device", "cpu", "--workers", "0", "--batch-size", "4"]


def chirp(seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * (300 + 900 * t) * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def test_the_layout_is_the_files():
    net = load_yamnet()
    assert [(c.in_channels, c.out_channels, c.groups, c.stride[0], pad == (0, 1, 0, 1))
            for c, pad in zip(net.convs, net.pads)] == layout()


def test_the_front_end_gives_yamnets_patches_and_the_frozen_encoder_its_mean_embedding():
    wave = chirp(3.0)
    config = AudioConfig(frontend="yamnet_mel")
    frames = spectrogram(wave, config)  # (1, 64, T)
    assert frames.shape == (1, 64, config.num_frames)
    ours = to_patches(frames[None])[0]  # (P, 1, 96, 64)
    expected = patches(wave)
    assert ours.shape == expected.shape and len(ours) == 5  # 3 s: five 0.96-s patches every 0.48 s
    assert torch.allclose(ours, expected, atol=1e-5)
    encoder = YamNetAudioEncoder()
    encoder.load_pretrained()
    encoder.freeze("all")
    with torch.no_grad():
        got = encoder.embed(frames[None])  # (1, 1024)
        reference = load_yamnet().embed(expected).mean(dim=0, keepdim=True)
        fresh = YamNetAudioEncoder().embed(frames[None])
    assert got.shape == (1, 1024)
    assert torch.allclose(got, reference, atol=1e-5)
    assert reference.abs().max() > 0.1  # a real embedding
    assert (fresh - reference).abs().max() > 0.1  # and the weights matter


def test_the_backbone_front_end_and_sample_rate_must_agree():
    assert SSLModel(ModelConfig(audio_backbone="yamnet")).audio_config.frontend == "yamnet_mel"
    with pytest.raises(ValueError, match="takes the yamnet_mel front end"):
        SSLModel(ModelConfig(audio_backbone="yamnet"), AudioConfig())
    with pytest.raises(FieldError, match="hears 16000 Hz"):
        AudioConfig(frontend="yamnet_mel", sample_rate=22050)
    with pytest.raises(FieldError, match="needs 96 or more"):
        AudioConfig(frontend="yamnet_mel", seconds=0.5)


def test_freeze_levels_leave_the_right_convolutions_trainable():
    encoder = YamNetAudioEncoder()
    trainable = lambda: [c.weight.requires_grad for c in encoder.trunk.convs]  # noqa: E731
    encoder.freeze("last")
    assert trainable() == [False] * 25 + [True] * 2
    encoder.freeze("all")
    assert not any(trainable()) and encoder.proj.weight.requires_grad
    encoder.freeze("none")
    assert all(trainable())
    with pytest.raises(ValueError, match="freeze level"):
        encoder.freeze("early")


@pytest.fixture(scope="module")
def trained(train_clips, tmp_path_factory):
    """One real epoch (two steps) with YAMNet's last block and the projection training."""
    run = tmp_path_factory.mktemp("run")
    trainer = Trainer(parse_args(["--data", str(train_clips), "--out", str(run), "--overwrite", "--epochs", "1",
                                  "--audio-backbone", "yamnet", "--freeze-audio", "last", "--no-neighbours", *FAST]))
    proj = trainer.model.audnet.proj.weight.detach().clone()
    trainer.fit()
    return trainer, run, proj


def test_training_the_last_block_changes_only_it_and_the_projection(trained):
    trainer, run, proj = trained
    model = load_model(run / "last.safetensors")
    assert (model.config.audio_backbone, model.audio_config.frontend) == ("yamnet", "yamnet_mel")
    installed = load_yamnet().convs
    for i, (ours, theirs) in enumerate(zip(model.audnet.trunk.convs, installed)):
        same = torch.equal(ours.weight, theirs.weight)
        assert same == (i < 25), f"convolution {i}"  # a new model starts from the installed YAMNet
    assert not torch.equal(model.audnet.proj.weight, proj)


def test_a_yamnet_checkpoint_round_trips_runs_fast_and_localizes(trained, tmp_path):
    trainer, run, _ = trained
    model = load_model(run / "last.safetensors").eval()
    save_model(tmp_path / "again.safetensors", model)
    again = load_model(tmp_path / "again.safetensors").eval()
    spec = spectrogram(chirp(1.5), model.audio_config)[None]
    with torch.no_grad():
        expected = model.encode_audio(spec)
        assert torch.equal(again.encode_audio(spec), expected)
        assert torch.allclose(trainer.model.eval().encode_audio(spec), expected, atol=1e-6)
    fast = InferenceModel(again, "cpu")
    fast.wait_prepared()
    assert torch.allclose(fast.encode_audio(spec), expected, atol=1e-4)
    localizer = Localizer(again, "cpu")
    frame = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    with torch.inference_mode():
        sound = localizer.hear(chirp(1.5), 0.0)
        result = localizer.localize(frame)
    assert sound.spectrogram.shape == (64, model.audio_config.num_frames)
    assert result.shown.shape == (120, 160) and np.isfinite(result.shown).all()
    assert torch.allclose(result.audio, expected[0], atol=1e-4)


def test_the_gallery_of_a_yamnet_model_holds_the_sound_vectors_of_the_per_frame_path(trained, train_clips):
    _, run, _ = trained
    model = load_model(run / "last.safetensors").eval()
    gallery = build_gallery(train_clips, model, "cpu")
    assert len(gallery) == 8 and gallery.audio_emb.shape == (8, 512)
    first = gallery.path(0)
    with torch.inference_mode():
        row = encode_clip(first, model, "cpu")
    assert torch.allclose(gallery.audio_emb[0], row["audio_emb"], atol=1e-5)


def test_a_yamnet_model_refuses_an_aisfx_init(train_clips, tmp_path, capsys):
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "a"), "--audio-backbone", "yamnet",
                 "--audio-init", "aisfx", *FAST]) == 2
    assert "--audio-init aisfx: the audio backbone is yamnet" in capsys.readouterr().err


def test_init_keeps_the_checkpoints_encoder_and_ssl_eval_scores_it(trained, train_clips, tmp_path):
    """--init fine-tunes the trained model (its YAMNet is not reloaded); ssl-eval reads its front end."""
    _, run, _ = trained
    start = load_model(run / "last.safetensors")
    tuned = tmp_path / "tuned"
    assert main(["--data", str(train_clips), "--out", str(tuned), "--init", str(run / "last.safetensors"),
                 "--epochs", "1", "--freeze-audio", "all", "--no-neighbours", *FAST]) == 0
    model = load_model(tuned / "last.safetensors")
    last = model.audnet.trunk.convs[-1].weight
    assert torch.equal(last, start.audnet.trunk.convs[-1].weight)  # frozen, and the trained one, not YAMNet's
    assert not torch.equal(last, load_yamnet().convs[-1].weight)
    report = tmp_path / "report"
    assert evaluate(["--data", str(train_clips), "--checkpoint", str(tuned / "last.safetensors"), "--out", str(report),
                     "--device", "cpu"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert 0 <= metrics["ciou"] <= 100 and metrics["n_boxes"] > 0
