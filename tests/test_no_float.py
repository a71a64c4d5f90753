"""Money and credits are ``Decimal``, never float (the project's rule): the engine's own code
names ``float`` only to refuse one (``isinstance(value, float)`` in ``money.D`` and in the
``ScaledDecimal`` column type), never to make or annotate one. What else a text search for
"float" finds in ``src/licensing`` is not a number: docstrings saying floats are refused, the
stylesheet's ``float: right`` (page layout) and ``parseFloat`` in the vendored htmx, which reads
swap timings such as "2s" in the browser."""

from __future__ import annotations

import ast
from pathlib import Path

import licensing

SOURCE = Path(licensing.__file__).parent


def float_uses(tree: ast.AST) -> list[int]:
    """Lines that name ``float`` other than as a type ``isinstance`` refuses."""
    refused = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance" and len(node.args) == 2:
            refused |= {id(name) for name in ast.walk(node.args[1]) if isinstance(name, ast.Name)}
    uses = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "float" and id(node) not in refused]
    uses += [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value == "float"]
    return uses


def test_the_engine_names_float_only_to_refuse_one():
    found = {
        str(path.relative_to(SOURCE)): lines
        for path in sorted(SOURCE.rglob("*.py"))
        if (lines := float_uses(ast.parse(path.read_text(), filename=str(path))))
    }
    assert found == {}
    guards = [path.name for path in sorted(SOURCE.rglob("*.py")) if "isinstance(" in path.read_text() and "float" in path.read_text()]
    assert {"money.py", "types.py"} <= set(guards)  # the refusals themselves are still there


def test_the_check_finds_a_float_made_or_annotated():
    assert float_uses(ast.parse("def f(x: float) -> None: pass")) == [1]
    assert float_uses(ast.parse("amount = float('1.5')")) == [1]
    assert float_uses(ast.parse("if isinstance(value, (bool, float)):\n    raise TypeError")) == []
