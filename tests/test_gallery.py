"""The gallery index: build, reload without recomputing, incremental updates, and the three queries."""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from model import ModelConfig, SSLModel
from model.preprocess.audio import spectrogram
from model.checkpoints.store import read_safetensors
from model.data.video_io import read_clip
from model.gallery.index import BuildCancelled, Entry, Gallery, build_gallery, index_path, load_or_build_gallery
from model.synth.generator import generate
from model.preprocess.image import preprocess_image


class CountingModel:
    """An SSLModel that counts the clips it encodes (proof that a reload reads nothing)."""

    def __init__(self, model):
        self.model = model
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode_visual(self, images):
        self.encoded += len(images)
        return self.model.encode_visual(images)

    def encode_audio(self, spectrograms):
        return self.model.encode_audio(spectrograms)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SSLModel(ModelConfig()).eval()


@pytest.fixture(scope="module")
def built(tmp_path_factory, model):
    """Six synthetic clips and their saved index, built once for the module."""
    root = tmp_path_factory.mktemp("gallery")
    annotations = generate(root, clips=6, seed=3, size=(160, 120))
    load_or_build_gallery(root, model)
    return root, annotations


@pytest.fixture
def folder(built, tmp_path):
    """A private copy of the built folder (mtimes kept, so its index is up to date)."""
    return shutil.copytree(built[0], tmp_path / "clips")


def test_build_saves_index_with_labels_and_unit_vectors(folder, built):
    gallery = Gallery.load(index_path(folder))
    classes = {a["file"]: a["class"] for a in built[1]}
    assert len(gallery) == 6 and not gallery.skipped
    assert [e.file for e in gallery.entries] == [f"videos/{f}.mp4" for f in sorted(classes)]
    assert [e.label for e in gallery.entries] == [classes[f] for f in sorted(classes)]
    assert gallery.thumbnails.shape == (6, 96, 128, 3) and gallery.thumbnails.dtype == torch.uint8
    for vectors in (gallery.image_emb, gallery.audio_emb):
        assert torch.allclose(vectors.norm(dim=1), torch.ones(6), atol=1e-5)


def test_build_matches_the_model(folder, model):
    gallery = Gallery.load(index_path(folder))
    clip = read_clip(gallery.path(2), sample_rate=16000)
    with torch.no_grad():
        image = model.encode_image(preprocess_image(clip.frame)[None])[0]
        audio = model.encode_audio(spectrogram(clip.waveform)[None])[0]
    assert torch.allclose(gallery.image_emb[2], image, atol=1e-5)
    assert torch.allclose(gallery.audio_emb[2], audio, atol=1e-5)


def test_reload_is_identical_and_encodes_nothing(folder, model):
    saved = Gallery.load(index_path(folder))
    counting = CountingModel(model)
    progress = []
    gallery = load_or_build_gallery(folder, counting, progress=lambda done, total: progress.append((done, total)))
    assert counting.encoded == 0 and progress == [(0, 0)]
    for name in ("image_emb", "audio_emb", "thumbnails"):
        assert torch.equal(getattr(gallery, name), getattr(saved, name))
    assert gallery.entries == saved.entries


