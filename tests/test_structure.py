"""The shape of the code: small modules, short functions, a short top level in bench/.
Each test names the largest offender, so the fix starts there."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.host.paths import PROJECT_ROOT

PRODUCT = ("bench", "strategies", "docker/service", "datos")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_TOP_LEVEL_MODULES = 8  # bench/*.py beside its subpackages (__init__.py not counted)


def product_modules() -> list[Path]:
    return sorted(p for folder in PRODUCT for p in (PROJECT_ROOT / folder).rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(PROJECT_ROOT)): len(p.read_text().splitlines())
             for p in product_modules()}
    assert len(sizes) > 60
    largest = max(sizes, key=sizes.__getitem__)
    assert sizes[largest] <= MAX_MODULE_LINES, f"{largest}: {sizes[largest]} lines"


def test_no_function_is_over_80_lines() -> None:
    lengths: dict[str, int] = {}
    for path in product_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.name}"
                lengths[where] = node.end_lineno - node.lineno + 1
    largest = max(lengths, key=lengths.__getitem__)
    assert lengths[largest] <= MAX_FUNCTION_LINES, f"{largest}: {lengths[largest]} lines"


def test_bench_has_at_most_8_top_level_modules() -> None:
    top = sorted(p.name for p in (PROJECT_ROOT / "bench").glob("*.py") if p.name != "__init__.py")
    assert 3 < len(top) <= MAX_TOP_LEVEL_MODULES, top
