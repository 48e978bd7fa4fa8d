"""The semantic side's settings that travel in a checkpoint (``semantic`` metadata)."""
from __future__ import annotations

from dataclasses import dataclass

from model.common.config_checks import check_fields


@dataclass
class SemanticConfig:
    """The semantic side saved in a checkpoint's ``semantic`` metadata; the defaults leave it out."""

    weight: float = 0.0  # share of the semantic map in the heatmap shown; 0: not mixed in
    in_view: float | None = None  # semantic peak from which the sound is in view; None: presence ignores it
    known: float | None = None  # a linked sound this likely, with no peak, is "not in view"; None: never
    chosen_on: str = ""  # the folder the values were chosen on
    person_weight: float | None = None  # its share for a person's sound (``Heard.is_persons``); None: weight

    RANGES = {"weight": (0.0, 1.0), "person_weight": (0.0, 1.0), "in_view": (0.0, 1.0),
              "known": (0.0, 1.0)}  # config_checks

    def __post_init__(self):
        check_fields(self)

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.in_view is not None

    def weight_for(self, persons: bool) -> float:
        """The semantic share for a sound that is (``persons``) or is not a person's."""
        return self.person_weight if persons and self.person_weight is not None else self.weight
