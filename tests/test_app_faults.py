"""The app on input that gives nothing to localize: banners, no heatmaps from silence, a prompt --snapshot."""
import numpy as np
import pytest

from ssl_desktop import app as app_module
from test_app import WAIT_MS, checkpoint, clips, make_window  # noqa: F401 (fixtures)


def test_a_live_video_without_sound_says_so_and_gives_no_heatmap(qtbot, make_window, clips):
    window = make_window()
    window.start_source(str(clips["silent"]))
    view = window.live_view
    qtbot.waitUntil(lambda: view.frames_shown >= 10, timeout=WAIT_MS)
    assert "has no sound track" in window.messages.text("sound")
    assert view.heatmaps_shown == 0 and window.pipeline.worker.frames_processed == 0


@pytest.mark.parametrize("folder", ["empty", "broken"])
def test_a_gallery_of_nothing_playable_says_so(qtbot, make_window, clips, tmp_path, folder):
    (tmp_path / folder).mkdir()
    if folder == "broken":
        (tmp_path / folder / "a.mp4").write_bytes(clips["broken"].read_bytes())
    window = make_window()
    window.retrieval.build(tmp_path / folder)
    qtbot.waitUntil(lambda: window.messages.text("gallery") != "", timeout=WAIT_MS)
    assert f"no playable clips in {tmp_path / folder}" in window.messages.text("gallery")
    if folder == "broken":
        assert "a.mp4" in window.messages.text("gallery")


@pytest.mark.parametrize("case", ["source", "open", "gallery"])
def test_snapshot_ends_when_nothing_more_will_come(qtbot, checkpoint, clips, tmp_path, case):  # noqa: F811
    """--snapshot saves (exit 0) instead of waiting its 120 s for heatmaps or matches that cannot come."""
    out = tmp_path / "shot.png"
    args = {"source": ["--source", str(clips["silent"])], "open": ["--source", "demo", "--open", str(clips["silent"])],
            "gallery": ["--source", "demo", "--gallery", str(tmp_path)]}[case]
    code = app_module.main(["--checkpoint", str(checkpoint), *args, "--snapshot", str(out), "--after", "3",
                            "--size", "640x400", "--device", "cpu"])
    assert code == 0 and out.is_file()
