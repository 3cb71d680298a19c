"""Cross-check of the exact solver against OSQP on random problems.

Half the problems come from the filter's own constraint assembly (random arenas,
0-6 obstacles, 0-2 teammates, any robot pose -- also inside the inflated sets --,
gains 0.05-20 1/s, d 0.05-0.3 m, nominal commands up to 3x outside the box),
half are generic (1-10 random unit rows, random right-hand sides). W is one of
eight random SPD matrices (one warm-started OSQP object each) and the box is
random per problem. OSQP runs with eps_abs = eps_rel = 1e-9, polishing, and up
to 200k iterations. Agreement: where the exact solver finds the problem
feasible, OSQP solves it and max |u_exact - u_osqp| <= 1e-6; where it finds it
infeasible, OSQP reports primal infeasibility. Problems on which OSQP does not
converge are listed with the thinness of their feasible set; every exact
solution is also certified optimal by its KKT conditions (independent of both).

    python -m pe_safety_filter.crosscheck --n 100000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog, nnls

from pe_safety_filter.barriers import assemble_constraints
from pe_safety_filter.config import OsqpSettings
from pe_safety_filter.exact_qp import solve_qp_batch
from pe_safety_filter.osqp_qp import OsqpQP, quiet_c_stdout
from pe_sim.cli import console_main, positive_int, seed_int

M_MAX = 12  # rows per problem, padded with (0, 0) >= -1
TOLERANCE = 1e-6
#: Tight tolerances and a generous iteration cap: inactive rows with right-hand sides
#: of hundreds (far obstacles at high gain) make OSQP need > 10k iterations at eps 1e-9.
OSQP_SETTINGS = OsqpSettings(eps_abs=1e-9, eps_rel=1e-9, max_iter=200_000, polishing=True)


@dataclass
class CrosscheckResult:
    """Counts of :func:`run_crosscheck`. A *conflict* is a problem where both solvers
    answer and the answers differ (solutions more than 1e-6 apart, or one says
    feasible and the other infeasible). OSQP not converging (iteration limit,
    "inaccurate") is no answer: counted apart, with the problem's inscribed radius
    (how thin its feasible set is) and the exact solution's KKT certificate."""

    n: int
    feasible: int = 0
    infeasible: int = 0
    agree_feasible: int = 0
    agree_infeasible: int = 0
    max_diff: float = 0.0
    kkt_certified: int = 0
    osqp_retries: int = 0
    conflicts: dict[str, int] = field(default_factory=dict)
    unconverged: list[tuple[int, str, str, float]] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No conflict, and every exact solution KKT-certified."""
        return not self.conflicts and self.kkt_certified == self.feasible

    def report(self) -> str:
        lines = [
            f"crosscheck exact vs OSQP: {self.n} random problems ({self.seconds:.1f} s)",
            f"  feasible (exact): {self.feasible}; OSQP solved and max|u_exact - u_osqp| <= "
            f"{TOLERANCE:g}: {self.agree_feasible}; largest difference {self.max_diff:.2e}",
            f"  infeasible (exact): {self.infeasible}; OSQP primal infeasible: {self.agree_infeasible}",
            f"  exact solutions with a KKT certificate (feasible, multipliers >= 0, stationary to "
            f"1e-7): {self.kkt_certified}/{self.feasible}",
            f"  OSQP calls that needed the cold-restart fallback: {self.osqp_retries}",
            f"  OSQP did not converge: {len(self.unconverged)}"
            + "".join(f"\n    problem {p}: exact {e}, OSQP '{o}', feasible set inscribed radius {r:.1e}"
                      for p, e, o, r in self.unconverged[:10]),
            f"  conflicts (both answered, answers differ): {sum(self.conflicts.values())} "
            f"{self.conflicts or ''}",
            f"  result: {'PASS' if self.ok else 'FAIL'}",
        ]
        return "\n".join(lines)


def inscribed_radius(A, b, lo, hi) -> float:
    """Radius of the largest ball (in u) inside {A u >= b, lo <= u <= hi} for unit
    rows A (negative: infeasible by that much); a thin feasible set is hard for OSQP."""
    An = np.vstack([A, np.eye(2), -np.eye(2)])
    bn = np.concatenate([b, lo, -hi])
    norms = np.linalg.norm(An, axis=1)
    res = linprog([0.0, 0.0, -1.0], A_ub=np.hstack([-An, norms[:, None]]), b_ub=-bn,
                  bounds=[(None, None), (None, None), (None, 1e3)])
    return float(res.x[2]) if res.success else float("nan")


def _random_spd(rng: np.random.Generator) -> np.ndarray:
    L = np.array([[rng.uniform(0.3, 2.0), 0.0], [rng.uniform(-1.0, 1.0), rng.uniform(0.2, 1.5)]])
    return L @ L.T


def random_problems(n: int, seed: int = 0):
    """``n`` problems: (A (n, M_MAX, 2), b (n, M_MAX), m (n,), u_ref (n, 2), lo, hi (n, 2), w_index (n,))."""
    rng = np.random.default_rng(seed)
    A = np.zeros((n, M_MAX, 2))
    b = np.full((n, M_MAX), -1.0)
    m = np.zeros(n, dtype=np.int64)
    lo = np.stack([np.zeros(n), -rng.uniform(0.5, 4.0, n)], 1)
    hi = np.stack([rng.uniform(0.2, 2.0, n), -lo[:, 1]], 1)
    u_ref = rng.uniform(-3.0, 3.0, (n, 2)) * hi
    w_index = rng.integers(0, 8, n)
    for p in range(n):
        if p % 2 == 0:
            hw, hh = rng.uniform(2.0, 15.0, 2)
            k = rng.integers(0, 7)
            obs = np.stack([rng.uniform(-hw, hw, k), rng.uniform(-hh, hh, k), rng.uniform(0.1, 1.5, k)], 1)
            t = rng.integers(0, 3)
            mates = np.stack([rng.uniform(-hw, hw, t), rng.uniform(-hh, hh, t),
                              rng.uniform(-np.pi, np.pi, t)], 1)
            pose = np.array([rng.uniform(-hw, hw), rng.uniform(-hh, hh), rng.uniform(-np.pi, np.pi)])
            c = k + 4 + t
            gains = np.exp(rng.uniform(np.log(0.05), np.log(20.0), c))
            Ap, bp, _ = assemble_constraints(pose, rng.uniform(0.05, 0.3), rng.uniform(0.1, 0.3), obs, hw, hh,
                                             mates, None, gains, robot_buffer=rng.uniform(0.0, 0.2))
        else:
            c = rng.integers(1, 11)
            Ap = rng.normal(size=(c, 2))
            Ap /= np.linalg.norm(Ap, axis=1, keepdims=True)
            bp = rng.normal(scale=1.0, size=c)
        A[p, :c] = Ap
        b[p, :c] = bp
        m[p] = c
    return A, b, m, u_ref, lo, hi, w_index


def run_crosscheck(n: int, seed: int = 0) -> CrosscheckResult:
    """Cross-check ``n`` random problems; see the module docstring."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed + 1)
    Ws = [_random_spd(rng) for _ in range(8)]
    A, b, m, u_ref, lo, hi, w_index = random_problems(n, seed)
    u_exact = np.empty((n, 2))
    status = np.empty(n, dtype=np.int64)
    for k, W in enumerate(Ws):
        sel = np.flatnonzero(w_index == k)
        u_exact[sel], status[sel] = solve_qp_batch(A[sel], b[sel], W, u_ref[sel], lo[sel], hi[sel])
    solvers = [OsqpQP(W, lo[0], hi[0], capacity=M_MAX, settings=OSQP_SETTINGS) for W in Ws]
    result = CrosscheckResult(n=n)
    with quiet_c_stdout():
        for p in range(n):
            c = m[p]
            u, st = solvers[w_index[p]].solve(A[p, :c], b[p, :c], u_ref[p], lo[p], hi[p])
            if status[p] >= 0:
                result.feasible += 1
                if st == "solved":
                    diff = float(np.abs(u - u_exact[p]).max())
                    result.max_diff = max(result.max_diff, diff)
                    if diff <= TOLERANCE:
                        result.agree_feasible += 1
                        continue
                    key = "feasible: solution differs"
                elif st == "primal infeasible":
                    key = "feasible: OSQP primal infeasible"
                else:
                    _unconverged(result, p, "feasible", st, A[p, :c], b[p, :c], lo[p], hi[p])
                    continue
            else:
                result.infeasible += 1
                if st == "primal infeasible":
                    result.agree_infeasible += 1
                    continue
                if st != "solved":
                    _unconverged(result, p, "infeasible", st, A[p, :c], b[p, :c], lo[p], hi[p])
                    continue
                key = "infeasible: OSQP solved"
            result.conflicts[key] = result.conflicts.get(key, 0) + 1
            if len(result.examples) < 20:
                result.examples.append(p)
    for p in np.flatnonzero(status >= 0):
        c = m[p]
        result.kkt_certified += kkt_certified(A[p, :c], b[p, :c], Ws[w_index[p]], u_ref[p], lo[p], hi[p],
                                              u_exact[p])
    result.osqp_retries = sum(s.retries for s in solvers)
    result.seconds = time.perf_counter() - t0
    return result


