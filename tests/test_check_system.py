"""tools/check_system.sh: the one apt-get line for the system libraries that are missing."""
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "check_system.sh"
ALL_BUT_THREE = """\tlibxcb-cursor.so.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0
\tlibxcb-image.so.0 (libc6,x86-64) => /x
\tlibxcb-randr.so.0 (libc6,x86-64) => /x
\tlibxcb-render-util.so.0 (libc6,x86-64) => /x
\tlibxcb-shape.so.0 (libc6,x86-64) => /x
\tlibxcb-xkb.so.1 (libc6,x86-64) => /x
\tlibxkbcommon-x11.so.0 (libc6,x86-64) => /x
\tlibX11-xcb.so.1 (libc6,x86-64) => /x
\tlibxkbcommon.so.0 (libc6,x86-64) => /x
\tlibEGL.so.1 (libc6,x86-64) => /x
\tlibGL.so.1 (libc6,x86-64) => /x
\tlibfontconfig.so.1 (libc6,x86-64) => /x
\tlibdbus-1.so.3 (libc6,x86-64) => /x
\tlibxcb-icccm.so.4.0.0 (libc6,x86-64) => /x
"""


def check(tmp_path, listing: str, **env) -> subprocess.CompletedProcess:
    """Run the script with a fake ``ldconfig -p`` that lists ``listing``."""
    fake = tmp_path / "ldconfig"
    fake.write_text(f"#!/bin/sh\ncat <<'END'\n{listing}END\n")
    fake.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # a desktop unless told
    environment.update(PATH=f"{tmp_path}:{os.environ['PATH']}", **env)
    return subprocess.run([str(SCRIPT)], env=environment, capture_output=True, text=True)


def test_names_every_missing_library_in_one_apt_get_line(tmp_path):
    result = check(tmp_path, ALL_BUT_THREE)
    assert result.returncode == 1
    (line,) = [l for l in result.stdout.splitlines() if "apt-get install" in l]
    assert line.split("apt-get install")[1].split() == ["libportaudio2", "libxcb-icccm4", "libxcb-keysyms1"]


def test_headless_runs_need_no_x11_libraries(tmp_path):
    result = check(tmp_path, ALL_BUT_THREE, QT_QPA_PLATFORM="offscreen")
    assert result.stdout.split("apt-get install")[1].split() == ["libportaudio2"]


def test_all_found(tmp_path):
    listing = ALL_BUT_THREE + "".join(f"\t{name} (libc6,x86-64) => /x\n" for name in
                                      ("libportaudio.so.2", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"))
    result = check(tmp_path, listing)
    assert result.returncode == 0 and "all found" in result.stdout
