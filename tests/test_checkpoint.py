import pytest
import torch
from safetensors.torch import save_file

from model import CheckpointError, ModelConfig, SSLModel, load_model, save_model
from model.audio import AudioConfig


def test_round_trip_is_bit_exact(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    tiny_model.audio_config = AudioConfig(noverlap=274)
    save_model(path, tiny_model)
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.audio_config.noverlap == 274 and loaded.config == tiny_model.config
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_variant_config_travels_with_the_weights(tmp_path):
    model = SSLModel(ModelConfig(layer4_stride=2, projection=True))
    save_model(tmp_path / "v.safetensors", model, dtype=torch.float16)
    loaded = load_model(tmp_path / "v.safetensors")
    assert loaded.config.projection and loaded.config.layer4_stride == 2
    assert loaded.imgnet.conv1.weight.dtype == torch.float32


def test_corrupt_file_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all, truncated")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(bad)


def test_missing_and_foreign_files_give_clear_errors(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="ssl-import"):
        load_model(foreign)
    save_model(tmp_path / "ok.safetensors", tiny_model)
    from model.checkpoint import read_safetensors, write_safetensors_atomic
    tensors, meta = read_safetensors(tmp_path / "ok.safetensors")
    tensors["imgnet.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    write_safetensors_atomic(tmp_path / "shape.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="shape"):
        load_model(tmp_path / "shape.safetensors")
