"""The window's menus: File, Source, Playback, View and Teach, and the file dialogs they open.

The File and View menus and the sound keys emit signals that the window connects; the Source menu chooses through
the ``LiveSources`` it is given, the transport keys act on the ``Inspector``. The menus keep no state of their own
beyond what they show checked.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow

from model.data.video_io import VIDEO_EXTENSIONS

from .inspector import Inspector
from .live_sources import DEMO_DIR, RESOURCES, LiveSources
from .sources import SourceError, list_cameras, list_microphones

VIDEO_FILTER = f"Videos ({' '.join('*' + e for e in VIDEO_EXTENSIONS)});;All files (*)"
CHECKPOINT_FILTERS = {  # file dialog filter -> import format (None: our own safetensors)
    "ssl-desktop model (*.safetensors)": None,
    "SSL-Align published checkpoint (*.pth *.pth.tar *.tar)": "ssl-align",
    "EZ-VSL published checkpoint (*.pth *.pth.tar *.tar)": "ezvsl",
}
SEEK_SECONDS = 5.0  # Shift+Left / Shift+Right


MAP_ITEMS = (  # (what is shown: model.localize.SHOWN_MAPS, menu text, tooltip)
    ("combined", "&Both: alignment and knowledge",
     "the alignment model's map mixed with the semantic map at the model's weight"),
    ("alignment", "&Alignment model only (the paper's cosine map)",
     "the cosine between the sound's vector and every place of the picture, as the paper localizes"),
    ("knowledge", "&Knowledge only (semantic map)",
     "where pretrained classifiers see something that makes the sound heard (AudioSet -> ImageNet, faces)"),
)


class WindowMenus(QObject):
    """Builds the menu bar of ``window``; ``dock_toggles`` are listed in the View menu."""

    videos_chosen = Signal(list)  # paths to open in the inspector
    checkpoint_chosen = Signal(str, object)  # path, import format (None: our own safetensors)
    gallery_folder_chosen = Signal(str)
    frame_export_chosen = Signal(str)  # PNG path
    clip_export_chosen = Signal(str)  # MP4 path
    objects_toggled = Signal(bool)  # View > Object-guided heatmap
    map_chosen = Signal(str)  # View > Heatmap shows: one of model.localize.SHOWN_MAPS
    transport = Signal(object)  # a transport key's action on the inspector (to run while it is the tab shown)
    mute_toggled = Signal(bool)
    volume_stepped = Signal(int)  # +1 / -1

    def __init__(self, window: QMainWindow, inspector: Inspector, sources: LiveSources, dock_toggles):
        super().__init__(window)
        self.inspector, self.sources = inspector, sources
        bar = window.menuBar()
        file_menu = bar.addMenu("&File")
        self.add_action(file_menu, "&Open video…", self.choose_videos, QKeySequence.StandardKey.Open)
        self.add_action(file_menu, "&Import checkpoint…", self.choose_checkpoint)
        self.add_action(file_menu, "&Build gallery…", self.choose_gallery_folder)
        file_menu.addSeparator()
        self.add_action(file_menu, "Export &frame as PNG…", self.choose_frame_export, "Ctrl+E")
        self.export_clip_action = self.add_action(file_menu, "Export &clip with heatmap as MP4…",
                                                  self.choose_clip_export, "Ctrl+Shift+E")
        file_menu.addSeparator()
        self.add_action(file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

        self.source_menu = bar.addMenu("&Source")
        self.source_menu.aboutToShow.connect(self.fill_source_menu)
        self.fill_source_menu()

        self._build_playback_menu(bar.addMenu("&Playback"))

        self.view_menu = bar.addMenu("&View")
        for toggle in dock_toggles:
            self.view_menu.addAction(toggle)
        self.view_menu.addSeparator()
        self.objects_action = QAction("&Object-guided heatmap", window)
        self.objects_action.setCheckable(True)
        self.objects_action.toggled.connect(self.objects_toggled)
        self.view_menu.addAction(self.objects_action)
        self.map_menu = self.view_menu.addMenu("&Heatmap shows")
        self.map_menu.setToolTipsVisible(True)
        group = QActionGroup(window)
        self.map_actions = {}
        for shown, text, tip in MAP_ITEMS:
            action = QAction(text, window, checkable=True)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, shown=shown: self.map_chosen.emit(shown))
            group.addAction(action)
            self.map_menu.addAction(action)
            self.map_actions[shown] = action

    def show_objects(self, weight: float, on: bool) -> None:
        """The Object-guided action as the model allows (``weight`` 0: it has none) and as it is now."""
        action = self.objects_action
        action.setEnabled(weight > 0)
        action.setText(f"&Object-guided heatmap (weight {weight:g})" if weight > 0 else "&Object-guided heatmap")
        action.setToolTip("mix where the ImageNet encoder sees objects into the heatmap (EZ-VSL's object-guided "
                          "localization); off: the audio-visual cosine map alone")
        action.blockSignals(True)  # showing the state is not a request to change it
        action.setChecked(on)
        action.blockSignals(False)

    def show_map(self, weight: float, shown: str | None) -> None:
        """The Heatmap shows menu as the model allows (``shown`` None: it has no semantic side) and as it is
        (``shown``: one of ``model.localize.SHOWN_MAPS``; ``weight``: the model's own)."""
        self.map_menu.setEnabled(shown is not None)
        self.map_actions["combined"].setText(f"&Both: alignment and knowledge (weight {weight:g})")
        for name, action in self.map_actions.items():
            action.setChecked(name == shown)

    @property
    def window(self) -> QMainWindow:
        """The window (the Qt parent: a Python reference back would make a cycle that the garbage collector
        may break in a worker thread, destroying Qt objects there)."""
        return self.parent()

    def add_teach_menu(self, record, finetune_toggle: QAction) -> None:
        """Teach: record a clip of the live view (Ctrl+R), show the fine-tune panel."""
        menu = self.window.menuBar().addMenu("&Teach")
        self.add_action(menu, "&Record a clip", record, "Ctrl+R")
        menu.addAction(finetune_toggle)

    def add_action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_playback_menu(self, menu) -> None:
        """The keys of mpv / VLC, working anywhere in the window (menu actions are window shortcuts)."""
        inspector = self.inspector
        for text, slot, keys in (("Play / pause", inspector.toggle_play, "Space"),
                                 ("Previous frame", lambda: inspector.step(-1), "Left"),
                                 ("Next frame", lambda: inspector.step(1), "Right"),
                                 (f"Back {SEEK_SECONDS:g} s", lambda: inspector.seek_by(-SEEK_SECONDS), "Shift+Left"),
                                 (f"Forward {SEEK_SECONDS:g} s", lambda: inspector.seek_by(SEEK_SECONDS),
                                  "Shift+Right")):
            self.add_action(menu, text, lambda checked=False, act=slot: self.transport.emit(act), keys)
        self.loop_action = self.add_action(menu, "&Loop", inspector.set_loop, "L")
        self.loop_action.setCheckable(True)
        menu.addSeparator()
        self.mute_action = self.add_action(menu, "&Mute", self.mute_toggled, "M")
        self.mute_action.setCheckable(True)
        self.add_action(menu, "Volume down", lambda: self.volume_stepped.emit(-1), "9")
        self.add_action(menu, "Volume up", lambda: self.volume_stepped.emit(1), "0")

    def fill_source_menu(self) -> None:
        """The video and the sound sources, chosen apart, listed anew each time the menu opens; the ones
        in use are checked."""
        sources, menu = self.sources, self.source_menu
        menu.clear()
        kind = sources.kind
        menu.addSection("Video")
        videos = QActionGroup(menu)
        cameras = list_cameras()
        for camera in cameras:
            self._add_choice(menu, videos, camera.name, lambda c=camera: sources.use_camera(c),
                             kind == "camera" and camera == sources.camera)
        if not cameras:
            menu.addAction("no camera found").setEnabled(False)
        self._add_choice(menu, videos, "Bundled demo clips", sources.use_demo, kind == "demo")
        file_text = f"Video file: {sources.file.name}" if kind == "file" else "Video file as a live source…"
        self._add_choice(menu, videos, file_text, self.choose_live_file, kind == "file")
        menu.addSection("Sound")
        sounds = QActionGroup(menu)
        own = self._add_choice(menu, sounds, "The video's own sound", sources.use_video_sound,
                               sources.uses_video_sound())
        own.setEnabled(kind in ("demo", "file"))
        try:
            microphones = list_microphones()
        except SourceError as exc:
            menu.addAction(str(exc)).setEnabled(False)
            microphones = []
        for microphone in [None, *microphones]:
            self._add_choice(menu, sounds, microphone.name if microphone else "default microphone",
                             lambda m=microphone: sources.use_microphone(m),
                             not sources.uses_video_sound() and microphone == sources.microphone)

    def _add_choice(self, menu, group, text, slot, checked: bool) -> QAction:
        action = self.add_action(menu, text, lambda checked=False: slot())
        action.setCheckable(True)
        action.setChecked(checked)
        group.addAction(action)
        return action

    # --- file dialogs -----------------------------------------------------------------------

    def choose_videos(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Open videos", "", VIDEO_FILTER)
        self.videos_chosen.emit(paths)

    def choose_checkpoint(self) -> None:
        path, chosen = QFileDialog.getOpenFileName(self.window, "Import checkpoint", str(RESOURCES),
                                                   ";;".join(CHECKPOINT_FILTERS))
        if path:
            self.checkpoint_chosen.emit(path, CHECKPOINT_FILTERS.get(chosen))

    def choose_gallery_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Folder of video clips to index", str(DEMO_DIR))
        if folder:
            self.gallery_folder_chosen.emit(folder)

    def choose_live_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Video file to loop as a live source", "", VIDEO_FILTER)
        if path:
            self.sources.use_file(Path(path))

    def choose_frame_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Export frame", "frame.png", "PNG images (*.png)")
        if path:
            self.frame_export_chosen.emit(path)

    def choose_clip_export(self) -> None:
        file = self.inspector.file
        default = f"{file.path.stem}_heatmap.mp4" if file else "clip_heatmap.mp4"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export clip", default, "MP4 videos (*.mp4)")
        if path:
            self.clip_export_chosen.emit(path)
