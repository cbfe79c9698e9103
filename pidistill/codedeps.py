"""Which source files a rule's script runs: the script and the pidistill modules it imports.

Rules list these as inputs, so editing the code a rule runs reruns that rule and its dependents,
and only those (Snakemake's mtime trigger), without listing modules by hand.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "pidistill"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


@lru_cache(maxsize=None)
def _closure(script: Path, root: Path) -> tuple[str, ...]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            # a module's parent packages run too (their __init__)
            for i in range(1, len(parts) + 1):
                f = _module_file(root, ".".join(parts[:i]))
                if f is not None and f not in seen:
                    todo.append(f)
    return tuple(sorted(str(p.relative_to(root)) for p in seen))


def code_files(script: str | Path, root: str | Path) -> list[str]:
    """Repo-relative paths of ``script`` and every pidistill module it (transitively) imports."""
    root = Path(root).resolve()
    return list(_closure(Path(script).resolve(), root))
