"""GalleryWorker: builds or loads a folder's gallery (``model.gallery.index.load_or_build_gallery``) in its own
QThread, which runs only while a build does.

    worker = GalleryWorker()                           # lives in the GUI thread; its signals arrive there
    worker.progress.connect(panel.set_progress)        # (done, total): files being read
    worker.succeeded.connect(on_gallery)               # Gallery (saved next to the folder)
    worker.cancelled.connect(...)                      # stopped; what was indexed is saved
    worker.failed.connect(show_message)                # str
    panel.cancel_requested.connect(worker.cancel)
    worker.build(folder, model, device)                # False (and nothing done) while a build runs
    worker.shutdown()                                  # on close: cancel, then wait for the thread

Exactly one of ``succeeded``, ``cancelled`` or ``failed`` ends every accepted ``build``; when it arrives,
the thread has stopped and ``build`` may be called again. Cancelling is cooperative: the build stops
before its next file.
"""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Signal, Slot

from model.gallery.index import BuildCancelled, load_or_build_gallery


class _Job(QObject):
    """Lives in the worker thread and runs the builds."""

    progress = Signal(int, int)
    succeeded = Signal(object)
    cancelled = Signal()
    failed = Signal(str)

    @Slot(object, object, str, object)
    def run(self, folder, model, device, should_stop) -> None:
        try:
            gallery = load_or_build_gallery(folder, model, device, self.progress.emit, should_stop)
        except BuildCancelled:
            self.cancelled.emit()
        except Exception as e:  # a failed build is a message, never a dead thread
            self.failed.emit(f"gallery of {folder} failed: {e}")
        else:
            self.succeeded.emit(gallery)


class GalleryWorker(QObject):
    progress = Signal(int, int)
    succeeded = Signal(object)
    cancelled = Signal()
    failed = Signal(str)
    _requested = Signal(object, object, str, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._stop = threading.Event()
        self._busy = False
        self._thread = QThread()
        self._thread.setObjectName("gallery-worker")
        self._job = _Job()
        self._job.moveToThread(self._thread)
        self._requested.connect(self._job.run)
        self._job.progress.connect(self.progress)
        for ending, public in ((self._job.succeeded, self.succeeded), (self._job.cancelled, self.cancelled),
                               (self._job.failed, self.failed)):
            ending.connect(self._ended)  # queued in order: the thread is stopped before `public` arrives
            ending.connect(public)

    def is_busy(self) -> bool:
        return self._busy

    def thread_running(self) -> bool:
        return self._thread.isRunning()

    def build(self, folder, model, device="cpu") -> bool:
        """Start building ``folder``'s gallery with ``model`` (in eval mode); False if one is running."""
        if self._busy:
            return False
        self._busy = True
        self._stop.clear()
        self._thread.start()
        self._requested.emit(folder, model, str(device), self._stop.is_set)
        return True

    @Slot()
    def cancel(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Cancel any build and wait until the thread has stopped."""
        self.cancel()
        self._thread.quit()
        self._thread.wait()
        self._busy = False

    @Slot()
    def _ended(self) -> None:
        self._thread.quit()
        self._thread.wait()  # the job has emitted its last signal: only its return is left
        self._busy = False
