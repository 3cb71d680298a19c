"""The QP solvers: exact (numba single, numba batch, numpy batch, torch) agree with each
other and with OSQP; the torch solver's gradients are the active-set gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pe_safety_filter.crosscheck import kkt_certified, run_crosscheck
from pe_safety_filter.exact_qp import (
    INFEASIBLE,
    solve_qp,
    solve_qp_batch,
    solve_qp_batch_numpy,
)
from pe_safety_filter.osqp_qp import OsqpQP
from pe_safety_filter.torch_qp import solve_qp_torch

W = np.array([[1.0, 0.2], [0.2, 0.3]])
LO = np.array([0.0, -2.84])
HI = np.array([1.0, 2.84])


def _problems(n, m, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, m, 2))
    A /= np.linalg.norm(A, axis=2, keepdims=True)
    b = rng.normal(scale=0.7, size=(n, m))
    u_ref = rng.normal(size=(n, 2)) * 2.0
    return A, b, u_ref


def test_unconstrained_optimum_is_returned_exactly():
    u, n_act, act = solve_qp(np.array([[1.0, 0.0]]), np.array([-5.0]), W, np.array([0.3, -1.0]), LO, HI)
    assert n_act == 0 and act.size == 0
    assert np.array_equal(u, [0.3, -1.0])


def test_single_and_pair_and_infeasible():
    # v + omega >= 1 with u_ref = 0: the W-projection onto the line.
    u, n_act, act = solve_qp(np.array([[1.0, 1.0]]), np.array([1.0]), np.eye(2), np.zeros(2), LO, HI)
    assert n_act == 1 and list(act) == [0] and np.allclose(u, [0.5, 0.5])
    # v >= 2 is outside the box v <= 1: infeasible.
    u, n_act, _ = solve_qp(np.array([[1.0, 0.0]]), np.array([2.0]), W, np.zeros(2), LO, HI)
    assert n_act == INFEASIBLE and np.all(np.isnan(u))
    # A corner: v <= 0.2 (row) and omega >= 1 (row) from u_ref = (1, 0).
    u, n_act, act = solve_qp(np.array([[-1.0, 0.0], [0.0, 1.0]]), np.array([-0.2, 1.0]), np.eye(2),
                             np.array([1.0, 0.0]), LO, HI)
    assert n_act == 2 and sorted(act) == [0, 1] and np.allclose(u, [0.2, 1.0])


def test_batch_numba_numpy_torch_and_single_agree():
    A, b, u_ref = _problems(3000, 6)
    u1, status = solve_qp_batch(A, b, W, u_ref, LO, HI)
    u2, feas2 = solve_qp_batch_numpy(A, b, W, u_ref, LO, HI)
    u3, feas3 = solve_qp_torch(torch.tensor(A), torch.tensor(b), torch.tensor(u_ref), torch.tensor(W),
                               torch.tensor(LO), torch.tensor(HI))
    feasible = status >= 0
    assert 0.1 < feasible.mean() < 0.9                       # both kinds are exercised
    assert np.array_equal(feasible, feas2) and np.array_equal(feasible, feas3.numpy())
    assert np.max(np.abs(u1[feasible] - u2[feasible])) < 1e-9
    assert np.max(np.abs(u1[feasible] - u3.numpy()[feasible])) < 1e-9
    assert np.all(np.isnan(u1[~feasible]))
    for p in range(0, 3000, 97):
        u, n_act, _ = solve_qp(A[p], b[p], W, u_ref[p], LO, HI)
        assert n_act == status[p]
        assert np.array_equal(u, u1[p], equal_nan=True)
        if n_act >= 0:
            assert kkt_certified(A[p], b[p], W, u_ref[p], LO, HI, u)


def test_exact_matches_osqp_on_2000_random_problems():
    result = run_crosscheck(2000, seed=3)
    assert result.feasible > 500 and result.infeasible > 200
    assert result.ok, result.report()
    assert result.max_diff <= 1e-6


def test_osqp_object_is_reused_and_grows():
    solver = OsqpQP(W, LO, HI, capacity=2)
    problem = solver.problem
    A, b, u_ref = _problems(20, 2, seed=4)
    for p in range(20):
        u, status = solver.solve(A[p], b[p], u_ref[p])
        ref, n_act, _ = solve_qp(A[p], b[p], W, u_ref[p], LO, HI)
        if n_act >= 0:
            assert status == "solved" and np.allclose(u, ref, atol=1e-6)
        else:
            assert status == "primal infeasible"
    assert solver.problem is problem and solver.rebuilds == 0
    A5, b5, u5 = _problems(1, 5, seed=5)
    solver.solve(A5[0], b5[0], u5[0])
    assert solver.rebuilds == 1 and solver.capacity >= 5


def _active_problems(kind: int, n: int):
    """Feasible problems whose optimum has ``kind`` defining rows, away from degeneracy."""
    A, b, u_ref = _problems(4000, 4, seed=11)
    _, status = solve_qp_batch(A, b, W, u_ref, LO, HI)
    idx = np.flatnonzero(status == kind)[:n]
    assert len(idx) == n
    return A[idx], b[idx], u_ref[idx]


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_torch_gradients_match_finite_differences(kind):
    A, b, u_ref = _active_problems(kind, 4)
    tA = torch.tensor(A, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    tu = torch.tensor(u_ref, requires_grad=True)
    tW = torch.tensor(W, requires_grad=True)
    tlo = torch.tensor(LO, requires_grad=True)
    thi = torch.tensor(HI, requires_grad=True)

    def f(A_, b_, u_, W_, lo_, hi_):
        return solve_qp_torch(A_, b_, u_, 0.5 * (W_ + W_.T), lo_, hi_)[0]

    assert torch.autograd.gradcheck(f, (tA, tb, tu, tW, tlo, thi), eps=1e-7, atol=1e-6)


def test_torch_gradient_is_the_active_set_gradient():
    """For one active row a u >= b with W = I: u* = u_ref + a (b - a.u_ref) / |a|^2, so
    du*/db = a / |a|^2 and du*/du_ref = I - a a' / |a|^2."""
    a = np.array([0.6, 0.8])
    tA = torch.tensor(a[None, None, :])
    tb = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    tu = torch.tensor([[0.1, -0.2]], dtype=torch.float64, requires_grad=True)
    _, feasible = solve_qp_torch(tA, tb, tu, torch.eye(2, dtype=torch.float64), torch.tensor(LO),
                                 torch.tensor(HI))
    assert feasible.item()
    (jb, ju) = torch.autograd.functional.jacobian(
        lambda b_, u_: solve_qp_torch(tA, b_, u_, torch.eye(2, dtype=torch.float64), torch.tensor(LO),
                                      torch.tensor(HI))[0], (tb, tu))
    assert np.allclose(jb.reshape(2).numpy(), a)
    assert np.allclose(ju.reshape(2, 2).numpy(), np.eye(2) - np.outer(a, a))
