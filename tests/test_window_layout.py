"""The window at 1024x640 and its one message area: newest first, folded, tab messages in their tab."""
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QWidget

from window_support import WAIT_MS, start_test_devices


def rect_in_window(widget: QWidget, window) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def test_every_control_is_visible_at_1024x640(qtbot, make_window, clips, tmp_path):
    window = make_window()
    window.resize(1024, 640)
    start_test_devices(window)
    for key, level in (("model", "error"), ("source", "warning"), ("device", "info")):
        window.messages.show_message(key, f"a {level} message", level)
    qtbot.waitUntil(lambda: window.live_view.frames_shown >= 3, timeout=WAIT_MS)
    assert (window.width(), window.height()) == (1024, 640)
    view = window.live_view
    for control in (view.overlay_box, view.opacity_slider, view.colormap_box, view.scale_box, view.colour_bar,
                    view.cold_label, view.hot_label, view.graphics):
        assert control.isVisible() and window.rect().contains(rect_in_window(control, window)), control
    assert view.opacity_slider.width() >= 50
    assert view.graphics.height() >= 200 and view.graphics.width() >= 500  # the picture keeps its room
    assert window.retrieval_dock.width() <= 0.35 * window.width()
    assert window.grab().save(str(tmp_path / "window_1024x640.png"))
    window.open_paths(clips["synth"][:1])
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view.frame is not None, timeout=WAIT_MS)
    for control in (inspector.play_button, inspector.timeline, inspector.speed_box, inspector.time_label,
                    inspector.view.opacity_slider):
        assert control.isVisible() and window.rect().contains(rect_in_window(control, window)), control
    assert inspector.timeline.width() >= 100


def test_messages_newest_first_and_folded(qtbot, make_window):
    window = make_window(load_model=False)  # "no model loaded" is not shown: a fresh bar
    bar = window.messages
    for key in ("device", "model", "export"):
        bar.show_message(key, f"{key} message", "warning")
    assert bar.shown_keys() == ["export", "model", "device"]  # newest first
    visible = [k for k in bar.keys() if bar._banners[k].isVisible()]
    assert visible == ["export"] and bar.more_button.isVisible() and "2 more" in bar.more_button.text()
    bar.more_button.click()
    banners = [bar._banners[k] for k in bar.shown_keys()]
    assert all(b.isVisible() for b in banners)
    assert [b.y() for b in banners] == sorted(b.y() for b in banners)  # on screen in that order
    bar.clear("export")
    bar.clear("model")
    assert not bar.more_button.isVisible() and bar._banners["device"].isVisible()


def test_a_repeated_message_is_not_rebuilt(qtbot, make_window):
    """A message shown again and again (a timer's, a worker's): the banner stays the same widget (rebuilding
    one, stylesheet and layout, stalled the GUI thread); new text or level replaces it."""
    window = make_window(load_model=False)
    bar = window.messages
    bar.show_message("capture", "camera stopped delivering: retrying", "warning")
    banner = bar._banners["capture"]
    for _ in range(3):
        bar.show_message("capture", "camera stopped delivering: retrying", "warning")
    assert bar._banners["capture"] is banner and bar.shown_keys() == ["capture"]
    bar.show_message("capture", "camera stopped delivering: retrying", "error")
    assert bar._banners["capture"] is not banner and bar.text("capture") == "camera stopped delivering: retrying"
    bar.clear("capture")
    bar.clear("capture")  # twice: nothing to do
    assert bar.shown_keys() == [] and bar.isHidden()


def test_a_tab_s_message_stays_in_its_tab(qtbot, make_window, clips):
    window = make_window()
    bar = window.messages
    bar.show_message("source", "no camera found: showing the bundled demo clips instead", "info")
    bar.show_message("model", "a model message", "warning")
    assert bar.shown_keys() == ["model", "source"]
    window.open_paths(clips["synth"][:1])  # the inspector tab
    assert window.tabs.currentWidget() is window.inspector
    assert "model" in bar.shown_keys() and "source" not in bar.shown_keys()
    assert not bar._banners["source"].isVisible()
    window.tabs.setCurrentWidget(window.live_view)
    assert bar.shown_keys() == ["model", "source"]
