"""Strict, typed configuration: dataclasses read from and written to plain dictionaries / JSON.

Every configuration in the project is a (nested) dataclass. :func:`from_dict` checks the input
against the dataclass's type hints: an unknown key, a missing required key (a field without a
default) or a value of the wrong type is a :class:`ConfigError` naming the full key path, e.g.
``cfg.json: model.encoder.d_modell: unknown key (did you mean 'd_model'?)``.

Supported field types: ``bool``, ``int``, ``float`` (an ``int`` value is accepted), ``str``,
``Literal[...]``, ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and nested
dataclasses. Floats must be finite (JSON readers accept ``NaN``); a dataclass's own checks raise
:class:`FieldError` to be reported under the field's key path.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type."""


class FieldError(ValueError):
    """A config dataclass's check of one of its fields failed (raised in ``__post_init__``);
    :func:`from_dict` reports it under the field's full key path.

    Parameters
    ----------
    key : str
        The field's name.
    message : str
        What is wrong, e.g. ``"must be >= 0, got -10"``.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, strictly.

    Parameters
    ----------
    cls : type
        A dataclass type.
    data : mapping
        Its fields by name.
    where : str
        Prefix for error messages (a file name, a key path).
    """
    return _convert(cls, data, where)


def to_dict(obj: Any) -> Any:
    """The JSON-serialisable form of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def load_json(cls: type[T], path: str | Path) -> T:
    """Read a JSON file into dataclass ``cls``; errors name the file and key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid JSON: nested too deeply") from None
    return from_dict(cls, data, f"{path}:")


def save_json(obj: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(obj), indent=2, ensure_ascii=False) + "\n", "utf-8")


def _join(where: str, key: str) -> str:
    if not where:
        return key
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def _fail(where: str, message: str) -> ConfigError:
    if not where:
        return ConfigError(message)
    return ConfigError(f"{where} {message}" if where.endswith(":") else f"{where}: {message}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # ``X | None``: report what is wrong inside X
            return _convert(options[0], value, where)
        errors = []
        for arg in options:
            try:
                return _convert(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise _fail(where, f"expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise _fail(where, f"expected one of {list(args)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(where, f"expected a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _fail(where, f"expected a list of {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _fail(where, f"expected an object, got {value!r}")
        return {str(k): _convert(args[1], v, _join(where, str(k))) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # JSON readers accept NaN and Infinity
                raise _fail(where, f"must be a finite number, got {value!r}")
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (bool, str):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"unsupported config type {tp!r} at {where}")
    raise _fail(where, f"expected {_type_name(tp)}, got {value!r}")


def _convert_dataclass(cls: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(value) and isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected an object for {cls.__name__}, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(_join(where, str(key)), f"unknown key{hint}; known keys: {', '.join(fields)}")
    kwargs = {}
    for name, field in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], _join(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _fail(_join(where, name), f"missing required key ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except FieldError as err:
        raise _fail(_join(where, err.key), err.message) from None
    except (ValueError, TypeError) as err:
        raise _fail(where or cls.__name__, str(err)) from None
