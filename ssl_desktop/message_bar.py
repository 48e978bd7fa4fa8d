"""Banners at the top of the window: what is wrong or worth knowing, never a blocking dialog.

Each message has a key (``"model"``, ``"camera"``, ...): showing a key again replaces its text, and
``clear(key)`` removes it once the problem is gone.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

COLOURS = {  # background, text
    "error": ("#f8d7da", "#5c1a20"),
    "warning": ("#fff3cd", "#5a4300"),
    "info": ("#d9ecff", "#103a5c"),
}


class Banner(QWidget):
    def __init__(self, text: str, level: str, on_close, parent=None):
        super().__init__(parent)
        background, foreground = COLOURS[level]
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(f"Banner {{ background: {background}; border-radius: 4px; }}"
                           f"QLabel, QToolButton {{ color: {foreground}; background: transparent; border: none; }}")
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(on_close)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)


class MessageBar(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._banners: dict[str, Banner] = {}
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 0)
        self._layout.setSpacing(3)
        self.setVisible(False)

    def show_message(self, key: str, text: str, level: str = "warning") -> None:
        self.clear(key)
        banner = Banner(text, level, lambda: self.clear(key))
        self._banners[key] = banner
        self._layout.addWidget(banner)
        self.setVisible(True)

    def clear(self, key: str) -> None:
        banner = self._banners.pop(key, None)
        if banner is not None:
            banner.setParent(None)
            banner.deleteLater()
        self.setVisible(bool(self._banners))

    def text(self, key: str) -> str:
        """The message shown under ``key``, "" when none."""
        banner = self._banners.get(key)
        return banner.label.text() if banner else ""

    def keys(self) -> list[str]:
        return list(self._banners)
