"""The benchmarks' ``--json OUT``: the result written as indented JSON, its folder made first."""
import json
from pathlib import Path


def write_json(path: Path | None, result: dict) -> None:
    """Write ``result`` to ``path`` (None: nothing to write)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
