"""The app's options are all checked before a window opens: a bad one is a message and exit status 2."""
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_desktop.app import live_inference, parse_args
from ssl_desktop.live_sources import demo_clips
from ssl_desktop.main_window import MainWindow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv, says", [
    (["--size", "big"], "'big' is not WIDTHxHEIGHT"),
    (["--size", "100x50"], "smaller than"),
    (["--open", "missing.mp4"], "missing.mp4: no such file"),
    (["--checkpoint", "missing.safetensors"], "missing.safetensors: no such file"),
    (["--gallery", "no/such/folder"], "no/such/folder: no such folder"),
    (["--gallery", "README.md"], "README.md: is a file, not a folder"),
    (["--source", "nothing.mp4"], "nothing.mp4: no such file"),
    (["--source", "resources"], "resources: is a folder"),
    (["--after", "0"], "'0' is not a positive whole number"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--snapshot", "out.txt"], "give a .png"),
])
def test_a_bad_option_exits_2_with_a_message(argv, says, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert says in error and error.startswith("usage: ssl-desktop")


def test_good_options_parse(monkeypatch):
    monkeypatch.chdir(ROOT)
    args = parse_args(["--size", "1024x640", "--source", "demo", "--open", "README.md", "--gallery", "resources"])
    assert args.size == (1024, 640) and args.source == "demo" and args.open == [Path("README.md")]


def test_size_big_from_the_command_line_is_one_message_not_a_traceback():
    result = subprocess.run([sys.executable, "main.py", "--size", "big"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "'big' is not WIDTHxHEIGHT" in result.stderr and "Traceback" not in result.stderr


def test_int8_reaches_the_live_worker_only(qtbot):
    """``--int8``: the live view's worker quantizes its visual encoder on the demo clips; the inspector stays
    float32 (it is the place to read maps exactly)."""
    assert live_inference(parse_args([])).int8_calibration == ()
    window = MainWindow("cpu", live_inference(parse_args(["--int8"])))
    qtbot.addWidget(window)
    assert window.pipeline.worker.inference.int8_calibration == tuple(str(path) for path in demo_clips())
    assert len(demo_clips()) > 0 and window.inspector.worker.inference.int8_calibration == ()
    window.close()


def test_int8_without_the_demo_clips_is_a_message(monkeypatch, capsys):
    monkeypatch.setattr("ssl_desktop.app.demo_clips", lambda: [])
    with pytest.raises(SystemExit) as exited:
        parse_args(["--int8"])
    assert exited.value.code == 2 and "--int8 calibrates on the bundled demo clips" in capsys.readouterr().err


def test_main_py_outside_its_environment_is_one_line_and_exit_2():
    """``python3 main.py`` with a Python that lacks the app's packages (here: this one without its site-packages)."""
    result = subprocess.run([sys.executable, "-S", "main.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "make run" in lines[0] and "has no " in lines[0] and "Traceback" not in lines[0]
