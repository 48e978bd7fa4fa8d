"""The SSL-Align training loop: batches of positives, the contrastive step, checkpoints, callbacks.

A batch holds, for each of B anchor clips (one group id per anchor, its dataset index):

- the original pair (frame, audio window);
- one hand-crafted augmented view (``ImageAugment`` of the frame, ``AudioAugment`` of the waveform);
- one of its k nearest-neighbour clips in the ``FeatureBank``, once the bank is filled (after
  ``neighbour_warmup_epochs`` epochs of the model's own features, or at once from a user's file);
- with ``positives`` "bridge" or "both", one of its bridge-mined partners (``model.train.bridge_positives``:
  clips whose sound and picture pretrained knowledge matches), weighing its evidence in the loss.

The EZ-VSL baseline (``loss="ezvsl"``) takes the originals only. Labels are never read. Under DDP every
rank gathers the embeddings of all ranks (with gradient) and computes the loss of the global batch, and
the neighbour bank is updated with every rank's clips, so it is the same everywhere.

The trainer reports through ``Callback`` objects and stops cooperatively (``stop()``); the CLI's
progress bar and JSONL log are listeners (the app's fine-tune panel reads that log from a child process).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from model.audio import AudioConfig
from model.backbones import FREEZE_LEVELS
from model.checkpoint import (
    CheckpointError,
    finish_interrupted_save,
    load_model,
    model_tensors,
    read_safetensors,
    write_together,
)
from model.common.device import resolve_device
from model.data.datasets import VideoFolderDataset
from model.data.workers import ignore_stop_signals, kill_workers_at_exit
from model.sslmodel import AUDIO_BACKBONES, ModelConfig, SSLModel, pool_visual_map
from model.train import distributed
from model.train.audio_init import FREEZE_LEVELS as AUDIO_FREEZE_LEVELS
from model.train.audio_init import YAMNET, load_audio_init, prepare_audio_training
from model.train.augment import VIEW_STRENGTHS
from model.train.bridge_positives import BridgePositives, read_clips, share_with_partners
from model.train.loss import ContrastiveLoss, LossConfig, LossOutput
from model.train.neighbours import FeatureBank
from model.train.positives import TrainViews, ViewBatchSampler, collate_views
from model.object_guidance import ObjectGuidance
from model.train.silence import quiet_spectrograms
from model.train.state import optimizer_state, optimizer_tensors
from model.train.visual_init import load_image_init, prepare_visual_training
from model.transforms import preprocess_image

LAST = "last.safetensors"
BEST = "best.safetensors"
STATE = "last.state.safetensors"
LOG = "log.jsonl"
RUN_FILES = (LAST, STATE, BEST, LOG)  # what makes a folder a run: --resume continues it, --overwrite replaces it
SCHEDULES = ("constant", "cosine")
BEST_METRICS = ("ciou", "auc", "a2i_r1")  # validation numbers that can pick the best epoch (higher is better)
POSITIVES = ("neighbours", "bridge", "both")  # the mined positives: the paper's nearest neighbours, the bridge's, both


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: training stops (the step is not taken, nothing is saved)."""


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
    freeze_visual: str = "none"  # efficientnet_lite0: none | early (stem and stages 0-4) | all (only the projection trains)
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
        if self.loss not in ("align", "ezvsl"):
            raise ValueError(f"--loss must be 'align' or 'ezvsl', not {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError("--warmup-steps must be >= 0")
        if self.best_metric not in BEST_METRICS:
            raise ValueError(f"--best-metric must be one of {', '.join(BEST_METRICS)}, not {self.best_metric!r}")
        if self.image_size is not None and (self.image_size % 16 or self.image_size < 32):
            raise ValueError(f"--image-size must be a multiple of 16 and >= 32, not {self.image_size}")
        if self.silence_negatives < 0:
            raise ValueError(f"--silence-negatives must be >= 0, not {self.silence_negatives}")
        if self.epochs < 1 or self.batch_size < 1 or self.neighbours_k < 1:
            raise ValueError("--epochs, --batch-size and --neighbours-k must be >= 1")
        if self.init and (self.image_init or self.audio_init):
            raise ValueError("use --init (a whole model) or --image-init / --audio-init (one encoder), not both")
        if self.resume and self.overwrite:
            raise ValueError("use --resume (continue the run in --out) or --overwrite (replace it), not both")
        for name in ("lr", "temperature", "audio_seconds"):  # audio_seconds None: the checkpoint's or the default
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a number > 0, not {value}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, not {self.threads}")
        if self.workers < 0 or self.neighbour_warmup_epochs < 0 or (self.max_clips is not None and self.max_clips < 1):
            raise ValueError("--workers and --neighbour-warmup-epochs must be >= 0, --max-clips >= 1")
        if self.positives not in POSITIVES:
            raise ValueError(f"--positives must be one of {', '.join(POSITIVES)}, not {self.positives!r}")
        if self.views not in VIEW_STRENGTHS:
            raise ValueError(f"--views must be one of {', '.join(VIEW_STRENGTHS)}, not {self.views!r}")
        if self.freeze_visual not in FREEZE_LEVELS:
            raise ValueError(f"--freeze-visual must be one of {', '.join(FREEZE_LEVELS)}, not {self.freeze_visual!r}")
        if self.freeze_audio not in AUDIO_FREEZE_LEVELS:
            raise ValueError(f"--freeze-audio must be one of {', '.join(AUDIO_FREEZE_LEVELS)}, not {self.freeze_audio!r}")
        if self.visual_cache_mb and (self.freeze_visual == "none" or not self.cache):
            raise ValueError("--cache-visual-maps needs a frozen backbone (--freeze-visual early|all) and "
                             "--cache (decoded frames: the same few frames of each clip come back)")

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

    @property
    def uses_augment(self) -> bool:
        return self.augment and self.loss == "align"

    @property
    def uses_neighbours(self) -> bool:
        return self.neighbours and self.loss == "align" and self.positives != "bridge"

    @property
    def uses_bridge(self) -> bool:
        return self.loss == "align" and self.positives != "neighbours"


def _whole_number(metadata: dict[str, str], key: str, path) -> int:
    """Metadata ``key`` of the resume state ``path`` as an int >= 0, or a CheckpointError naming both."""
    value = metadata.get(key)
    if value is None or not value.isdigit():
        raise CheckpointError(f"{path}: {key} must be a whole number >= 0, not {value!r}")
    return int(value)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps``."""
    lr = config.lr
    if config.warmup_steps:
        lr *= min(1.0, (step + 1) / config.warmup_steps)
    if config.schedule == "cosine":
        lr *= 0.5 * (1.0 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return lr


class Callback:
    """Trainer events; override the ones you need. Called on the main process only."""

    def on_train_start(self, info: dict) -> None:
        """``info``: total_steps, step (where it starts), steps_per_epoch, clips, config."""

    def on_step(self, step: int, metrics: dict) -> None:
        """After each optimizer step: loss, localization, alignment, lr, clips_per_s, seconds, items..."""

    def on_baseline(self, metrics: dict) -> None:
        """Fine-tuning (``--init``) with a validation set: the starting model's val_ciou, val_auc, val_a2i_r1
        (and presence AUROCs), before any step: the "before" of before / after."""

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        """Mean loss of the epoch and, with a validation set, val_ciou, val_auc, val_a2i_r1."""

    def on_checkpoint(self, path: str) -> None:
        """A checkpoint file was written."""

    def on_train_end(self, summary: dict) -> None:
        """step, epoch, stopped (by ``stop()``), interrupted (Ctrl-C), best."""


def keep_batch_norm_statistics(model: torch.nn.Module) -> None:
    """Every batch-norm layer in eval mode: it normalises with its running statistics and does not update
    them (its scale and shift still train)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


# --- batches of positives -------------------------------------------------------------------------

def global_loss(loss_fn: ContrastiveLoss, visual_maps: torch.Tensor, audio: torch.Tensor,
                groups: torch.Tensor, clip_ids: torch.Tensor, negative_audio: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> LossOutput:
    """The loss of the global batch: every rank's rows gathered in rank order (with gradient)."""
    return loss_fn(
        distributed.gather_with_grad(visual_maps),  # (world * n, D, h, w)
        distributed.gather_with_grad(audio),  # (world * n, D)
        distributed.gather(groups),  # (world * n,)
        distributed.gather(clip_ids),  # (world * n,)
        distributed.gather_with_grad(negative_audio) if negative_audio is not None else None,  # (world * M, D)
        distributed.gather(weights) if weights is not None else None,  # (world * n,)
    )


# --- the trainer ----------------------------------------------------------------------------------

class Trainer:
    """``Trainer(config, callbacks).fit()``; ``stop()`` from any thread ends it after the current step
    (saving ``last``). Under torchrun it trains with DDP; only the main process reports and saves."""

    def __init__(self, config: TrainConfig, callbacks=(), dist: distributed.DistInfo | None = None):
        config.validate()
        config.check_paths()
        self.config = config
        self.callbacks = list(callbacks)
        self.dist = dist or distributed.DistInfo()
        self.device = resolve_device(config.device, self.dist.local_rank)
        self.out = Path(config.out)
        self._stop = False
        if config.batch_size % self.dist.world_size:
            raise ValueError(f"--batch-size {config.batch_size} must be a multiple of the "
                             f"{self.dist.world_size} processes")
        torch.manual_seed(config.seed + self.dist.rank)
        self.silence_rng = np.random.default_rng(config.seed + self.dist.rank)  # --silence-negatives' noise
        if self.dist.is_main and self.out.is_dir():
            finish_interrupted_save(self.out)  # the newest complete save, stale temporaries deleted
        distributed.any_rank(False, self.device)  # the other ranks read the folder once it is done

        self.model = self._build_model().to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True  # a handful of batch shapes: pick the fastest kernels
        audio_config = self.model.audio_config
        image_size = self.model.config.image_size
        image_transform = partial(preprocess_image, size=image_size)
        self.dataset = VideoFolderDataset(config.data, "train", audio_config, config.cache, image_transform)
        if len(self.dataset) == 0:
            raise ValueError(f"no readable clips in {config.data} (skipped: {self.dataset.skipped[:3]})")
        clips = Subset(self.dataset, range(min(config.max_clips, len(self.dataset)))) if config.max_clips else self.dataset
        self.clips = len(clips)
        self.bank = self._build_bank()
        self.bridge = self._build_bridge(audio_config, image_transform)
        anchors = DistributedSampler(clips, self.dist.world_size, self.dist.rank, shuffle=True, seed=config.seed)
        self.batches = ViewBatchSampler(anchors, config.batch_size // self.dist.world_size, self.bank,
                                        config.neighbours_k, config.seed, self.dist.rank, self.bridge)
        if config.workers:
            kill_workers_at_exit()
        self.loader = DataLoader(
            TrainViews(clips, image_size, audio_config, config.uses_augment, not config.visual_cache_mb,
                       VIEW_STRENGTHS[config.views]),
            batch_sampler=self.batches, collate_fn=collate_views, num_workers=config.workers,
            pin_memory=self.device.type == "cuda", persistent_workers=config.workers > 0,
            worker_init_fn=ignore_stop_signals)
        self.val_dataset = None
        if config.val and self.dist.is_main:
            self.val_dataset = VideoFolderDataset(config.val, "eval", audio_config, config.cache, image_transform)

        self.loss_fn = ContrastiveLoss(LossConfig(config.loss, config.temperature))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0  # optimizer steps done
        self.epoch = 0  # epochs done (the epoch in progress, 0-based)
        self.batch_in_epoch = 0  # steps done in the epoch in progress
        self.best: dict | None = None  # {"key": "val_<best_metric>" | "loss", "value": float, "epoch": int}
        if config.resume:
            self._load_state()
        self.net = self.model
        if self.dist.enabled:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if config.overwrite and self.dist.is_main:
            self._clear_run()

    def _clear_run(self) -> None:
        """--overwrite: delete the run in ``out``, only once every input has been read (a failed start
        deletes nothing). An ``--init`` file among the run's files is kept: the new run's saves replace it."""
        init = Path(self.config.init).resolve() if self.config.init else None
        for name in RUN_FILES:
            if (self.out / name).resolve() != init:
                (self.out / name).unlink(missing_ok=True)

    # -- control ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the current step; it saves ``last`` first."""
        self._stop = True

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    def fit(self) -> dict:
        """Train until ``epochs`` are done or ``stop()``; Ctrl-C saves ``last`` and re-raises."""
        cfg = self.config
        self._emit("on_train_start", {
            "total_steps": self.total_steps, "step": self.step,
            "steps_per_epoch": self.steps_per_epoch, "clips": self.clips, "skipped": self.dataset.skipped,
            "device": str(self.device), "world_size": self.dist.world_size, "config": asdict(cfg),
            **({"bridge_partnered": share_with_partners(self.bridge)} if self.bridge is not None else {})})
        if cfg.init and self.step == 0 and self.val_dataset is not None:
            self._emit("on_baseline", self._validate()[0])
        try:
            while self.epoch < cfg.epochs:
                self._stop = distributed.any_rank(self._stop, self.device)  # also a stop during validation
                if self._stop:
                    break
                losses = self._train_epoch()
                if not self._stop:
                    self._end_epoch(losses)
        except KeyboardInterrupt:
            self._save_last({"interrupted": True})
            self._emit("on_train_end", self._summary(interrupted=True))
            raise
        if self._stop:
            self._save_last({"stopped": True})
        # every rank returns once rank 0's last save is written: a rank that left the process group while
        # rank 0 was still saving could abort in gloo's teardown (SIGABRT, and torchrun then ends rank 0 too)
        distributed.wait_for_all()
        summary = self._summary(interrupted=False)
        self._emit("on_train_end", summary)
        return summary

    # -- the loop ---------------------------------------------------------------------------------

    def _train_epoch(self) -> list[float]:
        self.batches.set_epoch(self.epoch)
        self.batches.skip = self.batch_in_epoch
        self.batches.use_neighbours = self._neighbours_ready()
        self.net.train()
        if self.config.freeze_batch_norm:
            keep_batch_norm_statistics(self.model)
        losses = []
        tick = time.perf_counter()
        for batch in self.loader:
            metrics = self._train_step(batch)
            now = time.perf_counter()
            anchors = int(batch["first"].sum()) * self.dist.world_size
            metrics.update(clips_per_s=anchors / max(now - tick, 1e-9), wall_seconds=now - tick)
            tick = now
            self.step += 1
            self.batch_in_epoch += 1
            losses.append(metrics["loss"])
            self._emit("on_step", self.step, {"step": self.step, "epoch": self.epoch + 1, **metrics})
            self._stop = distributed.any_rank(self._stop, self.device)
            if self._stop:
                break
        return losses

    def _train_step(self, batch: dict) -> dict:
        start = time.perf_counter()
        cuda = self.device.type == "cuda"
        images = batch["images"].to(self.device, non_blocking=True)  # (n, 3, S, S)
        specs = batch["specs"].to(self.device, non_blocking=True)  # (n, 1, 257, T)
        if cuda:
            images = images.contiguous(memory_format=torch.channels_last)
            specs = specs.contiguous(memory_format=torch.channels_last)
        groups = batch["groups"].to(self.device)  # (n,)
        clip_ids = batch["clip_ids"].to(self.device)  # (n,)
        quiet = None
        if self.config.silence_negatives:
            quiet = quiet_spectrograms(self.config.silence_negatives, self.model.audio_config, self.silence_rng)
            specs = torch.cat([specs, quiet.to(self.device, non_blocking=True)])  # one audio forward for all
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda):
            maps, audio = self.net(images, specs)  # (n, D, h, w), (n + M, D)
        if quiet is not None:
            audio, quiet = audio[:len(groups)], audio[len(groups):].float()  # (n, D), (M, D)
        weights = batch["weights"].to(self.device) if self.bridge is not None else None  # (n,)
        out = global_loss(self.loss_fn, maps.float(), audio.float(), groups, clip_ids, quiet, weights)
        if not bool(torch.isfinite(out.total)):  # the same global loss on every rank: all stop together
            raise TrainingDiverged(f"the loss is {out.total.item()} at step {self.step + 1}: training stopped "
                                   "before this step, nothing of it saved (the run's files keep their last save; "
                                   "a lower --lr may help)")
        self.optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.step, self.total_steps)
        self.optimizer.step()
        if self.bank is not None and not self.config.neighbour_features:
            first = batch["first"].to(self.device)  # (n,) anchors' original views
            feats = torch.cat([audio[first], pool_visual_map(maps[first])], dim=1).detach().float()  # (B, 2D)
            self.bank.update(distributed.gather(clip_ids[first]).cpu(), distributed.gather(feats).cpu())
        return {"loss": out.total.item(), "localization": out.localization.item(),
                "alignment": out.alignment.item(), "lr": self.optimizer.param_groups[0]["lr"],
                "items": len(groups) * self.dist.world_size, "neighbours": self.batches.use_neighbours,
                "seconds": time.perf_counter() - start}

    def _neighbours_ready(self) -> bool:
        if self.bank is None:
            return False
        return bool(self.config.neighbour_features) or self.epoch >= self.config.neighbour_warmup_epochs

    def _end_epoch(self, losses: list[float]) -> None:
        metrics = {"epoch": self.epoch + 1, "step": self.step,
                   "loss": sum(losses) / len(losses) if losses else math.nan}
        if self.val_dataset is not None:
            val, threshold, weight = self._validate()
            metrics.update(val)
            if threshold is not None:  # negatives in --val: the checkpoints' presence threshold
                self.model.presence = replace(self.model.presence, threshold=threshold, calibrated_on=self.config.val)
            if weight is not None:  # boxes in --val: the checkpoints' object guidance
                self.model.guidance = ObjectGuidance(weight, self.config.val)
        self.epoch += 1
        self.batch_in_epoch = 0
        self._emit("on_epoch_end", self.epoch, metrics)
        if not self.dist.is_main:
            return
        key = f"val_{self.config.best_metric}" if self.val_dataset is not None else "loss"
        value = metrics[key]
        improved = self.best is None or self.best["key"] != key or (
            value > self.best["value"] if key != "loss" else value < self.best["value"])
        if improved and not math.isnan(value):
            self.best = {"key": key, "value": value, "epoch": self.epoch}
        self._save_last(metrics, best=improved)

    def _validate(self) -> tuple[dict, float | None, float | None]:
        """The model on the validation set: (val_ciou, val_auc, val_a2i_r1, presence AUROCs and the object guidance's
        weight, the presence threshold calibrated on its negatives or None, the object guidance's weight chosen on its
        boxes or None)."""
        from model.evaluation.calibrate import choose_guidance  # evaluation imports the data stack: off the import path
        from model.evaluation.evaluate import evaluate_with_predictions

        val, pred = evaluate_with_predictions(self.model, self.val_dataset, self.device)
        metrics = {"val_ciou": val["ciou"], "val_auc": val["auc"], "val_a2i_r1": val["retrieval"]["audio_to_image"]["r1"]}
        presence = val.get("presence", {})
        metrics.update({f"val_{k}": v for k, v in presence.items() if k.startswith("auroc_")})
        weight = choose_guidance(pred.maps, pred.objectness, pred.boxes)[0] if any(pred.boxes) else None
        if weight is not None:
            metrics["val_object_weight"] = weight
        return metrics, presence.get("best_threshold"), weight

    # -- building ---------------------------------------------------------------------------------

    def _build_model(self) -> SSLModel:
        cfg = self.config
        if cfg.resume:
            if not (self.out / LAST).is_file() or not (self.out / STATE).is_file():
                raise CheckpointError(f"nothing to resume in {self.out}: {LAST} and {STATE} are needed")
            model = load_model(self.out / LAST)
        elif cfg.init:
            model = load_model(cfg.init)
        else:
            model_config = ModelConfig(visual_backbone=cfg.visual_backbone or ModelConfig.visual_backbone,
                                       audio_backbone=cfg.audio_backbone or ModelConfig.audio_backbone)
            audio_config = AudioConfig(frontend=AUDIO_BACKBONES[model_config.audio_backbone])
            if cfg.image_size is not None:
                model_config = replace(model_config, image_size=cfg.image_size)
            if cfg.audio_seconds is not None:
                audio_config = replace(audio_config, seconds=cfg.audio_seconds)
            model = SSLModel(model_config, audio_config)
        if cfg.resume or cfg.init:
            self._check_input_size(model, self.out / LAST if cfg.resume else cfg.init)
        if cfg.visual_backbone and cfg.visual_backbone != model.config.visual_backbone:
            raise ValueError(f"--visual-backbone {cfg.visual_backbone}: the checkpoint's is "
                             f"{model.config.visual_backbone}")
        if cfg.audio_backbone and cfg.audio_backbone != model.config.audio_backbone:
            raise ValueError(f"--audio-backbone {cfg.audio_backbone}: the checkpoint's is "
                             f"{model.config.audio_backbone}")
        if cfg.image_init and not cfg.resume:
            load_image_init(model, cfg.image_init)
        new_yamnet = not (cfg.resume or cfg.init) and model.config.audio_backbone == YAMNET
        if (cfg.audio_init or new_yamnet) and not cfg.resume:
            load_audio_init(model, cfg.audio_init or YAMNET)
        prepare_visual_training(model, cfg.freeze_visual, cfg.visual_cache_mb)
        prepare_audio_training(model, cfg.freeze_audio)
        return model.train()

    def _check_input_size(self, model: SSLModel, source) -> None:
        """--image-size / --audio-seconds may only repeat what a loaded checkpoint has."""
        for flag, asked, saved in (("--image-size", self.config.image_size, model.config.image_size),
                                   ("--audio-seconds", self.config.audio_seconds, model.audio_config.seconds)):
            if asked is not None and asked != saved:
                raise ValueError(f"{flag} {asked} conflicts with {source}, whose model has {saved}: the checkpoint "
                                 f"owns its input size (leave {flag} out)")

    def _build_bank(self) -> FeatureBank | None:
        cfg = self.config
        if not cfg.uses_neighbours:
            return None
        if cfg.neighbour_features:
            return FeatureBank.from_file(cfg.neighbour_features, len(self.dataset))
        return FeatureBank(len(self.dataset), 2 * self.model.config.embed_dim)

    def _build_bridge(self, audio_config: AudioConfig, image_transform) -> BridgePositives | None:
        """--positives bridge|both: what YAMNet hears and ImageNet sees in each clip's middle moment, paired."""
        if not self.config.uses_bridge:
            return None
        middles = VideoFolderDataset(self.config.data, "eval", audio_config, self.config.cache, image_transform)
        return BridgePositives(read_clips(Subset(middles, range(self.clips)), self.device), self.config.neighbours_k)

    # -- saving -----------------------------------------------------------------------------------

    def _metadata(self, metrics: dict) -> dict[str, str]:
        return {"train_config": json.dumps(asdict(self.config)), "step": str(self.step),
                "epoch": str(self.epoch), "metrics": json.dumps(metrics)}

    def _save_last(self, metrics: dict, best: bool = False) -> None:
        """``last.safetensors`` (the model), ``last.state.safetensors`` (everything to resume) and, when
        ``best``, ``best.safetensors``, as one save (``write_together``)."""
        if not self.dist.is_main:
            return
        model = model_tensors(self.model, extra=self._metadata(metrics))
        tensors, metadata = optimizer_tensors(self.optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        if self.bank is not None and not self.config.neighbour_features:
            tensors["bank.features"] = self.bank.features.half()  # (N, 2D)
            tensors["bank.filled"] = self.bank.filled  # (N,)
        metadata.update(self._metadata(metrics), format="ssl-desktop-train-state/1",
                        batch_in_epoch=str(self.batch_in_epoch), best=json.dumps(self.best))
        files = {LAST: model, STATE: (tensors, metadata), **({BEST: model} if best else {})}
        write_together(self.out, files)
        for name in files:
            self._emit("on_checkpoint", str(self.out / name))

    def _load_state(self) -> None:
        tensors, metadata = read_safetensors(self.out / STATE)
        _, model_meta = read_safetensors(self.out / LAST)
        if model_meta.get("step") != metadata.get("step"):
            raise CheckpointError(f"{self.out}: {LAST} (step {model_meta.get('step')}) and {STATE} "
                                  f"(step {metadata.get('step')}) do not match; cannot resume")
        path = self.out / STATE
        self.step, self.epoch, self.batch_in_epoch = (_whole_number(metadata, key, path)
                                                      for key in ("step", "epoch", "batch_in_epoch"))
        try:
            self.best = json.loads(metadata["best"])
            self.optimizer.load_state_dict(optimizer_state(tensors, metadata))
            rng = tensors["rng.torch"]
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # a state this run cannot continue
            raise CheckpointError(f"{path}: cannot resume from it ({type(exc).__name__}: {exc})") from exc
        if self.dist.is_main:
            torch.set_rng_state(rng)
            if self.device.type == "cuda" and "rng.cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        else:
            torch.manual_seed(self.config.seed + self.dist.rank + 7919 * self.step)
        if self.bank is not None and "bank.features" in tensors:
            filled = tensors["bank.filled"].bool()  # (N,)
            if len(filled) == len(self.bank.filled):
                self.bank.update(filled.nonzero()[:, 0], tensors["bank.features"][filled].float())

    def _summary(self, interrupted: bool) -> dict:
        return {"step": self.step, "epoch": self.epoch, "stopped": self._stop, "interrupted": interrupted,
                "best": self.best, "out": str(self.out)}

    def _emit(self, event: str, *args) -> None:
        if self.dist.is_main:
            for callback in self.callbacks:
                getattr(callback, event)(*args)
