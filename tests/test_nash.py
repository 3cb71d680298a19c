"""Nash averaging of the capture matrix and the Wilson interval: small games with known
solutions."""

from __future__ import annotations

import numpy as np
import pytest

from pe_sim.intervals import wilson_interval
from pe_training.nash import maximin, nash_average


def test_matching_pennies_mixes_evenly():
    n = nash_average(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert n.value == pytest.approx(0.5)
    np.testing.assert_allclose(n.pursuer_mixture, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(n.evader_mixture, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(n.pursuer_rating, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(n.evader_rating, [0.5, 0.5], atol=1e-6)


def test_rock_paper_scissors_constant_sum():
    rps = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=float)
    n = nash_average(0.5 + 0.5 * rps)
    assert n.value == pytest.approx(0.5)
    np.testing.assert_allclose(n.pursuer_mixture, [1 / 3] * 3, atol=1e-5)
    np.testing.assert_allclose(n.evader_mixture, [1 / 3] * 3, atol=1e-5)


def test_saddle_point_and_dominated_strategies():
    # pursuer 1 dominates pursuer 0; evader 0 dominates evader 1 (lower capture)
    capture = np.array([[0.2, 0.6], [0.4, 0.8]])
    n = nash_average(capture)
    assert n.value == pytest.approx(0.4)
    np.testing.assert_allclose(n.pursuer_mixture, [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(n.evader_mixture, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(n.pursuer_rating, [0.2, 0.4], atol=1e-6)
    np.testing.assert_allclose(n.evader_rating, [0.6, 0.2], atol=1e-6)


def test_mixed_two_by_two_value():
    # pursuer mix a: 0.65a + 0.9(1-a) = 1.0a + 0.85(1-a) -> a = 1/8, value 0.86875
    value, p = maximin(np.array([[0.65, 1.0], [0.9, 0.85]]))
    assert value == pytest.approx(0.86875)
    np.testing.assert_allclose(p, [0.125, 0.875], atol=1e-6)


def test_a_copy_of_a_policy_changes_no_rating():
    capture = np.array([[0.9, 0.3, 0.5], [0.2, 0.8, 0.4], [0.6, 0.5, 0.1]])
    base = nash_average(capture)
    copied = nash_average(np.vstack([capture, capture[1]]))
    np.testing.assert_allclose(copied.pursuer_rating[:3], base.pursuer_rating, atol=1e-5)
    np.testing.assert_allclose(copied.evader_rating, base.evader_rating, atol=1e-5)
    assert copied.pursuer_mixture[1] == pytest.approx(copied.pursuer_mixture[3], abs=1e-4)
    assert copied.pursuer_mixture[1] + copied.pursuer_mixture[3] == pytest.approx(base.pursuer_mixture[1],
                                                                                   abs=1e-4)


def test_support_rates_the_value():
    rng = np.random.default_rng(3)
    capture = rng.uniform(size=(5, 4))
    n = nash_average(capture)
    support = n.pursuer_mixture > 1e-4
    np.testing.assert_allclose(n.pursuer_rating[support], n.value, atol=1e-5)
    assert (n.pursuer_rating <= n.value + 1e-6).all()
    assert (1.0 - n.evader_rating <= 1.0).all() and (n.evader_rating >= 1.0 - n.value - 1e-6).any()


def test_wilson_interval_known_values():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(914, 1000)
    assert low < 0.914 < high and high - low == pytest.approx(0.0347, abs=1e-3)
    assert all(x != x for x in wilson_interval(0, 0))  # nan without trials
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_crossplay_worst_case_counts_only_the_players_own_best_response():
    from pe_training.crossplay import CrossPlay, identity, markdown_matrix
    from pe_training.matchup import MatchResult

    pn = "scripted:proportional_navigation"
    pursuers = ["scripted:pure_pursuit", pn]
    br_against_pn = f"results/exploit/{identity(pn)}/evader-16000000-seed1-key/best_response.onnx"
    evaders = ["scripted:flee", br_against_pn]
    capture = np.array([[0.30, 0.05],    # PP: the best response against PN beats it too, but is not its own
                        [0.40, 0.20]])

    def result(p: str, e: str, c: float) -> MatchResult:
        return MatchResult(p, e, "bench_1v1_flee", 100, 0, "all", int(100 * c), c, c, c, 0, 0.0, 0.0)

    results = [[result(p, e, c) for e, c in zip(evaders, row, strict=True)]
               for p, row in zip(pursuers, capture, strict=True)]
    xp = CrossPlay("bench_1v1_flee", pursuers, evaders, results, nash_average(capture))
    assert xp.worst_case_own("pursuer") == pytest.approx([0.30, 0.20])
    assert xp.to_dict()["worst_case_capture"] == pytest.approx([0.05, 0.20])
    assert xp.worst_case_own("evader") == pytest.approx([0.60, 0.80])   # escape: 1 - max capture
    table = markdown_matrix(xp)
    assert "| PP | 30.0 | 5.0 |" in table and table.count("\n|") == 5
