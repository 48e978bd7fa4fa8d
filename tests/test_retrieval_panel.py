"""The retrieval panel (results, chooser, signals) and the gallery worker (progress, cancel, threads)."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import Qt

from model import ModelConfig, SSLModel
from model.gallery.index import Entry, Gallery, Skipped, index_path
from model.synth.generator import generate
from ssl_desktop.gallery_worker import GalleryWorker
from ssl_desktop.retrieval_panel import RetrievalPanel


def known_gallery() -> Gallery:
    """Four clips in D=4: clip i's image is axis i, its sound is axis (i + 1) % 4; one colour each."""
    eye = torch.eye(4)
    entries = [Entry(f"videos/clip{i}.mp4", 1, 1, label) for i, label in enumerate(["dog", "bell", None, "car"])]
    thumbnails = torch.zeros(4, 96, 128, 3, dtype=torch.uint8)
    for i, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]):
        thumbnails[i, :, :] = torch.tensor(colour, dtype=torch.uint8)
    return Gallery(Path("/data/demo"), entries, eye, eye[[1, 2, 3, 0]], thumbnails,
                   skipped=[Skipped("videos/bad.mp4", 3, 1, "cannot decode")])


@pytest.fixture
def panel(qtbot):
    panel = RetrievalPanel()
    qtbot.addWidget(panel)
    panel.set_gallery(known_gallery())
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def show_known_matches(panel):
    gallery = known_gallery()
    sound = F.normalize(torch.tensor([0.1, 0.2, 0.9, 0.3]), dim=0)  # images 2, 3, 1, 0
    image = F.normalize(torch.tensor([0.0, 0.8, 0.1, 0.5]), dim=0)  # sounds of 0 (axis 1), 2 (axis 3)
    panel.show_matches(gallery.images_for_sound(sound, 3), gallery.sounds_for_image(image, 2))


def test_results_are_listed_in_similarity_order(panel):
    show_known_matches(panel)
    assert panel.image_row.labels() == ["clip2\n0.92", "car\n0.31", "bell\n0.21"]
    assert panel.sound_row.labels() == ["dog\n0.84", "clip2\n0.53"]
    first = panel.image_row.item(0)
    assert first.toolTip().startswith("/data/demo/videos/clip2.mp4")
    assert not first.icon().isNull()
    image = first.icon().pixmap(128, 96).toImage()
    assert image.pixelColor(64, 48).blue() == 200  # clip 2's thumbnail


