"""The values a config dataclass accepts: each class lists its fields' ranges in ``RANGES`` and calls
``check_fields(self)`` from ``__post_init__``, so that a value from a checkpoint, a command line or code is
refused with its field named (a ``FieldError``) before anything is allocated with it.

A range is ``(low, high)`` (inclusive), ``(low, high, step)`` (a multiple of step) or a set of choices. A
field's type comes from its annotation: an int is a float, a bool is neither.

A config whose fields depend on each other lists its checks as ``(is wrong, message)`` pairs instead and
calls ``check_rules`` where its values are complete.
"""
from __future__ import annotations

import math
import numbers
import typing
from dataclasses import asdict, fields


class FieldError(ValueError):
    """A config field whose value its type or range refuses."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


def _type_ok(value, kinds: tuple) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, numbers.Real):
        return float in kinds or (int in kinds and isinstance(value, numbers.Integral))
    return isinstance(value, kinds)


def _range_problem(value, rule) -> str | None:
    if isinstance(rule, (set, frozenset)):
        return None if value in rule else f"must be {' or '.join(map(str, sorted(rule)))}, not {value!r}"
    low, high, *step = rule
    if not math.isfinite(value) or (value <= 0 < low):
        return f"must be a finite number{' > 0' if low > 0 else ''}, not {value!r}"
    if not low <= value <= high or (step and value % step[0]):
        return f"must be {f'a multiple of {step[0]} ' if step else ''}within [{low}, {high}], not {value!r}"
    return None


def check_fields(config) -> None:
    """A ``FieldError`` naming the first field of dataclass ``config`` whose value has another type than its
    annotation says, or lies outside the class's ``RANGES``."""
    hints = typing.get_type_hints(type(config))
    ranges = getattr(config, "RANGES", {})
    for f in fields(config):
        value = getattr(config, f.name)
        kinds = typing.get_args(hints[f.name]) or (hints[f.name],)
        if not _type_ok(value, kinds):
            names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in kinds)
            raise FieldError(f.name, f"must be {names}, not {value!r:.60}")
        problem = _range_problem(value, ranges[f.name]) if f.name in ranges and value is not None else None
        if problem:
            raise FieldError(f.name, problem)


def check_rules(config, rules) -> None:
    """A ValueError with the message of the first of ``rules``, ``(is wrong, message)`` pairs, whose test holds for
    dataclass ``config``; the message is formatted with the config's fields."""
    for broken, message in rules:
        if broken(config):
            raise ValueError(message.format(**asdict(config)))
