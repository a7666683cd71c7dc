"""Sizes of the package's modules, classes and functions, in code lines.

A code line holds something other than blanks, comments and docstrings. The limits
(DESIGN.md, *Layers, one way*, **Size**) hold for the package outside the simulator:

    python tools/sizes.py            # the largest units and the verdict
    python tools/sizes.py --check    # exit 1 when a limit is broken
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mapflow_geo"
EXCLUDED = ("sim",)

MAX_CLASS = 500
MAX_MODULE = 900
LONG_FUNCTION = 60
MAX_LONG_FUNCTIONS = 5

_SKIPPED_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}
_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Unit:
    """A module, class or function and its size in code lines."""

    kind: str
    name: str
    path: str
    line: int
    code_lines: int


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _SCOPES) or not node.body:
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(source: str) -> set[int]:
    """The numbers of the lines of ``source`` that hold code."""
    tree = ast.parse(source)
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _SKIPPED_TOKENS:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines - _docstring_lines(tree)


def measure(path: Path, root: Path = ROOT) -> list[Unit]:
    """The module at ``path``, its classes and its functions (nested ones too)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    code = code_lines(source)
    rel = str(path.relative_to(root))
    units = [Unit("module", rel, rel, 1, len(code))]

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                name = f"{prefix}{child.name}"
                span = range(child.lineno, child.end_lineno + 1)
                units.append(Unit(kind, name, rel, child.lineno, len(code.intersection(span))))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return units


def package_units(package: Path = PACKAGE, excluded: tuple[str, ...] = EXCLUDED) -> list[Unit]:
    """Every unit of the package's modules outside the excluded subpackages."""
    units: list[Unit] = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] in excluded:
            continue
        units.extend(measure(path))
    return units


def violations(
    units: list[Unit],
    *,
    max_class: int = MAX_CLASS,
    max_module: int = MAX_MODULE,
    long_function: int = LONG_FUNCTION,
    max_long_functions: int = MAX_LONG_FUNCTIONS,
) -> list[str]:
    """What breaks the limits, one sentence each (empty when every limit holds)."""
    found = [
        f"class {u.name} ({u.path}:{u.line}) has {u.code_lines} code lines (limit {max_class})"
        for u in units
        if u.kind == "class" and u.code_lines > max_class
    ]
    found += [
        f"module {u.path} has {u.code_lines} code lines (limit {max_module})"
        for u in units
        if u.kind == "module" and u.code_lines > max_module
    ]
    long = [u for u in units if u.kind == "function" and u.code_lines > long_function]
    if len(long) > max_long_functions:
        names = ", ".join(f"{u.name} ({u.path}) {u.code_lines}" for u in long)
        found.append(
            f"{len(long)} functions have over {long_function} code lines "
            f"(at most {max_long_functions}): {names}"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a limit is broken")
    parser.add_argument("--top", type=int, default=10, help="largest units listed per kind")
    args = parser.parse_args(argv)
    units = package_units()
    for kind in ("module", "class", "function"):
        largest = sorted((u for u in units if u.kind == kind), key=lambda u: -u.code_lines)
        print(f"largest {kind}s:")
        for u in largest[: args.top]:
            print(f"  {u.code_lines:5d}  {u.name}  ({u.path}:{u.line})")
    broken = violations(units)
    for sentence in broken:
        print(sentence)
    if not broken:
        print("every size limit holds")
    return 1 if broken and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
