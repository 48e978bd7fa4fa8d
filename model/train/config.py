"""One training run's configuration, ``TrainConfig``, and every check of it in one place: the values each
field takes (``CHOICES``) and the rules within and between fields (``RULES``) as tables, then the checks
that need the file system (``check_paths``), the process group (``check_world_size``) or the model loaded
from a checkpoint (``check_checkpoint``). Each refuses with a ``ValueError`` that names the flag."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from model.networks.backbones import FREEZE_LEVELS
from model.common.config_checks import check_rules
from model.train.audio_init import FREEZE_LEVELS as AUDIO_FREEZE_LEVELS
from model.train.augment import VIEW_STRENGTHS
from model.train.run_folder import RUN_FILES

LOSSES = ("align", "ezvsl")  # SSL-Align, the single-positive baseline
SCHEDULES = ("constant", "cosine")
BEST_METRICS = ("ciou", "auc", "a2i_r1")  # validation numbers that can pick the best epoch (higher is better)
POSITIVES = ("neighbours", "bridge", "both")  # the mined positives: the paper's nearest neighbours, the bridge's, both


@dataclass
class TrainConfig:
    """Everything one training run depends on; saved in every checkpoint's metadata (``train_config``)."""

    data: str = ""  # training folder (videos; labels are never used)
    out: str = "runs/ssl"  # run folder: checkpoints, state, log.jsonl
    val: str | None = None  # annotated folder evaluated after each epoch (cIoU, AUC, A->I R@1)
    best_metric: str = "ciou"  # which validation number picks best.safetensors: ciou | auc | a2i_r1
    init: str | None = None  # our safetensors checkpoint to fine-tune (either model variant)
    image_init: str | None = None  # visual encoder's ImageNet weights: "imagenet" (the installed EfficientNet-Lite0
    # weights) or a torchvision ResNet-18 state dict (.pth)
    visual_backbone: str | None = None  # resnet18 | efficientnet_lite0; None: --init's, else resnet18
    # efficientnet_lite0: none | early (stem and stages 0-4) | all (only the projection trains)
    freeze_visual: str = "none"
    audio_backbone: str | None = None  # resnet18 | aisfx | yamnet; None: --init's, else resnet18
    # aisfx: "aisfx" (the installed weights) or that file; yamnet: "yamnet" (the installed YAMNet, where a new
    # model starts anyway)
    audio_init: str | None = None
    freeze_audio: str = "none"  # aisfx, yamnet: none | last (yamnet: its last block trains) | all (only the projection)
    visual_cache_mb: int = 0  # > 0: keep the frozen part's maps (needs --cache; the images are not augmented)
    loss: str = "align"  # "align" (SSL-Align) or "ezvsl" (single-positive baseline)
    epochs: int = 20
    batch_size: int = 32  # anchor clips per step, over all processes
    lr: float = 1e-4
    schedule: str = "constant"  # learning rate over the run: constant (as published) | cosine (to 0)
    warmup_steps: int = 0  # linear ramp from lr / warmup_steps to lr over the first steps
    weight_decay: float = 1e-4
    temperature: float = 0.03
    # A new model's input size (None: the ModelConfig / AudioConfig defaults, 224 px and 3.0 s). With --init
    # or --resume the checkpoint owns them: a value that differs from the checkpoint's is an error.
    image_size: int | None = None  # < 224 for quick CPU runs: the visual map is image_size / 16
    audio_seconds: float | None = None
    device: str = "auto"  # auto | cpu | cuda
    resume: bool = False  # continue from out/last.state.safetensors
    overwrite: bool = False  # replace the run in ``out`` (without it, a run there is never overwritten)
    neighbours: bool = True  # ablation switch: nearest-neighbour positives
    positives: str = "neighbours"  # mined positives: neighbours (the paper's) | bridge (pretrained knowledge's) | both
    augment: bool = True  # ablation switch: hand-crafted augmented positives
    views: str = "paper"  # strength of the augmented views: a key of augment.VIEW_STRENGTHS (paper | weak)
    neighbours_k: int = 5  # a neighbour is drawn from the k nearest clips
    neighbour_warmup_epochs: int = 1  # epochs of own features before neighbours are used
    neighbour_features: str | None = None  # fixed user features (safetensors ``features`` (N, D))
    workers: int = 4  # DataLoader processes per training process
    cache: str | None = None  # decoded-frame cache folder
    max_clips: int | None = None  # train on the first N clips only
    seed: int = 0
    threads: int | None = None  # torch intra- and inter-op threads of each process (None: torch's default)
    # batch norm normalises with the starting model's running statistics and leaves them as they are: when
    # fine-tuning on a few clips, their batches would otherwise become the model's idea of every input
    freeze_batch_norm: bool = False
    silence_negatives: int = 0  # windows of quiet noise per step, no image's positive (model.train.silence)

    def validate(self) -> None:
        """The first of ``RULES`` this config breaks, as a ValueError."""
        check_rules(self, RULES)

    def check_paths(self) -> None:
        """Every file and folder named exists, and ``out`` is a folder that holds no run unless ``resume``
        or ``overwrite``: a FileNotFoundError or ValueError before any work."""
        for flag, folder in (("--data", self.data), ("--val", self.val)):
            if folder and not Path(folder).is_dir():
                raise FileNotFoundError(f"{flag}: data folder not found: {folder}")
        for flag, file in (("--init", self.init), ("--neighbour-features", self.neighbour_features)):
            if file and not Path(file).is_file():
                raise FileNotFoundError(f"{flag}: file not found: {file}")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a run folder")
        held = [name for name in RUN_FILES if (out / name).exists()]
        if held and not (self.resume or self.overwrite):
            raise ValueError(f"--out {out} holds a run ({', '.join(held)}): continue it with --resume "
                             "or replace it with --overwrite")

    def check_world_size(self, world_size: int) -> None:
        """The global batch splits evenly over the processes."""
        if self.batch_size % world_size:
            raise ValueError(f"--batch-size {self.batch_size} must be a multiple of the {world_size} processes")

    def check_checkpoint(self, model, source) -> None:
        """A model loaded from ``source`` (--init, --resume) owns its backbones and input size: a flag may only
        repeat them."""
        size = ("{flag} {asked} conflicts with {source}, whose model has {saved}: the checkpoint owns its input "
                "size (leave {flag} out)")
        backbone = "{flag} {asked}: the checkpoint's is {saved}"
        for flag, asked, saved, message in (
                ("--image-size", self.image_size, model.config.image_size, size),
                ("--audio-seconds", self.audio_seconds, model.audio_config.seconds, size),
                ("--visual-backbone", self.visual_backbone, model.config.visual_backbone, backbone),
                ("--audio-backbone", self.audio_backbone, model.config.audio_backbone, backbone)):
            if asked is not None and asked != saved:
                raise ValueError(message.format(flag=flag, asked=asked, saved=saved, source=source))

    @property
    def uses_augment(self) -> bool:
        return self.augment and self.loss == "align"

    @property
    def uses_neighbours(self) -> bool:
        return self.neighbours and self.loss == "align" and self.positives != "bridge"

    @property
    def uses_bridge(self) -> bool:
        return self.loss == "align" and self.positives != "neighbours"


