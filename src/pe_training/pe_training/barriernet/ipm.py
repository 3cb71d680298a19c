"""The prototype-style QP layer: a batched primal-dual interior-point method in torch,
ported from qpth (Amos & Kolter, OptNet, ICML 2017; ``qpth.solvers.pdipm.batch``,
Apache-2.0) for the inequality-only case, with qpth's defaults.

qpth itself cannot be installed here (it pins numpy < 2 and pulls cvxpy), so this
module re-implements its forward algorithm step for step -- Mehrotra predictor-
corrector, the block-LU factorisation of the KKT system (``pre_factor_kkt``,
``factor_kkt``, ``solve_kkt``), "best iterate so far" tracking, stopping after
``not_improved_lim`` = 3 non-improving iterations, at ``eps`` = 1e-12 or after
``max_iter`` = 20 -- and its OptNet backward (implicit differentiation of the KKT
conditions). It is the baseline the BarrierNet benchmark times the exact layer
against (the research prototype ran qpth at batch 1: about 9 ms per step).

Problem (qpth's form)::

    minimise 1/2 z' Q z + p' z   subject to   G z <= h

:func:`filter_qp_ipm` poses the filter's QP in that form:
Q = 2 W, p = -2 W u_ref, G = [-A; box], h = [-b; box].
"""

from __future__ import annotations

import torch
from torch.autograd import Function

EPS = 1e-12
MAX_ITER = 20
NOT_IMPROVED_LIM = 3


def _lu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.linalg.lu_factor(x, pivot=True)


def pre_factor_kkt(Q: torch.Tensor, G: torch.Tensor):
    """qpth ``pre_factor_kkt`` without equality constraints: LU of Q, R = G Q^-1 G',
    and the (still empty) partial LU of the Schur complement."""
    n_batch, nineq, _ = G.shape
    Q_LU = _lu(Q)
    R = torch.bmm(G, torch.linalg.lu_solve(*Q_LU, G.transpose(1, 2)))
    pivots = torch.arange(1, 1 + nineq, dtype=torch.int32).unsqueeze(0).repeat(n_batch, 1)
    S_LU = [torch.zeros(n_batch, nineq, nineq, dtype=Q.dtype), pivots]
    return Q_LU, S_LU, R


def factor_kkt(S_LU, R: torch.Tensor, d: torch.Tensor) -> None:
    """qpth ``factor_kkt``: LU of R + diag(1 / d) into the Schur block (in place),
    including qpth's CPU pivot bookkeeping (``lu_unpack`` of old and new pivots)."""
    nineq = d.shape[1]
    T = R + torch.diag_embed(1.0 / d)
    T_data, T_piv = _lu(T)
    old_packed = S_LU[1][:, -nineq:]
    torch.lu_unpack(T_data, old_packed, unpack_data=False)
    torch.lu_unpack(T_data, T_piv, unpack_data=False)
    S_LU[1][:, -nineq:] = T_piv
    S_LU[0][:, -nineq:, -nineq:] = T_data


def solve_kkt(Q_LU, d, G, S_LU, rx, rs, rz):
    """qpth ``solve_kkt`` (no equality constraints): (dx, ds, dz)."""
    inv_q_rx = torch.linalg.lu_solve(*Q_LU, rx.unsqueeze(2)).squeeze(2)
    h = torch.bmm(inv_q_rx.unsqueeze(1), G.transpose(1, 2)).squeeze(1) + rs / d - rz
    w = torch.linalg.lu_solve(S_LU[0], S_LU[1], -h.unsqueeze(2)).squeeze(2)
    g1 = -rx - torch.bmm(w.unsqueeze(1), G).squeeze(1)
    g2 = -rs - w
    dx = torch.linalg.lu_solve(*Q_LU, g1.unsqueeze(2)).squeeze(2)
    return dx, g2 / d, w


def _get_step(v: torch.Tensor, dv: torch.Tensor) -> torch.Tensor:
    """qpth ``get_step`` (largest step keeping v + a dv >= 0), except that components with
    dv == 0 are unconstrained like dv > 0 (qpth divides by them: -inf, then nan; exact
    zeros are common here, e.g. the turn-rate bounds when only v is constrained)."""
    a = -v / torch.where(dv == 0, torch.ones_like(dv), dv)
    a[dv >= 0] = max(1.0, float(a.max()))
    return a.min(1)[0]


