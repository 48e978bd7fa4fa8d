"""The model package never imports Qt or the app: every `model` module, imported in a fresh interpreter,
leaves no Qt binding and no `ssl_desktop` module in `sys.modules`."""
import pkgutil
import subprocess
import sys

import model

FORBIDDEN = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "ssl_desktop")


def model_modules() -> list[str]:
    """Every module of the package, subpackages included (not the ``__main__`` entry points, which run)."""
    names = (info.name for info in pkgutil.walk_packages(model.__path__, prefix="model."))
    return sorted(name for name in names if not name.endswith(".__main__"))


def test_model_modules_import_no_qt_and_no_app():
    modules = model_modules()
    assert len(modules) > 10 and {"model.train.trainer", "model.data.video_io"} <= set(modules)
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"model/ pulled in: {result.stdout.strip()}"
