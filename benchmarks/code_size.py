r"""The house's sizes: the longest modules and functions of the product (the top-level scripts, nets/ and utils/),
against the limits the project keeps (docs/layout.md): no module under nets/ or utils/ over 250 lines, no function
over 60.

    $ python benchmarks/code_size.py                  # modules over 150 lines, functions over 40
    $ python benchmarks/code_size.py --modules 0 --functions 0   # every module and function
"""

import argparse
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT = ("nets", "utils")  # the packages; the top-level scripts beside them
MODULE_LIMIT, FUNCTION_LIMIT = 250, 60  # lines, for modules under PRODUCT and for every function


def product_modules(root: str = ROOT) -> list:
    """Paths (from root) of the top-level scripts and of every module under nets/ and utils/, sorted."""
    paths = [name for name in os.listdir(root) if name.endswith(".py")]
    for package in PRODUCT:
        for folder, _, names in os.walk(os.path.join(root, package)):
            paths += [os.path.relpath(os.path.join(folder, n), root) for n in names if n.endswith(".py")]
    return sorted(paths)


def function_lengths(source: str) -> list:
    """[(qualified name, first line, lines)] of every function and method, nested ones too."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")

    visit(ast.parse(source), "")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=150, help="list modules longer than this many lines")
    parser.add_argument("--functions", type=int, default=40, help="list functions longer than this many lines")
    args = parser.parse_args(argv)
    modules, functions = [], []
    for path in product_modules():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        modules.append((source.count("\n"), path))
        functions += [(lines, f"{path}:{line} {name}") for name, line, lines in function_lengths(source)]
    over = [(n, p) for n, p in modules if n > MODULE_LIMIT and p.startswith(tuple(f"{d}/" for d in PRODUCT))]
    long = [(n, f) for n, f in functions if n > FUNCTION_LIMIT]
    print(f"{len(modules)} modules, {sum(n for n, _ in modules)} lines; {len(functions)} functions")
    print(
        f"modules under {' and '.join(PRODUCT)} over {MODULE_LIMIT} lines: {len(over)}; functions over "
        f"{FUNCTION_LIMIT} lines: {len(long)}"
    )
    print(f"\nModules over {args.modules} lines:")
    for lines, path in sorted(modules, reverse=True):
        if lines > args.modules:
            print(f"  {lines:5d}  {path}")
    print(f"\nFunctions over {args.functions} lines:")
    for lines, where in sorted(functions, reverse=True):
        if lines > args.functions:
            print(f"  {lines:5d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
