"""What every console script shares: user errors, argument checks and progress bars.

A user mistake (a bad config, a missing file, an invalid policy file, an argument
that cannot work) raises :class:`UserError` (or a subclass such as
:class:`pe_sim.config_reader.ConfigError`); :func:`console_main` turns it into one
line ``<prog>: error: <message>`` on stderr and exit code 2, the convention of
argparse. Anything else is an internal bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

#: Exit code of a user mistake (argparse's), and of an interrupted run (128 + SIGINT).
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
#: Episode seeds are int64 and consecutive: the last one must stay below this.
SEED_LIMIT = 2**63

F = TypeVar("F", bound=Callable[..., Any])


class UserError(ValueError):
    """A mistake in what the user gave (file, argument, config): shown as one line, exit 2.
    A :class:`ValueError`, so callers that catch bad values keep catching it."""


def console_main(prog: str) -> Callable[[F], F]:
    """Decorate a console script's ``main(argv)``: :class:`UserError` and missing input
    files print ``<prog>: error: ...`` and return 2; Ctrl-C returns 130 with one line;
    any other exception propagates with its traceback."""

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return main(*args, **kwargs)
            except UserError as exc:
                return _fail(prog, str(exc))
            except FileNotFoundError as exc:
                what = exc.filename if exc.filename else None
                return _fail(prog, f"file not found: {what}" if what else str(exc))
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED

        return wrapper  # type: ignore[return-value]

    return decorate


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


# --------------------------------------------------------------------------- argument types


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_int(text: str) -> int:
    """argparse type: an episode seed in [0, 2**63)."""
    value = _integer(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def check_seed_range(parser: argparse.ArgumentParser, seed: int, episodes: int) -> None:
    """Refuse (exit 2) a seed range ``seed .. seed + episodes - 1`` that leaves [0, 2**63)."""
    if seed + episodes > SEED_LIMIT:
        parser.error(f"--seed {seed} with --episodes {episodes} runs past the largest seed "
                     f"2**63 - 1; use a seed <= {SEED_LIMIT - episodes}")


def writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) and check a file can be written there, before any work
    starts; :class:`UserError` naming the folder otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{what} '{path}' is not writable: {exc.strerror or exc}") from None
    return path


# --------------------------------------------------------------------------- progress


def progress_bar(total: int, desc: str, unit: str = "ep", disable: bool | None = None) -> Any:
    """A tqdm bar on stderr with rate and ETA (hidden when stderr is not a terminal unless
    ``disable`` is False)."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True, smoothing=0.1)


__all__ = [
    "EXIT_INTERRUPTED", "EXIT_USER_ERROR", "SEED_LIMIT", "UserError", "check_seed_range",
    "console_main", "positive_int", "progress_bar", "seed_int", "writable_dir",
]