def _unconverged(result: CrosscheckResult, p: int, exact: str, osqp_status: str, A, b, lo, hi) -> None:
    result.unconverged.append((p, exact, osqp_status, inscribed_radius(A, b, lo, hi)))


def kkt_certified(A, b, W, u_ref, lo, hi, u, tol: float = 1e-7) -> bool:
    """Whether ``u`` is the optimum, by the KKT conditions (independent of both
    solvers): feasible, and 2 W (u - u_ref) is a non-negative combination of the
    normals of the rows tight at u (non-negative least squares residual <= tol)."""
    An = np.vstack([A, np.eye(2), -np.eye(2)])
    bn = np.concatenate([b, lo, -hi])
    slack = An @ u - bn
    scale = np.abs(An).sum(1) + np.abs(An * u).sum(1) + np.abs(bn)
    if np.any(slack < -1e-9 * scale):
        return False
    grad = 2.0 * W @ (u - u_ref)
    tight = slack <= 1e-9 * scale
    if not tight.any():
        return bool(np.abs(grad).max() <= tol)
    _, resid = nnls(An[tight].T, grad)
    return bool(resid <= tol * (1.0 + np.abs(grad).max()))


@console_main("pe-filter-crosscheck")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pe-filter-crosscheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=positive_int, default=100_000)
    parser.add_argument("--seed", type=seed_int, default=0)
    args = parser.parse_args(argv)
    result = run_crosscheck(args.n, args.seed)
    print(result.report())
    if result.examples:
        print(f"  first conflicting problems (index with --seed {args.seed}): {result.examples}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
