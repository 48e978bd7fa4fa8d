"""Weight averaging (``model.checkpoints.average``, ``python -m model.evaluation.calibrate average``): the mean of real
checkpoints, what it keeps, and what it refuses."""
import json

import pytest
import torch
from safetensors.torch import save_file

from model import AudioConfig, CheckpointError, ModelConfig, SSLModel, load_model, save_model
from model.checkpoints.average import average_checkpoints, average_tensors
from model.preprocess.audio import spectrogram
from model.evaluation.calibrate import main as calibrate
from model.checkpoints.store import read_safetensors
from model.networks.object_guidance import ObjectGuidance
from model.networks.presence import PresenceConfig

pytestmark = pytest.mark.usefixtures("one_thread")
CONFIG = ModelConfig(image_size=96, visual_backbone="efficientnet_lite0")


def saved(path, seed: int, config: ModelConfig = CONFIG, audio: AudioConfig = AudioConfig(seconds=0.5)):
    torch.manual_seed(seed)
    model = SSLModel(config, audio)
    model.presence = PresenceConfig(threshold=0.1 * (seed + 1))
    model.guidance = ObjectGuidance(0.1 * seed)
    save_model(path, model)
    return path


def test_the_average_is_the_weighted_mean_of_every_weight_and_loads(tmp_path):
    a, b = saved(tmp_path / "a.safetensors", 0), saved(tmp_path / "b.safetensors", 1)
    out = tmp_path / "soup.safetensors"
    average_checkpoints([str(a), str(b)], str(out), [0.25, 0.75])
    ta, tb, tout = (read_safetensors(p)[0] for p in (a, b, out))
    differing = 0
    for key, value in tout.items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.25 * ta[key] + 0.75 * tb[key], atol=1e-6), key
            differing += not torch.equal(ta[key], tb[key])
        else:
            assert torch.equal(value, ta[key]), key
    assert differing > 10  # the two seeds' trained layers differ: the mean is a model of its own
    model = load_model(out)
    waveform = torch.sin(torch.arange(model.audio_config.num_samples) * 0.05)
    with torch.no_grad():
        vector = model.encode_audio(spectrogram(waveform, model.audio_config)[None])
        ends = [load_model(p).encode_audio(spectrogram(waveform, model.audio_config)[None]) for p in (a, b)]
    assert torch.isclose(vector.norm(), torch.tensor(1.0)) and not any(torch.allclose(vector, e) for e in ends)


def test_weight_one_gives_the_checkpoint_back_and_the_first_ones_calibration_is_kept(tmp_path):
    a, b = saved(tmp_path / "a.safetensors", 0), saved(tmp_path / "b.safetensors", 2)
    out = tmp_path / "soup.safetensors"
    average_checkpoints([str(a), str(b)], str(out), [0.0, 1.0])
    tensors, metadata = read_safetensors(out)
    assert all(torch.equal(v, read_safetensors(b)[0][k]) for k, v in tensors.items() if v.is_floating_point())
    soup = load_model(out)
    assert soup.presence.threshold == pytest.approx(0.1) and soup.guidance.weight == 0.0  # a's: calibrate afresh
    assert json.loads(metadata["averaged_from"]) == {"checkpoints": [str(a), str(b)], "weights": [0.0, 1.0]}


def test_equal_weights_by_default_on_the_command_line(tmp_path, capsys):
    paths = [str(saved(tmp_path / f"{i}.safetensors", i)) for i in range(3)]
    out = tmp_path / "soup.safetensors"
    assert calibrate(["average", *paths, "--out", str(out)]) == 0
    states = [read_safetensors(p)[0] for p in paths]
    for key, value in read_safetensors(out)[0].items():
        if value.is_floating_point():
            assert torch.allclose(value, sum(s[key] for s in states) / 3, atol=1e-6), key
    assert json.loads(capsys.readouterr().out)["weights"] == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize("other, says", [
    (lambda p: saved(p, 1, ModelConfig(image_size=96, visual_backbone="efficientnet_lite0", embed_dim=256)),
     "model_config"),
    (lambda p: saved(p, 1, audio=AudioConfig(seconds=1.0)), "audio_config"),
])
def test_checkpoints_of_another_architecture_or_front_end_are_refused(tmp_path, capsys, other, says):
    a, b = saved(tmp_path / "a.safetensors", 0), other(tmp_path / "b.safetensors")
    out = tmp_path / "soup.safetensors"
    assert calibrate(["average", str(a), str(b), "--out", str(out)]) == 2
    assert says in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("weights, says", [([0.5], "1 weights for 2"), ([0.7, 0.7], "sum to 1"),
                                           ([1.5, -0.5], ">= 0")])
def test_bad_weights_are_refused(tmp_path, weights, says):
    a, b = saved(tmp_path / "a.safetensors", 0), saved(tmp_path / "b.safetensors", 1)
    with pytest.raises(ValueError, match=says):
        average_checkpoints([str(a), str(b)], str(tmp_path / "soup.safetensors"), weights)


def test_one_checkpoint_or_a_missing_file_is_a_clear_error(tmp_path, capsys):
    a = saved(tmp_path / "a.safetensors", 0)
    with pytest.raises(ValueError, match="two checkpoints"):
        average_checkpoints([str(a)], str(tmp_path / "soup.safetensors"))
    assert calibrate(["average", str(a), str(tmp_path / "missing.safetensors"),
                      "--out", str(tmp_path / "s.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err


def test_tensors_that_do_not_line_up_are_refused():
    a = {"w": torch.zeros(2, 3), "n": torch.tensor(1)}
    with pytest.raises(CheckpointError, match="shape"):
        average_tensors([a, {"w": torch.zeros(3, 2), "n": torch.tensor(1)}], [0.5, 0.5])
    with pytest.raises(CheckpointError, match="other tensors"):
        average_tensors([a, {"w": torch.zeros(2, 3)}], [0.5, 0.5])


def test_checkpoints_with_nan_weights_give_no_average(tmp_path, capsys):
    a, b = saved(tmp_path / "a.safetensors", 0), saved(tmp_path / "b.safetensors", 1)
    tensors, metadata = read_safetensors(b)
    tensors["audnet.conv1.weight"][0] = float("nan")
    save_file(tensors, str(b), metadata=metadata)  # written by another tool: ours refuses NaN
    out = tmp_path / "soup.safetensors"
    assert calibrate(["average", str(a), str(b), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite weights in audnet.conv1.weight" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("output", ["folder", "file/soup.safetensors"])
def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys, output):
    a, b = saved(tmp_path / "a.safetensors", 0), saved(tmp_path / "b.safetensors", 1)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file where a folder is needed")
    assert calibrate(["average", str(a), str(b), "--out", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"average: error: cannot write {tmp_path / output}") and len(err.splitlines()) == 1
    assert not list((tmp_path / "folder").iterdir())
