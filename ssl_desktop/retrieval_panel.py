"""RetrievalPanel: which gallery clips look like the current sound and sound like the current image.

The panel shows state and emits signals; it computes nothing. The app queries the gallery
(``model.gallery.index.Gallery``) and hands the results over:

    panel = RetrievalPanel()                              # a dock's widget
    panel.set_gallery(gallery)                            # fills the query-sound chooser; None: no gallery
    panel.show_matches(gallery.images_for_sound(audio, k), gallery.sounds_for_image(image, k))
    panel.query_sound_selected.connect(...)               # int: gallery clip whose sound is the query,
                                                          #      -1: back to the live sound
    panel.open_clip.connect(...)                          # str: path of a double-clicked result
    worker.progress.connect(panel.set_progress)           # (done, total) shows a progress bar + Cancel
    panel.cancel_requested.connect(worker.cancel)
    panel.end_progress("message")                         # hides them, shows the message

Results keep the order they are given in (similarity order); each shows its thumbnail, its class
(its file name when the class is unknown) and its similarity.

A standalone browser of one folder's gallery, with the sound and image of one of its clips as the
queries (that clip left out of the results); ``--screenshot`` saves the panel and quits:

    python -m ssl_desktop.retrieval_panel FOLDER [--query N] [--k K] [--checkpoint CKPT]
                                                 [--screenshot docs/img/retrieval.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from model.gallery.index import THUMB_H, THUMB_W

PATH_ROLE = Qt.ItemDataRole.UserRole
INDEX_ROLE = Qt.ItemDataRole.UserRole + 1
LIVE_SOUND = -1


def _icon(thumbnail: np.ndarray) -> QIcon:
    """RGB uint8 (H, W, 3) -> icon (the image is copied)."""
    rgb = np.ascontiguousarray(thumbnail)
    h, w = rgb.shape[:2]
    return QIcon(QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()))


class ResultRow(QListWidget):
    """One row of result thumbnails, left to right in the order given."""

    def __init__(self):
        super().__init__()
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB_W, THUMB_H))
        self.setGridSize(QSize(THUMB_W + 16, THUMB_H + 38))
        self.setFixedHeight(THUMB_H + 58)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def show_matches(self, matches) -> None:
        self.clear()
        for m in matches:
            name = m.label or Path(m.file).stem
            item = QListWidgetItem(_icon(m.thumbnail), f"{name}\n{m.similarity:.2f}")
            item.setToolTip(f"{m.file}\nsimilarity {m.similarity:.3f}")
            item.setData(PATH_ROLE, m.file)
            item.setData(INDEX_ROLE, m.index)
            self.addItem(item)

    def labels(self) -> list[str]:
        """Each result's text, in display order."""
        return [self.item(i).text() for i in range(self.count())]


