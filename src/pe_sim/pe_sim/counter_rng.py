"""Counter-based random numbers: a uniform draw is a pure function of
(episode seed, stream, counter).

An episode's obstacles, start states and random-robot commands depend only on
its seed, whichever environment slot of a batch plays it, so a batch of B
environments reproduces B single episodes exactly and any episode can be
replayed from its seed alone. Mixing is SplitMix64 (Steele et al., 2014).
"""

from __future__ import annotations

import numba
import numpy as np

# Streams keep the draws of different consumers apart.
STREAM_OBSTACLES = 1
STREAM_START = 2
STREAM_RANDOM_POLICY = 3

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_STREAM_MUL = np.uint64(0xD1B54A32D192ED03)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@numba.njit(cache=True, inline="always")
def _splitmix64(z):
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(cache=True, inline="always")
def uniform(seed, stream, counter) -> float:
    """A float64 uniform in [0, 1) for (seed, stream, counter), all non-negative integers."""
    key = _splitmix64(np.uint64(seed) ^ (np.uint64(stream) * _STREAM_MUL))
    return float(_splitmix64(key + np.uint64(counter)) >> _S11) * _TO_UNIT


@numba.njit(cache=True)
def uniform_array(seeds, stream, counters):
    """``uniform`` over an array of seeds (B,) and an array of counters (B, K)."""
    out = np.empty(counters.shape, dtype=np.float64)
    for b in range(counters.shape[0]):
        for k in range(counters.shape[1]):
            out[b, k] = uniform(seeds[b], stream, counters[b, k])
    return out
