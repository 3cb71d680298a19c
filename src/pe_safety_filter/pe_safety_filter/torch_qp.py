"""The exact 2-variable QP in PyTorch, batched and differentiable (for BarrierNet-style
layers).

Same problem and algorithm as :mod:`pe_safety_filter.exact_qp`:

    minimise (u - u_ref)' W (u - u_ref)   s.t.   A u >= b,   lo <= u <= hi

Every candidate (u_ref, each single-row W-projection, each pair intersection) is
a closed-form differentiable function of (A, b, u_ref, W, lo, hi). The cheapest
feasible candidate is selected by an index (no gradient flows through the
choice) and gathered, so the gradient is that of the closed form of the chosen
active set -- the active-set gradient of the QP solution (exact wherever the
active set is locally constant, i.e. almost everywhere). Degenerate candidates
use safe denominators so unselected candidates never put nan into the backward
pass.
"""

from __future__ import annotations

import torch

from pe_safety_filter.exact_qp import pair_indices

_PARALLEL = 1e-12
_TINY = 1e-300


def _batch_2x2(W: torch.Tensor, n_batch: int) -> torch.Tensor:
    return W.expand(n_batch, 2, 2) if W.dim() == 2 else W


def solve_qp_torch(
    A: torch.Tensor,
    b: torch.Tensor,
    u_ref: torch.Tensor,
    W: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    tol: float = 1e-9,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve B QPs: ``A`` (B, m, 2), ``b`` (B, m), ``u_ref`` (B, 2), ``W`` (2, 2) or
    (B, 2, 2) SPD, ``lo``/``hi`` (2,) or (B, 2).

    Returns ``(u (B, 2), feasible (B,) bool)``; infeasible rows of u are nan.
    """
    n_batch = A.shape[0]
    dtype, device = A.dtype, A.device
    W = _batch_2x2(W, n_batch)
    lo = lo.expand(n_batch, 2)
    hi = hi.expand(n_batch, 2)
    eye = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=dtype, device=device)
    An = torch.cat([A, eye.expand(n_batch, 4, 2)], dim=1)                                 # (B, n, 2)
    bn = torch.cat([b, torch.stack([lo[:, 0], -hi[:, 0], lo[:, 1], -hi[:, 1]], dim=1)], dim=1)
    n = An.shape[1]
    det_w = W[:, 0, 0] * W[:, 1, 1] - W[:, 0, 1] * W[:, 1, 0]
    Winv = torch.stack([torch.stack([W[:, 1, 1], -W[:, 0, 1]], -1),
                        torch.stack([-W[:, 1, 0], W[:, 0, 0]], -1)], -2) / det_w[:, None, None]
    # Single-row projections.
    Wa = torch.einsum("bkl,bnl->bnk", Winv, An)
    den = (An * Wa).sum(-1)
    resid = bn - torch.einsum("bnk,bk->bn", An, u_ref)
    ok1 = den > _TINY
    t = resid / torch.where(ok1, den, torch.ones_like(den))
    ok1 = ok1 & (t.detach() > 0.0)
    singles = u_ref[:, None, :] + t[..., None] * Wa
    # Pair intersections (Cramer's rule).
    pi, pj = (torch.as_tensor(x, device=device) for x in pair_indices(n))
    aI, aJ, bI, bJ = An[:, pi], An[:, pj], bn[:, pi], bn[:, pj]
    det = aI[..., 0] * aJ[..., 1] - aI[..., 1] * aJ[..., 0]
    ok2 = (det.detach().abs() > _PARALLEL * aI.detach().abs().sum(-1) * aJ.detach().abs().sum(-1))
    ok2 = ok2 & (det.detach() != 0.0)
    sdet = torch.where(ok2, det, torch.ones_like(det))
    pairs = torch.stack([(bI * aJ[..., 1] - bJ * aI[..., 1]) / sdet,
                         (aI[..., 0] * bJ - aJ[..., 0] * bI) / sdet], dim=-1)
    cands = torch.cat([u_ref[:, None, :], singles, pairs], dim=1)                        # (B, C, 2)
    valid = torch.cat([torch.ones(n_batch, 1, dtype=torch.bool, device=device), ok1, ok2], dim=1)
    with torch.no_grad():
        c = cands.detach()
        p0 = c[..., 0:1] * An.detach()[:, None, :, 0]
        p1 = c[..., 1:2] * An.detach()[:, None, :, 1]
        bnd = bn.detach()[:, None, :]
        slack = p0 + p1 - bnd
        scale = An.detach().abs().sum(-1)[:, None, :] + p0.abs() + p1.abs() + bnd.abs()
        feas = valid & (slack >= -tol * scale).all(dim=2)
        dv = c - u_ref.detach()[:, None, :]
        cost = torch.einsum("bck,bkl,bcl->bc", dv, W.detach(), dv)
        cost = torch.where(feas, cost, torch.full_like(cost, torch.inf))
        pick = cost.argmin(dim=1)
        rows = torch.arange(n_batch, device=device)
        feasible = torch.isfinite(cost[rows, pick])
    u = cands[rows, pick]
    u = torch.where(feasible[:, None], u, torch.full_like(u, torch.nan))
    return u, feasible
