"""View > Object-guided heatmap: on with the bundled model (its chosen weight), off gives the cosine map alone."""
from pathlib import Path

from window_support import start_test_devices, wait_for_heatmaps

BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"


def test_the_view_menu_turns_the_object_guidance_off_and_on(qtbot, make_window):
    window = make_window(load_model=False)
    assert window.load_checkpoint(BUNDLED)
    action = window.menus.objects_action
    weight = window.model.guidance.weight
    assert weight > 0 and action.isEnabled() and action.isChecked()
    assert f"object-guided {weight:g}" in window.model_label.text()
    start_test_devices(window)
    wait_for_heatmaps(qtbot, window.live_view)
    action.trigger()  # off: the paper's cosine map, in every view (a view setting: the model keeps its weight)
    assert not window.view.objects and not action.isChecked() and window.model.guidance.weight == weight
    assert "object-guided" not in window.model_label.text()
    wait_for_heatmaps(qtbot, window.live_view)
    action.trigger()
    assert window.view.objects and action.isChecked() and window.model.guidance.weight == weight
    wait_for_heatmaps(qtbot, window.live_view)


def test_a_model_without_object_guidance_leaves_the_action_disabled(make_window):
    window = make_window()  # the random test model: weight 0
    action = window.menus.objects_action
    assert not action.isEnabled() and not action.isChecked()
    action.setChecked(True)  # even if asked: nothing to mix in
    assert window.model.guidance.weight == 0 and "object-guided" not in window.model_label.text()
