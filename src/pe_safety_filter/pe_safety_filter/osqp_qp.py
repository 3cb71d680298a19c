"""The reference solver: the filter QP in OSQP, one problem object per filter.

OSQP form: minimise 1/2 u' P u + q' u subject to l <= C u <= h, with P = 2 W and
q = -2 W u_ref (the same minimiser as (u - u_ref)' W (u - u_ref)). C stacks the
input box (identity rows) over ``capacity`` dense constraint rows; rows not used
by a problem are padded with zeros and (-inf, +inf) bounds, so the sparsity
pattern never changes and every call is an in-place ``update(q, l, u, Ax)`` of
the same problem, warm-started from the previous solution (fallbacks for the
rare non-converging solve: see :meth:`OsqpQP.solve`). A problem with more
rows than the capacity rebuilds the object once with a larger capacity.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import numpy as np
import osqp
import scipy.sparse as sp

from pe_safety_filter.config import OsqpSettings

_DONE = (osqp.SolverStatus.OSQP_SOLVED, osqp.SolverStatus.OSQP_PRIMAL_INFEASIBLE)


class OsqpQP:
    """Solves min (u - u_ref)' W (u - u_ref) s.t. A u >= b, lo <= u <= hi with OSQP.

    ``W`` (2, 2) SPD; ``lo``/``hi`` (2,) the input box of (v m/s, omega rad/s).
    ``retries`` counts calls that needed the fallbacks of :meth:`solve`.
    """

    def __init__(
        self,
        W: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        capacity: int = 16,
        settings: OsqpSettings | None = None,
    ) -> None:
        self.W = np.asarray(W, dtype=np.float64)
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = np.asarray(hi, dtype=np.float64)
        self.settings = settings or OsqpSettings()
        self.rebuilds = 0
        self.retries = 0
        self._P = sp.csc_matrix(np.triu(2.0 * self.W))
        self._q = np.zeros(2)
        self._setup(max(int(capacity), 1))

    def _setup(self, capacity: int) -> None:
        """Allocate the data for ``capacity`` rows and build the problem object."""
        self.capacity = capacity
        rows = capacity + 2
        self._indices = np.concatenate([[0], np.arange(2, rows), [1], np.arange(2, rows)]).astype(np.int32)
        self._indptr = np.array([0, capacity + 1, 2 * capacity + 2], dtype=np.int32)
        self._Ax = np.ones(2 * capacity + 2)  # identity entries stay 1; padded rows get 0
        self._l = np.full(rows, -np.inf)
        self._u = np.full(rows, np.inf)
        self._l[:2] = self.lo
        self._u[:2] = self.hi
        self.problem = self._make_problem()
        self._polishing = self.settings.polishing

    def _make_problem(self, adaptive_rho: bool = True) -> osqp.OSQP:
        """A fresh OSQP object holding the current data."""
        rows = self.capacity + 2
        C = sp.csc_matrix((self._Ax.copy(), self._indices, self._indptr), shape=(rows, 2))
        s = self.settings
        problem = osqp.OSQP()
        problem.setup(self._P, self._q, C, self._l, self._u, verbose=False, eps_abs=s.eps_abs,
                      eps_rel=s.eps_rel, max_iter=s.max_iter, polishing=s.polishing,
                      warm_starting=True, adaptive_rho=adaptive_rho)
        return problem

    def solve(
        self,
        A: np.ndarray,
        b: np.ndarray,
        u_ref: np.ndarray,
        lo: np.ndarray | None = None,
        hi: np.ndarray | None = None,
    ) -> tuple[np.ndarray, str]:
        """Solve with rows ``A`` (m, 2), ``b`` (m,) around ``u_ref`` (2,); ``lo``/``hi``
        replace the input box when given.

        Returns ``(u (2,), status)``; status is OSQP's text ("solved",
        "primal infeasible", ...) and u is nan unless it is "solved".

        Fallbacks (rare; counted in ``retries``): if the warm-started solve neither
        solves nor proves infeasibility, the object is rebuilt cold (its adapted rho
        and iterates came from a very different problem) and re-solved; if that
        fails too, a one-off object with adaptive rho off is tried (OSQP's rho
        adaptation occasionally diverges on these tiny problems).
        """
        m = A.shape[0]
        if lo is not None:
            self.lo = np.asarray(lo, dtype=np.float64)
            self._l[:2] = self.lo
        if hi is not None:
            self.hi = np.asarray(hi, dtype=np.float64)
            self._u[:2] = self.hi
        if m > self.capacity:
            self.rebuilds += 1
            self._setup(max(m, 2 * self.capacity))
        cap = self.capacity
        Ax = self._Ax
        Ax[1:m + 1] = A[:, 0]
        Ax[m + 1:cap + 1] = 0.0
        Ax[cap + 2:cap + 2 + m] = A[:, 1]
        Ax[cap + 2 + m:] = 0.0
        self._l[2:2 + m] = b
        self._l[2 + m:] = -np.inf
        self._q[:] = -2.0 * (self.W @ u_ref)
        if hi is not None:
            self.problem.update(q=self._q, l=self._l, u=self._u, Ax=Ax)
        else:
            self.problem.update(q=self._q, l=self._l, Ax=Ax)
        # OSQP 1.1 prints "Polishing not needed" on the C stdout (even with verbose off)
        # whenever polishing finds no active constraint; polishing is only useful when
        # some constraint binds, i.e. when u_ref is not feasible, so switch it per call.
        polish = self.settings.polishing and not (
            np.all(self.lo <= u_ref) and np.all(u_ref <= self.hi) and np.all(A @ u_ref > b))
        if polish != self._polishing:
            self.problem.update_settings(polishing=polish)
            self._polishing = polish
        res = self.problem.solve(raise_error=False)
        if res.info.status_val not in _DONE:
            self.retries += 1
            self.problem = self._make_problem()
            self._polishing = self.settings.polishing
            res = self.problem.solve(raise_error=False)
            if res.info.status_val not in _DONE:
                res = self._make_problem(adaptive_rho=False).solve(raise_error=False)
        if res.info.status_val != osqp.SolverStatus.OSQP_SOLVED or not np.all(np.isfinite(res.x)):
            return np.full(2, np.nan), str(res.info.status)
        return np.array(res.x, dtype=np.float64), "solved"


@contextlib.contextmanager
def quiet_c_stdout() -> Iterator[None]:
    """Send the process's file descriptor 1 to /dev/null for the duration (OSQP's C
    code may print to it regardless of ``verbose``); for bulk runs, not the hot path."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