def pdipm_forward(Q, p, G, h, Q_LU, S_LU, R, eps: float = EPS, max_iter: int = MAX_ITER,
                  not_improved_lim: int = NOT_IMPROVED_LIM):
    """qpth ``pdipm_b.forward`` (LU_PARTIAL, no equalities): returns (z, lambda, slack)."""
    n_batch, nineq, nz = G.shape
    d = torch.ones(n_batch, nineq, dtype=Q.dtype)
    factor_kkt(S_LU, R, d)
    x, s, z = solve_kkt(Q_LU, d, G, S_LU, p, torch.zeros(n_batch, nineq, dtype=Q.dtype), -h)
    m = torch.min(s, 1)[0].view(-1, 1).repeat(1, nineq)
    idx = m < 0
    s[idx] -= m[idx] - 1
    m = torch.min(z, 1)[0].view(-1, 1).repeat(1, nineq)
    idx = m < 0
    z[idx] -= m[idx] - 1
    best: dict = {"resids": None}
    not_improved = 0
    for _ in range(max_iter):
        rx = (torch.bmm(z.unsqueeze(1), G).squeeze(1)
              + torch.bmm(x.unsqueeze(1), Q.transpose(1, 2)).squeeze(1) + p)
        rs = z
        rz = torch.bmm(x.unsqueeze(1), G.transpose(1, 2)).squeeze(1) + s - h
        mu = torch.abs((s * z).sum(1) / nineq)
        resids = torch.norm(rz, 2, 1) + torch.norm(rx, 2, 1) + nineq * mu
        d = z / s
        factor_kkt(S_LU, R, d)
        if best["resids"] is None:
            best = {"resids": resids, "x": x.clone(), "z": z.clone(), "s": s.clone()}
            not_improved = 0
        else:
            better = resids < best["resids"]
            not_improved = 0 if better.sum() > 0 else not_improved + 1
            best["resids"][better] = resids[better]
            best["x"][better] = x[better]
            best["z"][better] = z[better]
            best["s"][better] = s[better]
        if not_improved == not_improved_lim or best["resids"].max() < eps or mu.min() > 1e32:
            break
        dx_aff, ds_aff, dz_aff = solve_kkt(Q_LU, d, G, S_LU, rx, rs, rz)
        alpha = torch.min(torch.min(_get_step(z, dz_aff), _get_step(s, ds_aff)),
                          torch.ones(n_batch, dtype=Q.dtype))
        a_ineq = alpha.repeat(nineq, 1).t()
        t3 = ((s + a_ineq * ds_aff) * (z + a_ineq * dz_aff)).sum(1)
        t4 = (s * z).sum(1)
        sig = (t3 / t4) ** 3
        rx = torch.zeros(n_batch, nz, dtype=Q.dtype)
        rs = ((-mu * sig).repeat(nineq, 1).t() + ds_aff * dz_aff) / s
        rz = torch.zeros(n_batch, nineq, dtype=Q.dtype)
        dx_cor, ds_cor, dz_cor = solve_kkt(Q_LU, d, G, S_LU, rx, rs, rz)
        dx, ds, dz = dx_aff + dx_cor, ds_aff + ds_cor, dz_aff + dz_cor
        alpha = torch.min(0.999 * torch.min(_get_step(z, dz), _get_step(s, ds)),
                          torch.ones(n_batch, dtype=Q.dtype))
        x = x + alpha.repeat(nz, 1).t() * dx
        s = s + alpha.repeat(nineq, 1).t() * ds
        z = z + alpha.repeat(nineq, 1).t() * dz
    return best["x"], best["z"], best["s"]


def _bger(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(2).bmm(y.unsqueeze(1))


class QPFunction(Function):
    """qpth's ``QPFunction`` (PDIPM_BATCHED, inequalities only): z* and the OptNet backward."""

    @staticmethod
    def forward(ctx, Q, p, G, h):
        Q_LU, S_LU, R = pre_factor_kkt(Q, G)
        zhat, lams, slacks = pdipm_forward(Q, p, G, h, Q_LU, S_LU, R)
        ctx.Q_LU, ctx.S_LU, ctx.R, ctx.lams, ctx.slacks = Q_LU, S_LU, R, lams, slacks
        ctx.save_for_backward(zhat, Q, p, G, h)
        return zhat

    @staticmethod
    def backward(ctx, dl_dz):
        zhat, _, _, G, _ = ctx.saved_tensors
        n_batch, nineq, _ = G.shape
        d = torch.clamp(ctx.lams, min=1e-8) / torch.clamp(ctx.slacks, min=1e-8)
        factor_kkt(ctx.S_LU, ctx.R, d)
        zeros = torch.zeros(n_batch, nineq, dtype=G.dtype)
        dx, _, dlam = solve_kkt(ctx.Q_LU, d, G, ctx.S_LU, dl_dz, zeros, zeros)
        dQ = 0.5 * (_bger(dx, zhat) + _bger(zhat, dx))
        dG = _bger(dlam, zhat) + _bger(ctx.lams, dx)
        return dQ, dx, dG, -dlam


def filter_qp_ipm(u_ref: torch.Tensor, gains: torch.Tensor, A: torch.Tensor, b1: torch.Tensor,
                  W: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The BarrierNet layer's QP (see :func:`pe_training.barriernet.layer.cbf_qp`) solved
    by the qpth-style interior-point method; u (B, 2)."""
    n_batch = u_ref.shape[0]
    dtype = u_ref.dtype
    Q = (2.0 * W).to(dtype).expand(n_batch, 2, 2).contiguous()
    p = -2.0 * torch.einsum("kl,bl->bk", W.to(dtype), u_ref)
    box = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=dtype)
    G = torch.cat([-A, box.expand(n_batch, 4, 2)], dim=1)
    hb = torch.stack([hi[0], -lo[0], hi[1], -lo[1]]).to(dtype).expand(n_batch, 4)
    h = torch.cat([-(gains * b1), hb], dim=1)
    return QPFunction.apply(Q, p, G, h)


__all__ = ["QPFunction", "filter_qp_ipm", "pdipm_forward"]
