"""The harness runs on what `pip install .` installs: every library its code imports is a
declared dependency, or an optional one it asks for by name where it is needed.

Found: bench/export.py imported yaml, which only the test extra installed, so `nox -s bench`
(the README's first command, `pip install -e .`) failed on a fresh machine before it
parsed its arguments, while every test passed."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import project_path

PACKAGES = ("bench", "strategies", "datos")
# Imported only where the user asked for them, each behind a one-line error naming the
# install (a --model-kind or a model of that library; nox -s micro installs .[test]).
OPTIONAL = {"lightgbm": "lightgbm", "xgboost": "xgboost-cpu", "skops": "skops"}


def _imported_top_levels() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in project_path(package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def _declared() -> set[str]:
    project = tomllib.loads(project_path("pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
            for requirement in project["dependencies"]}


def test_every_library_the_harness_imports_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {}
    for module in sorted(_imported_top_levels()):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if module in OPTIONAL:
            assert OPTIONAL[module] not in declared, f"{module} is optional, not a dependency"
        elif not names & declared:
            undeclared[module] = sorted(names)
    assert undeclared == {}, "imported but not in [project] dependencies"
    assert "yaml" in _imported_top_levels()  # the case that was found
