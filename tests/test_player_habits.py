"""The habits of mpv / VLC: opened files play, the keys work anywhere in the window, seek, loop, volume."""
import numpy as np
import pytest
from PySide6.QtCore import Qt
from support import write_clip
from window_support import WAIT_MS, drop

from ssl_desktop.inspector import PAUSE_TIP, PLAY_TIP
from ssl_desktop.player import MONITOR_DELAY_SECONDS, Monitor, PlaybackClock, Speaker, Volume
from ssl_desktop.ring_buffer import RingBuffer

SHIFT = Qt.KeyboardModifier.ShiftModifier

RATE = 16000  # the sample rate of the sound these tests play


@pytest.fixture
def playing_window(qtbot, make_window, clips):
    """A window whose inspector was given a 4 s clip by drag and drop, made active for its shortcuts."""
    window = make_window(load_model=False)
    with qtbot.waitActive(window):
        window.activateWindow()
    drop(window, clips["synth"][:1])
    return window


def position(window) -> float:
    return window.inspector.clock.position()


def test_a_dropped_file_plays_at_once(qtbot, playing_window):
    inspector = playing_window.inspector
    assert inspector.playing
    qtbot.waitUntil(lambda: inspector.timeline.value() >= 300, timeout=WAIT_MS)  # the picture moves on


def test_list_plays_a_file_picked_in_the_inspector_s_list_at_once(qtbot, make_window, clips):
    window = make_window(load_model=False)
    inspector = window.inspector
    window.open_paths(clips["synth"])  # File > Open of two files: the first plays
    assert inspector.playing and inspector.play_button.toolTip() == PAUSE_TIP
    inspector.pause()  # then paused: the pick still plays the file picked
    assert inspector.play_button.toolTip() == PLAY_TIP
    inspector.file_box.activated.emit(1)  # the second file picked in the list
    assert inspector.file.path == clips["synth"][1] and inspector.file_box.currentIndex() == 1
    assert inspector.playing and inspector.play_button.toolTip() == PAUSE_TIP
    qtbot.waitUntil(lambda: inspector.timeline.value() >= 300, timeout=WAIT_MS)  # the picture moves on
    inspector.file_box.activated.emit(0)  # picked while playing: the button goes on saying pause, and it plays
    assert inspector.file.path == clips["synth"][0] and inspector.playing
    assert inspector.play_button.toolTip() == PAUSE_TIP
    inspector.toggle_play()
    assert not inspector.playing and inspector.play_button.toolTip() == PLAY_TIP


@pytest.mark.parametrize("focus", ["timeline", "speed box", "retrieval dock", "sound dock"])
def test_space_toggles_play_from_anywhere_in_the_window(qtbot, playing_window, focus):
    window = playing_window
    widget = {"timeline": window.inspector.timeline, "speed box": window.inspector.speed_box,
              "retrieval dock": window.retrieval_panel, "sound dock": window.audio_panel}[focus]
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_Space)
    assert not window.inspector.playing
    qtbot.keyClick(widget, Qt.Key.Key_Space)
    assert window.inspector.playing


def test_arrows_step_frames_and_shift_arrows_seek_5_s_from_anywhere(qtbot, playing_window):
    window = playing_window
    widget = window.retrieval_panel
    qtbot.keyClick(widget, Qt.Key.Key_Space)  # pause
    window.inspector.seek(1.0)
    qtbot.keyClick(widget, Qt.Key.Key_Right)
    assert position(window) == pytest.approx(1.04)  # one frame at 25 fps
    qtbot.keyClick(widget, Qt.Key.Key_Left)
    qtbot.keyClick(widget, Qt.Key.Key_Left)
    assert position(window) == pytest.approx(0.96)
    qtbot.keyClick(widget, Qt.Key.Key_Right, SHIFT)
    assert position(window) == pytest.approx(min(5.96, window.inspector.file.info.duration))
    window.inspector.seek(2.0)
    qtbot.keyClick(widget, Qt.Key.Key_Left, SHIFT)
    assert position(window) == 0.0  # not before the start
    qtbot.waitUntil(lambda: window.inspector.timeline.value() == 0, timeout=WAIT_MS)  # the frame was shown


