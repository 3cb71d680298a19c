"""Reading YAML configuration files: the error type and the YAML loader.

Every error names the file and the full key path (``robots[1].v_max``), so a
malformed config is fixed in one look. Unknown keys are errors too: a typo must
not silently fall back to a default.

Configs are described by dataclasses and read by :mod:`pe_sim.config_schema`
(scenarios, training configs). :class:`ConfigReader` is the older reader the
safety-filter config still uses until it moves to the schema too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from pe_sim.cli import UserError

_REQUIRED = object()


class ConfigError(UserError, ValueError):
    """A configuration file is missing a key or holds a bad value."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        super().__init__(f"{source}: key '{key}': {message}")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; a file that is not a mapping is a ConfigError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "<file>", "file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "<file>", f"not valid YAML: {exc}") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "<file>", f"not a readable YAML text file: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "<root>", "expected a mapping at the top level")
    return data


class ConfigReader:
    """A view of one mapping inside a config file that validates as it reads.

    Call :meth:`done` after reading to reject keys nobody asked for.
    """

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(source, prefix or "<root>", f"expected a mapping, got {data!r}")
        self._data = data
        self._source = source
        self._prefix = prefix
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self._source, self.key(name), message)

    def has(self, name: str) -> bool:
        return name in self._data

    def raw(self, name: str, default: Any = _REQUIRED) -> Any:
        self._seen.add(name)
        if name not in self._data:
            if default is _REQUIRED:
                import difflib

                typo = difflib.get_close_matches(name, [str(k) for k in self._data], n=1, cutoff=0.6)
                hint = f"; the file has '{typo[0]}': a typo of '{name}'?" if typo else ""
                raise self.error(name, f"missing (required){hint}")
            return default
        return self._data[name]

    def number(
        self,
        name: str,
        default: Any = _REQUIRED,
        *,
        min: float | None = None,
        max: float | None = None,
        min_exclusive: bool = False,
    ) -> float:
        value = self.raw(name, default)
        return self._check_number(name, value, min, max, min_exclusive)

    def _check_number(
        self, name: str, value: Any, lo: float | None, hi: float | None, lo_exclusive: bool
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.error(name, f"expected a finite number, got {value!r}")
        if lo is not None and (value <= lo if lo_exclusive else value < lo):
            raise self.error(name, f"must be {'>' if lo_exclusive else '>='} {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.error(name, f"must be <= {hi}, got {value}")
        return value

    def integer(
        self, name: str, default: Any = _REQUIRED, *, min: int | None = None, max: int | None = None
    ) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {value!r}")
        if min is not None and value < min:
            raise self.error(name, f"must be >= {min}, got {value}")
        if max is not None and value > max:
            raise self.error(name, f"must be <= {max}, got {value}")
        return value

    def string(self, name: str, default: Any = _REQUIRED, *, choices: tuple[str, ...] = ()) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {value!r}")
        if choices and value not in choices:
            raise self.error(name, f"must be one of {list(choices)}, got {value!r}")
        return value

    def boolean(self, name: str, default: Any = _REQUIRED) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def range(
        self, name: str, default: Any = _REQUIRED, *, min: float | None = None
    ) -> tuple[float, float]:
        """A ``[low, high]`` pair; a single number means ``[x, x]``."""
        value = self.raw(name, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self.error(name, f"expected a number or a [low, high] pair, got {value!r}")
        lo = self._check_number(name, value[0], min, None, False)
        hi = self._check_number(name, value[1], min, None, False)
        if hi < lo:
            raise self.error(name, f"low must not exceed high, got {list(value)}")
        return lo, hi

    def section(self, name: str, default: Any = _REQUIRED) -> ConfigReader:
        value = self.raw(name, default)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.error(name, f"expected a mapping, got {value!r}")
        return ConfigReader(value, self._source, self.key(name))

    def sections(self, name: str, default: Any = _REQUIRED) -> Iterator[ConfigReader]:
        value = self.raw(name, default)
        if not isinstance(value, list):
            raise self.error(name, f"expected a list, got {value!r}")
        for index, item in enumerate(value):
            yield ConfigReader(item, self._source, f"{self.key(name)}[{index}]")

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            import difflib

            match = difflib.get_close_matches(str(unknown[0]), sorted(self._seen), n=1, cutoff=0.6)
            hint = f" (did you mean '{match[0]}'?)" if match else ""
            raise self.error(unknown[0], f"unknown key{hint}; known here: {sorted(self._seen)}")
