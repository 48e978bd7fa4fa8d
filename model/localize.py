"""The one per-frame path: a frame -> its visual map, a sound window -> its audio vector, both -> a heatmap.

The live view, the inspector, the MP4 export, ``ssl-eval`` and the gallery all go through these functions,
so a frame and a sound give the same heatmap wherever they are shown or scored.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.preprocess.audio import spectrogram
from model.inference.fast_path import InferenceConfig, prepare_for_inference
from model.inference.heatmap import to_heatmap, upsample_map
from model.knowledge import semantic as knowledge
from model.knowledge.config import SemanticConfig
from model.knowledge.scene import Scene, SceneReader, same_view, thumbnail
from model.knowledge.yamnet import sound_scores
from model.networks.object_guidance import ObjectGuidance, guide
from model.networks.presence import NOT_IN_VIEW, SILENCE, judge, level_dbfs, presence_score
from model.networks.sslmodel import SSLModel, cosine_map, pool_visual_map
from model.preprocess.image import preprocess_image

AUDIO_REFRESH_SECONDS = 0.25  # a new audio vector every quarter second of media time
SCENE_REFRESH_SECONDS = 1.0  # a knowing model reads the picture again at most every second of media time (and at a cut)


@dataclass
class Sound:
    """What the model hears: its unit audio vector and the spectrogram it was computed from."""

    vector: torch.Tensor  # (1, D) on the model's device
    spectrogram: np.ndarray  # (257, T)


def encode_sound(model: SSLModel, waveform: np.ndarray, device) -> Sound:
    """Mono waveform at the model's sample rate, ``model.audio_config.num_samples`` long -> ``Sound``."""
    spec = spectrogram(waveform, model.audio_config)  # (1, 257, T)
    return Sound(model.encode_audio(spec[None].to(device)), spec[0].numpy())