def test_keys_do_not_move_the_inspector_while_the_live_tab_is_shown(qtbot, playing_window):
    window = playing_window
    window.tabs.setCurrentWidget(window.live_view)  # pauses the inspector
    t = position(window)
    qtbot.keyClick(window.live_view, Qt.Key.Key_Space)
    qtbot.keyClick(window.live_view, Qt.Key.Key_Right, SHIFT)
    assert not window.inspector.playing and position(window) == t


def test_loop_starts_the_file_again_at_its_end(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    with qtbot.waitActive(window):
        window.activateWindow()
    window.open_paths([write_clip(tmp_path / "short.mp4", seconds=1.0)])
    inspector = window.inspector
    qtbot.keyClick(window.retrieval_panel, Qt.Key.Key_L)
    assert inspector.loop and inspector.clock.loop and window.menus.loop_action.isChecked()
    qtbot.waitUntil(lambda: position(window) >= 0.8, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: position(window) < 0.5, timeout=WAIT_MS)  # back at the start ...
    assert inspector.playing  # ... and still playing
    qtbot.keyClick(window.retrieval_panel, Qt.Key.Key_L)
    assert not inspector.clock.loop
    qtbot.waitUntil(lambda: not inspector.playing, timeout=WAIT_MS)  # without loop it stops at the end


def test_m_mutes_and_9_0_set_the_volume_of_the_tab_shown(qtbot, playing_window):
    window = playing_window
    inspector_volume, live_volume = window.inspector.volume, window.sources.volume
    assert not inspector_volume.muted and live_volume.muted  # opened files sound; the live demo waits for M
    qtbot.keyClick(window.audio_panel, Qt.Key.Key_M)
    assert inspector_volume.muted and window.menus.mute_action.isChecked() and "muted" in window.sound_label.text()
    qtbot.keyClick(window.audio_panel, Qt.Key.Key_M)
    qtbot.keyClick(window.audio_panel, Qt.Key.Key_9)
    qtbot.keyClick(window.audio_panel, Qt.Key.Key_9)
    assert inspector_volume.level == pytest.approx(0.8) and "80 %" in window.sound_label.text()
    window.tabs.setCurrentWidget(window.live_view)
    assert window.menus.mute_action.isChecked()  # the live sound is still muted
    qtbot.keyClick(window.live_view, Qt.Key.Key_M)
    assert not live_volume.muted and inspector_volume.level == pytest.approx(0.8)


def test_the_speaker_plays_the_track_at_the_volume():
    track = np.linspace(-1, 1, RATE, dtype=np.float32)
    clock = PlaybackClock(1.0)
    clock.seek(0.5)
    clock.pause()
    volume = Volume(level=0.5)
    speaker = Speaker(track, RATE, clock, volume)
    out = np.ones((256, 1), np.float32)
    speaker._callback(out, 256, None, None)
    assert not out.any()  # paused: silence
    clock.play()
    speaker._callback(out, 256, None, None)
    first = int(np.argmin(np.abs(track - 2 * out[0, 0])))  # the ramp tells which sample came first
    assert 8000 <= first < 8000 + RATE // 10  # the clock's position (it runs on a little)
    assert np.allclose(out[:, 0], 0.5 * track[first:first + 256], atol=1e-6)
    volume.muted = True
    speaker._callback(out, 256, None, None)
    assert not out.any()


def test_the_monitor_plays_the_live_sound_a_little_behind_the_newest_sample():
    ring = RingBuffer(RATE, RATE)
    ring.write(np.arange(8000, dtype=np.float32))
    volume = Volume(muted=True)
    monitor = Monitor(ring, volume)
    out = np.ones((512, 1), np.float32)
    monitor._callback(out, 512, None, None)
    assert not out.any()  # muted by default in the window
    volume.muted = False
    monitor._callback(out, 512, None, None)  # continues where the muted call left off
    first = 8000 - int(MONITOR_DELAY_SECONDS * RATE) + 512
    assert np.array_equal(out[:, 0], np.arange(first, first + 512))
