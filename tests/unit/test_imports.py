"""The import rules of docs/architecture.md, read from the sources (AST, nothing imported):
which package may import which, the one home of the tables, and the size of modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("api", "core", "jobs", "media", "vas_client")
MAX_LINES = 400

# package → packages of VAS it must not import
FORBIDDEN = {
    "media": {"api", "core", "jobs", "vas_client"},
    "vas_client": {"api", "core", "jobs", "media"},
    "core": {"api", "jobs", "media", "vas_client"},
    "jobs": {"api", "vas_client"},
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    """Every module `path` imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names]
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_the_direction_allows(package: str) -> None:
    broken = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _modules(package)
        for module in _imports(path)
        if _top(module) in FORBIDDEN[package]
    ]
    assert not broken, "\n".join(broken)


def test_only_core_imports_the_tables() -> None:
    broken = [
        f"{path.relative_to(ROOT)} imports {module}"
        for package in PRODUCT if package != "core"
        for path in _modules(package)
        for module in _imports(path)
        if module == "core.tables" or module.startswith("core.tables.")
    ]
    assert not broken, "\n".join(broken)


# Migration files are written by Piccolo's generator, one per schema change, and never edited.
GENERATED = ROOT / "core" / "migrations"


def test_no_product_module_is_over_400_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for package in PRODUCT
        for path in _modules(package)
        if GENERATED not in path.parents
        and (count := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, "\n".join(long)


def test_the_rules_see_the_sources() -> None:
    """Guard against a rule passing because it looked at nothing."""
    assert len(_modules("jobs")) > 10 and len(_modules("media")) > 10
    assert "core.tables.Stream" in _imports(ROOT / "core" / "streams.py")
