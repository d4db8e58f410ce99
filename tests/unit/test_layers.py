"""The layers hold: values ← pure logic ← adapters ← orchestration ← faces.

A module may import its own layer and the layers below it, never one above: a value never
knows the planner, the planner never knows a cache or a client, an adapter never knows the
run, and nothing below the faces knows the CLI. Imports under ``if TYPE_CHECKING:`` are
allowed (they name types, they run nothing). The map is the README's Layout section; a new
module must be placed in it here, or this test fails naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]

VALUES, PURE, ADAPTERS, ORCHESTRATION, FACES = range(5)
NAMES = ("values", "pure logic", "adapters", "orchestration", "faces")

# The longest matching prefix decides a module's layer.
LAYER = {
    # values: what a run reads, plans and reports, with no logic beyond comparing them
    "syncd": VALUES,
    "syncd.errors": VALUES,
    "syncd.model": VALUES,
    "syncd.changes": VALUES,
    "syncd.memberset": VALUES,
    "syncd.state": VALUES,
    "syncd.live": VALUES,
    "syncd.results": VALUES,
    "syncd.durations": VALUES,
    "syncd.secrets": VALUES,
    "syncd.assignments": VALUES,
    "syncd.assignments.config": VALUES,
    "syncd.target": VALUES,
    # pure logic: decisions and shared primitives, no outside system
    "syncd.normalise": PURE,
    "syncd.plan": PURE,
    "syncd.matching": PURE,
    "syncd.early": PURE,
    "syncd.members": PURE,
    "syncd.ports": PURE,
    "syncd.guard": PURE,
    "syncd.grace": PURE,
    "syncd.access": PURE,
    "syncd.access_view": PURE,
    "syncd.plan_view": PURE,
    "syncd.saved_plan": PURE,
    "syncd.aio": PURE,
    "syncd.retry": PURE,
    "syncd.ratelimit": PURE,
    "syncd.assignments.resolve": PURE,
    "syncd.assignments.reconcile": PURE,
    "syncd.assignments.permission_sets": PURE,
    "syncd.assignments.applications": PURE,
    # adapters: one seam per outside system (IdPs, Identity Center, AWS, the database, HTTP, systemd)
    "connectors": ADAPTERS,
    "syncd.target.scim": ADAPTERS,
    "syncd.target.resources": PURE,
    "syncd.cache": ADAPTERS,
    "syncd.assignments.aws": ADAPTERS,
    "syncd.assignments.aws_resources": ADAPTERS,
    "syncd.emulator": ADAPTERS,
    "syncd.config": ADAPTERS,
    "syncd.leader": ADAPTERS,
    "syncd.health": ADAPTERS,
    "syncd.status_page": ADAPTERS,
    "syncd.metrics": ADAPTERS,
    "syncd.token_expiry": ADAPTERS,
    "syncd.sdnotify": ADAPTERS,
    "syncd.allocator": ADAPTERS,
    "syncd.logging": ADAPTERS,
    # orchestration: runs the adapters through the logic
    "syncd.engine": ORCHESTRATION,
    "syncd.applier": ORCHESTRATION,
    "syncd.mirror": ORCHESTRATION,
    "syncd.during_read": ORCHESTRATION,
    "syncd.live_read": ORCHESTRATION,
    "syncd.wiring": ORCHESTRATION,
    "syncd.daemon": ORCHESTRATION,
    "syncd.check": ORCHESTRATION,
    "syncd.access_report": ORCHESTRATION,
    "syncd.assignments.manager": ORCHESTRATION,
    "syncd.assignments.access_code": ORCHESTRATION,
    # faces: what a user runs and reads
    "syncd.cli": FACES,
    "syncd.__main__": FACES,
    "syncd.report": FACES,
    "syncd.progress": FACES,
    "syncd.demo": FACES,
    "syncd.demo_data": FACES,
}


# Packages whose own ``__init__`` is placed, not every module under them.
PACKAGE_ONLY = frozenset({"syncd", "syncd.assignments", "syncd.target"})


def layer_of(module: str) -> int | None:
    """The layer of ``module`` by its longest listed prefix (None: not ours, or not placed)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in PACKAGE_ONLY and end != len(parts):
            continue
        found = LAYER.get(prefix)
        if found is not None:
            return found
    return None


def module_name(path: Path) -> str:
    """``syncd/cache/store.py`` → ``syncd.cache.store``; a package is its ``__init__``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of syncd or connectors in ``path``, TYPE_CHECKING blocks left out."""
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py")


def imports_in(text: str, module: str, *, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) for every import of syncd or connectors in ``text``, the source of ``module``."""
    tree = ast.parse(text)
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(inner) for child in node.body for inner in ast.walk(child))
    package = module.split(".")
    if not is_package:
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from syncd import model`` imports the module syncd.model, not just the package.
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] in ("syncd", "connectors")]


SOURCES = sorted(path for top in ("syncd", "connectors") for path in (ROOT / top).rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    """Every module of syncd/ and connectors/ is placed in a layer, so none escapes the rule."""
    unplaced = [module_name(path) for path in SOURCES if layer_of(module_name(path)) is None]
    assert unplaced == [], f"place these modules in a layer (tests/unit/test_layers.py, README Layout): {unplaced}"


def test_no_import_points_up_a_layer() -> None:
    """No module imports one from a higher layer (TYPE_CHECKING-only imports aside)."""
    crossings = []
    for path in SOURCES:
        here = layer_of(module_name(path))
        assert here is not None
        for line, target in imports(path):
            there = layer_of(target)
            if there is not None and there > here:
                crossings.append(f"{path.relative_to(ROOT)}:{line} ({NAMES[here]}) imports {target} ({NAMES[there]})")
    assert crossings == [], "imports that cross layers the wrong way:\n" + "\n".join(crossings)


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("from syncd.plan import Plan\n", False),
        ("from . import engine\n", False),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from syncd.plan import Plan\n", True),
        ("def f():\n    from syncd.engine import Engine\n", False),
        ("from syncd.memberset import MemberSet\n", True),
    ],
)
def test_the_rule_sees_what_a_value_imports(source: str, allowed: bool) -> None:
    """The walk finds plain, relative and function-level imports and leaves TYPE_CHECKING ones out."""
    found = [target for _, target in imports_in(source, "syncd.model", is_package=False)]
    above = [target for target in found if (layer_of(target) or VALUES) > VALUES]
    assert (above == []) is allowed
