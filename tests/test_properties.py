"""Property-based tests (Hypothesis): the annotation parsers on any input, the audio windows on any geometry."""
import json
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.preprocess.audio import AudioConfig
from model.data.annotations import AnnotationError, load_is3, load_vggss_annotations
from model.data.datasets import _window
from model.data.video_io import slice_window
from ssl_desktop.ring_buffer import RingBuffer

FILES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=True) | st.text(max_size=5)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(["file", "class", "bbox", "image", "audio", "gt_box",
                                                              "scene", "x"]), inner, max_size=4), max_leaves=20)
coordinates = st.floats(-2.0, 3.0, allow_nan=False) | st.sampled_from([-2.9e16, 0.0, 1.0])
boxes = st.lists(coordinates, min_size=4, max_size=4)
entries = st.lists(st.fixed_dictionaries({"file": st.text(min_size=1, max_size=8), "bbox": st.lists(boxes, max_size=3)},
                                         optional={"class": st.text(max_size=8)}), max_size=5)


def write_json(tmp_path, value) -> str:
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(value))  # NaN and Infinity as JSON's common extension, as Python reads them
    return path


@FILES
@given(value=json_values)
def test_any_json_is_annotations_or_an_annotation_error(tmp_path, value):
    """No input makes the parsers fail another way (a KeyError or TypeError is a traceback for the user)."""
    path = write_json(tmp_path, value)
    for parse in (load_vggss_annotations, load_is3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = parse(path)
            except AnnotationError as error:
                assert str(path) in str(error)
                continue
        assert isinstance(parsed, list)


@FILES
@given(value=entries)
def test_wellformed_vggss_entries_keep_every_box_clipped_to_the_unit_square(tmp_path, value):
    path = write_json(tmp_path, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        annotations = load_vggss_annotations(path)
    assert [a.file for a in annotations] == [e["file"] for e in value]
    assert [a.label for a in annotations] == [e.get("class", "") for e in value]
    for annotation, entry in zip(annotations, value):
        assert annotation.boxes == [[min(max(v, 0.0), 1.0) for v in box] for box in entry["bbox"]]
    inverted = sum(b[2] < b[0] or b[3] < b[1] for a in annotations for b in a.boxes)
    assert (len(caught) == 1 and f"{inverted} box(es)" in str(caught[0].message)) if inverted else not caught


@settings(max_examples=300, deadline=None)
@given(length=st.integers(0, 400), t0=st.floats(-5, 5), start=st.floats(-5, 5), num=st.integers(0, 300),
       rate=st.sampled_from([8, 100, 16000]))
def test_a_window_is_the_signal_where_it_overlaps_and_zeros_elsewhere(length, t0, start, num, rate):
    samples = np.arange(1, length + 1, dtype=np.float32)  # every sample non-zero and telling its index
    window = slice_window(samples, t0, start, num, rate)
    assert window.shape == (num,) and window.dtype == np.float32
    offset = int(round((start - t0) * rate))
    for k, value in enumerate(window):
        inside = 0 <= offset + k < length
        assert value == (samples[offset + k] if inside else 0.0)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(0, 2000), seconds=st.floats(0.065, 0.2), centre=st.none() | st.floats(-1, 1))  # >= 1 frame
def test_a_clip_window_has_the_configured_length_centred_on_its_time(length, seconds, centre):
    config = AudioConfig(sample_rate=8000, seconds=seconds)
    track = np.arange(1, length + 1, dtype=np.float32)
    window = _window(track, config, centre)
    assert window.shape == (config.num_samples,)
    middle = length / config.sample_rate / 2 if centre is None else centre
    first = int(round((middle - config.num_samples / config.sample_rate / 2) * config.sample_rate))  # first sample
    assert np.array_equal(window != 0, (first + np.arange(config.num_samples) >= 0)
                          & (first + np.arange(config.num_samples) < length))


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 64), writes=st.lists(st.integers(0, 100), max_size=8), n=st.integers(0, 80))
def test_the_ring_buffer_snapshot_is_the_newest_samples_in_order(capacity, writes, n):
    ring, written = RingBuffer(capacity, 16000), np.zeros(0, np.float32)
    for size in writes:
        block = np.arange(len(written) + 1, len(written) + size + 1, dtype=np.float32)
        ring.write(block)
        written = np.concatenate([written, block])
    history = np.concatenate([np.zeros(capacity, np.float32), written])  # zeros before the first write
    kept = min(n, capacity)
    assert np.array_equal(ring.snapshot(n), history[len(history) - kept:])
    assert ring.samples_written == len(written)
