"""The second fault probe: no NaN saved, no user file deleted, no failed write reported as success, and a
one-line message instead of a traceback (docs/RELIABILITY.md lists each case with its test here)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
import torch
import torchvision
from safetensors.torch import save_file

from model import load_model
from model.checkpoints.store import (CheckpointError, model_tensors, read_safetensors, write_safetensors_atomic,
                                     write_together)
from model.data.annotations import AnnotationError, load_is3
from model.evaluation.evaluate import main as evaluate
from model.gallery.index import index_path, load_or_build_gallery
from model.synth.generator import N_FRAMES
from model.synth.generator import main as synth
from model.train.cli import main as train

FAST = ["--image-size", "112", "--audio-seconds", "0.5", "--device", "cpu", "--workers", "0", "--batch-size", "4"]
RUN_NAMES = {"last.safetensors", "last.state.safetensors", "best.safetensors", "log.jsonl"}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A training folder of nothing but a broken clip."""
    root = tmp_path_factory.mktemp("broken")
    (root / "videos").mkdir()
    (root / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def train_args(data, out, *more):
    return ["--data", str(data), "--out", str(out), "--epochs", "1", "--loss", "ezvsl", *FAST, "--max-clips", "4",
            *more]


def test_overwrite_reads_the_init_first_and_never_deletes_it(train_clips, broken, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(train_args(train_clips, run)) == 0
    before = contents(run)
    init = ["--init", str(run / "best.safetensors"), "--overwrite"]
    assert train(train_args(broken, run, *init)) == 2  # fails after the init is read: nothing deleted
    assert "no readable clips" in capsys.readouterr().err
    assert contents(run) == before
    assert train(train_args(train_clips, run, *init)) == 0  # the run's own best fine-tuned into its folder
    assert {p.name for p in run.iterdir()} == RUN_NAMES
    log = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert log.count("start") == 1


def decodes_whole(path) -> bool:
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0)) == N_FRAMES
    except av.error.FFmpegError:
        return False


