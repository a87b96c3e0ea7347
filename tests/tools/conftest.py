"""Fixtures for the test tooling (the lead may lift ``pgbouncer`` into tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.pgbouncer import Bouncer, start_pgbouncer
from tools.pgcluster import Cluster


@pytest.fixture(scope="session")
def pgbouncer(pg: Cluster) -> Iterator[Bouncer]:
    """pgbouncer in transaction pooling mode in front of the private cluster."""
    bouncer = start_pgbouncer(pg)
    try:
        yield bouncer
    finally:
        bouncer.stop()
