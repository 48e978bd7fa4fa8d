"""The Source menu tells the truth; video and sound are chosen apart; the last devices are remembered."""
import pytest
from window_support import WAIT_MS

from ssl_desktop import live_sources as live_sources_module
from ssl_desktop import menus as menus_module
from ssl_desktop.main_window import app_settings
from ssl_desktop.sources import Device, MicrophoneSource, PlaylistAudioSource, PlaylistFrameSource

USB_MIC = Device(3, "USB mic")


@pytest.fixture
def devices(monkeypatch):
    """Two cameras and a microphone in the device lists (opening them fails here: none is plugged in)."""
    for module in (live_sources_module, menus_module):  # the window opens them, the Source menu lists them
        monkeypatch.setattr(module, "list_cameras", lambda: [Device(90, "cam A"), Device(91, "cam B")])
        monkeypatch.setattr(module, "list_microphones", lambda: [USB_MIC])


def checked(window) -> list[str]:
    window.menus.fill_source_menu()
    return [a.text() for a in window.menus.source_menu.actions() if a.isCheckable() and a.isChecked()]


def test_settings_are_kept_away_from_the_user_s(private_settings):
    assert app_settings().fileName().startswith(str(private_settings))


def test_the_demo_with_its_own_sound_is_what_the_menu_checks(qtbot, make_window, devices):
    window = make_window()
    window.start_source("demo")
    assert checked(window) == ["Bundled demo clips", "The video's own sound"]  # no microphone marked in use
    assert isinstance(window.pipeline.audio_source, PlaylistAudioSource)


def test_the_demo_video_with_a_microphone(qtbot, make_window, devices, monkeypatch):
    started = []
    monkeypatch.setattr(MicrophoneSource, "start", lambda self, ring: started.append(self.name))
    monkeypatch.setattr(MicrophoneSource, "stop", lambda self: None)
    window = make_window()
    window.start_source("demo")
    window.sources.use_microphone(USB_MIC)
    assert started == ["USB mic"]  # the microphone was opened ...
    assert isinstance(window.pipeline.frame_source, PlaylistFrameSource)  # ... with the demo still the video
    assert window.sources.kind == "demo" and window.sources.monitor is None  # a microphone is not played back
    assert checked(window) == ["Bundled demo clips", "USB mic"]
    qtbot.waitUntil(lambda: window.live_view.frames_shown >= 3, timeout=WAIT_MS)
    window.sources.use_video_sound()
    assert isinstance(window.pipeline.audio_source, PlaylistAudioSource)
    assert checked(window) == ["Bundled demo clips", "The video's own sound"]


def test_the_last_devices_are_remembered(qtbot, make_window, devices):
    window = make_window()
    window.sources.use_microphone(USB_MIC)
    window.sources.use_camera(Device(91, "cam B"))  # cannot be opened here: the demo takes over, the choice is
    # kept
    qtbot.waitUntil(lambda: window.sources.kind == "demo", timeout=WAIT_MS)
    window.close()
    again = make_window()
    assert again.sources.microphone == USB_MIC
    again.start_source("camera")
    assert again.sources.camera == Device(91, "cam B")
