"""The lock files are what runs: every package the dev lock names is installed at exactly
its locked version, the product lock agrees with it, and aiortc and PyAV are pinned to the
tested minor releases in pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


def _locked(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_the_environment_is_the_dev_lock() -> None:
    locked = _locked("requirements-dev.lock")
    assert len(locked) > 100
    wrong = {}
    for name, version in locked.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert wrong == {}, "installed versions differ from requirements-dev.lock: make install"


def test_the_product_lock_agrees_with_the_dev_lock() -> None:
    product, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    extra_for_old_pythons = {"async-timeout"}  # redis needs it below Python 3.11.3 only
    assert {n: v for n, v in product.items() if n not in extra_for_old_pythons and
            dev.get(n) != v} == {}


def test_aiortc_and_pyav_are_pinned_to_the_tested_minor_releases() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {re.split(r"[<>=\[]", d)[0]: d for d in project["dependencies"]}
    locked = _locked("requirements.lock")
    for name in ("av", "aiortc"):
        major, minor = locked[name].split(".")[:2]
        assert pins[name] == f"{name}>={major}.{minor},<{major}.{int(minor) + 1}", pins[name]
