"""The parts of the package and how they may depend on each other (docs/architecture.md).

A part is a top-level package or module of ``licensing`` (``credits``, ``invoicing``, ``db`` ...).
The root modules that wire or list the parts (``bootstrap``, ``models``, ``cli``, ``demo``) are
left out: they import the parts, never the other way round, except ``licensing.models`` (every
table), which the scheduler imports to resolve foreign keys when it runs on its own.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import licensing

PACKAGE = Path(licensing.__file__).parent
ROOT_MODULES = {"bootstrap", "models", "cli", "demo", "__init__", "__main__", "migrations"}


def imports_between_parts() -> dict[str, dict[str, list[str]]]:
    """part -> {part it imports: [where]}, from every import statement, at module level or
    inside a function alike."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        part = relative.parts[0].removesuffix(".py")
        if part in ROOT_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if not name.startswith("licensing."):
                    continue
                target = name.split(".")[1]
                if target != part and target not in ROOT_MODULES:
                    edges[part][target].append(f"{relative}:{node.lineno}")
    return edges


def cycles(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Every cycle of the graph, each once (as found by a depth-first search)."""
    found, seen = [], set()

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(edges.get(node, {})):
            if target in path:
                cycle = path[path.index(target):]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append([*cycle, target])
            else:
                visit(target, [*path, target])

    for start in sorted(edges):
        visit(start, [start])
    return found


def test_no_part_imports_a_part_that_imports_it_back():
    edges = imports_between_parts()
    assert {"catalog", "credits", "documents", "invoicing", "licences", "db", "events"} <= set(edges)  # the scan sees the parts
    found = cycles(edges)
    assert found == [], "\n".join(
        " -> ".join(cycle) + ": " + "; ".join(f"{a} -> {b} at {edges[a][b][0]}" for a, b in pairwise(cycle))
        for cycle in found
    )


def test_the_cycle_check_finds_a_cycle():
    edges = {"invoicing": {"documents": ["invoicing/approval.py:1"]}, "documents": {"invoicing": ["documents/context.py:1"]}}
    assert cycles(edges) == [["documents", "invoicing", "documents"]]


def test_invoicing_knows_nothing_of_documents_and_the_catalog_nothing_of_licences():
    edges = imports_between_parts()
    assert "documents" not in edges["invoicing"], edges["invoicing"]["documents"]
    assert "licences" not in edges["catalog"], edges["catalog"]["licences"]
    assert "invoicing" not in edges["licences"], edges["licences"]["invoicing"]
    # what depends on what, the other way: documents render invoices, licences sell products
    assert "invoicing" in edges["documents"] and "catalog" in edges["licences"]


def test_the_plumbing_depends_on_no_part_of_the_domain():
    edges = imports_between_parts()
    domain = {"accounts", "catalog", "licences", "invoicing", "credits", "documents", "webhooks", "reports", "scheduler", "api", "auth"}
    assert set(edges["db"]) & domain == set()
    assert set(edges["events"]) & domain == set()
