"""The differentiable VCP-CBF QP layer of BarrierNet.

    u* = argmin (u - u_ref)' W (u - u_ref)   s.t.   A u >= gains * b1,   lo <= u <= hi

``A`` (B, G, 2) and ``b1`` (B, G) come from the safety filter's constraint assembly
at unit gain (:class:`~pe_training.barriernet.constraints.ConstraintBuilder`), so
``gains * b1`` are exactly the rows the deployed filter builds with those gains;
``W``, ``lo``, ``hi`` are the filter's weight and the robot's command box. u is
(v m/s, omega rad/s), gains in 1/s.

Two implementations of the same exact solver (active-set enumeration, see
:mod:`pe_safety_filter.exact_qp`):

* ``"enumerate"``: :func:`pe_safety_filter.torch_qp.solve_qp_torch` -- every
  candidate in closed form in torch, the cheapest feasible one gathered
  (reference; used by the gradient checks).
* ``"active_set"`` (default, training): the filter's numba solver
  (:func:`pe_safety_filter.exact_qp.solve_rows`) picks the active set on detached
  values, then only that set's closed form is evaluated in torch -- the same
  solution and the same active-set gradient, at a fraction of the cost
  (0, 1 or 2 defining rows: u_ref, the W-projection onto one row, or the
  intersection of two rows).

Infeasible problems (no u satisfies every row; the filter then tightens or backs
up) return ``u_ref`` with ``feasible`` False; training masks them out.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from pe_safety_filter.exact_qp import N_BOX, solve_rows
from pe_safety_filter.torch_qp import solve_qp_torch

MODES = ("active_set", "enumerate")


@numba.njit(cache=True)
def _active_sets(A, b, u_ref, lo, hi, w00, w01, w11, tol, n_act, act, sol):
    n_batch, g = A.shape[0], A.shape[1]
    n = g + N_BOX
    An = np.empty((n, 2))
    bn = np.empty(n)
    out = np.empty(2)
    a2 = np.empty(2, dtype=np.int64)
    for e in range(n_batch):
        for k in range(g):
            An[k, 0] = A[e, k, 0]
            An[k, 1] = A[e, k, 1]
            bn[k] = b[e, k]
        An[g, 0], An[g, 1], bn[g] = 1.0, 0.0, lo[0]
        An[g + 1, 0], An[g + 1, 1], bn[g + 1] = -1.0, 0.0, -hi[0]
        An[g + 2, 0], An[g + 2, 1], bn[g + 2] = 0.0, 1.0, lo[1]
        An[g + 3, 0], An[g + 3, 1], bn[g + 3] = 0.0, -1.0, -hi[1]
        a2[0] = -1
        a2[1] = -1
        n_act[e] = solve_rows(An, bn, n, w00, w01, w11, u_ref[e, 0], u_ref[e, 1], tol, out, a2)
        act[e, 0] = a2[0]
        act[e, 1] = a2[1]
        sol[e, 0] = out[0]
        sol[e, 1] = out[1]


def active_sets(A: np.ndarray, b: np.ndarray, u_ref: np.ndarray, W: np.ndarray, lo: np.ndarray,
                hi: np.ndarray, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filter's exact solver on a batch: ``(n_active (B,), active (B, 2), u (B, 2))``;
    active row indices >= G are box rows (G: v >= lo0, G+1: v <= hi0, G+2: omega >= lo1,
    G+3: omega <= hi1); n_active -1 = infeasible."""
    A = np.ascontiguousarray(A, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    u_ref = np.ascontiguousarray(u_ref, dtype=np.float64)
    n_batch = A.shape[0]
    n_act = np.empty(n_batch, dtype=np.int64)
    act = np.empty((n_batch, 2), dtype=np.int64)
    sol = np.empty((n_batch, 2))
    _active_sets(A, b, u_ref, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64),
                 float(W[0, 0]), float(W[0, 1]), float(W[1, 1]), float(tol), n_act, act, sol)
    return n_act, act, sol


def _box_rows(lo: torch.Tensor, hi: torch.Tensor, n_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = lo.dtype
    eye = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=dtype)
    bb = torch.stack([lo[0], -hi[0], lo[1], -hi[1]])
    return eye.expand(n_batch, 4, 2), bb.expand(n_batch, 4)


def cbf_qp(
    u_ref: torch.Tensor,
    gains: torch.Tensor,
    A: torch.Tensor,
    b1: torch.Tensor,
    W: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    mode: str = "active_set",
    tol: float = 1e-9,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve the layer's QP for a batch (shapes in the module docstring; ``W`` (2, 2),
    ``lo``/``hi`` (2,)). Differentiable in ``u_ref`` and ``gains`` (and ``A``, ``b1``).

    Returns ``(u (B, 2), feasible (B,) bool)``; infeasible rows hold ``u_ref``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    b = gains * b1
    if mode == "enumerate":
        u, feasible = solve_qp_torch(A, b, u_ref, W, lo, hi, tol)
        return torch.where(feasible[:, None], u, u_ref), feasible
    n_batch = A.shape[0]
    n_act, act, _ = active_sets(A.detach().cpu().numpy(), b.detach().cpu().numpy(),
                                u_ref.detach().cpu().numpy(), W.detach().cpu().numpy(),
                                lo.detach().cpu().numpy(), hi.detach().cpu().numpy(), tol)
    box_A, box_b = _box_rows(lo.to(A.dtype), hi.to(A.dtype), n_batch)
    An = torch.cat([A, box_A], dim=1)
    bn = torch.cat([b, box_b], dim=1)
    rows = torch.arange(n_batch)
    i = torch.as_tensor(np.maximum(act[:, 0], 0))
    j = torch.as_tensor(np.maximum(act[:, 1], 0))
    n_act_t = torch.as_tensor(n_act)
    # One defining row k: u = u_ref + t W^-1 a_k, t = (b_k - a_k . u_ref) / (a_k' W^-1 a_k).
    det_w = W[0, 0] * W[1, 1] - W[0, 1] * W[1, 0]
    Winv = torch.stack([torch.stack([W[1, 1], -W[0, 1]]), torch.stack([-W[1, 0], W[0, 0]])]) / det_w
    a_i = An[rows, i]                                                     # (B, 2)
    b_i = bn[rows, i]
    wa = a_i @ Winv.T
    den = (a_i * wa).sum(-1)
    one = n_act_t == 1
    t = (b_i - (a_i * u_ref).sum(-1)) / torch.where(one, den, torch.ones_like(den))
    u_single = u_ref + t[:, None] * wa
    # Two defining rows i, j: their intersection (Cramer's rule, as the numba solver).
    a_j = An[rows, j]
    b_j = bn[rows, j]
    det = a_i[:, 0] * a_j[:, 1] - a_i[:, 1] * a_j[:, 0]
    two = n_act_t == 2
    sdet = torch.where(two, det, torch.ones_like(det))
    u_pair = torch.stack([(b_i * a_j[:, 1] - b_j * a_i[:, 1]) / sdet,
                          (a_i[:, 0] * b_j - a_j[:, 0] * b_i) / sdet], dim=-1)
    u = torch.where(one[:, None], u_single, torch.where(two[:, None], u_pair, u_ref))
    return u, n_act_t >= 0


__all__ = ["MODES", "active_sets", "cbf_qp"]
