from ssl_desktop.app import MainWindow


def test_main_window_opens(qtbot):
    window = MainWindow("status")
    qtbot.addWidget(window)
    window.show()
    assert window.isVisible()
