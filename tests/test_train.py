"""ssl-train end to end on a tiny generated set, plus the pieces: batches of positives, state, flags."""
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors import safe_open
from torch.utils.data import DistributedSampler

from model import AudioConfig, CheckpointError, ModelConfig, SSLModel, load_model, save_model
from model.checkpoints.store import read_safetensors
from model.data.datasets import VideoFolderDataset, collate
from model.evaluation.evaluate import evaluate
from model.synth.generator import generate
from model.preprocess.audio import spectrogram
from model.train.augment import VIEW_STRENGTHS
from model.train.cli import main, parse_args
from model.train.flags import config_argv
from model.train.loss import ContrastiveLoss
from model.train.neighbours import FeatureBank
from model.train.positives import TrainViews, ViewBatchSampler, collate_views
from model.train.state import optimizer_state, optimizer_tensors
from model.train.config import TrainConfig
from model.train.trainer import Callback, Trainer, learning_rate
from model.train.visual_init import load_image_init
from model.preprocess.image import preprocess_image

FAST = ["--image-size", "112", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0", "--batch-size", "4"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """8 generated clips and one corrupt file."""
    root = tmp_path_factory.mktemp("tiny")
    generate(root, clips=8, seed=0, size=(160, 120))
    (root / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def fixed_batch_loss(model, root):
    """Single-positive loss of the 8 clips' middle frames, BN on batch statistics, no gradient."""
    ds = VideoFolderDataset(root, "eval", AudioConfig(seconds=0.5), image_transform=partial(preprocess_image, size=112))
    batch = collate([ds[i] for i in range(len(ds))])
    model.train()
    with torch.no_grad():
        return ContrastiveLoss()(*model(batch["image"], batch["spectrogram"])).total.item()


def test_two_epochs_of_ssl_align_write_loadable_checkpoints_and_a_log(tiny, tmp_path):
    run = tmp_path / "run"
    assert main(["--data", str(tiny), "--out", str(run), "--epochs", "2", "--val", str(tiny), *FAST]) == 0

    last, best = load_model(run / "last.safetensors"), load_model(run / "best.safetensors")
    assert last.config.image_size == 112 and last.audio_config.seconds == 0.5
    assert isinstance(best, SSLModel)
    _, meta = read_safetensors(run / "last.safetensors")
    assert json.loads(meta["train_config"])["epochs"] == 2 and meta["step"] == "4"

    log = read_log(run)
    steps = [e for e in log if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert [e["neighbours"] for e in steps] == [False, False, True, True]  # the bank is filled after epoch 1
    assert [e["items"] for e in steps] == [8, 8, 12, 12]  # 4 originals + 4 augmented (+ 4 neighbours)
    assert all(e["loss"] > 0 and e["clips_per_s"] > 0 for e in steps)
    epochs = [e for e in log if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(0 <= e["val_ciou"] <= 100 and 0 <= e["val_a2i_r1"] <= 100 for e in epochs)
    assert log[-1]["event"] == "end" and log[-1]["best"]["key"] == "val_ciou"
    assert any("broken.mp4" in path for path, _ in log[0]["skipped"])
    assert "baseline" not in [e["event"] for e in log]  # a new model: no "before" to report


def test_fine_tuning_with_validation_first_reports_the_starting_model(tiny, tmp_path):
    torch.manual_seed(0)
    start = SSLModel(ModelConfig(image_size=112), AudioConfig(seconds=0.5))
    save_model(tmp_path / "init.safetensors", start)
    run = tmp_path / "run"
    assert main(["--data", str(tiny), "--out", str(run), "--epochs", "1", "--max-clips", "4", "--no-augment",
                 "--val", str(tiny), "--init", str(tmp_path / "init.safetensors"), *FAST]) == 0
    log = read_log(run)
    assert [e["event"] for e in log[:3]] == ["start", "baseline", "step"]
    val = VideoFolderDataset(tiny, "eval", AudioConfig(seconds=0.5), image_transform=partial(preprocess_image, size=112))
    expected = evaluate(load_model(tmp_path / "init.safetensors"), val, "cpu")
    assert log[1]["val_ciou"] == expected["ciou"] and log[1]["val_auc"] == expected["auc"]
    assert log[1]["val_a2i_r1"] == expected["retrieval"]["audio_to_image"]["r1"]


def test_best_metric_picks_the_epoch_by_that_validation_number(tiny, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(tiny), "--out", str(run), "--epochs", "2", "--val", str(tiny), "--loss", "ezvsl", *FAST]
    assert main([*args, "--best-metric", "a2i_r1"]) == 0
    epochs = [e for e in read_log(run) if e["event"] == "epoch"]
    best = read_log(run)[-1]["best"]
    assert best["key"] == "val_a2i_r1" and best["value"] == max(e["val_a2i_r1"] for e in epochs)
    assert best["epoch"] == max(epochs, key=lambda e: (e["val_a2i_r1"], -e["epoch"]))["epoch"]  # first of ties
    with pytest.raises(SystemExit):
        parse_args([*args, "--best-metric", "loss"])


def test_learning_rate_schedules():
    constant = [learning_rate(TrainConfig(lr=2.0), s, 10) for s in range(10)]
    assert constant == [2.0] * 10
    cosine = [learning_rate(TrainConfig(lr=1.0, schedule="cosine"), s, 100) for s in range(100)]
    assert cosine[0] == 1.0 and cosine[50] == pytest.approx(0.5) and cosine[99] < 1e-3
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    warm = [learning_rate(TrainConfig(lr=1.0, schedule="cosine", warmup_steps=4), s, 100) for s in range(5)]
    assert warm[:3] == pytest.approx([0.25, 0.5 * cosine[1], 0.75 * cosine[2]]) and warm[4] == cosine[4]


def test_the_logged_learning_rate_follows_the_schedule(tiny, tmp_path):
    run = tmp_path / "run"
    assert main(["--data", str(tiny), "--out", str(run), "--epochs", "2", "--loss", "ezvsl", "--lr", "1e-3",
                 "--schedule", "cosine", *FAST]) == 0
    lrs = [e["lr"] for e in read_log(run) if e["event"] == "step"]
    assert lrs == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)])