def test_synth_overwrite_deletes_only_its_own_files(tmp_path, capsys):
    out = tmp_path / "bench"
    assert synth([str(out), "--clips", "2", "--size", "96x64", "--seed", "1"]) == 0
    (out / "videos" / "holiday.mp4").write_bytes(b"the user's own clip")
    (out / "videos" / "notes.txt").write_text("mine")
    (out / "videos" / "s7_00003.mp4.tmp").write_bytes(b"half a clip of a killed run")
    assert synth([str(out), "--clips", "1", "--size", "96x64", "--seed", "2", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["holiday.mp4", "notes.txt", "s2_00000.mp4"]
    assert (out / "videos" / "holiday.mp4").read_bytes() == b"the user's own clip"


def test_a_killed_synth_leaves_no_half_clip_under_its_final_name(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.Popen([sys.executable, "-m", "model.synth", str(out), "--clips", "30", "--size", "320x240"],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "videos").glob("*"))) < 3:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    finals = sorted((out / "videos").glob("*.mp4"))
    assert finals and all(decodes_whole(p) for p in finals), [p.name for p in finals if not decodes_whole(p)]
    assert synth([str(out), "--clips", "1", "--size", "96x64", "--overwrite"]) == 0
    assert [p.name for p in (out / "videos").iterdir()] == ["s0_00000.mp4"]  # the killed run's files are gone


def test_a_loss_that_becomes_nan_stops_training_and_keeps_the_last_good_save(train_clips, tmp_path, capsys):
    run = tmp_path / "run"
    args = train_args(train_clips, run, "--max-clips", "8")  # two steps an epoch
    assert train(args) == 0
    saved = {name: (run / name).read_bytes() for name in RUN_NAMES - {"log.jsonl"}}
    assert train([*args, "--resume", "--epochs", "3", "--lr", "1e30"]) == 2
    err = capsys.readouterr().err
    assert "ssl-train: error: the loss is nan" in err and "training stopped" in err and "Traceback" not in err
    assert {name: (run / name).read_bytes() for name in saved} == saved
    assert train([*args, "--resume", "--epochs", "2"]) == 0  # the run goes on from its last good save


def test_every_writer_of_weights_refuses_nan(tmp_path, tiny_model):
    tensors, metadata = model_tensors(tiny_model)
    tensors["imgnet.conv1.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"cannot write .*a\.safetensors: NaN or infinite weights in imgnet"):
        write_safetensors_atomic(tmp_path / "a.safetensors", tensors, metadata)
    with pytest.raises(CheckpointError, match="NaN or infinite weights in imgnet.conv1.weight"):
        write_together(tmp_path / "run", {"last.safetensors": (tensors, metadata)})
    assert not (tmp_path / "a.safetensors").exists() and not list((tmp_path / "run").glob("*"))


def test_image_init_with_nan_weights_is_refused(train_clips, tmp_path, capsys):
    weights = torchvision.models.resnet18().state_dict()
    weights["layer1.0.conv1.weight"][0] = float("nan")
    torch.save(weights, tmp_path / "nan.pth")
    run = tmp_path / "run"
    assert train(train_args(train_clips, run, "--image-init", str(tmp_path / "nan.pth"))) == 2
    assert "NaN or infinite weights in layer1.0.conv1.weight" in capsys.readouterr().err
    assert not run.exists()


def test_a_report_that_cannot_be_written_is_exit_2_never_0(train_clips, checkpoint, tmp_path, capsys):
    out = tmp_path / "report"
    (out / "success.png").mkdir(parents=True)  # the plot cannot be written there (as on a full disk)
    assert evaluate(["--data", str(train_clips), "--checkpoint", str(checkpoint), "--out", str(out),
                     "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssl-eval: error: ") and len(err.splitlines()) == 1
    assert not (out / "metrics.json").exists()


def test_synth_into_a_path_under_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("a file where a folder is needed")
    assert synth([str(tmp_path / "file" / "bench"), "--clips", "1", "--size", "96x64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssl-synth: cannot write") and len(err.splitlines()) == 1


def killed_inside_safetensors_write(folder) -> None:
    """Fork; the child starts a save into ``folder`` and SIGKILLs itself once safetensors' own temporary
    file (``.tmpXXXXXX``) is there, as a kill during a checkpoint write leaves it."""
    pid = os.fork()
    if pid == 0:
        try:
            def kill_when_written():
                while not list(folder.glob(".tmp*")):
                    time.sleep(0.001)
                os.kill(os.getpid(), signal.SIGKILL)
            threading.Thread(target=kill_when_written, daemon=True).start()
            write_together(folder, {"last.safetensors": ({"w": torch.zeros(50_000_000)}, {})})
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def test_the_next_start_removes_every_temporary_of_a_killed_save(train_clips, tmp_path):
    run = tmp_path / "run"
    assert train(train_args(train_clips, run)) == 0
    killed_inside_safetensors_write(run)
    assert list(run.glob(".tmp*"))  # what the kill left
    assert train(train_args(train_clips, run, "--resume", "--epochs", "2")) == 0
    assert {p.name for p in run.iterdir()} == RUN_NAMES


@pytest.mark.parametrize("audio", ["../../../../etc/passwd", "audio/../../outside.wav"])
def test_is3_paths_that_lead_out_of_the_data_folder_are_refused(tmp_path, audio):
    entries = [{"image": "frames/s1.jpg", "audio": audio, "gt_box": [0, 0, 10, 10]}]
    (tmp_path / "is3_annotations.json").write_text(json.dumps(entries))
    with pytest.raises(AnnotationError, match=r"entry 0 \(frames/s1.jpg\): .* leads outside the data folder"):
        load_is3(tmp_path / "is3_annotations.json")


def test_an_absolute_is3_path_outside_the_data_folder_is_not_followed(tmp_path):
    entries = [{"image": "/etc/hostname", "audio": "/etc/passwd", "gt_box": [0, 0, 10, 10]}]  # files that exist
    (tmp_path / "is3_annotations.json").write_text(json.dumps(entries))
    sample = load_is3(tmp_path / "is3_annotations.json")[0]
    assert (sample.image, sample.audio) == (tmp_path / "etc" / "hostname", tmp_path / "etc" / "passwd")


@pytest.mark.parametrize("mask, says", [
    (7, "a file name must be a string, not 7"),
    (["../../../etc/passwd"], "'../../../etc/passwd' leads outside the data folder"),
])
def test_a_bad_mask_entry_is_one_line_naming_it(train_clips, checkpoint, tmp_path, capsys, mask, says):
    data = tmp_path / "data"
    shutil.copytree(train_clips, data)
    annotations = json.loads((data / "annotations.json").read_text())
    annotations[0]["mask"] = mask
    (data / "annotations.json").write_text(json.dumps(annotations))
    args = ["--data", str(data), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "r"), "--device", "cpu"]
    assert evaluate(args) == 2
    err = capsys.readouterr().err
    assert f"mask of {annotations[0]['file']}: {says}" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("size", ["65536x65536", "99999999999x99999999999"])
def test_an_absurd_window_size_is_refused_before_the_window(capsys, size):
    from ssl_desktop.app import parse_args
    with pytest.raises(SystemExit) as exited:
        parse_args(["--size", size])
    assert exited.value.code == 2 and f"{size} is larger than" in capsys.readouterr().err


def test_an_absurd_synth_size_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        synth([str(tmp_path / "bench"), "--size", "65536x65536"])
    assert exited.value.code == 2 and "from 64 to 4096" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("flag, value, says", [
    ("--image-size", "65536", "image_size must be a multiple of 16 within [32, 1024], not 65536"),
    ("--audio-seconds", "0.02", "seconds 0.02 at 16000 Hz gives 0 spectrogram frames"),
])
def test_an_absurd_input_size_for_training_is_one_line(train_clips, tmp_path, capsys, flag, value, says):
    args = {"--data": str(train_clips), "--out": str(tmp_path / "run"), "--device": "cpu", "--workers": "0",
            flag: value}
    assert train([x for pair in args.items() for x in pair]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.splitlines()) == 1


class MakesMarker:
    """Unpickling this runs ``os.mkdir(marker)``: a stand-in for weights that carry code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("flags", [["--image-init"], ["--visual-backbone", "efficientnet_lite0", "--image-init"],
                                   ["--audio-backbone", "aisfx", "--audio-init"]])
def test_init_weights_that_carry_code_are_refused_in_one_line(train_clips, tmp_path, capsys, flags):
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "hook": MakesMarker(tmp_path / "MARKER")}, evil)
    assert train(train_args(train_clips, tmp_path / "run", *flags, str(evil))) == 2
    err = capsys.readouterr().err
    assert "It was refused and nothing in it was executed" in err and len(err.splitlines()) == 1
    assert "weights_only" not in err and not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("content", [[1, 2], torch.zeros(3)])
def test_image_init_that_is_not_a_state_dict_is_one_line(train_clips, tmp_path, capsys, content):
    torch.save(content, tmp_path / "odd.pth")
    assert train(train_args(train_clips, tmp_path / "run", "--image-init", str(tmp_path / "odd.pth"))) == 2
    err = capsys.readouterr().err
    assert "not a ResNet-18 state dict of tensors" in err and len(err.splitlines()) == 1


def faststart_cut(source, target) -> None:
    """``source`` remuxed with its index first (faststart), cut 2 kB into its media data: it probes well,
    and every read of its frames fails."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    data = Path(target).read_bytes()
    Path(target).write_bytes(data[:data.find(b"mdat") + 2000])


@pytest.mark.parametrize("workers", ["0", "1"])
def test_training_on_only_clips_that_fail_while_reading_is_one_line(train_clips, tmp_path, workers):
    data = tmp_path / "cut"
    (data / "videos").mkdir(parents=True)
    for source in sorted((train_clips / "videos").glob("*.mp4"))[:2]:
        faststart_cut(source, data / "videos" / source.name)
    args = [*train_args(data, tmp_path / "run", "--batch-size", "2"), "--workers", workers]
    proc = subprocess.run([sys.executable, "-m", "model.train.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "ssl-train: error: no readable clip in" in proc.stderr and "every one failed while reading" in proc.stderr
    assert "Traceback" not in proc.stderr and "Original" not in proc.stderr


@pytest.mark.parametrize("tamper", ["other_width", "nan"])
def test_a_gallery_index_that_does_not_fit_the_model_is_rebuilt(train_clips, checkpoint, tmp_path, tamper):
    folder = tmp_path / "gallery"
    shutil.copytree(train_clips / "videos", folder, ignore=shutil.ignore_patterns("s0_0000[2-7].mp4"))
    model = load_model(checkpoint)
    first = load_or_build_gallery(folder, model)
    tensors, metadata = read_safetensors(index_path(folder))
    if tamper == "other_width":  # the model's fingerprint kept: only the tensors lie
        tensors["image_emb"], tensors["audio_emb"] = torch.ones(len(first), 8), torch.ones(len(first), 8)
    else:
        tensors["audio_emb"][0, 0] = float("nan")
    save_file(tensors, str(index_path(folder)), metadata=metadata)
    gallery = load_or_build_gallery(folder, model)
    assert torch.equal(gallery.image_emb, first.image_emb) and torch.equal(gallery.audio_emb, first.audio_emb)
    assert [m.index for m in gallery.sounds_for_image(first.image_emb[0], 2)][0] in (0, 1)
    assert torch.equal(read_safetensors(index_path(folder))[0]["audio_emb"], first.audio_emb)  # saved again


@pytest.mark.parametrize("workers", ["0", "1"])
def test_an_is3_set_with_an_unreadable_wav_is_one_line_naming_it(checkpoint, tmp_path, capsys, workers):
    data = tmp_path / "is3"
    assert synth([str(data), "--clips", "1", "--size", "96x64", "--sources", "2"]) == 0
    wav = sorted((data / "audio").glob("*.wav"))[0]
    wav.write_bytes(b"RIFF but not a wav at all")
    args = ["--data", str(data), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "r"), "--device", "cpu",
            "--workers", workers]
    capsys.readouterr()
    assert evaluate(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ssl-eval: error: {wav}: ") and "needs every file" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("change, says", [
    ({"batch_in_epoch": "x"}, "last.state.safetensors: batch_in_epoch must be a whole number >= 0, not 'x'"),
    ({"best": "{not json"}, "last.state.safetensors: cannot resume from it (JSONDecodeError"),
    ({"optimizer_param_groups": "[]"}, "last.state.safetensors: cannot resume from it (ValueError"),
])
def test_a_bad_resume_state_names_the_file_and_the_field(train_clips, tmp_path, capsys, change, says):
    run = tmp_path / "run"
    assert train(train_args(train_clips, run)) == 0
    tensors, metadata = read_safetensors(run / "last.state.safetensors")
    save_file(tensors, str(run / "last.state.safetensors"), metadata={**metadata, **change})
    capsys.readouterr()
    assert train(train_args(train_clips, run, "--resume", "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.splitlines()) == 1


def test_a_full_disk_while_writing_the_report_is_exit_2(train_clips, checkpoint, tmp_path):
    full_disk = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                 "resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)); "  # no file over 16 kB: no plot
                 "from model.evaluation.evaluate import main; sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-c", full_disk, "--data", str(train_clips), "--checkpoint", str(checkpoint),
                           "--out", str(out), "--device", "cpu"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "ssl-eval: error: " in proc.stderr and "File too large" in proc.stderr
    assert not (out / "metrics.json").exists() and not list(out.glob("*.tmp"))
