"""Retrieval wiring: a folder's gallery (built by ``GalleryWorker``), queried with the embeddings the
inference workers emit, shown in the ``RetrievalPanel``; a gallery sound can replace the live sound."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from .gallery_worker import GalleryWorker
from .retrieval_panel import LIVE_SOUND, RetrievalPanel

MATCHES = 5  # results per row
QUERY_INTERVAL_MS = 250  # the panel is refreshed at most this often


class Retrieval(QObject):
    message = Signal(str, str, str)  # key, text ("" clears), level
    query_sound_changed = Signal(object)  # unit audio vector (D,) of a gallery clip, None: the live sound
    open_clip = Signal(str)

    def __init__(self, panel: RetrievalPanel, device: str = "cpu", parent=None):
        super().__init__(parent)
        self.panel = panel
        self.device = device
        self.gallery = None
        self.folder: Path | None = None
        self.model = None
        self._rebuild = False  # build again once the running build ends (the model or folder changed)
        self._latest = None  # (audio, image) embeddings waiting for the next query
        self.worker = GalleryWorker()
        self.worker.progress.connect(panel.set_progress)
        self.worker.succeeded.connect(self._on_gallery)
        self.worker.cancelled.connect(lambda: self._on_build_ended("gallery indexing cancelled"))
        self.worker.failed.connect(self._on_build_failed)
        panel.cancel_requested.connect(self.worker.cancel)
        panel.query_sound_selected.connect(self._on_query_sound)
        panel.open_clip.connect(self.open_clip)
        self.timer = QTimer(self)
        self.timer.setInterval(QUERY_INTERVAL_MS)
        self.timer.timeout.connect(self._query)
        self.timer.start()

    def set_model(self, model) -> None:
        """A new model makes the gallery's embeddings stale: they are dropped at once (no query compares
        two models' vectors, a gallery sound as the query ends) and the folder is indexed again."""
        self.model = model
        self._latest = None
        if self.gallery is not None:
            self.gallery = None
            self.panel.set_gallery(None)
            self.query_sound_changed.emit(None)
        if self.folder is not None:
            self.build(self.folder)

    def build(self, folder) -> None:
        """Index ``folder`` (reusing its saved index when the model is the same) in the gallery thread."""
        self.folder = Path(folder)
        if self.model is None:
            self.message.emit("gallery", f"gallery of {self.folder.name} waits for a model", "info")
            return
        self.panel.start_indexing(self.folder.name)
        if not self.worker.build(self.folder, self.model, self.device):
            self._rebuild = True
            self.worker.cancel()

    def offer(self, audio, image) -> None:
        """The newest embeddings (unit vectors (D,)); the panel is refreshed with them on the next tick."""
        self._latest = (audio, image)

    def _query(self) -> None:
        if self.gallery is None or self._latest is None or len(self.gallery) == 0:
            return
        audio, image = self._latest
        self._latest = None
        self.panel.show_matches(self.gallery.images_for_sound(audio, MATCHES),
                                self.gallery.sounds_for_image(image, MATCHES))

    def _on_query_sound(self, index: int) -> None:
        sound = None if index == LIVE_SOUND or self.gallery is None else self.gallery.audio_embedding(index)
        self.query_sound_changed.emit(sound)

    def _on_gallery(self, gallery) -> None:
        if self._rebuild:  # indexed with the model before the last change: the next build replaces it
            self._on_build_ended("")
            return
        self.gallery = gallery
        self.panel.set_gallery(gallery)
        self.query_sound_changed.emit(None)  # the chooser is back on the live sound
        if len(gallery) == 0:  # nothing to match against: say why instead of waiting for matches
            reasons = "; ".join(f"{s.file}: {s.reason}" for s in gallery.skipped[:3])
            text = f"no playable clips in {self.folder}" + (f" ({reasons})" if reasons else "")
            self.message.emit("gallery", text, "warning")
            self._on_build_ended(text)
            return
        self._on_build_ended("")

    def _on_build_failed(self, text: str) -> None:
        self.message.emit("gallery", text, "error")
        self._on_build_ended(text)

    def _on_build_ended(self, text: str) -> None:
        self.panel.end_progress(text)
        if self._rebuild:
            self._rebuild = False
            self.build(self.folder)
        elif not text:
            self.message.emit("gallery", "", "info")

    def shutdown(self) -> None:
        self.timer.stop()
        self._rebuild = False
        self.worker.shutdown()