def test_two_epochs_lower_the_loss(tiny, tmp_path):
    """Four steps with augmentation barely move a random model; without it the drop is clear."""
    torch.manual_seed(0)
    save_model(tmp_path / "init.safetensors", SSLModel(ModelConfig(image_size=112), AudioConfig(seconds=0.5)))
    run = tmp_path / "run"
    assert main(["--data", str(tiny), "--out", str(run), "--epochs", "2", "--lr", "3e-4", "--no-augment",
                 "--no-neighbours", "--init", str(tmp_path / "init.safetensors"), *FAST]) == 0
    before = fixed_batch_loss(load_model(tmp_path / "init.safetensors"), tiny)
    after = fixed_batch_loss(load_model(run / "last.safetensors"), tiny)
    assert after < before - 0.05, (before, after)


def test_freeze_batch_norm_keeps_the_running_statistics_while_the_weights_train(tiny, tmp_path):
    torch.manual_seed(0)
    save_model(tmp_path / "init.safetensors", SSLModel(ModelConfig(image_size=112), AudioConfig(seconds=0.5)))
    start = load_model(tmp_path / "init.safetensors")
    ran = {}
    for flags in ([], ["--freeze-batch-norm"]):
        run = tmp_path / f"run{len(flags)}"
        assert main(["--data", str(tiny), "--out", str(run), "--epochs", "1", "--max-clips", "4", "--no-augment",
                     "--init", str(tmp_path / "init.safetensors"), *flags, *FAST]) == 0
        ran[bool(flags)] = load_model(run / "last.safetensors")
    for frozen, model in ran.items():
        bn, bn0 = model.audnet.bn1, start.audnet.bn1
        assert not torch.equal(model.audnet.conv1.weight, start.audnet.conv1.weight)  # the weights trained
        assert torch.equal(bn.running_mean, bn0.running_mean) == frozen  # the statistics only without the flag
        assert torch.equal(bn.running_var, bn0.running_var) == frozen


BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"
NO_SIZE = ["--device", "cpu", "--workers", "0", "--batch-size", "4"]


def test_fine_tuning_keeps_the_checkpoint_input_size(tiny, tmp_path):
    """--init on the bundled model without size flags trains the bundled model's input size, not the defaults."""
    bundled = load_model(BUNDLED)
    assert bundled.config != ModelConfig() and bundled.audio_config != AudioConfig()  # else the defaults would pass
    run = tmp_path / "run"
    assert main(["--data", str(tiny), "--out", str(run), "--epochs", "1", "--max-clips", "4", "--no-augment",
                 "--no-neighbours", "--init", str(BUNDLED), *NO_SIZE]) == 0
    tuned = load_model(run / "last.safetensors")
    assert tuned.config == bundled.config and tuned.audio_config == bundled.audio_config


