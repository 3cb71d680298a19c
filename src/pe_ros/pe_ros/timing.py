"""Timing statistics of a node (pure Python, no ROS).

A :class:`TimingSeries` keeps every sample (milliseconds) of one measured
quantity, e.g. a node's callback compute time or the sim's loop latency for one
robot, and summarises them: since start (count, p50, p99, max, mean) and over
the last reporting window (rate, max). A few thousand float64 samples per
minute is nothing to keep, and percentiles over all of them are exact.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np


class TimingSeries:
    """Samples of one timing quantity, in milliseconds."""

    def __init__(self, name: str, capacity: int = 4096) -> None:
        self.name = name
        self._data = np.empty(capacity)
        self._n = 0
        self._window_n = 0
        self._window_max = 0.0
        self._window_start = time.monotonic()
        self._first: float | None = None
        self._last = 0.0
        self.misses = 0

    def add(self, ms: float) -> None:
        if self._n == self._data.size:
            self._data = np.concatenate([self._data, np.empty(self._data.size)])
        self._data[self._n] = ms
        self._n += 1
        self._last = time.monotonic()
        if self._first is None:
            self._first = self._last
        self._window_n += 1
        if ms > self._window_max:
            self._window_max = ms

    @property
    def count(self) -> int:
        return self._n

    @property
    def last_sample_at(self) -> float | None:
        """``time.monotonic()`` of the newest sample (None: no sample yet)."""
        return self._last if self._n else None

    @property
    def samples(self) -> np.ndarray:
        return self._data[: self._n]

    def summary(self) -> dict[str, Any]:
        """Totals since start: count, mean rate (Hz, first to last sample), p50/p99/max/mean
        (ms), misses."""
        s = self.samples
        if s.size:
            p50, p99 = np.percentile(s, [50.0, 99.0])
            span = self._last - (self._first or self._last)
            return {"count": int(s.size), "rate_hz": (s.size - 1) / span if span > 0 else math.nan,
                    "p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(s.max()),
                    "mean_ms": float(s.mean()), "misses": int(self.misses)}
        return {"count": 0, "rate_hz": math.nan, "p50_ms": math.nan, "p99_ms": math.nan,
                "max_ms": math.nan, "mean_ms": math.nan, "misses": int(self.misses)}

    def window(self) -> dict[str, float]:
        """Rate (Hz) and max (ms) since the previous call, then start a new window."""
        now = time.monotonic()
        elapsed = max(now - self._window_start, 1e-9)
        out = {"rate_hz": self._window_n / elapsed, "window_max_ms": self._window_max}
        self._window_start, self._window_n, self._window_max = now, 0, 0.0
        return out


def format_timing_table(rows: list[dict[str, Any]]) -> str:
    """A text table of timing summaries; each row has ``node``, ``series`` and the
    fields of :meth:`TimingSeries.summary` (plus optional ``rate_hz``)."""
    header = (f"{'node':<26}{'series':<24}{'count':>8}{'rate Hz':>9}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'max ms':>9}{'misses':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        rate = r.get("rate_hz", math.nan)
        lines.append(
            f"{r['node'][:25]:<26}{r['series'][:23]:<24}{r['count']:>8d}"
            f"{('-' if rate is None or math.isnan(rate) else format(rate, '.1f')):>9}"
            f"{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['max_ms']:>9.3f}{r.get('misses', 0):>8d}")
    return "\n".join(lines)
