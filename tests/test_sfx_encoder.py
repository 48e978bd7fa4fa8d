"""The pretrained sound-effects audio encoder (aisfx): the published net, its mel front end, training with it
frozen, and checkpoints that carry it."""
import importlib.util

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from model import ModelConfig, SSLModel, load_model, save_model
from model.preprocess.audio import AudioConfig, spectrogram
from model.checkpoints.store import CheckpointError
from model.inference.fast_path import InferenceModel
from model.networks.sfx_encoder import SfxAudioEncoder, SfxNet, pretrained_state, weights_path
from model.train.augment import AudioAugment
from model.train.cli import main, parse_args
from model.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

SFX = ["--audio-backbone", "aisfx", "--audio-init", "aisfx"]
FAST = ["--image-size", "64", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0", "--batch-size", "4"]


def package_embedding_net():
    """The aisfx package's own EmbeddingNet, loaded from its file (the package's ``__init__`` needs librosa)."""
    path = weights_path().parent / "cnn2d.py"
    spec = importlib.util.spec_from_file_location("aisfx_cnn2d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EmbeddingNet("max", 3, 1, 64)  # the arguments of the package's load_bestModel


def test_the_loaded_net_is_the_published_one():
    """Our SfxNet with the installed weights gives the package's embeddings within 1e-4 on fixed inputs."""
    state = pretrained_state()
    reference = package_embedding_net()
    reference.load_state_dict(state)
    ours = SfxAudioEncoder()
    ours.load_pretrained()
    torch.manual_seed(0)
    mel = torch.rand(3, 1, 96, 100)  # scaled log mel bands lie in [0, 1]
    with torch.no_grad():
        expected = reference.eval()(mel[:, 0].transpose(1, 2))  # the package takes (B, time, frequency)
        got = ours.trunk.eval()(mel)
    assert got.shape == (3, 512)
    assert (got - expected).abs().max() < 1e-4
    assert expected.abs().max() > 0.1  # a real embedding, not zeros
    fresh = SfxNet().eval()  # and the weights matter: a random net is far off
    with torch.no_grad():
        assert (fresh(mel) - expected).abs().max() > 0.1


def test_the_16khz_mel_bands_match_the_44khz_front_end():
    """The 16 kHz front end holds what the published 44.1 kHz mel spectrogram (2048 / 1024, 96 HTK bands,
    unit-sum, log10(1 + 1e4 x) / 9.4578) of the upsampled signal holds, band by band below 7 kHz (above,
    the reference's resampler rolls off)."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t) + 0.05 * rng.standard_normal(16000)
    wave = torch.from_numpy(wave)
    ours = spectrogram(wave, AudioConfig(seconds=1.0, frontend="sfx_mel"))[0]  # (96, T)

    up = AF.resample(wave, 16000, 44100)
    stft = torch.stft(up, 2048, 1024, window=torch.hann_window(2048, dtype=torch.float64), center=True,
                      pad_mode="constant", return_complex=True).abs() ** 2  # (1025, T)
    banks = AF.melscale_fbanks(1025, 0.0, 22050.0, 96, 44100, norm=None, mel_scale="htk").to(torch.float64)
    banks = banks / banks.sum(dim=0, keepdim=True).clamp_min(1e-12)  # (1025, 96), unit sum per band
    reference = (torch.log10(1 + 10000 * (banks.T @ stft)) / 9.457798957824707).float()
    assert ours.shape[1] == reference.shape[1] == AudioConfig(seconds=1.0, frontend="sfx_mel").num_frames
    hz = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 22050 / 700), 98)[1:-1] / 2595) - 1)
    low = torch.from_numpy(hz < 7000)
    frames = slice(2, -2)  # the edges hold the resampler's own ramp-up
    diff = (ours[low][:, frames] - reference[low][:, frames]).abs()
    assert diff.max() < 0.025, diff.max()
    assert diff.mean() < 0.002
    assert reference[low].mean() > 0.2  # the signal is there
    assert ours[torch.from_numpy(hz > 8700)].abs().max() == 0  # bands wholly above 8 kHz: empty at 16 kHz


def test_the_audio_backbone_and_front_end_must_agree():
    assert SSLModel(ModelConfig(audio_backbone="aisfx")).audio_config.frontend == "sfx_mel"
    with pytest.raises(ValueError, match="takes the sfx_mel front end"):
        SSLModel(ModelConfig(audio_backbone="aisfx"), AudioConfig())
    with pytest.raises(ValueError, match="audio_backbone must be one of"):
        ModelConfig(audio_backbone="vggish")
    with pytest.raises(ValueError, match="frontend must be one of"):
        AudioConfig(frontend="mfcc")


def test_a_checkpoint_with_the_sfx_encoder_round_trips_and_runs_on_the_fast_path(tmp_path):
    model = SSLModel(ModelConfig(visual_backbone="efficientnet_lite0", audio_backbone="aisfx", image_size=96),
                     AudioConfig(seconds=1.0, frontend="sfx_mel")).eval()
    model.audnet.load_pretrained()
    save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors").eval()
    assert (loaded.config.audio_backbone, loaded.audio_config.frontend) == ("aisfx", "sfx_mel")
    spec = spectrogram(0.1 * torch.randn(16000), loaded.audio_config)[None]
    with torch.no_grad():
        expected = model.encode_audio(spec)
        assert torch.equal(loaded.encode_audio(spec), expected)
    fast = InferenceModel(loaded, "cpu")
    fast.wait_prepared()
    assert torch.allclose(fast.encode_audio(spec), expected, atol=1e-4)


def test_audio_views_of_the_mel_front_end_mask_the_same_share():
    """The augmented views' masks (in the published spectrogram's 257 bins and 9.9-ms frames) keep their share of
    the 96 mel bands and 23-ms frames, so a view does not lose three times as much of the sound."""
    linear = AudioAugment(audio_config=AudioConfig(seconds=1.0))
    mel = AudioAugment(audio_config=AudioConfig(seconds=1.0, frontend="sfx_mel"))
    assert (linear.freq_mask_bins, linear.time_mask_frames) == (30, 30)
    assert (mel.freq_mask_bins, mel.time_mask_frames) == (11, 13)  # 30 * 96 / 257, 30 * 44 / 98
    view = mel(0.1 * torch.randn(16000))
    assert view.shape == (1, 96, AudioConfig(seconds=1.0, frontend="sfx_mel").num_frames)


def test_a_checkpoint_naming_an_unknown_front_end_is_refused(tmp_path):
    model = SSLModel(ModelConfig(image_size=64), AudioConfig(seconds=0.5))
    save_model(tmp_path / "m.safetensors", model)
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(tmp_path / "m.safetensors", "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    metadata["audio_config"] = metadata["audio_config"].replace('"linear"', '"mfcc"')
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="frontend must be one of"):
        load_model(tmp_path / "bad.safetensors")


def test_frozen_sfx_training_changes_only_the_projection(train_clips, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(parse_args(["--data", str(train_clips), "--out", str(run), "--epochs", "1", *SFX,
                                  "--freeze-audio", "all", "--no-neighbours", *FAST]))
    proj = trainer.model.audnet.proj.weight.detach().clone()
    visual = trainer.model.imgnet.layer4[1].conv2.weight.detach().clone()
    trainer.fit()
    model = load_model(run / "last.safetensors")
    published = pretrained_state()
    trunk = {k.removeprefix("audnet.trunk."): v for k, v in model.state_dict().items() if k.startswith("audnet.trunk.")}
    assert trunk.keys() == published.keys()
    assert [k for k, v in trunk.items() if not torch.equal(v, published[k])] == []  # batch-norm statistics too
    assert not torch.equal(model.audnet.proj.weight, proj)
    assert not torch.equal(model.imgnet.layer4[1].conv2.weight, visual)


def test_sfx_flags_and_their_clear_errors(train_clips, tmp_path, capsys):
    c = parse_args(["--data", "d", "--out", "o", *SFX, "--freeze-audio", "all"])
    assert (c.audio_backbone, c.audio_init, c.freeze_audio) == ("aisfx", "aisfx", "all")
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "a"), "--audio-init", "aisfx", *FAST]) == 2
    assert "--audio-init needs the pretrained audio backbone" in capsys.readouterr().err
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "b"), "--freeze-audio", "all", *FAST]) == 2
    assert "--freeze-audio needs the pretrained audio backbone" in capsys.readouterr().err
    assert main(["--data", str(train_clips), "--out", str(tmp_path / "c"), "--audio-backbone", "aisfx",
                 "--audio-init", str(tmp_path / "nowhere.pth"), *FAST]) == 2
    assert "nowhere.pth" in capsys.readouterr().err