def flag(name: str) -> str:
    """A field's command-line flag."""
    return "--" + name.replace("_", "-")


def _one_of(name: str, values: tuple[str, ...]):
    return (lambda c: getattr(c, name) not in values,
            f"{flag(name)} must be one of {', '.join(values)}, not {{{name}!r}}")


def _positive(name: str):
    """A number > 0, or None (the checkpoint's or the default)."""
    def broken(c) -> bool:
        value = getattr(c, name)
        return value is not None and (not math.isfinite(value) or value <= 0)
    return broken, f"{flag(name)} must be a number > 0, not {{{name}}}"


CHOICES = {  # field: the values it takes
    "loss": LOSSES, "schedule": SCHEDULES, "best_metric": BEST_METRICS, "positives": POSITIVES,
    "views": tuple(VIEW_STRENGTHS), "freeze_visual": FREEZE_LEVELS, "freeze_audio": AUDIO_FREEZE_LEVELS,
}

RULES = (  # (is the config wrong, what its user is told: formatted with its fields), checked in this order
    *(_one_of(name, values) for name, values in CHOICES.items()),
    (lambda c: c.warmup_steps < 0, "--warmup-steps must be >= 0"),
    (lambda c: c.image_size is not None and (c.image_size % 16 or c.image_size < 32),
     "--image-size must be a multiple of 16 and >= 32, not {image_size}"),
    (lambda c: c.silence_negatives < 0, "--silence-negatives must be >= 0, not {silence_negatives}"),
    (lambda c: min(c.epochs, c.batch_size, c.neighbours_k) < 1,
     "--epochs, --batch-size and --neighbours-k must be >= 1"),
    *(_positive(name) for name in ("lr", "temperature", "audio_seconds")),
    (lambda c: c.threads is not None and c.threads < 1, "--threads must be >= 1, not {threads}"),
    (lambda c: c.workers < 0 or c.neighbour_warmup_epochs < 0 or (c.max_clips is not None and c.max_clips < 1),
     "--workers and --neighbour-warmup-epochs must be >= 0, --max-clips >= 1"),
    (lambda c: c.init and (c.image_init or c.audio_init),
     "use --init (a whole model) or --image-init / --audio-init (one encoder), not both"),
    (lambda c: c.resume and c.overwrite,
     "use --resume (continue the run in --out) or --overwrite (replace it), not both"),
    (lambda c: c.visual_cache_mb and (c.freeze_visual == "none" or not c.cache),
     "--cache-visual-maps needs a frozen backbone (--freeze-visual early|all) and "
     "--cache (decoded frames: the same few frames of each clip come back)"),
)
