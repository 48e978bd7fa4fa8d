"""The one message area at the top of the window: what is wrong or worth knowing, never a blocking dialog.
It holds messages that need the user; a view's running state (whether the sound is in the picture) is said on
that view's picture, never here.

Each message has a key (``"model"``, ``"source"``, ...): showing a key again replaces its text, and
``clear(key)`` removes it once the problem is gone. The newest message is on top; older ones fold away
behind a "n more" button. A key can belong to a tab (``tab_of``): its message shows only while that
tab is shown, so the live view's "no camera" does not follow into the inspector.
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
        self.level = level
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
    def __init__(self, tab_of: dict[str, str] | None = None, parent=None):
        super().__init__(parent)
        self._banners: dict[str, Banner] = {}  # oldest first
        self._tab_of = tab_of or {}
        self._tab: str | None = None
        self.expanded = False
        self.more_button = QToolButton()
        self.more_button.setAutoRaise(True)
        self.more_button.clicked.connect(self._toggle)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 0)
        self._layout.setSpacing(3)
        self._layout.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignLeft)
        self._refresh()

    def show_message(self, key: str, text: str, level: str = "warning") -> None:
        shown = self._banners.get(key)
        if shown is not None and shown.level == level and shown.label.text() == text:
            return  # shown again by a timer or a worker: rebuilding a banner costs the GUI thread
        self.clear(key)
        banner = Banner(text, level, lambda: self.clear(key))
        self._banners[key] = banner
        self._layout.insertWidget(0, banner)  # newest on top
        self._refresh()

    def clear(self, key: str) -> None:
        banner = self._banners.pop(key, None)
        if banner is None:
            return
        banner.setParent(None)
        banner.deleteLater()
        self._refresh()

    def set_tab(self, tab: str) -> None:
        """Show the messages of ``tab`` (and those of no tab)."""
        self._tab = tab
        self._refresh()

    def text(self, key: str) -> str:
        """The message shown under ``key``, "" when none."""
        banner = self._banners.get(key)
        return banner.label.text() if banner else ""

    def keys(self) -> list[str]:
        return list(self._banners)

    def shown_keys(self) -> list[str]:
        """The keys of the current tab's messages, newest first."""
        return [k for k in reversed(self._banners) if self._tab_of.get(k) in (None, self._tab)]

    def _toggle(self) -> None:
        self.expanded = not self.expanded
        self._refresh()

    def _refresh(self) -> None:
        shown = self.shown_keys()
        for key, banner in self._banners.items():
            banner.setVisible(key in shown[:len(shown) if self.expanded else 1])
        older = len(shown) - 1
        self.more_button.setVisible(older > 0)
        self.more_button.setText(f"▴ hide {older} older" if self.expanded else
                                 f"▾ {older} more message{'s' if older > 1 else ''}")
        self.setVisible(bool(shown))