def test_size_flags_that_contradict_the_checkpoint_are_refused(tiny, tmp_path, capsys):
    bundled = load_model(BUNDLED)
    wrong = str(bundled.config.image_size + 16)
    assert main(["--data", str(tiny), "--out", str(tmp_path / "a"), "--epochs", "1", "--init", str(BUNDLED),
                 "--image-size", wrong, *NO_SIZE]) == 2
    assert f"--image-size {wrong} conflicts" in capsys.readouterr().err
    assert not (tmp_path / "a" / "last.safetensors").exists()

    run = tmp_path / "run"
    args = ["--data", str(tiny), "--out", str(run), "--epochs", "1", "--max-clips", "4", "--no-augment", *FAST]
    assert main(args) == 0
    resume = ["--data", str(tiny), "--out", str(run), "--epochs", "2", "--no-augment", "--resume", *NO_SIZE]
    assert main([*resume, "--audio-seconds", "1.0"]) == 2
    assert "--audio-seconds 1.0 conflicts" in capsys.readouterr().err
    assert main(resume) == 0  # without the flags: the saved 112 px / 0.5 s
    resumed = load_model(run / "last.safetensors")
    assert (resumed.config.image_size, resumed.audio_config.seconds) == (112, 0.5)


class Interrupt(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step(self, step, metrics):
        if step == self.at_step:
            raise KeyboardInterrupt


def test_interrupt_saves_and_resume_continues_the_step_count(tiny, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(tiny), "--out", str(run), "--epochs", "2", "--no-augment", *FAST]
    trainer = Trainer(parse_args(args), [Interrupt(at_step=1)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    tensors, meta = read_safetensors(run / "last.state.safetensors")
    assert (meta["step"], meta["epoch"], meta["batch_in_epoch"]) == ("1", "0", "1")
    assert any(k.startswith("optimizer.") for k in tensors) and "rng.torch" in tensors
    assert int(tensors["bank.filled"].sum()) == 4  # the first 4 anchors' features

    assert main([*args, "--resume"]) == 0
    steps = [e for e in read_log(run) if e["event"] == "step"]
    assert [e["step"] for e in steps] == [2, 3, 4]  # the second batch of epoch 1, then epoch 2
    assert [e["neighbours"] for e in steps] == [False, True, True]
    _, meta = read_safetensors(run / "last.state.safetensors")
    assert (meta["step"], meta["epoch"]) == ("4", "2")
    assert main([*args, "--resume"]) == 0  # nothing left to do
    assert [e["step"] for e in read_log(run) if e["event"] == "step"] == [2, 3, 4]


def test_stop_is_cooperative_and_saves(tiny, tmp_path):
    class StopAtFirstStep(Callback):
        def on_step(self, step, metrics):
            trainer.stop()

        def on_checkpoint(self, path):
            saved.append(path)

    saved = []
    run = tmp_path / "run"
    config = parse_args(["--data", str(tiny), "--out", str(run), "--epochs", "3", "--loss", "ezvsl", *FAST])
    trainer = Trainer(config, [StopAtFirstStep()])
    summary = trainer.fit()
    assert summary["stopped"] and summary["step"] == 1 and not summary["interrupted"]
    assert saved == [str(run / "last.safetensors"), str(run / "last.state.safetensors")]
    assert load_model(run / "last.safetensors").config.image_size == 112


CHILD = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "  # as in a terminal
         "from model.train.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_real_signal_to_the_process_group_stops_after_the_step_and_saves(tiny, tmp_path, signum):
    """Like Ctrl-C in a terminal (or a scheduler's SIGTERM): the signal reaches ssl-train and its loader
    worker; training ends after the step, saves ``last`` and exits with 128 + the signal's number."""
    run = tmp_path / "run"
    args = ["--data", str(tiny), "--out", str(run), "--epochs", "50", "--loss", "ezvsl", *FAST, "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not ((run / "log.jsonl").is_file() and '"event": "step"' in (run / "log.jsonl").read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no training step within 180 s"
            time.sleep(0.2)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, err
    assert "stopping after this step" in err and "continue with --resume" in err
    end = read_log(run)[-1]
    assert end["event"] == "end" and end["stopped"] and not end["interrupted"] and end["step"] < 100
    _, meta = read_safetensors(run / "last.state.safetensors")
    assert int(meta["step"]) == end["step"]


FULL_DISK = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); "  # no file over 1 MB: no checkpoint
             "from model.train.cli import main, parse_args; from model.train.trainer import Trainer; "
             "sys.exit(main(sys.argv[2:])) if sys.argv[1] == 'main' else Trainer(parse_args(sys.argv[2:])).fit()")


@pytest.mark.parametrize("entry", ["main", "trainer"])
def test_an_error_with_loader_workers_running_exits_promptly(tiny, tmp_path, entry):
    """A checkpoint that cannot be written (a full disk; here a file size limit) while a DataLoader worker
    runs: ssl-train says so, and also an uncaught error ends the process (the workers ignore SIGTERM,
    with which multiprocessing ends them at exit)."""
    args = ["--data", str(tiny), "--out", str(tmp_path / "run"), "--epochs", "3", "--loss", "ezvsl", *FAST,
            "--workers", "1", "--max-clips", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", FULL_DISK, entry, *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "File too large" in err
    if entry == "main":
        assert proc.returncode == 2 and "ssl-train: error: cannot write" in err
    else:
        assert proc.returncode == 1 and "CheckpointError" in err
    assert not list((tmp_path / "run").glob("*.pending"))


def test_a_run_folder_is_never_overwritten_silently(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--data", str(tiny), "--out", str(run), "--epochs", "1", "--loss", "ezvsl", *FAST, "--max-clips", "4"]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(args) == 2
    held = "holds a run (last.safetensors, last.state.safetensors, best.safetensors, log.jsonl)"
    assert held in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert main([*args, "--overwrite"]) == 0
    assert [e["event"] for e in read_log(run)].count("start") == 1  # a new log, not the old one continued
    with pytest.raises(SystemExit):
        parse_args([*args, "--overwrite", "--resume"])


@pytest.mark.parametrize("change, message", [
    (["--out", "FILE"], "is a file, not a run folder"),
    (["--data", "MISSING"], "--data: data folder not found"),
    (["--init", "MISSING"], "--init: file not found"),
    (["--neighbour-features", "FILE"], "is not a safetensors file"),
])
def test_bad_arguments_are_named(tiny, tmp_path, capsys, change, message):
    (tmp_path / "FILE").write_bytes(pickle.dumps({"features": [[0.0]]}))  # a pickle: never unpickled
    args = {"--data": str(tiny), "--out": str(tmp_path / "run")}
    args.update({change[0]: str(tmp_path / change[1])})
    assert main([*(x for pair in args.items() for x in pair), "--epochs", "1", *FAST]) == 2
    assert message in capsys.readouterr().err


class FakeClips(torch.utils.data.Dataset):
    """Items like VideoFolderDataset's with a transform, image value = index."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"image": torch.full((3, 32, 32), float(i)), "spectrogram": torch.zeros(1, 257, 98),
                "index": i, "frame": torch.full((48, 64, 3), i, dtype=torch.uint8).numpy(),
                "waveform": torch.randn(16000)}


def test_batches_hold_anchor_augmented_and_neighbour_views():
    bank = FeatureBank(6, 2)
    bank.update(torch.arange(6), torch.tensor([[1.0, 0], [0, 1], [1, 0.1], [0.1, 1], [1, 0.2], [0.2, 1]]))
    sampler = ViewBatchSampler(DistributedSampler(range(6), 1, 0, shuffle=True, seed=0), 3, bank, k=1,
                               seed=0, rank=0)
    views = TrainViews(FakeClips(), 32, AudioConfig(seconds=1.0), augment=True)
    assert len(sampler) == 2
    sampler.use_neighbours = True
    requests = next(iter(sampler))
    batch = collate_views([views[r] for r in requests])
    anchors = [r[0] for r in requests[:3]]
    nearest = {0: 2, 1: 3, 2: 4, 3: 5, 4: 2, 5: 3}  # k=1: the most similar other clip
    assert batch["groups"].tolist() == [a for a in anchors for _ in (0, 1)] + anchors
    assert batch["clip_ids"].tolist() == [a for a in anchors for _ in (0, 1)] + [nearest[a] for a in anchors]
    assert batch["first"].tolist() == [True, False] * 3 + [False] * 3
    assert batch["images"].shape == (9, 3, 32, 32) and batch["specs"].shape[0] == 9
    assert batch["images"][0].eq(anchors[0]).all()  # the original view is the dataset's image

    sampler.skip = 1  # resume after the first batch: only the second is produced
    assert [len(b) for b in sampler] == [6]


def test_weak_views_stay_closer_to_the_clip_than_the_papers():
    """--views weak reaches the views; its sound view is nearer the original spectrogram than the paper's."""
    assert parse_args(["--data", "d", "--out", "o", "--views", "weak"]).views == "weak"
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--out", "o", "--views", "strong"])
    audio = AudioConfig(seconds=1.0)
    clips = FakeClips()
    torch.manual_seed(0)
    waveform = torch.sin(torch.arange(16000) * 0.05) * (torch.arange(16000) % 4000 < 2000)  # a tone in bursts
    original = spectrogram(waveform, audio)
    distance = {}
    for name in ("paper", "weak"):
        views = TrainViews(clips, 32, audio, augment=True, strength=VIEW_STRENGTHS[name])
        assert views.image_augment is not None and views.audio_augment.config is VIEW_STRENGTHS[name]
        distance[name] = sum(float((views.audio_augment(waveform) - original).abs().mean()) for _ in range(30))
    assert distance["weak"] < 0.7 * distance["paper"], distance


def test_optimizer_state_round_trip():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_tensors(opt)
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(optimizer_state(tensors, meta))
    a, b = opt.state_dict(), fresh.state_dict()
    assert b["param_groups"][0]["lr"] == 1e-3
    for pid in a["state"]:
        for name, value in a["state"][pid].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["state"][pid][name]))


def test_image_init_loads_a_torchvision_resnet18(tmp_path):
    weights = torchvision.models.resnet18().state_dict()
    torch.save(weights, tmp_path / "resnet18.pth")
    model = SSLModel()
    load_image_init(model, tmp_path / "resnet18.pth")
    assert torch.equal(model.imgnet.layer4[1].conv2.weight, weights["layer4.1.conv2.weight"])
    with pytest.raises(CheckpointError, match="not found"):
        load_image_init(model, tmp_path / "missing.pth")
    torch.save({"conv1.weight": torch.zeros(2)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError):
        load_image_init(model, tmp_path / "bad.pth")


def test_missing_image_init_is_a_clear_command_line_error(tiny, tmp_path, capsys):
    code = main(["--data", str(tiny), "--out", str(tmp_path / "run"), "--image-init", str(tmp_path / "r18.pth"), *FAST])
    assert code == 2
    assert "ImageNet ResNet-18 weights not found" in capsys.readouterr().err


def test_flags_fill_the_config():
    c = parse_args(["--data", "d", "--out", "o", "--no-neighbours", "--no-augment", "--neighbours-k", "7",
                    "--workers", "0", "--cache", "c", "--max-clips", "5", "--loss", "ezvsl", "--resume"])
    assert (c.neighbours, c.augment, c.neighbours_k, c.workers, c.cache, c.max_clips, c.loss, c.resume) == (
        False, False, 7, 0, "c", 5, "ezvsl", True)
    assert TrainConfig(loss="ezvsl").uses_augment is False
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--out", "o", "--image-size", "100"])


@pytest.mark.parametrize("argv", [
    ["--data", "d", "--out", "o"],
    ["--data", "d", "--out", "o", "--val", "v", "--best-metric", "auc", "--init", "i.safetensors", "--epochs", "3",
     "--lr", "2e-05", "--batch-size", "8", "--device", "cpu", "--workers", "0", "--threads", "1",
     "--freeze-batch-norm", "--no-augment", "--no-neighbours", "--positives", "both", "--audio-seconds", "0.5",
     "--cache", "c", "--cache-visual-maps", "64", "--freeze-visual", "early", "--visual-backbone",
     "efficientnet_lite0", "--schedule", "cosine", "--warmup-steps", "5", "--max-clips", "7", "--resume"],
])
def test_a_config_gives_back_its_command_line(argv):
    """argv -> config -> argv -> the same config: the fine-tune panel writes its command from a TrainConfig."""
    config = parse_args(argv)
    again = config_argv(config)
    assert parse_args(again) == config
    assert again == config_argv(parse_args(again))
    assert sorted(again) == sorted(argv)  # no default written, no flag lost


@pytest.mark.parametrize("change, message", [
    ({"loss": "other"}, "--loss must be one of align, ezvsl, not 'other'"),
    ({"views": "strong"}, "--views must be one of paper, weak, not 'strong'"),
    ({"image_size": 100}, "--image-size must be a multiple of 16 and >= 32, not 100"),
    ({"temperature": math.nan}, "--temperature must be a number > 0, not nan"),
    ({"audio_seconds": 0.0}, "--audio-seconds must be a number > 0, not 0.0"),
    ({"batch_size": 0}, "--epochs, --batch-size and --neighbours-k must be >= 1"),
    ({"init": "m", "audio_init": "yamnet"}, "use --init (a whole model) or --image-init / --audio-init"),
    ({"visual_cache_mb": 8, "freeze_visual": "all"}, "--cache-visual-maps needs a frozen backbone"),
])
def test_each_rule_names_its_flag(change, message):
    TrainConfig().validate()
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**change).validate()


def saved_step(path) -> str:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()["step"]


def save_killed_at(trainer, point: int, half_written: bool) -> str:
    """Fork; the child saves the trainer's next ``last``/``state``/``best`` and SIGKILLs itself before
    file operation ``point`` of the save (or, with ``half_written``, inside that write, leaving half the
    file). Returns "killed", "done" (the save ended before the point) or "skipped" (no write there).
    The disk cache outlives a killed process: the child skips fsync (a kill point all the same)."""
    pid = os.fork()
    if pid == 0:
        try:
            import pathlib

            import model.checkpoints.store as ckpt
            count = iter(range(10**6))

            def arm(owner, name):
                real = getattr(owner, name) if name != "_fsync" else (lambda path: None)

                def op(*args, **kwargs):
                    if next(count) == point:
                        if half_written and name != "save_file":
                            os._exit(3)  # nothing written at this point: the same as without half_written
                        if half_written:
                            real(*args, **kwargs)
                            os.truncate(args[1], os.path.getsize(args[1]) // 2)
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)
                setattr(owner, name, op)

            for owner, name in [(ckpt, "save_file"), (ckpt, "_fsync"), (ckpt.os, "replace"),
                                (pathlib.Path, "unlink"), (pathlib.Path, "write_text")]:
                arm(owner, name)
            trainer.step += 1
            trainer._save_last({"epoch": 2}, best=True)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return {0: "done", 3: "skipped"}[os.WEXITSTATUS(status)] if os.WIFEXITED(status) else "killed"


def test_a_kill_at_any_point_of_a_save_leaves_a_complete_resumable_set(tiny, tmp_path):
    """SIGKILL at each file operation of a save (and inside each file's write): the run folder always
    holds last, state and best of one save, the old or the new, and nothing else once ``--resume``
    (or any next start) has looked at it."""
    args = ["--data", str(tiny), "--epochs", "1", "--loss", "ezvsl", *FAST, "--max-clips", "4"]
    trainer = Trainer(parse_args([*args, "--out", str(tmp_path / "first")]))
    trainer._save_last({"epoch": 1}, best=True)  # the previous save: step 0
    names = {"last.safetensors", "last.state.safetensors", "best.safetensors"}
    outcomes = []
    run = None
    for point in range(40):
        for half_written in (False, True):
            if run is not None:  # checked: free its ~90 MB before the next (80 saves would take 7 GB)
                shutil.rmtree(run)
            run = tmp_path / f"kill{point}{'h' * half_written}"
            run.mkdir()
            for name in names:  # saves rename, never write in place: links are copies here
                os.link(trainer.out / name, run / name)
            trainer.out = run
            result = save_killed_at(trainer, point, half_written)
            trainer.out = tmp_path / "first"
            if result == "skipped":
                continue
            resumed = Trainer(parse_args([*args, "--out", str(run), "--resume"]))  # raises if not resumable
            assert {p.name for p in run.iterdir()} == names, (point, half_written)
            steps = {name: saved_step(run / name) for name in names}
            assert len(set(steps.values())) == 1, (point, half_written, steps)  # one save, all three
            assert resumed.step == int(steps["last.safetensors"])
            outcomes.append(steps["last.safetensors"])
        if result == "done":
            break
    assert result == "done" and {"0", "1"} <= set(outcomes), outcomes  # every point tried; old and new seen
    assert main([*args, "--out", str(run), "--resume", "--epochs", "2"]) == 0  # and training goes on