def test_double_click_opens_the_clip(panel, qtbot):
    show_known_matches(panel)
    row = panel.sound_row
    centre = row.visualItemRect(row.item(1)).center()
    with qtbot.waitSignal(panel.open_clip, timeout=2000) as opened:
        # a real double-click is a click, then a double-click event (item views need the first press)
        qtbot.mouseClick(row.viewport(), Qt.MouseButton.LeftButton, pos=centre)
        qtbot.mouseDClick(row.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert opened.args == ["/data/demo/videos/clip2.mp4"]


def test_query_sound_chooser_emits_the_gallery_index(panel, qtbot):
    chooser = panel.query_chooser
    assert [chooser.itemText(i) for i in range(chooser.count())] == [
        "live sound", "clip0 (dog)", "clip1 (bell)", "clip2", "clip3 (car)"]
    with qtbot.waitSignal(panel.query_sound_selected) as chosen:
        chooser.setCurrentIndex(4)  # what picking "clip3 (car)" in the popup does
    assert chosen.args == [3] and panel.query_sound() == 3
    with qtbot.waitSignal(panel.query_sound_selected) as chosen:
        panel.select_query_sound(-1)
    assert chosen.args == [-1]
    with qtbot.assertNotEmitted(panel.query_sound_selected):
        panel.set_gallery(known_gallery())  # a new gallery resets silently to the live sound
    assert panel.query_sound() == -1


def test_status_progress_and_cancel(panel, qtbot):
    assert panel.status.text() == "Gallery: 4 clips in demo, 1 skipped"
    assert panel.skipped_label.isVisible() and "videos/bad.mp4: cannot decode" in panel.skipped_label.text()
    assert not panel.progress.isVisible() and not panel.cancel_button.isVisible()
    panel.start_indexing("demo")
    assert panel.status.text() == "Indexing demo…"  # not "No gallery" while it indexes
    panel.set_progress(2, 5)
    assert panel.progress.isVisible() and panel.progress.value() == 2 and panel.progress.maximum() == 5
    assert panel.status.text() == "Indexing 2/5 clips of demo"
    with qtbot.waitSignal(panel.cancel_requested):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.cancel_button.isEnabled()
    panel.end_progress("cancelled")
    assert not panel.progress.isVisible() and panel.status.text() == "cancelled"
    panel.set_gallery(None)
    assert panel.image_row.count() == 0 and not panel.query_chooser.isEnabled()
    assert not panel.skipped_label.isVisible()


# --- the worker ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gallery_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    generate(root, clips=3, seed=5, size=(160, 120))
    return root


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SSLModel(ModelConfig()).eval()


class CancellingModel:
    """A model that asks ``worker`` to cancel as soon as it encodes a frame (cancel is thread-safe)."""

    def __init__(self, model, worker):
        self.model, self.worker = model, worker

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode_visual(self, images):
        self.worker.cancel()
        return self.model.encode_visual(images)


@pytest.fixture
def worker():
    worker = GalleryWorker()
    yield worker
    worker.shutdown()
    assert not worker.thread_running()


def test_worker_builds_with_progress(worker, gallery_clips, model, qtbot):
    index_path(gallery_clips).unlink(missing_ok=True)
    progress = []
    worker.progress.connect(lambda done, total: progress.append((done, total)))
    with qtbot.waitSignal(worker.succeeded, timeout=60000) as succeeded:
        assert worker.build(gallery_clips, model)
        assert not worker.build(gallery_clips, model)  # one build at a time
        assert worker.thread_running()
    gallery = succeeded.args[0]
    assert len(gallery) == 3 and index_path(gallery_clips).is_file()
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert not worker.thread_running() and not worker.is_busy()  # idle: no thread


def test_worker_cancel_stops_before_the_next_file(worker, gallery_clips, model, qtbot):
    index_path(gallery_clips).unlink(missing_ok=True)
    with qtbot.waitSignal(worker.cancelled, timeout=60000):
        worker.build(gallery_clips, CancellingModel(model, worker))  # cancels while reading the first file
    assert len(Gallery.load(index_path(gallery_clips))) == 1  # what was indexed is kept
    assert not worker.thread_running()


def test_cancel_button_stops_a_running_build(worker, panel, gallery_clips, model, qtbot):
    index_path(gallery_clips).unlink(missing_ok=True)
    worker.progress.connect(panel.set_progress)
    panel.cancel_requested.connect(worker.cancel)
    with qtbot.waitSignal(worker.progress, timeout=10000):
        worker.build(gallery_clips, model)
    assert panel.cancel_button.isVisible()
    with qtbot.waitSignal(worker.cancelled, timeout=60000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert len(Gallery.load(index_path(gallery_clips))) < 3


def test_worker_reports_errors_and_can_build_again(worker, gallery_clips, model, qtbot, tmp_path):
    with qtbot.waitSignal(worker.failed, timeout=10000) as failed:
        worker.build(tmp_path / "missing", model)
    assert "not a folder" in failed.args[0]
    with qtbot.waitSignal(worker.succeeded, timeout=60000):
        assert worker.build(gallery_clips, model)


def test_shutdown_during_a_build_stops_the_thread(gallery_clips, model, qtbot):
    index_path(gallery_clips).unlink(missing_ok=True)
    worker = GalleryWorker()
    with qtbot.waitSignal(worker.progress, timeout=10000):
        worker.build(gallery_clips, model)
    worker.shutdown()
    assert not worker.thread_running() and not worker.is_busy()
    assert index_path(gallery_clips).is_file()  # the cancelled build saved what it had
