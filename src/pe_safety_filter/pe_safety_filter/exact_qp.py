"""Exact solver for the 2-variable QP of the filter, by active-set enumeration.

    minimise (u - u_ref)' W (u - u_ref)   subject to   A u >= b,   lo <= u <= hi

with u = (v, omega), W symmetric positive definite. The box is handled as four
more rows (v >= lo0, -v >= -hi0, omega >= lo1, -omega >= -hi1), appended after
the m rows of A (row indices m .. m + 3).

Why enumeration is exact: the optimum u* is unique (strictly convex cost). If no
row is tight at u*, u* = u_ref. If the tight rows span one direction a, the KKT
condition W (u* - u_ref) = lambda a puts u* at the W-projection of u_ref onto
that row's line (with lambda > 0). If they span the plane, u* is the intersection
of any two independent tight rows. So u* is among the candidates {u_ref, each
single-row projection, each pair's intersection}; every feasible candidate costs
at least as much as u*, so the cheapest feasible candidate is u*. Candidates are
tested with the feasibility tolerance ``tol`` (rounding only): row k holds at u
when a_k . u - b_k >= -tol (|a_k0| + |a_k1| + |a_k0 u0| + |a_k1 u1| + |b_k|),
which is invariant to scaling the row and, for unit rows, at least tol in the
units of u.

Three implementations of the same algorithm: a numba kernel for one problem
(used inside the filter kernel), a numba loop over a batch, and a numpy
vectorised batch (reference for :mod:`pe_safety_filter.torch_qp`).
"""

from __future__ import annotations

import numba
import numpy as np

INFEASIBLE = -1
N_BOX = 4
_PARALLEL = 1e-12
_TINY = 1e-300


@numba.njit(cache=True, inline="always")
def _fill_rows(A, b, m, lo0, lo1, hi0, hi1, An, bn):
    for k in range(m):
        An[k, 0] = A[k, 0]
        An[k, 1] = A[k, 1]
        bn[k] = b[k]
    An[m, 0], An[m, 1], bn[m] = 1.0, 0.0, lo0
    An[m + 1, 0], An[m + 1, 1], bn[m + 1] = -1.0, 0.0, -hi0
    An[m + 2, 0], An[m + 2, 1], bn[m + 2] = 0.0, 1.0, lo1
    An[m + 3, 0], An[m + 3, 1], bn[m + 3] = 0.0, -1.0, -hi1


@numba.njit(cache=True, inline="always")
def _feasible(An, bn, n, u0, u1, tol, skip_i, skip_j):
    for k in range(n):
        if k == skip_i or k == skip_j:
            continue
        p0 = An[k, 0] * u0
        p1 = An[k, 1] * u1
        if p0 + p1 - bn[k] < -tol * (abs(An[k, 0]) + abs(An[k, 1]) + abs(p0) + abs(p1) + abs(bn[k])):
            return False
    return True