class RetrievalPanel(QWidget):
    query_sound_selected = Signal(int)
    open_clip = Signal(str)
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.skipped_label = QLabel()  # the files the gallery could not use, one a line
        self.skipped_label.setWordWrap(True)
        self.skipped_label.setStyleSheet("color: #8a5a00;")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)  # the status says "Indexing n/m"
        self.progress.setMaximumWidth(120)
        self._folder_name = ""
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        self.query_chooser = QComboBox()
        self.query_chooser.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.query_chooser.currentIndexChanged.connect(
            lambda row: self.query_sound_selected.emit(self.query_chooser.itemData(row)))
        self.image_row = ResultRow()
        self.sound_row = ResultRow()
        for row in (self.image_row, self.sound_row):
            row.itemDoubleClicked.connect(lambda item: self.open_clip.emit(item.data(PATH_ROLE)))

        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        query = QHBoxLayout()
        query.addWidget(QLabel("Query sound:"))
        query.addWidget(self.query_chooser)
        query.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.skipped_label)
        layout.addLayout(query)
        layout.addWidget(QLabel("<b>Images that match this sound</b>"))
        layout.addWidget(self.image_row)
        layout.addWidget(QLabel("<b>Sounds that match this image</b>"))
        layout.addWidget(self.sound_row)
        layout.addStretch(1)
        self.end_progress()
        self.set_gallery(None)

    @Slot(object)
    def set_gallery(self, gallery) -> None:
        """Show a gallery's size and offer its sounds as queries (back to the live sound); None: none."""
        self.image_row.clear()
        self.sound_row.clear()
        self.query_chooser.blockSignals(True)
        self.query_chooser.clear()
        self.query_chooser.addItem("live sound", LIVE_SOUND)
        for i, entry in enumerate(gallery.entries if gallery is not None else []):
            name = Path(entry.file).stem
            self.query_chooser.addItem(f"{name} ({entry.label})" if entry.label else name, i)
        self.query_chooser.blockSignals(False)
        self.query_chooser.setEnabled(gallery is not None and len(gallery) > 0)
        self.skipped_label.setVisible(gallery is not None and bool(gallery.skipped))
        if gallery is None:
            self.status.setText("No gallery: File > Build gallery...")
            return
        skipped = f", {len(gallery.skipped)} skipped" if gallery.skipped else ""
        self.status.setText(f"Gallery: {len(gallery)} clips in {gallery.root.name}{skipped}")
        self.skipped_label.setText("Skipped:\n" + "\n".join(f"{s.file}: {s.reason}" for s in gallery.skipped))

    def start_indexing(self, folder_name: str) -> None:
        """Say that ``folder_name`` is being indexed (before the first clip is done)."""
        self._folder_name = folder_name
        self.status.setText(f"Indexing {folder_name}…")

    def query_sound(self) -> int:
        """The gallery clip whose sound is the query, or -1 for the live sound."""
        return self.query_chooser.currentData()

    @Slot(int)
    def select_query_sound(self, index: int) -> None:
        """Choose gallery clip ``index``'s sound (-1: the live sound); emits ``query_sound_selected``."""
        self.query_chooser.setCurrentIndex(self.query_chooser.findData(index))

    @Slot(list, list)
    def show_matches(self, images_for_sound: list, sounds_for_image: list) -> None:
        """Two lists of ``model.gallery.index.Match``, best first."""
        self.image_row.show_matches(images_for_sound)
        self.sound_row.show_matches(sounds_for_image)

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.status.setText(f"Indexing {done}/{total} clips of {self._folder_name}")
        self.progress.show()
        self.cancel_button.show()

    @Slot(str)
    def end_progress(self, message: str = "") -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        if message:
            self.status.setText(message)

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling...")
        self.cancel_requested.emit()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssl_desktop.retrieval_panel",
                                     description="Browse a folder's gallery with one of its clips as the query.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--query", type=int, default=0, help="gallery clip used as the current clip")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, default=Path(__file__).resolve().parent.parent
                        / "resources" / "model.safetensors")
    parser.add_argument("--screenshot", type=Path, help="save the panel to this PNG and quit")
    args = parser.parse_args(argv)

    import torch

    from model import CheckpointError, ModelConfig, SSLModel, load_model
    from model.gallery.index import load_or_build_gallery

    try:
        model, model_name = load_model(args.checkpoint), args.checkpoint.name
    except CheckpointError as e:
        print(f"{e}; using a random-weight model", file=sys.stderr)
        torch.manual_seed(0)
        model, model_name = SSLModel(ModelConfig()).eval(), "random weights"
    gallery = load_or_build_gallery(args.folder, model, progress=lambda d, t: print(f"\rindexing {d}/{t}", end=""))
    print()

    def others(matches):
        return [m for m in matches if m.index != args.query][:args.k]

    app = QApplication.instance() or QApplication(sys.argv[:1])
    panel = RetrievalPanel()
    panel.set_gallery(gallery)
    panel.show_matches(others(gallery.images_for_sound(gallery.audio_embedding(args.query), args.k + 1)),
                       others(gallery.sounds_for_image(gallery.image_emb[args.query], args.k + 1)))
    query = gallery.entries[args.query]
    panel.status.setText(f"Gallery: {len(gallery)} clips in {args.folder.name}; current clip: "
                         f"{Path(query.file).stem} ({query.label or 'no class'}); model: {model_name}")
    panel.resize(144 * args.k + 40, 420)
    panel.show()
    if args.screenshot:
        app.processEvents()
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        return 0 if panel.grab().save(str(args.screenshot)) else 1
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
