"""Every command and code block of README.md, docs/USAGE.md and docs/TRAINING.md is run, so the docs cannot drift
from the project.

Cheap commands run as written; long ones run with a tiny input (two synthetic clips, one demo clip, an
app that saves a snapshot after its first heatmap) or with ``--help``, and every option the docs
give them must be one they accept. ``.venv/bin/python X`` and ``.venv/bin/ssl-*`` become calls of the
``main(argv)`` of X and of the modules the project's console scripts name, in this process (the
interpreter and its imports are then paid once); ``make`` targets run dry (``make -n``), and the options of
``make run ARGS="..."`` are given to the app's ``main(argv)`` as well.
"""
from __future__ import annotations

import re
import shlex
import importlib
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMAND_DOCS = [ROOT / "README.md", ROOT / "docs" / "USAGE.md", ROOT / "docs" / "TRAINING.md"]
README = "\n".join(doc.read_text() for doc in COMMAND_DOCS)  # the user's commands, wherever the docs put them
DEMO_CLIPS = sorted((ROOT / "resources" / "demo" / "videos").glob("*.mp4"))
BUNDLED_MODEL = ROOT / "resources" / "model.safetensors"
SAMPLE = ROOT / "tests" / "data" / "real_sample"  # a few Tux Paint stamps: real content without `make assets`
SAMPLE_ASSETS = ["--assets", str(SAMPLE), "--manifest", str(SAMPLE / "manifest.json")]
SCRIPTS = dict(re.findall(r'^(ssl-[\w-]+) = "([\w.]+):main"$', (ROOT / "pyproject.toml").read_text(), re.M))
INLINE_COMMAND = re.compile(r"`((?:\.venv/bin/|make |tools/|bench/\S+\.sh|source )[^`]*)`")
TIMEOUT_S = 300
SUBCOMMAND_MODULES = ("model.evaluation.calibrate",)  # `python -m MODULE COMMAND --options`


def fenced_blocks(language: str) -> list[str]:
    return [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S) if lang == language]