@numba.njit(cache=True)
def solve_rows(An, bn, n, w00, w01, w11, r0, r1, tol, out, act):
    """Solve with all ``n`` rows (box included) in ``An u >= bn``.

    Writes the optimum to ``out[0:2]`` and the defining rows to ``act[0:2]``;
    returns how many rows define it (0, 1 or 2) or ``INFEASIBLE`` (out = nan).
    """
    if _feasible(An, bn, n, r0, r1, tol, -1, -1):
        out[0] = r0
        out[1] = r1
        return 0
    det_w = w00 * w11 - w01 * w01
    i00 = w11 / det_w
    i01 = -w01 / det_w
    i11 = w00 / det_w
    best = np.inf
    b0 = np.nan
    b1 = np.nan
    n_act = INFEASIBLE
    ai = -1
    aj = -1
    # Single-row projections (only rows that u_ref violates: multiplier > 0).
    for k in range(n):
        a0 = An[k, 0]
        a1 = An[k, 1]
        wa0 = i00 * a0 + i01 * a1
        wa1 = i01 * a0 + i11 * a1
        den = a0 * wa0 + a1 * wa1
        if den <= _TINY:
            continue
        t = (bn[k] - a0 * r0 - a1 * r1) / den
        if t <= 0.0:
            continue
        cost = t * t * den
        if cost >= best:
            continue
        u0 = r0 + t * wa0
        u1 = r1 + t * wa1
        if _feasible(An, bn, n, u0, u1, tol, k, -1):
            best, b0, b1, n_act, ai, aj = cost, u0, u1, 1, k, -1
    # Pair intersections.
    for i in range(n):
        ai0 = An[i, 0]
        ai1 = An[i, 1]
        ni = abs(ai0) + abs(ai1)
        for j in range(i + 1, n):
            aj0 = An[j, 0]
            aj1 = An[j, 1]
            det = ai0 * aj1 - ai1 * aj0
            if abs(det) <= _PARALLEL * ni * (abs(aj0) + abs(aj1)) or det == 0.0:
                continue
            u0 = (bn[i] * aj1 - bn[j] * ai1) / det
            u1 = (ai0 * bn[j] - aj0 * bn[i]) / det
            d0 = u0 - r0
            d1 = u1 - r1
            cost = w00 * d0 * d0 + 2.0 * w01 * d0 * d1 + w11 * d1 * d1
            if cost >= best:
                continue
            if _feasible(An, bn, n, u0, u1, tol, i, j):
                best, b0, b1, n_act, ai, aj = cost, u0, u1, 2, i, j
    out[0] = b0
    out[1] = b1
    act[0] = ai
    act[1] = aj
    return n_act


@numba.njit(cache=True)
def solve_one(A, b, m, W, lo, hi, u_ref, tol, out, act):
    """One QP with the first ``m`` rows of ``A`` (M, 2) / ``b`` and the box [lo, hi]."""
    n = m + N_BOX
    An = np.empty((n, 2))
    bn = np.empty(n)
    _fill_rows(A, b, m, lo[0], lo[1], hi[0], hi[1], An, bn)
    return solve_rows(An, bn, n, W[0, 0], W[0, 1], W[1, 1], u_ref[0], u_ref[1], tol, out, act)


@numba.njit(cache=True)
def _solve_batch(A, b, W, u_ref, lo, hi, tol, out, status):
    n_batch, m = A.shape[0], A.shape[1]
    n = m + N_BOX
    An = np.empty((n, 2))
    bn = np.empty(n)
    act = np.empty(2, dtype=np.int64)
    w00, w01, w11 = W[0, 0], W[0, 1], W[1, 1]
    for p in range(n_batch):
        _fill_rows(A[p], b[p], m, lo[p, 0], lo[p, 1], hi[p, 0], hi[p, 1], An, bn)
        status[p] = solve_rows(An, bn, n, w00, w01, w11, u_ref[p, 0], u_ref[p, 1], tol,
                               out[p], act)


def solve_qp(
    A: np.ndarray,
    b: np.ndarray,
    W: np.ndarray,
    u_ref: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float = 1e-9,
) -> tuple[np.ndarray, int, np.ndarray]:
    """One QP: ``A`` (m, 2), ``b`` (m,), ``W`` (2, 2), ``u_ref``/``lo``/``hi`` (2,).

    Returns ``(u (2,), n_active, active (n_active,))``; n_active is ``INFEASIBLE``
    (and u nan) when no point satisfies every row. Active indices >= m are box rows.
    """
    A = np.ascontiguousarray(A, dtype=np.float64).reshape(-1, 2)
    b = np.ascontiguousarray(b, dtype=np.float64).reshape(-1)
    out = np.empty(2)
    act = np.full(2, -1, dtype=np.int64)
    n_act = solve_one(A, b, A.shape[0], np.asarray(W, dtype=np.float64),
                      np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64),
                      np.asarray(u_ref, dtype=np.float64), tol, out, act)
    return out, int(n_act), act[:max(n_act, 0)].copy()


def _broadcast_box(lo, hi, n_batch):
    lo = np.ascontiguousarray(np.broadcast_to(np.asarray(lo, dtype=np.float64), (n_batch, 2)))
    hi = np.ascontiguousarray(np.broadcast_to(np.asarray(hi, dtype=np.float64), (n_batch, 2)))
    return lo, hi