def test_touched_added_and_removed_files_update_only_themselves(folder, model):
    videos = sorted((folder / "videos").iterdir())
    counting = CountingModel(model)
    before = Gallery.load(index_path(folder))

    stat = videos[1].stat()
    os.utime(videos[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    gallery = load_or_build_gallery(folder, counting)
    assert counting.encoded == 1 and len(gallery) == 6
    assert torch.allclose(gallery.audio_emb[1], before.audio_emb[1], atol=1e-6)  # same content, re-read

    shutil.copy(videos[0], folder / "videos" / "extra.mp4")
    gallery = load_or_build_gallery(folder, counting)
    assert counting.encoded == 2 and len(gallery) == 7
    extra = [e.file for e in gallery.entries].index("videos/extra.mp4")
    assert gallery.entries[extra].label is None  # not in annotations.json
    assert torch.allclose(gallery.image_emb[extra], before.image_emb[0], atol=1e-6)

    videos[3].unlink()
    gallery = load_or_build_gallery(folder, counting)
    assert counting.encoded == 2 and len(gallery) == 6
    assert videos[3].name not in {e.file.split("/")[-1] for e in gallery.entries}
    assert Gallery.load(index_path(folder)).entries == gallery.entries  # the index was saved


def test_corrupt_file_is_skipped_with_reason_and_not_retried(folder, model):
    (folder / "videos" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    gallery = load_or_build_gallery(folder, model)
    assert len(gallery) == 6
    assert [s.file for s in gallery.skipped] == ["videos/broken.mp4"]
    assert "corrupt" in gallery.skipped[0].reason
    counting = CountingModel(model)
    progress = []
    again = load_or_build_gallery(folder, counting, progress=lambda d, t: progress.append(t))
    assert progress == [0] and again.skipped == gallery.skipped


def keep_videos(folder, n):
    """Delete all but the first n videos (fewer clips to encode in the tests that rebuild all)."""
    for video in sorted((folder / "videos").iterdir())[n:]:
        video.unlink()


def test_another_model_recomputes_everything(folder):
    keep_videos(folder, 2)
    torch.manual_seed(1)
    counting = CountingModel(SSLModel(ModelConfig()).eval())
    assert len(load_or_build_gallery(folder, counting)) == 2 and counting.encoded == 2


def test_cancel_keeps_what_was_indexed(folder, model):
    keep_videos(folder, 3)
    index_path(folder).unlink()
    counting = CountingModel(model)
    with pytest.raises(BuildCancelled) as cancelled:
        load_or_build_gallery(folder, counting, should_stop=lambda: counting.encoded >= 1)
    assert len(cancelled.value.partial) == 1 and counting.encoded == 1
    assert len(Gallery.load(index_path(folder))) == 1  # saved
    load_or_build_gallery(folder, counting)
    assert counting.encoded == 3  # the other two, once each


def test_unusable_index_is_rebuilt(folder, model):
    keep_videos(folder, 2)
    index_path(folder).write_bytes(b"garbage")
    counting = CountingModel(model)
    assert len(load_or_build_gallery(folder, counting)) == 2 and counting.encoded == 2
    assert len(Gallery.load(index_path(folder))) == 2


def test_incremental_build_without_saving(folder, model):
    previous = Gallery.load(index_path(folder))
    counting = CountingModel(model)
    gallery = build_gallery(folder, counting, previous=previous)
    assert counting.encoded == 0 and torch.equal(gallery.audio_emb, previous.audio_emb)


# --- queries on a gallery with known answers -----------------------------------------------------

def known_gallery() -> Gallery:
    """Four clips in D=4: clip i's image is axis i, its sound is axis (i + 1) % 4."""
    eye = torch.eye(4)
    entries = [Entry(f"clip{i}.mp4", 1, 1, label) for i, label in enumerate(["dog", "bell", None, "car"])]
    thumbnails = torch.zeros(4, 96, 128, 3, dtype=torch.uint8)
    return Gallery(Path("/g"), entries, eye, eye[[1, 2, 3, 0]], thumbnails)


def test_images_for_sound_ranks_by_similarity():
    gallery = known_gallery()
    query = F.normalize(torch.tensor([0.1, 0.2, 0.9, 0.3]), dim=0)
    matches = gallery.images_for_sound(query, k=3)
    assert [m.index for m in matches] == [2, 3, 1]
    sims = [m.similarity for m in matches]
    assert sims == sorted(sims, reverse=True) and sims[0] == pytest.approx(float(query[2]))
    assert matches[0].file == "/g/clip2.mp4" and matches[0].label is None
    assert matches[1].label == "car" and matches[0].thumbnail.shape == (96, 128, 3)
    assert len(gallery.images_for_sound(query, k=10)) == 4


def test_sounds_for_image_ranks_by_similarity():
    gallery = known_gallery()
    query = F.normalize(torch.tensor([[0.0, 0.8, 0.1, 0.5]]), dim=1)  # (1, D) is accepted too
    assert [m.index for m in gallery.sounds_for_image(query, k=2)] == [0, 2]  # sound axes 1, then 3


def test_saved_metadata_is_json(folder):
    _, meta = read_safetensors(index_path(folder))
    entries = json.loads(meta["entries"])
    assert meta["format"] == "ssl-gallery/2" and len(meta["model"]) == 32
    assert set(entries[0]) == {"file", "size", "mtime_ns", "label"}
