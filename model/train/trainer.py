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

import math
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from model.preprocess.audio import AudioConfig
from model.checkpoints.store import load_model
from model.common.device import resolve_device
from model.data.datasets import VideoFolderDataset
from model.data.workers import ignore_stop_signals, kill_workers_at_exit
from model.networks.sslmodel import AUDIO_BACKBONES, ModelConfig, SSLModel, pool_visual_map
from model.train import distributed, run_folder
from model.train.audio_init import YAMNET, load_audio_init, prepare_audio_training
from model.train.augment import VIEW_STRENGTHS
from model.train.bridge_positives import BridgePositives, read_clips, share_with_partners
from model.train.loss import ContrastiveLoss, LossConfig, LossOutput
from model.train.neighbours import FeatureBank
from model.train.positives import TrainViews, ViewBatchSampler, collate_views
from model.networks.object_guidance import ObjectGuidance
from model.train.config import TrainConfig
from model.train.silence import quiet_spectrograms
from model.train.visual_init import load_image_init, prepare_visual_training
from model.preprocess.image import preprocess_image

if TYPE_CHECKING:
    from model.evaluation.evaluate import Predictions


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: training stops (the step is not taken, nothing is saved)."""


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
        config.check_world_size(self.dist.world_size)
        torch.manual_seed(config.seed + self.dist.rank)
        self.silence_rng = np.random.default_rng(config.seed + self.dist.rank)  # --silence-negatives' noise
        if self.dist.is_main:
            run_folder.recover(self.out)
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
        clips = self.dataset
        if config.max_clips:
            clips = Subset(self.dataset, range(min(config.max_clips, len(self.dataset))))
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
            self._resume()
        self.net = self.model
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=device_ids)
        if config.overwrite and self.dist.is_main:  # once every input has been read: a failed start deletes nothing
            run_folder.clear(self.out, keep=config.init)

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
            val, pred = self._validate()
            metrics.update(val)
            if any(pred.negatives) and not all(pred.negatives):  # matched and negatives: the presence threshold
                from model.evaluation.calibrate import calibrate_presence  # off the import path, like _validate's

                calibrate_presence(self.model, self.val_dataset, self.device, pred, self.config.val)
            if "val_object_weight" in val:  # boxes in --val: the checkpoints' object guidance
                self.model.guidance = ObjectGuidance(val["val_object_weight"], self.config.val)
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

    def _validate(self) -> tuple[dict, Predictions]:
        """The model on the validation set: (val_ciou, val_auc, val_a2i_r1, presence AUROCs and the object guidance's
        weight chosen on its boxes, when it has any; the predictions behind them)."""
        from model.evaluation.calibrate import choose_guidance  # evaluation imports the data stack: off the import path
        from model.evaluation.evaluate import evaluate_with_predictions

        val, pred = evaluate_with_predictions(self.model, self.val_dataset, self.device)
        metrics = {"val_ciou": val["ciou"], "val_auc": val["auc"],
                   "val_a2i_r1": val["retrieval"]["audio_to_image"]["r1"]}
        presence = val.get("presence", {})
        metrics.update({f"val_{k}": v for k, v in presence.items() if k.startswith("auroc_")})
        weight = choose_guidance(pred.maps, pred.objectness, pred.boxes)[0] if any(pred.boxes) else None
        if weight is not None:
            metrics["val_object_weight"] = weight
        return metrics, pred

    # -- building ---------------------------------------------------------------------------------

    def _build_model(self) -> SSLModel:
        cfg = self.config
        if cfg.resume:
            model = load_model(run_folder.last_model(self.out))
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
            cfg.check_checkpoint(model, self.out / run_folder.LAST if cfg.resume else cfg.init)
        if cfg.image_init and not cfg.resume:
            load_image_init(model, cfg.image_init)
        new_yamnet = not (cfg.resume or cfg.init) and model.config.audio_backbone == YAMNET
        if (cfg.audio_init or new_yamnet) and not cfg.resume:
            load_audio_init(model, cfg.audio_init or YAMNET)
        prepare_visual_training(model, cfg.freeze_visual, cfg.visual_cache_mb)
        prepare_audio_training(model, cfg.freeze_audio)
        return model.train()

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

    def _save_last(self, metrics: dict, best: bool = False) -> None:
        """The run folder's ``last``, ``state`` and, when ``best``, ``best``, as one save (``run_folder.save``)."""
        if not self.dist.is_main:
            return
        metadata = run_folder.run_metadata(asdict(self.config), self.step, self.epoch, metrics)
        bank = self.bank if not self.config.neighbour_features else None  # a user's fixed features are not saved
        for path in run_folder.save(self.out, self.model, self.optimizer, metadata, self.batch_in_epoch, self.best,
                                    bank, self.device, best):
            self._emit("on_checkpoint", str(path))

    def _resume(self) -> None:
        state = run_folder.load_state(self.out, self.optimizer)
        self.step, self.epoch, self.batch_in_epoch = state.step, state.epoch, state.batch_in_epoch
        self.best = state.best
        if self.dist.is_main:
            state.restore_rng(self.device)
        else:
            torch.manual_seed(self.config.seed + self.dist.rank + 7919 * self.step)
        if self.bank is not None:
            state.restore_bank(self.bank)

    def _summary(self, interrupted: bool) -> dict:
        return {"step": self.step, "epoch": self.epoch, "stopped": self._stop, "interrupted": interrupted,
                "best": self.best, "out": str(self.out)}

    def _emit(self, event: str, *args) -> None:
        if self.dist.is_main:
            for callback in self.callbacks:
                getattr(callback, event)(*args)
