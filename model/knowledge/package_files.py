"""Weights files inside installed packages that are never imported (installed ``--no-deps``: they pin other
libraries), found without running the package."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, name: str, what: str, install_hint: str) -> Path:
    """The file ``name`` (relative to the package's folder) of the installed ``package``; FileNotFoundError naming
    ``what`` and how to install it when the package or the file is missing."""
    spec = importlib.util.find_spec(package)  # finds the folder without running the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{what} is not installed: {install_hint}")
    path = Path(spec.submodule_search_locations[0]) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall {what}, {install_hint}")
    return path
