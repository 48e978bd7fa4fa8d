"""Every benchmark script starts as its command is written in docs/BENCHMARKS.md: `python bench/X.py`,
whose folder comes first on sys.path (where bench/model.py must not stand in for the model package)."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__"' in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_starts(script):
    assert len(SCRIPTS) >= 10
    result = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                            timeout=300, env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()
