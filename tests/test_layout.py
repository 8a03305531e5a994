"""The house's map and walls: docs/layout.md names every module, the product does not import the lab, and no module
or function outgrows the limits the project keeps (benchmarks/code_size.py prints the sizes)."""

import ast
import os
import re

from benchmarks.code_size import FUNCTION_LIMIT, MODULE_LIMIT, PRODUCT, ROOT, function_lengths, product_modules

LAYOUT = os.path.join(ROOT, "docs", "layout.md")


def modules() -> list:
    return [path for path in product_modules() if os.path.basename(path) != "__init__.py"]


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_the_map_names_every_module_and_no_module_that_is_gone():
    text = read(LAYOUT)
    rows = set(re.findall(r"^\| `([\w/]+\.py)` \|", text, re.MULTILINE))  # a row of its own: | `path` | its job |
    missing = [path for path in modules() if path not in rows]
    assert not missing, f"docs/layout.md has no row for {missing}: add one with its job"
    named = set(re.findall(r"`((?:utils|nets)/[\w/]+\.py)`", text))
    gone = sorted(path for path in named if not os.path.isfile(os.path.join(ROOT, path)))
    assert not gone, f"docs/layout.md names modules that do not exist: {gone}"


def test_the_product_does_not_import_the_lab():
    for path in [p for p in modules() if p != "benchmark.py"]:  # benchmark.py is the lab's own script
        imported = set()
        for node in ast.walk(ast.parse(read(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        assert not [name for name in imported if name.split(".")[0] == "benchmarks"], path


def test_no_module_or_function_outgrows_its_limit():
    packages = tuple(f"{package}/" for package in PRODUCT)
    long_modules = [p for p in modules() if p.startswith(packages) and read(p).count("\n") > MODULE_LIMIT]
    long_functions = [
        f"{path}:{line} {name} ({lines} lines)"
        for path in modules()
        for name, line, lines in function_lengths(read(path))
        if lines > FUNCTION_LIMIT
    ]
    assert not long_modules, f"over {MODULE_LIMIT} lines: {long_modules}"
    assert not long_functions, f"over {FUNCTION_LIMIT} lines: {long_functions}"
