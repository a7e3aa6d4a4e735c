"""Fixtures of the membership tests (helpers live in membership_harness.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.membership.membership_harness import Cluster, make_config


@pytest.fixture
def cluster_of() -> Callable[..., Cluster]:
    def make(**kwargs: Any) -> Cluster:
        ping = kwargs.pop("ping", None)
        return Cluster(make_config(**kwargs), ping=ping)
    return make


@pytest.fixture(autouse=True)
def _membership_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="havm.membership")
