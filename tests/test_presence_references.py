"""The presence reference rows (level meter, class matcher) on tiny generated sets, and what pooled negatives sound like."""
import pytest

from model.evaluation.presence_references import class_matcher, clip_scores, main, reference_aurocs
from model.evaluation.presence_metrics import auroc
from model.synth.generator import generate
from model.synth.real import LEVEL_DBFS, QUIET_DBFS, ROOM_DBFS

HEARD = {"dog", "cow", "rooster"}  # the sample manifest's heard split; frog is unheard
SMALL = {"size": (160, 120)}


def test_class_matcher_by_hand():
    assert class_matcher(["dog"], ["dog", "cow"], HEARD) == 1.0  # a heard class in view
    assert class_matcher(["rooster"], ["dog", "cow"], HEARD) == 0.0  # a heard class not in view
    assert class_matcher(["frog"], ["dog", "frog"], HEARD) == 0.5  # unheard: it cannot tell, something unknown is in view
    assert class_matcher(["frog"], ["dog", "cow"], HEARD) == 0.0  # unheard, and everything in view is known
    assert class_matcher([], ["dog"], HEARD) == 0.0 and class_matcher([], ["frog"], HEARD) == 0.5  # room noise
    assert class_matcher(["dog", "cow"], ["dog", "cow"], HEARD) == 1.0  # two sources


@pytest.fixture(scope="module")
def pooled_set(tmp_path_factory, pooled_assets):
    root = tmp_path_factory.mktemp("presence")
    folders = []
    for name, options in (("matched", {}), ("silence", {"negatives": "silence"}), ("offscreen", {"negatives": "offscreen"})):
        generate(root / name, clips=5, seed=4, split="heard", pool="test", **SMALL, **options, **pooled_assets)
        folders.append(root / name)
    return folders, pooled_assets["manifest"]


def test_pooled_negatives_share_the_positives_loudness_and_silence_is_room_noise(pooled_set):
    folders, _ = pooled_set
    rows = clip_scores(folders, HEARD)
    levels = {kind: [level for k, level, _ in rows if k.startswith(kind)] for kind in ("", "silence", "offscreen")}
    levels[""] = [level for k, level, _ in rows if not k]
    assert len(levels[""]) == len(levels["silence"]) == len(levels["offscreen"]) == 5
    for kind in ("", "offscreen"):  # the same range for both, no normalisation (decoding to mono moves it a little)
        assert all(LEVEL_DBFS[0] - 4 < v < LEVEL_DBFS[1] + 1 for v in levels[kind]), (kind, levels[kind])
    assert all(ROOM_DBFS[0] - 4 < v < QUIET_DBFS[1] + 3 for v in levels["silence"]), levels["silence"]


def test_reference_rows_on_a_tiny_pooled_set(pooled_set, capsys):
    folders, manifest = pooled_set
    rows = clip_scores(folders, HEARD)
    result = reference_aurocs(rows)
    matched = [r for r in rows if not r[0]]
    for kind in {r[0] for r in rows if r[0]}:
        negatives = [r for r in rows if r[0] == kind]
        assert result["level meter"][f"auroc_{kind}"] == auroc([r[1] for r in matched], [r[1] for r in negatives])
        assert result["class matcher"][f"auroc_{kind}"] == auroc([r[2] for r in matched], [r[2] for r in negatives])
    assert all(r[2] == 1.0 for r in matched)  # heard and in view
    if "auroc_offscreen_heard" in result["class matcher"]:
        assert result["class matcher"]["auroc_offscreen_heard"] == 100.0  # a heard class not in view: told apart
    assert main([str(f) for f in folders] + ["--manifest", manifest]) == 0
    assert '"level meter"' in capsys.readouterr().out


def test_the_level_meter_passes_unpooled_silence_negatives(tmp_path, pooled_assets):
    """Unpooled sets normalise the matched clips' peaks and keep silence quiet: loudness alone tells them apart."""
    generate(tmp_path / "matched", clips=4, seed=5, split="heard", **SMALL, **pooled_assets)
    generate(tmp_path / "silence", clips=4, seed=6, split="heard", negatives="silence", **SMALL, **pooled_assets)
    result = reference_aurocs(clip_scores([tmp_path / "matched", tmp_path / "silence"], HEARD))
    assert result["level meter"]["auroc_silence"] == 100.0 and result["n_silence"] == 4
