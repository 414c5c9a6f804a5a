"""Scenes as JSON: every setting of a session, written and read back with its types checked.

Sessions, lessons and bundles store a ``Scene`` this way. Reading is strict: an unknown key, a value of the
wrong type or one the config itself rejects raises ``ValueError`` naming the setting (``scene.crop.params``),
so a hand-edited or foreign file fails with a message instead of building something else.
"""
from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing

from .scenes import Scene

__all__ = ["scene_to_dict", "scene_from_dict"]


def scene_to_dict(scene: Scene) -> dict:
    """Plain JSON-ready data (tuples become lists, nested configs dicts)."""
    return _to_plain(scene)


def scene_from_dict(data: dict) -> Scene:
    """The Scene ``data`` describes; missing keys take their defaults."""
    return _from_plain(Scene, data, "scene")


def _to_plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot store a non-finite setting ({value})")
    return value


def _from_plain(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    values = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _convert(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{where}: invalid value {_shown(value)}")
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value, where)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        if not args:  # an untyped tuple (per-stage ranges): nested lists become tuples
            return tuple(_freeze(v, where) for v in value)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is None and len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(item if item is not None else args[i], v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {_shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**62:
            raise ValueError(f"{where}: expected a whole number, got {_shown(value)}")
        return value
    if hint is float:
        try:
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"{where}: expected a finite number, got {_shown(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected text, got {_shown(value)}")
        return value
    if hint is type(None):
        if value is not None:
            raise ValueError(f"{where}: expected null, got {_shown(value)}")
        return None
    raise ValueError(f"{where}: cannot read a setting of type {hint}")


def _freeze(value, where: str, depth: int = 0):
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            raise ValueError(f"{where}: lists nested more than {MAX_NESTING} deep")
        return tuple(_freeze(v, where, depth + 1) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
            abs(value) <= 2**62 if isinstance(value, int) else math.isfinite(value)):
        raise ValueError(f"{where}: expected finite numbers, got {_shown(value)}")
    if value is None or isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    raise ValueError(f"{where}: unexpected value {_shown(value)}")


MAX_NESTING = 16
"""Untyped settings (per-stage bias ranges) hold lists of lists; deeper ones are refused, not recursed into."""


def _shown(value) -> str:
    """A value for a message: short, and safe however deeply it nests."""
    return reprlib.repr(value)
