"""Shared test fixtures."""

from __future__ import annotations

import pytest

from pe_sim.scenario import Scenario, load_scenario


@pytest.fixture(scope="session")
def seed_scenario() -> Scenario:
    return load_scenario("seed_1v1_2obs")


@pytest.fixture
def ros_domain():
    """A DDS domain of this test's own: claimed (no other pe-stack graph of this machine
    holds it) and checked empty by discovery before the test starts its graph."""
    domain = pytest.importorskip("pe_ros.domain")
    with domain.claim_domain() as claim:
        yield claim.domain_id
