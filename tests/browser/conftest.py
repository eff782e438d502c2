"""Fixtures for browser tests: npm packages and bundles, a network namespace, Chromium.

The tests run as root (``ip netns`` needs it) with Debian's ``/usr/bin/chromium`` and Node
(``scripts/install-test-deps.sh``). A missing piece fails the test; nothing is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from tests.browser.harness import Browser, TestNetns, ensure_node_modules

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def browser_bundles() -> dict[str, float]:
    """npm packages installed and dist/ built once per session; returns the timings (s)."""
    return ensure_node_modules()


@pytest.fixture
def netns() -> Iterator[TestNetns]:
    """A fresh network namespace with a veth test address; removed afterwards."""
    assert os.geteuid() == 0, "browser tests create network namespaces: run them as root"
    with TestNetns() as ns:
        yield ns


@pytest.fixture
def browser(browser_bundles: dict[str, float], netns: TestNetns) -> Iterator[Browser]:
    """Debian's headless Chromium running inside ``netns``."""
    with Browser(netns) as running:
        yield running
