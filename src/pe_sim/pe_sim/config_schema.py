"""The one config mechanism: dataclasses that mirror the YAML, read and checked here.

A config type is a (frozen or plain) dataclass whose fields are the YAML keys, each
default stated once in the field. Ranges and choices a value must satisfy go in the
field's metadata through :func:`setting`; nested sections are nested dataclasses,
lists of entries are ``tuple[Entry, ...]`` of a dataclass or ``NamedTuple``, a
``[low, high]`` pair is ``tuple[float, float]`` (a single number means ``[x, x]``).
:func:`from_data` builds one from a YAML mapping and raises
:class:`~pe_sim.config_reader.ConfigError` naming the file, the key path and the
reason; an unknown key names the closest known key. Checks that involve several
keys (geometry, divisibility) are the config type's own ``validate`` method.

:func:`schema_rows` lists every key with its type, default, constraint and help
text, for generated reference docs (``scripts/config_reference.py``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterator
from typing import Any

from pe_sim.config_reader import ConfigError

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, *, help: str = "", min: float | None = None,
            max: float | None = None, min_exclusive: bool = False, choices: tuple[str, ...] = (),
            required: bool = False, internal: bool = False, default_factory: Any = _MISSING) -> Any:
    """A dataclass field with its YAML constraints: numbers (and the items of lists/pairs)
    in ``[min, max]`` (``min`` excluded when ``min_exclusive``), strings in ``choices``;
    ``required`` keys must be in the YAML even though the code has a default;
    ``internal`` fields are not read from YAML (set by the loader)."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive,
            "choices": tuple(choices), "required": required, "internal": internal}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def closest(name: str, known: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` to ``name``, or ''."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def yaml_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that are YAML keys."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def from_data(cls: type, data: Any, source: str, prefix: str = "",
              internal: dict[str, Any] | None = None) -> Any:
    """Build dataclass ``cls`` from mapping ``data``: unknown keys (with the closest known
    one), missing required keys, types, finiteness, ranges and choices are checked;
    ``internal`` sets fields that are not YAML keys."""
    if not isinstance(data, dict):
        raise ConfigError(source, prefix or "<root>", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in yaml_fields(cls)}
    for name in data:
        if name not in fields:
            raise ConfigError(source, _join(prefix, str(name)),
                              f"unknown key{closest(name, fields)}; known here: {sorted(fields)}")
    kwargs = dict(internal or {})
    for name, f in fields.items():
        key = _join(prefix, name)
        if name not in data:
            no_default = f.default is _MISSING and f.default_factory is _MISSING
            if no_default or f.metadata.get("required"):
                raise ConfigError(source, key, "missing (required)")
            continue
        kwargs[name] = _coerce(hints[name], data[name], source, key, f.metadata)
    return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(hint: Any, value: Any, source: str, key: str, meta: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_data(hint, value, source, key)
    if _is_named_tuple(hint):
        return _named_tuple(hint, value, source, key)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, source, key, meta)
    if origin in (list, tuple) and not (origin is tuple and len(args) == 2 and args[1] is not Ellipsis):
        if not isinstance(value, list):
            raise ConfigError(source, key, f"expected a list, got {value!r}")
        items = [_coerce(args[0], v, source, f"{key}[{i}]", meta) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is tuple:
        return _pair(args, value, source, key, meta)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(source, key, f"expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, source, f"{key}.{k}", meta) for k, v in value.items()}
    return _scalar(hint, value, source, key, meta)


def _pair(args: tuple[Any, ...], value: Any, source: str, key: str, meta: Any) -> tuple[Any, Any]:
    """A ``[low, high]`` range; a single number means ``[x, x]``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(source, key, f"expected a number or a [low, high] pair, got {value!r}")
    low, high = (_scalar(a, v, source, key, meta) for a, v in zip(args, value, strict=True))
    if high < low:
        raise ConfigError(source, key, f"low must not exceed high, got {value}")
    return low, high


def _is_named_tuple(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields")


def _named_tuple(cls: Any, value: Any, source: str, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"expected a mapping with keys {list(cls._fields)}, got {value!r}")
    for name in value:
        if name not in cls._fields:
            raise ConfigError(source, _join(key, str(name)),
                              f"unknown key{closest(name, cls._fields)}; known here: {list(cls._fields)}")
    hints = typing.get_type_hints(cls)
    meta = getattr(cls, "FIELD_LIMITS", {})
    items = []
    for name in cls._fields:
        if name not in value:
            raise ConfigError(source, _join(key, name), "missing (required)")
        items.append(_scalar(hints[name], value[name], source, _join(key, name), meta.get(name, {})))
    return cls(*items)


def _scalar(hint: Any, value: Any, source: str, key: str, meta: Any) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, key, f"expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        return _number(hint, value, source, key, meta)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(source, key, f"expected a string, got {value!r}")
        choices = meta.get("choices") or ()
        if choices and value not in choices:
            raise ConfigError(source, key, f"must be one of {list(choices)}, got {value!r}"
                              + closest(value, choices))
        return value
    return value


def _number(hint: type, value: Any, source: str, key: str, meta: Any) -> float | int:
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            value = float(value)
        except ValueError:
            raise ConfigError(source, key, f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(source, key, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(source, key, f"expected a finite number, got {value!r}")
    if hint is int:
        if value != int(value):
            raise ConfigError(source, key, f"expected a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value <= lo if meta.get("min_exclusive") else value < lo):
        raise ConfigError(source, key, f"must be {'>' if meta.get('min_exclusive') else '>='} {lo}, "
                                       f"got {value}")
    if hi is not None and value > hi:
        raise ConfigError(source, key, f"must be <= {hi}, got {value}")
    return value


# --------------------------------------------------------------------------- plain data, docs


def to_data(obj: Any) -> Any:
    """``obj`` as plain YAML/JSON data with the file's layout (internal fields left out)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in yaml_fields(type(obj))}
    if _is_named_tuple(type(obj)):
        return {name: to_data(v) for name, v in zip(obj._fields, obj, strict=True)}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    return obj


def schema_rows(cls: type, prefix: str = "") -> Iterator[dict[str, str]]:
    """One row per YAML key of ``cls`` (nested sections expanded): key, type, default,
    constraint, help."""
    hints = typing.get_type_hints(cls)
    for f in yaml_fields(cls):
        key = _join(prefix, f.name)
        hint = hints[f.name]
        entry = _entry_type(hint)
        if dataclasses.is_dataclass(hint):
            yield _row(key, "section", "", "", f.metadata.get("help", ""))
            yield from schema_rows(hint, key)
        elif entry is not None:
            yield _row(key, "list", _default(f), "", f.metadata.get("help", ""))
            yield from schema_rows(entry, f"{key}[]") if dataclasses.is_dataclass(entry) else \
                _named_tuple_rows(entry, f"{key}[]")
        else:
            yield _row(key, _type_name(hint), _default(f), _constraint(f.metadata),
                       f.metadata.get("help", ""))


def _entry_type(hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        if dataclasses.is_dataclass(args[0]) or _is_named_tuple(args[0]):
            return args[0]
    return None


def _named_tuple_rows(cls: Any, prefix: str) -> Iterator[dict[str, str]]:
    hints = typing.get_type_hints(cls)
    limits = getattr(cls, "FIELD_LIMITS", {})
    for name in cls._fields:
        meta = limits.get(name, {})
        yield _row(_join(prefix, name), _type_name(hints[name]), "required", _constraint(meta),
                   meta.get("help", ""))


def _row(key: str, kind: str, default: str, constraint: str, help: str) -> dict[str, str]:
    return {"key": key, "type": kind, "default": default, "constraint": constraint, "help": help}


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
        return f"[low, high] of {args[0].__name__}"
    if origin in (list, tuple):
        return f"list of {args[0].__name__}"
    if origin is dict:
        return "mapping"
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return f"{_type_name(inner[0])} or null"
    return getattr(hint, "__name__", str(hint))


def _default(f: dataclasses.Field) -> str:
    if f.metadata.get("required") or (f.default is _MISSING and f.default_factory is _MISSING):
        return "required"
    value = f.default if f.default is not _MISSING else f.default_factory()
    return json.dumps(to_data(value))


def _constraint(meta: Any) -> str:
    parts = []
    if meta.get("min") is not None:
        parts.append(f"{'>' if meta.get('min_exclusive') else '>='} {meta['min']:g}")
    if meta.get("max") is not None:
        parts.append(f"<= {meta['max']:g}")
    if meta.get("choices"):
        parts.append("one of " + ", ".join(meta["choices"]))
    return ", ".join(parts)


__all__ = ["closest", "from_data", "schema_rows", "setting", "to_data", "yaml_fields"]
