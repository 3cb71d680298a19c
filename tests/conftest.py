"""Shared test fixtures."""

from __future__ import annotations

import pytest

from pe_sim.scenario import Scenario, load_scenario


@pytest.fixture(scope="session")
def seed_scenario() -> Scenario:
    return load_scenario("seed_1v1_2obs")
