"""The sealed test's seeds are used by no training or validation command of the repository."""
import re
from pathlib import Path

import json

from model.synth.sealed import SEALED_POOL, SEALED_SEEDS, generate_sealed

ROOT = Path(__file__).resolve().parents[1]
SEALED_FILE = ROOT / "model" / "synth" / "sealed.py"


def commands() -> list[Path]:
    """Every file that trains, validates, calibrates or generates: bench/, tools/, the Makefile, model/."""
    files = [ROOT / "Makefile", *(ROOT / "bench").rglob("*"), *(ROOT / "tools").rglob("*"), *(ROOT / "model").rglob("*")]
    return [f for f in files if f.is_file() and f.suffix not in (".safetensors", ".pyc") and f != SEALED_FILE]


def test_the_sealed_seeds_are_used_nowhere_else():
    seeds = [seed for seed, _ in SEALED_SEEDS.values()]
    assert len(set(seeds)) == len(seeds) and SEALED_POOL == "test"
    pattern = re.compile(r"(?<!\d)(" + "|".join(map(str, seeds)) + r")(?!\d)")
    scanned = commands()
    assert any(f.name == "real_data.sh" for f in scanned) and any(f.name == "generator.py" for f in scanned)
    found = [(f.relative_to(ROOT), m.group(0)) for f in scanned
             for m in pattern.finditer(f.read_text(errors="ignore"))]
    assert found == []


def test_results_say_which_test_set_is_sealed_and_how_often_it_was_scored():
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    match = re.search(r"Number of checkpoints ever scored on the sealed test: (\d+)", text)
    assert match and "model/synth/sealed.py" in text


def test_sealed_sets_come_from_the_test_pool_with_their_seeds(tmp_path, pooled_assets):
    from model.synth.assets import load_manifest

    manifest = load_manifest(pooled_assets["manifest"])
    test_files = {manifest.relative(ref) for ref in manifest.refs() if manifest.pool(ref) == "test"}
    written = generate_sealed(tmp_path, clips=2, negatives=1, names=["test_heard", "test_offscreen"], size=(160, 120),
                              assets=pooled_assets["assets"], manifest=pooled_assets["manifest"])
    assert written == {"test_heard": 2, "test_offscreen": 1}
    for name in written:
        for entry in json.loads((tmp_path / name / "annotations.json").read_text()):
            assert entry["file"].startswith(f"s{SEALED_SEEDS[name][0]}_")
            source = entry["source"]
            named = [source["photo"], source["recording"], source["background"], source["offscreen"], *source["others"]]
            assert {f for f in named if f} <= test_files
