import pytest
import torch
from safetensors.torch import save_file

from model import CheckpointError, ModelConfig, SSLModel, load_model, save_model
from model.preprocess.audio import AudioConfig


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
    from model.checkpoints.store import read_safetensors, write_safetensors_atomic
    tensors, meta = read_safetensors(tmp_path / "ok.safetensors")
    tensors["imgnet.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    write_safetensors_atomic(tmp_path / "shape.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="shape"):
        load_model(tmp_path / "shape.safetensors")


def resaved(tmp_path, tiny_model, name, change_tensors=None, **metadata):
    """``tiny_model`` saved, then written again with some tensors or metadata changed (by safetensors itself:
    our writers refuse NaN weights)."""
    from model.checkpoints.store import read_safetensors
    save_model(tmp_path / "ok.safetensors", tiny_model)
    tensors, meta = read_safetensors(tmp_path / "ok.safetensors")
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, str(tmp_path / name), metadata={**meta, **metadata})
    return tmp_path / name


@pytest.mark.parametrize("key, text, message", [
    ("model_config", "[1, 2]", "model_config must be a JSON object, not list"),
    ("model_config", "{not json", "model_config is not JSON"),
    ("model_config", '{"layer4_stride": 3}', "model_config.layer4_stride must be 1 or 2"),
    ("model_config", '{"embed_dim": "512"}', "model_config.embed_dim must be int"),
    ("model_config", '{"projection": 1}', "model_config.projection must be bool"),
    ("audio_config", '{"sample_rate": 0}', "audio_config.sample_rate must be a finite number > 0"),
    ("audio_config", '{"seconds": NaN}', "audio_config.seconds must be a finite number > 0"),
    ("audio_config", '{"noverlap": 600}', "audio_config.noverlap must be below nperseg"),
    ("audio_config", '"16000"', "audio_config must be a JSON object, not str"),
    ("audio_config", '{"sample_rate": 99999999999}', "audio_config.sample_rate must be within"),
    ("audio_config", '{"seconds": 0.02}', "audio_config.seconds 0.02 at 16000 Hz gives 0 spectrogram frames"),
    ("model_config", '{"image_size": 8}', "model_config.image_size must be a multiple of 16 within"),
    ("model_config", '{"image_size": 65536}', "model_config.image_size must be a multiple of 16 within"),
    ("model_config", '{"embed_dim": 1000000000}', "model_config.embed_dim must be within"),
    ("presence", '{"threshold": "0.5"}', "presence.threshold must be float or None, not '0.5'"),
    ("presence", '{"threshold": [0.5]}', "presence.threshold must be float or None, not"),
    ("object_guidance", '{"weight": "0.3"}', "object_guidance.weight must be float, not '0.3'"),
])
def test_every_config_field_is_checked_and_the_file_named(tmp_path, tiny_model, key, text, message):
    path = resaved(tmp_path, tiny_model, "bad.safetensors", **{key: text})
    with pytest.raises(CheckpointError, match=message) as error:
        load_model(path)
    assert str(path) in str(error.value)


def test_nan_weights_are_refused_with_the_tensor_named(tmp_path, tiny_model):
    def poison(tensors):
        tensors["audnet.conv1.weight"][0, 0, 0, 0] = float("nan")
    path = resaved(tmp_path, tiny_model, "nan.safetensors", poison)
    with pytest.raises(CheckpointError, match="NaN or infinite weights in .*audnet.conv1.weight") as error:
        load_model(path)
    assert str(path) in str(error.value)
