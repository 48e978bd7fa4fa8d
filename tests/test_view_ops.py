"""The augmented views in plain torch equal torchvision's and torchaudio's transforms: the same random draws
(same seed, same output) and the same arithmetic. Skipped where those libraries are not installed (the app's
CPU-only runtime); the training code imports neither."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from model.preprocess.audio import AudioConfig, spectrogram
from model.train import view_ops
from model.train.augment import VIEW_STRENGTHS, AudioAugment, ImageAugment
from model.preprocess.image import frame_to_tensor, normalize_image


@pytest.fixture
def image():
    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16), size=(90, 120), mode="bilinear")[0]
    return torch.cat((smooth[:, :45], torch.rand(3, 45, 120)), dim=1)  # smooth colours and noise; grey-free


def test_colour_operations_equal_torchvisions(image):
    F = pytest.importorskip("torchvision.transforms.v2.functional")
    grey = image.mean(0, keepdim=True).expand(3, -1, -1)  # pixels whose hue is undefined
    for picture in (image, torch.cat((image, grey), dim=1)):
        assert torch.allclose(view_ops.grayscale(picture), F.rgb_to_grayscale(picture), atol=1e-6)
        for factor in (0.0, 0.6, 1.4):
            assert torch.allclose(view_ops.adjust_brightness(picture, factor), F.adjust_brightness(picture, factor),
                                  atol=1e-6)
            assert torch.allclose(view_ops.adjust_contrast(picture, factor), F.adjust_contrast(picture, factor),
                                  atol=1e-6)
            assert torch.allclose(view_ops.adjust_saturation(picture, factor), F.adjust_saturation(picture, factor),
                                  atol=1e-6)
        for shift in (-0.5, -0.1, 0.0, 0.07, 0.5):
            assert torch.allclose(view_ops.adjust_hue(picture, shift), F.adjust_hue(picture, shift), atol=1e-5)
    assert not torch.allclose(view_ops.adjust_hue(image, 0.1), image, atol=0.05)  # the hue did turn


def test_crop_boxes_and_resize_equal_torchvisions(image):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    for scale, size in (((0.08, 1.0), 64), ((0.5, 1.0), 224), ((0.8, 1.0), 32)):
        for seed in range(20):
            torch.manual_seed(seed)
            box = view_ops.random_resized_crop_box(90, 120, scale=scale)
            torch.manual_seed(seed)
            reference = v2.RandomResizedCrop(size, scale=scale, antialias=True)
            params = reference.make_params([image])
            assert box == (params["top"], params["left"], params["height"], params["width"])
            ours = view_ops.resized_crop(image, *box, size)
            theirs = v2.functional.resized_crop(image, *box, size=[size, size], antialias=True)
            assert ours.shape == (3, size, size) and torch.allclose(ours, theirs, atol=1e-5)
    # no crop of twice the area fits: the central crop at the ratio's bound (4:3 of the 10 rows)
    assert view_ops.random_resized_crop_box(10, 200, scale=(2.0, 2.0)) == (0, 93, 10, 13)


@pytest.mark.parametrize("views", sorted(VIEW_STRENGTHS))
def test_image_views_equal_torchvisions_compose(views):
    """Same seed, same view: the published v2 pipeline this class replaces, draw for draw."""
    v2 = pytest.importorskip("torchvision.transforms.v2")
    c = VIEW_STRENGTHS[views]
    j = c.color_jitter
    reference = v2.Compose([
        v2.RandomResizedCrop(96, scale=(c.crop_scale_min, 1.0), antialias=True),
        v2.RandomHorizontalFlip(c.flip_p),
        v2.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j / 4, 0.5)),
        v2.RandomGrayscale(c.grayscale_p),
    ])
    frame = (np.random.default_rng(1).random((72, 100, 3)) * 255).astype(np.uint8)
    ours, distinct = ImageAugment(c, size=96), set()
    for seed in range(12):
        torch.manual_seed(seed)
        view = ours(frame)
        torch.manual_seed(seed)
        expected = normalize_image(reference(frame_to_tensor(frame)))
        assert torch.allclose(view, expected, atol=1e-4)
        distinct.add(round(float(view.sum()), 2))
    assert len(distinct) == 12  # the views differ from seed to seed


def test_audio_views_equal_torchaudios_masks():
    AT = pytest.importorskip("torchaudio.transforms")
    config = AudioConfig(seconds=1.0)
    augment = AudioAugment(audio_config=config)
    spec = spectrogram(torch.randn(16000), config) + 1.0  # no zeros of its own
    for seed in range(20):
        torch.manual_seed(seed)
        ours = view_ops.mask_along(view_ops.mask_along(spec, augment.time_mask_frames, dim=-1),
                                   augment.freq_mask_bins, dim=-2)
        torch.manual_seed(seed)
        theirs = AT.FrequencyMasking(augment.freq_mask_bins)(AT.TimeMasking(augment.time_mask_frames)(spec))
        assert torch.equal(ours, theirs)
    masked_columns = (ours == 0).all(dim=-2).sum()
    assert 0 <= masked_columns < augment.time_mask_frames


def test_training_imports_neither_torchvision_nor_torchaudio():
    """What lets ssl-train (and the app's fine-tuning) run on the CPU-only torch, which has no build of either."""
    code = ("import sys, model.train.cli, model.train.trainer, model.train.augment; "
            "print(sorted(m for m in ('torchvision', 'torchaudio', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
