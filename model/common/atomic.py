"""Files written under a temporary name beside their final one, then renamed: a crash or a kill never
leaves half a file under its final name, and a failed write is an ``OSError``, never a silent success."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

TMP_SUFFIX = ".tmp"  # a file named so is a write that has not finished (or was killed): never a result


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yields ``path`` + ``TMP_SUFFIX`` to write to; renamed to ``path`` when the block ends, deleted when
    it raises."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_image(path, image: np.ndarray, params=()) -> None:
    """Encode ``image`` (BGR or gray) in the format of ``path``'s suffix and write it atomically; an OSError
    when it cannot be encoded or written (``cv2.imwrite`` only returns False, or prints libpng's error)."""
    ok, data = cv2.imencode(Path(path).suffix, image, list(params))
    if not ok:
        raise OSError(f"cannot encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())
