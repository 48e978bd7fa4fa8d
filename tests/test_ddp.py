"""DDP: two gloo processes give the loss and gradients of one process on the same global batch."""
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from model import ModelConfig, SSLModel, load_model
from model.synth.generator import generate
from model.train import distributed
from model.train.loss import ContrastiveLoss
from model.train.trainer import global_loss

WORLD = 2
# Global batch: per rank 2 anchors x (original + augmented) + 2 neighbours. Clip 2 is a neighbour on
# rank 0 and an anchor on rank 1, so positives cross ranks through the clip ids.
GROUPS = [[0, 0, 1, 1, 0, 1], [2, 2, 3, 3, 2, 3]]
CLIPS = [[0, 0, 1, 1, 5, 2], [2, 2, 3, 3, 7, 0]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup():
    """The same model (eval mode: BN uses running statistics, not per-rank batches) and global batch."""
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(image_size=64)).eval()
    n = len(GROUPS[0]) * WORLD
    images = torch.randn(n, 3, 64, 64)  # (N, 3, S, S)
    specs = torch.randn(n, 1, 257, 40)  # (N, 1, 257, T)
    return model, images, specs, torch.tensor(sum(GROUPS, [])), torch.tensor(sum(CLIPS, []))


def grads(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model, images, specs, groups, clips = setup()
        net = DistributedDataParallel(model)
        rows = slice(rank * len(GROUPS[0]), (rank + 1) * len(GROUPS[0]))
        maps, audio = net(images[rows], specs[rows])  # this rank's share
        loss = global_loss(ContrastiveLoss(), maps, audio, groups[rows], clips[rows])
        loss.total.backward()
        gathered = distributed.gather(torch.tensor([rank]))  # the bank's gather: every rank, in order
        if rank == 0:
            torch.save({"loss": loss.total.detach(), "grads": grads(model), "gathered": gathered}, out)
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    result = torch.load(out)

    model, images, specs, groups, clips = setup()
    maps, audio = model(images, specs)
    loss = ContrastiveLoss()(maps, audio, groups, clips)
    loss.total.backward()

    assert result["gathered"].tolist() == [0, 1]
    torch.testing.assert_close(result["loss"], loss.total.detach(), rtol=1e-5, atol=1e-6)
    reference = grads(model)
    for name, grad in result["grads"].items():
        scale = reference[name].abs().max().item() + 1e-12
        torch.testing.assert_close(grad, reference[name], rtol=1e-3, atol=1e-4 * scale, msg=name)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_ssl_train_runs_under_torchrun(tmp_path):
    data = tmp_path / "data"
    generate(data, clips=4, seed=3, size=(128, 96))
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD), "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "model.train",
           "--data", str(data), "--out", str(run), "--epochs", "2", "--batch-size", "4", "--image-size", "64",
           "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0"]
    done = subprocess.run(cmd, cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_model(run / "last.safetensors").config.image_size == 64
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [e for e in log if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2]  # 4 clips, global batch 4: one step an epoch
    assert [e["neighbours"] for e in steps] == [False, True]  # the global bank was filled by both ranks
    assert all(e["items"] == 8 for e in steps[:1]) and log[0]["world_size"] == WORLD


def stopping_worker(rank: int, port: int, data: str, out: str, summaries: str, when: str) -> None:
    """One rank alone is asked to stop: rank 1 after its first step, or rank 0 (which alone runs the
    callbacks) at the end of the first epoch. Every rank must end at the same step."""
    from datetime import timedelta

    from model.train.cli import parse_args
    from model.train.trainer import Callback, Trainer

    class StopOnRankOne(Trainer):
        def _train_step(self, batch):
            metrics = super()._train_step(batch)
            if when == "rank 1, step" and self.dist.rank == 1:
                self.stop()
            return metrics

    class StopAtEpochEnd(Callback):
        def on_epoch_end(self, epoch, metrics):
            if when == "rank 0, epoch end":
                trainer.stop()

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=60))  # a rank left waiting fails instead of hanging
    try:
        config = parse_args(["--data", data, "--out", out, "--epochs", "3", "--batch-size", "2", "--loss", "ezvsl",
                             "--image-size", "64", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0"])
        trainer = StopOnRankOne(config, [StopAtEpochEnd()], distributed.DistInfo(rank, WORLD, 0))
        summary = trainer.fit()
        Path(summaries, f"rank{rank}.json").write_text(json.dumps(summary))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("when, step", [("rank 1, step", 1), ("rank 0, epoch end", 2)])
def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(tmp_path, when, step):
    data, run = tmp_path / "data", tmp_path / "run"
    generate(data, clips=4, seed=3, size=(128, 96))
    try:
        mp.spawn(stopping_worker, args=(free_port(), str(data), str(run), str(tmp_path), when), nprocs=WORLD, join=True)
    except mp.ProcessExitedException as exc:
        # Seen once in 7 runs: a rank aborted ("terminate called without an active exception") in gloo's teardown.
        # What is tested is where each rank stopped: a crash before both summaries were written still fails.
        if not all((tmp_path / f"rank{r}.json").is_file() for r in range(WORLD)):
            raise
        warnings.warn(f"a rank crashed after training ended: {exc}", RuntimeWarning)
    summaries = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [(s["step"], s["stopped"]) for s in summaries] == [(step, True), (step, True)]