def solve_qp_batch(
    A: np.ndarray,
    b: np.ndarray,
    W: np.ndarray,
    u_ref: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """B QPs with ``A`` (B, m, 2), ``b`` (B, m), shared ``W`` (2, 2), ``u_ref`` (B, 2),
    ``lo``/``hi`` (2,) or (B, 2), with the numba kernel (one core).

    Returns ``(u (B, 2), status (B,))``: status = number of defining rows or
    ``INFEASIBLE`` (u nan). Pad unused rows with (0, 0) >= -1.
    """
    A = np.ascontiguousarray(A, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    u_ref = np.ascontiguousarray(u_ref, dtype=np.float64)
    lo, hi = _broadcast_box(lo, hi, A.shape[0])
    out = np.empty((A.shape[0], 2))
    status = np.empty(A.shape[0], dtype=np.int64)
    _solve_batch(A, b, np.asarray(W, dtype=np.float64), u_ref, lo, hi, float(tol), out, status)
    return out, status


def pair_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i, j), i < j, of every pair of ``n`` rows."""
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def solve_qp_batch_numpy(
    A: np.ndarray,
    b: np.ndarray,
    W: np.ndarray,
    u_ref: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """The same enumeration vectorised in numpy over the batch (shapes as
    :func:`solve_qp_batch`). Returns ``(u (B, 2), feasible (B,) bool)``."""
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    u_ref = np.asarray(u_ref, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    n_batch = A.shape[0]
    lo, hi = _broadcast_box(lo, hi, n_batch)
    eye = np.broadcast_to(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), (n_batch, 4, 2))
    An = np.concatenate([A, eye], axis=1)                                   # (B, n, 2)
    bn = np.concatenate([b, np.stack([lo[:, 0], -hi[:, 0], lo[:, 1], -hi[:, 1]], axis=1)], axis=1)
    n = An.shape[1]
    Winv = np.linalg.inv(W)
    # Singles.
    Wa = An @ Winv.T                                                        # (B, n, 2)
    den = np.einsum("bnk,bnk->bn", An, Wa)
    resid = bn - np.einsum("bnk,bk->bn", An, u_ref)
    ok1 = den > _TINY
    t = resid / np.where(ok1, den, 1.0)
    ok1 &= t > 0.0
    singles = u_ref[:, None, :] + t[..., None] * Wa
    # Pairs.
    pi, pj = pair_indices(n)
    aI, aJ, bI, bJ = An[:, pi], An[:, pj], bn[:, pi], bn[:, pj]
    det = aI[..., 0] * aJ[..., 1] - aI[..., 1] * aJ[..., 0]
    ok2 = np.abs(det) > _PARALLEL * np.abs(aI).sum(-1) * np.abs(aJ).sum(-1)
    ok2 &= det != 0.0
    sdet = np.where(ok2, det, 1.0)
    pairs = np.stack([(bI * aJ[..., 1] - bJ * aI[..., 1]) / sdet,
                      (aI[..., 0] * bJ - aJ[..., 0] * bI) / sdet], axis=-1)
    cands = np.concatenate([u_ref[:, None, :], singles, pairs], axis=1)     # (B, C, 2)
    valid = np.concatenate([np.ones((n_batch, 1), bool), ok1, ok2], axis=1)
    p0 = cands[..., 0:1] * An[:, None, :, 0]
    p1 = cands[..., 1:2] * An[:, None, :, 1]
    slack = p0 + p1 - bn[:, None, :]
    scale = np.abs(An).sum(-1)[:, None, :] + np.abs(p0) + np.abs(p1) + np.abs(bn[:, None, :])
    feas = valid & np.all(slack >= -tol * scale, axis=2)
    dv = cands - u_ref[:, None, :]
    cost = np.einsum("bck,kl,bcl->bc", dv, W, dv)
    cost = np.where(feas, cost, np.inf)
    pick = np.argmin(cost, axis=1)
    rows = np.arange(n_batch)
    feasible = np.isfinite(cost[rows, pick])
    u = np.where(feasible[:, None], cands[rows, pick], np.nan)
    return u, feasible


__all__ = ["INFEASIBLE", "N_BOX", "pair_indices", "solve_one", "solve_qp", "solve_qp_batch",
           "solve_qp_batch_numpy", "solve_rows"]