def encode_frame(model: SSLModel, image: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB uint8 frame (H, W, 3) -> (unit visual map (1, D, h, w), objectness (1, h, w)) on ``device``."""
    return model.encode_visual(preprocess_image(image, model.config.image_size)[None].to(device))


def heatmaps(visual: torch.Tensor, audio: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit visual maps (B, D, h, w) and unit audio vectors (B, D) -> (raw cosine maps (B, h, w),
    heatmaps of ``size`` (B, H, W) in [0, 1])."""
    cos = cosine_map(visual, audio)  # (B, h, w)
    return cos, to_heatmap(cos, size)


def image_vector(visual: torch.Tensor) -> torch.Tensor:
    """Unit visual map (B, D, h, w) -> unit global image vector (B, D)."""
    return pool_visual_map(visual)


SHOWN_MAPS = ("combined", "alignment", "knowledge")


@dataclass(frozen=True)
class ViewSettings:
    """What the heatmaps show, chosen by the viewer and never written into the model (whose ``guidance`` and
    ``semantic`` configs stay as loaded, and travel into checkpoints as such).

    ``objects``: mix in the visual encoder's objectness at the model's guidance weight (False: the cosine map
    alone, the paper's). ``shown`` (``SHOWN_MAPS``): "combined" mixes in the semantic map at the model's semantic
    weight, "alignment" shows the alignment model's map alone, "knowledge" the semantic map alone. Presence
    keeps the model's rule whatever is shown.
    """

    objects: bool = True
    shown: str = "combined"

    def __post_init__(self):
        if self.shown not in SHOWN_MAPS:
            raise ValueError(f"shown must be one of {SHOWN_MAPS}, not {self.shown!r}")

    def object_weight(self, guidance: ObjectGuidance) -> float:
        """The share of objectness in what is shown."""
        return guidance.weight if self.objects else 0.0

    def semantic_weight(self, semantic: SemanticConfig, persons: bool = False) -> float:
        """The share of the semantic map in what is shown (where the knowledge is sure) for a sound that is
        (``persons``) or is not a person's."""
        return {"combined": semantic.weight_for(persons), "alignment": 0.0, "knowledge": 1.0}[self.shown]


@dataclass
class Localized:
    """One frame's result: the raw cosine at frame size, for display, and what lies behind it."""

    shown: np.ndarray  # (H, W) float32 raw cosine, object-guided by the model's weight
    # (``model.networks.object_guidance``) and mixed with the semantic map as ``ViewSettings`` say, smoothly
    # upsampled (no seams); the view scales it
    cosine: np.ndarray  # (h, w) raw cosine map
    audio: torch.Tensor  # (D,) unit audio vector, CPU
    image: torch.Tensor  # (D,) unit global image vector, CPU
    presence: str  # '' when the sound is in the picture, else "silence" / "the sound is not in view"
    semantic: np.ndarray | None = None  # (h, w) the semantic map (``model.knowledge.semantic``); None: not used
    hearing: str = ""  # what the sound is, e.g. "speech 0.93, dog 0.41"; '' when unknown


class Localizer:
    """Heatmaps of successive frames, keeping the audio vector between refreshes.

    The sound is re-encoded when ``refresh`` seconds of media time have passed since the last time
    (``needs_sound(t)``); ``hear(waveform, t)`` does it, from this thread or another one (the live view
    hears in a thread of its own while frames go on with the vector heard last; ``heard_recently(t)``
    says whether that vector may stand in for ``t``). ``listen_to(vector)`` fixes the audio vector
    instead (a gallery clip as the query, never silence), until ``listen_to(None)``. Each result says
    whether the sound is in the picture (``model.networks.presence``'s calibrated threshold, on the raw cosine); what
    it shows is guided by the visual encoder's objectness as the model says (``model.networks.object_guidance``), unless
    ``view`` (``ViewSettings``, changed with ``set_view`` from any thread) turns it off. The encoders run on the
    fast path of ``model.inference.fast_path`` (``inference``: how).

    A model whose ``semantic`` config is enabled also knows the world (``model.knowledge``): each sound heard
    is classified (AudioSet), each new picture read (ImageNet classes, people), the semantic map is mixed
    into what is shown at the model's weight (its person weight for a person's sound; or as ``view`` says), and
    where it is sure it decides presence. The picture is read again in ``hear`` every ``SCENE_REFRESH_SECONDS``
    (the hearing thread, off the frame path) and, for a new picture (a cut), in ``localize``.
    """

    def __init__(self, model: SSLModel, device, refresh: float = AUDIO_REFRESH_SECONDS,
                 inference: InferenceConfig | None = None, view: ViewSettings | None = None):
        self.model = prepare_for_inference(model, device, inference)
        self.device, self.refresh = device, refresh
        self.view = view or ViewSettings()
        self.audio: torch.Tensor | None = None  # (1, D) on device
        self.level_dbfs = 0.0  # of the sound heard last
        self._heard_at: float | None = None
        self._fixed = False
        self._lock = threading.Lock()  # the sound's state changes as one, whichever thread hears
        self.knows = self.model.semantic.enabled
        self.heard: knowledge.Heard | None = None  # what the sound heard last is (knowing models)
        self.scene: Scene | None = None  # the picture read last
        self._frame: np.ndarray | None = None  # the frame localized last, read again when a sound is heard
        self._scene_at: float | None = None  # media time of the hearing that read the picture last
        self._reader = SceneReader(device, self.model.config.image_size) if self.knows else None

    def needs_sound(self, t: float) -> bool:
        with self._lock:
            return not self._fixed and (self.audio is None or abs(t - self._heard_at) >= self.refresh)

    def heard_recently(self, t: float) -> bool:
        """True when the vector heard last is within two refreshes of ``t`` (not at the start, after a
        seek or after silence): frames at ``t`` may keep it while the next sound is encoded."""
        with self._lock:
            return self._fixed or (self.audio is not None and abs(t - self._heard_at) < 2 * self.refresh)

    @torch.no_grad()
    def hear(self, waveform: np.ndarray, t: float) -> Sound:
        sound = encode_sound(self.model, waveform, self.device)
        heard = knowledge.heard(sound_scores(waveform, self.model.audio_config.sample_rate)) if self.knows else None
        with self._lock:
            if not self._fixed:  # a vector fixed meanwhile wins
                self.audio, self._heard_at, self.level_dbfs = sound.vector, t, level_dbfs(waveform)
                self.heard = heard
            frame = self._frame
            stale = self._scene_at is None or abs(t - self._scene_at) >= SCENE_REFRESH_SECONDS
        if frame is not None and stale:
            self._scene_at = t
            self._read(frame)
        return sound

    def forget_sound(self) -> None:
        """No sound now (no microphone, no track): no heatmap until the next ``hear``."""
        with self._lock:
            if not self._fixed:
                self.audio = None

    def forget_picture(self) -> None:
        """A new picture comes (another file, a cut): read it afresh at the next frame, whatever it looks like."""
        with self._lock:
            self.scene, self._frame, self._scene_at = None, None, None

    def listen_to(self, vector: torch.Tensor | None) -> None:
        """Localize this unit audio vector (D,) from now on; None: the sound again."""
        with self._lock:
            self._fixed = vector is not None
            self.audio = vector.reshape(1, -1).to(self.device) if vector is not None else None
            self.level_dbfs = 0.0
            self.heard = None  # a gallery clip's vector: no sound to classify

    def set_view(self, view: ViewSettings) -> None:
        """Show the next frames as ``view`` says."""
        with self._lock:
            self.view = view

    @torch.no_grad()
    def localize(self, image: np.ndarray) -> Localized | None:
        """The cosine map of an RGB frame, also at the frame's size; None while there is no sound."""
        with self._lock:
            audio, level, heard, scene, view = self.audio, self.level_dbfs, self.heard, self.scene, self.view
        if audio is None:
            return None
        visual, objects = encode_frame(self.model, image, self.device)
        cos = cosine_map(visual, audio)  # (1, h, w)
        presence = judge(float(presence_score(cos)[0]), level, self.model.presence)
        shown = guide(cos, objects, view.object_weight(self.model.guidance))[0]
        semantic = None
        if heard is not None:
            with self._lock:
                self._frame = image.copy()
            if not same_view(scene, thumbnail(image)):
                scene = self._read(image)
            semantic = knowledge.semantic_map(heard, scene).to(cos.device)
            if semantic.shape != cos.shape[1:]:
                semantic = F.interpolate(semantic[None, None], size=cos.shape[1:], mode="bilinear")[0, 0]
            shown = knowledge.combine(shown, semantic, view.semantic_weight(self.model.semantic, heard.is_persons),
                                      knowledge.is_sure(heard.linked, self.model.semantic))
            verdict = knowledge.judge(float(semantic.max()), heard.linked, self.model.semantic)
            audible = presence != SILENCE or knowledge.names_surely(heard.linked, self.model.semantic)
            if verdict is not None and audible:
                presence = "" if verdict else NOT_IN_VIEW
        shown = upsample_map(shown, image.shape[:2], smooth=True)
        return Localized(shown.cpu().numpy(), cos[0].float().cpu().numpy(),
                         audio[0].float().cpu(), image_vector(visual)[0].float().cpu(), presence,
                         None if semantic is None else semantic.float().cpu().numpy(),
                         knowledge.hearing_text(heard.scores) if heard is not None else "")

    def _read(self, image: np.ndarray) -> Scene:
        scene = self._reader.read(image)
        with self._lock:
            self.scene = scene
        return scene
