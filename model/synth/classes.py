"""The class table of the procedural benchmark: each class is a visual family and a sound family.

A class is identified by its shape + pattern + palette (classes share palettes and patterns, so
colour alone is never enough) and by a sound family with class-specific parameter ranges.
Every ``(lo, hi)`` tuple in ``SoundSpec.params`` is drawn uniformly per clip (the in-class jitter);
other values (numbers, booleans, lists of partials) are constants of the class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Two colours per palette (RGB): the pattern's primary and secondary colour.
PALETTES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "blue": ((40, 90, 225), (225, 235, 255)),
    "red": ((215, 40, 45), (250, 215, 70)),
    "green": ((35, 165, 60), (15, 55, 25)),
    "purple": ((140, 45, 195), (240, 195, 250)),
    "orange": ((245, 130, 20), (55, 25, 10)),
    "cyan": ((25, 200, 215), (10, 35, 85)),
}


@dataclass(frozen=True)
class SoundSpec:
    """A sound family (``tone``, ``noise``, ``pulses`` or ``sweep``) and its parameter ranges."""

    family: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ClassSpec:
    """One benchmark class: how it looks and how it sounds."""

    name: str
    shape: str
    pattern: str
    palette: str
    sound: SoundSpec


def _spec(name, shape, pattern, palette, family, **params) -> ClassSpec:
    return ClassSpec(name, shape, pattern, palette, SoundSpec(family, params))


BELL_PARTIALS = [1.0, 2.76, 5.40, 8.93]
GONG_PARTIALS = [1.0, 1.41, 2.19, 2.83, 3.63]

CLASS_SPECS: tuple[ClassSpec, ...] = (
    # heard classes
    _spec("hum", "circle", "solid", "blue", "tone", f0=(100, 150), harmonics=8, rolloff=1.0),
    _spec("whistle", "triangle", "solid", "blue", "tone", f0=(1500, 2200), harmonics=1,
          vibrato_rate=(4, 6), vibrato_depth=(0.01, 0.03)),
    _spec("siren", "diamond", "stripes", "red", "sweep", f_start=(500, 650), f_end=(1100, 1400),
          rate=(0.8, 1.2), fill=1.0, updown=True),
    _spec("alarm", "square", "checker", "red", "pulses", f0=(1800, 2400), partials=[1.0, 3.0],
          rate=(3, 5), duty=0.5),
    _spec("bell", "ring", "solid", "orange", "pulses", f0=(400, 700), partials=BELL_PARTIALS,
          rate=(0.8, 1.25), decay=(0.3, 0.5)),
    _spec("drum", "hexagon", "dots", "orange", "pulses", f0=(50, 80), partials=[1.0],
          rate=(1.5, 2.5), decay=(0.08, 0.14), pitch_drop=1.5),
    _spec("rain", "square", "dots", "blue", "noise", lo=(3000, 4000), hi=(6000, 7500)),
    _spec("wind", "circle", "gradient", "cyan", "noise", lo=(150, 250), hi=(500, 750),
          am_rate=(0.3, 0.7), am_depth=0.6),
    _spec("clock", "cross", "solid", "green", "pulses", f0=(2500, 3500), partials=[1.0],
          rate=(1.8, 2.4), decay=(0.004, 0.008)),
    _spec("bird", "star", "gradient", "green", "sweep", f_start=(2300, 2800), f_end=(4000, 5000),
          rate=(3, 6), fill=0.5),
    _spec("engine", "hexagon", "stripes", "cyan", "tone", f0=(35, 60), harmonics=12, rolloff=0.7,
          am_rate=(15, 25), am_depth=0.5),
    _spec("organ", "ring", "stripes", "purple", "tone", f0=(250, 350), harmonics=7, rolloff=1.0,
          odd=True),
    _spec("laser", "triangle", "checker", "purple", "sweep", f_start=(3000, 4000), f_end=(500, 700),
          rate=(2, 3), fill=0.6),
    _spec("tremolo", "diamond", "solid", "green", "tone", f0=(440, 600), harmonics=3, rolloff=1.5,
          am_rate=(5, 8), am_depth=0.9),
    _spec("warble", "cross", "gradient", "orange", "tone", f0=(600, 900), harmonics=2, rolloff=2.0,
          vibrato_rate=(8, 14), vibrato_depth=(0.2, 0.35)),
    # unheard classes
    _spec("bubbles", "circle", "dots", "purple", "sweep", f_start=(300, 400), f_end=(1000, 1400),
          rate=(4, 8), fill=0.4, poisson=True),
    _spec("static", "square", "stripes", "green", "noise", lo=(800, 1200), hi=(7000, 7900),
          rate=(25, 40), decay=(0.002, 0.005)),
    _spec("gong", "hexagon", "gradient", "red", "pulses", f0=(150, 250), partials=GONG_PARTIALS,
          rate=(0.5, 0.7), decay=(0.6, 0.9)),
    _spec("ticker", "star", "checker", "blue", "pulses", f0=(5000, 6000), partials=[1.0],
          rate=(8, 12), decay=(0.002, 0.004)),
    _spec("horn", "diamond", "dots", "cyan", "pulses", f0=(200, 280),
          partials=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], rate=(1.0, 1.6), duty=0.6),
)

CLASSES: list[str] = [spec.name for spec in CLASS_SPECS]
HEARD_CLASSES: list[str] = CLASSES[:15]
UNHEARD_CLASSES: list[str] = CLASSES[15:]
SPEC_BY_NAME: dict[str, ClassSpec] = {spec.name: spec for spec in CLASS_SPECS}
