"""Every benchmark script starts as its command is written in docs/BENCHMARKS.md: `python bench/X.py`,
whose folder comes first on sys.path (where bench/model.py must not stand in for the model package)."""
import json
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


@pytest.mark.parametrize("script", ["live.py", "profile_live.py"])
def test_live_benchmarks_run_the_app_pipeline(script, tmp_path):
    """A one-second run of each live benchmark: the real window, demo clips and bundled model, to the end."""
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(BENCH / script), "--seconds", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=300,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    if script == "live.py":  # the keys other tools read, exactly
        assert set(data) >= {"heatmap_hz", "display_fps", "latency_p50_ms", "latency_p95_ms", "gui_max_stall_ms",
                             "bare_forward_hz", "rss_growth_mb", "first_heatmap_s"}
        assert data["display_fps"] > 0 and data["bare_forward_hz"] > 0 and data["first_heatmap_s"] > 0
    else:
        assert data["timeline"]["first_heatmap_s"] > data["timeline"]["imports_s"] > 0


def test_int8_accuracy_compares_the_two_paths_on_an_annotated_folder(tmp_path):
    """The bundled model on the demo clips (annotated): both paths evaluated, the int8 maps measured against
    float32's (calibrated on these very clips here, so close to them, yet not equal)."""
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(BENCH / "int8_accuracy.py"), str(BENCH.parent / "resources" / "demo"),
                             "--json", str(out)], capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    demo = json.loads(out.read_text())["demo"]
    assert set(demo) == {"float32", "int8", "int8_vs_float32"}
    assert demo["float32"].keys() == demo["int8"].keys() >= {"ciou", "auc", "ciou_adaptive", "a2i_r1", "i2a_r1"}
    assert 0.7 <= demo["int8_vs_float32"]["map_correlation_mean"] < 1.0


def test_the_gpu_script_says_it_needs_a_gpu_where_there_is_none(tmp_path):
    """bench/gpu.sh is the prepared run of the GPU targets: without CUDA it stops at once, saying why, and writes
    nothing."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: bench/gpu.sh would run for minutes")
    out = tmp_path / "gpu"
    result = subprocess.run(["bash", str(BENCH / "gpu.sh"), str(out)], capture_output=True, text=True, timeout=300,
                            cwd=BENCH.parent, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "no CUDA device here" in result.stderr
    assert not out.exists()