def readme_commands() -> list[str]:
    """The shell commands of the README: each line of its bash blocks (continuations joined), then the
    commands quoted inline."""
    commands = []
    for block in fenced_blocks("bash"):
        commands += [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    inline = [m.group(1) for m in INLINE_COMMAND.finditer(README)]
    commands += [c for c in inline if c != ".venv/bin/python" and "*" not in c]  # not names of commands
    return list(dict.fromkeys(commands))


def run(argv) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, f"{shlex.join(map(str, argv))}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result


def options(argv) -> list[str]:
    return [a.split("=")[0] for a in argv if a.startswith("--")]


def main_of(module: str):
    return importlib.import_module(module).main


def assert_accepted(module: str, readme_argv, capsys, command=()) -> None:
    """``--help`` (of the subcommand ``command``, if any) works and lists every option the README command uses."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main_of(module)([*command, "--help"])
    shown = capsys.readouterr().out
    assert exited.value.code == 0 and shown.startswith("usage:")
    for option in options(readme_argv):
        assert option in shown, f"{option} of the README is not an option of {module}"


def replace_option(argv, option, value) -> list[str]:
    argv = list(argv)
    if option in argv:
        argv[argv.index(option) + 1] = str(value)
    else:
        argv += [option, str(value)]
    return argv


def run_app(args, tmp_path) -> None:
    """The app with the README's options on real files, saving a snapshot after its first heatmap."""
    stand_ins = {"street.mp4": DEMO_CLIPS[0], "a.mp4": DEMO_CLIPS[0], "b.mp4": DEMO_CLIPS[1],
                 "my.safetensors": BUNDLED_MODEL, "resources/ssl_align.safetensors": BUNDLED_MODEL}
    args = [str(stand_ins.get(a, a)) for a in args]
    args = replace_option(replace_option(args, "--snapshot", tmp_path / "shot.png"), "--after", 1)
    assert main_of("ssl_desktop.app")(args) == 0
    assert (tmp_path / "shot.png").stat().st_size > 10000


def run_command(command: str, tmp_path, capsys) -> None:
    argv = shlex.split(command, comments=True)
    program, args = argv[0], argv[1:]
    if program == "make":
        dry = run(["make", "-n", *args]).stdout
        if args[0] == "run":
            assert "tools/check_system.sh" in dry and "main.py" in dry
            app_args = shlex.split(next((a.removeprefix("ARGS=") for a in args if a.startswith("ARGS=")), ""))
            if "--help" in app_args:
                assert_accepted("ssl_desktop.app", [], capsys)
            elif app_args:  # the app with these options
                run_app(app_args, tmp_path)
    elif program == "source":
        assert args == [".venv/bin/activate"]  # made by `python -m venv`, which the Makefile runs
        assert "-m venv $(VENV)" in (ROOT / "Makefile").read_text()
    elif program == "tools/check_system.sh":
        result = subprocess.run([program], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode in (0, 1) and ("all found" in result.stdout or "apt-get install" in result.stdout)
    elif program.endswith(".sh"):
        run(["bash", "-n", program])
    elif program == ".venv/bin/python" and args[0] == "main.py":
        run_app(args[1:], tmp_path)
    elif program == ".venv/bin/python" and args[0] == "-m":
        assert_accepted(args[1], args, capsys, args[2:3] if args[1] in SUBCOMMAND_MODULES else ())
    elif program == ".venv/bin/python" and args[0] == "tools/make_bridge.py":  # needs WordNet: its help only
        assert run([sys.executable, args[0], "--help"]).stdout.startswith("usage:")
    elif program == ".venv/bin/python" and args[0] == "bench/make_demo_clips.py":
        script = runpy.run_path(str(ROOT / args[0]))  # bench/ is a folder of scripts, not a package
        assert script["main"](["--out", str(tmp_path / "demo"), "--clips", "1", *SAMPLE_ASSETS]) == 0
        assert len(list((tmp_path / "demo" / "videos").glob("*.mp4"))) == 1
    elif program == ".venv/bin/ssl-synth":
        out = tmp_path / "synth"
        real = SAMPLE_ASSETS if "real" in args else []  # the checked-in sample stands in for `make assets`
        assert main_of(SCRIPTS["ssl-synth"])([str(out), *replace_option(args[1:], "--clips", 2), *real]) in (0, None)
        assert len(list((out / "videos").glob("*.mp4"))) == 2
    elif program.startswith(".venv/bin/ssl-"):
        assert_accepted(SCRIPTS[program.removeprefix(".venv/bin/")], args, capsys)
    else:
        pytest.fail(f"the README's command {command!r} is not covered by this test")


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command(command, tmp_path, monkeypatch, capsys, qapp):
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the repository
    run_command(command, tmp_path, capsys)


def test_readme_lists_the_commands_it_should():
    commands = readme_commands()
    assert any(c.startswith('make run ARGS="--') for c in commands)  # the app on its runtime, GPU or not
    assert not [c for c in commands if c.startswith(("python ", "python3 "))]  # the venv's python, always


def test_model_api_block_runs_on_the_bundled_model(monkeypatch):
    (block,) = fenced_blocks("python")
    rng = np.random.default_rng(0)
    namespace = {"waveform_16k_mono": (0.1 * rng.standard_normal(16000)).astype(np.float32),
                 "rgb_uint8_frame": rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
                 "frame_h": 240, "frame_w": 320}
    monkeypatch.chdir(ROOT)  # the block's paths are relative to the repository, like the commands
    exec(compile(block, "docs/TRAINING.md", "exec"), namespace)
    assert tuple(namespace["heat"].shape) == (240, 320)
    assert namespace["a"].shape == namespace["v"].shape == (1, 512)


def test_every_console_script_module_has_a_main():
    assert shutil.which("make"), "the README's commands need make"
    for module in SCRIPTS.values():
        assert callable(__import__(module, fromlist=["main"]).main)
