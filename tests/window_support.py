"""Driving a main window in tests (the window itself comes from conftest.py's ``make_window``)."""
import threading

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from ssl_desktop.sources import PatternSource, ToneSource

WAIT_MS = 20000


def python_threads():
    """Live Python threads other than Qt's (those are checked as QThreads)."""
    return {t for t in threading.enumerate() if t.is_alive() and not isinstance(t, threading._DummyThread)}


def start_test_devices(window):
    """A test camera and a test microphone, through the path the real devices take."""
    window.start_sources(PatternSource(size=(320, 240), fps=25), ToneSource(), "camera")


def wait_for_heatmaps(qtbot, view, count=2):
    start = view.heatmaps_shown
    qtbot.waitUntil(lambda: view.heatmaps_shown >= start + count, timeout=WAIT_MS)


def drop(window, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    position = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(position.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(QDropEvent(position, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))
