"""Shared test fixtures."""

from __future__ import annotations

import pytest

from pe_sim.scenario import Scenario, load_scenario


@pytest.fixture(scope="session")
def seed_scenario() -> Scenario:
    return load_scenario("seed_1v1_2obs")


@pytest.fixture
def domain_claim():
    """A DDS domain of this test's own: claimed (no other pe-stack graph of this machine
    holds it) and checked empty by discovery before the test starts its graph. A test
    that hands the domain to ``pe-launch --domain-id`` closes the claim first (pe-launch
    claims it itself)."""
    domain = pytest.importorskip("pe_ros.domain")
    with domain.claim_domain() as claim:
        yield claim


@pytest.fixture
def ros_domain(domain_claim) -> int:
    return domain_claim.domain_id
