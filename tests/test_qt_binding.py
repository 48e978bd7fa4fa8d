"""The Qt binding must not leak references to True or None (PySide6 6.12.0 on Python 3.11 does: the
interpreter aborts with "bool_dealloc" after about two minutes of the app's signals)."""
import sys

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

CHUNK = 1_000
CALLS = 300_000  # well past a fresh interpreter's reference counts of True and None (a few thousand)


class Emitter(QObject):
    fired = Signal()
    carried = Signal(bool)


class Receiver(QObject):
    def __init__(self):
        super().__init__()
        self.calls = 0

    @Slot()
    def on_fired(self):
        self.calls += 1

    @Slot(bool)
    def on_carried(self, value):
        self.calls += 1


def test_signals_and_slots_keep_the_reference_counts_of_true_and_none():
    app = QCoreApplication.instance() or QCoreApplication([])
    emitter, receiver = Emitter(), Receiver()
    emitter.fired.connect(receiver.on_fired)
    emitter.carried.connect(receiver.on_carried)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    # In chunks, stopping at the first fall: a leaking binding would otherwise free True and abort the
    # interpreter (on Python 3.11 True and None are not immortal) instead of failing this test.
    for _ in range(CALLS // CHUNK):
        for _ in range(CHUNK):
            emitter.fired.emit()
            emitter.carried.emit(True)
        app.processEvents()
        true_fall, none_fall = true_before - sys.getrefcount(True), none_before - sys.getrefcount(None)
        assert true_fall < 100, f"the Qt binding dropped {true_fall} references to True"
        assert none_fall < 100, f"the Qt binding dropped {none_fall} references to None"
    assert receiver.calls == 2 * CALLS
