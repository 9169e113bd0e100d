"""common/ is the sans-I/O protocol core (DESIGN.md): no module of it may
import what does I/O, waits or reads a clock, or open a file.  Checked on the
source's syntax tree, so a comment or a docstring that names such a module
does not count, and an import hidden inside a function does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMMON = Path(__file__).resolve().parent.parent / "common"
#: Modules whose import means I/O, threads, signals, a clock or logging.
FORBIDDEN = {"threading", "socket", "time", "signal", "select", "loguru", "asyncio",
             "subprocess", "selectors", "queue", "multiprocessing", "logging"}
MODULES = sorted(COMMON.rglob("*.py"))


def _violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            names = []
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"line {node.lineno}: imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append(f"line {node.lineno}: calls open()")
            elif isinstance(func, ast.Attribute) and func.attr in ("open", "fdopen") and \
                    isinstance(func.value, ast.Name) and func.value.id in ("os", "io"):
                found.append(f"line {node.lineno}: calls {func.value.id}.{func.attr}()")
    return found


def test_common_has_modules():
    assert len(MODULES) >= 8, MODULES  # the walk found the package


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(COMMON.parent)))
def test_common_module_is_pure(path: Path):
    assert _violations(ast.parse(path.read_text(), str(path))) == []


@pytest.mark.parametrize("source, expected", [
    ("import threading", "imports threading"),
    ("def f():\n    from time import monotonic", "imports time"),
    ("import socket as s", "imports socket"),
    ("from loguru import logger", "imports loguru"),
    ("data = open('x').read()", "calls open()"),
    ("import os\nfd = os.open('x', 0)", "calls os.open()"),
])
def test_the_checker_catches(source, expected):
    assert any(expected in v for v in _violations(ast.parse(source)))


def test_the_checker_passes_pure_code():
    assert _violations(ast.parse("import bisect\nfrom .seq import wrap\n'threading'")) == []
