"""Which source files a rule's job runs: its script and the pidistill modules that script runs.

Rules list these as inputs, so editing the code a rule runs reruns that rule and its dependents,
and only those (Snakemake's mtime trigger), without listing modules by hand.

What counts as "runs":
  * the script's helpers from its own directory (``import _repo``);
  * every ``import`` of a pidistill module (module level or inside a function) in the script and,
    transitively, in each module it reaches, with the parent packages' ``__init__``;
  * a module's ``__code_deps__``: a literal tuple of module names that the module runs without
    importing them (a subprocess entry point, a handler named by a string), followed like imports.
Code chosen by configuration is NOT followed: registries map a config value to a module name
(dataset loaders, generation backends, domain verifiers), and the rule adds the one module its
job uses (``code_files(script, root, modules=[...])``), so editing the vLLM backend does not
touch a job that runs the transformers one. ``pidistill.smk.rule_log`` checks at the end of every
job that each pidistill module the job imported is among its code inputs, so a module reached by
a path this walk does not see fails the job loudly instead of going untracked.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "pidistill"


def _is_ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _sibling_imports(path: Path) -> list[Path]:
    """Modules a script imports from its own directory (Snakemake puts it on the path): scripts/_repo."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    return [path.parent / f"{n}.py" for n in sorted(names) if "." not in n and (path.parent / f"{n}.py").is_file()]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__code_deps__" for t in node.targets):
            try:
                declared = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"{path}:{node.lineno}: __code_deps__ must be a literal tuple of module names") from None
            names.update(declared)
    return {n for n in names if _is_ours(n)}


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _with_parents(root: Path, name: str) -> list[Path]:
    """The module's file and its parent packages' ``__init__`` files (importing it runs them)."""
    parts = name.split(".")
    files = [_module_file(root, ".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


@lru_cache(maxsize=None)
def _closure(start: tuple[Path, ...], root: Path) -> tuple[str, ...]:
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            todo.extend(f for f in _with_parents(root, name) if f not in seen)
        if PACKAGE not in path.relative_to(root).parts:
            todo.extend(f for f in _sibling_imports(path) if f not in seen)
    return tuple(sorted(str(p.relative_to(root)) for p in seen))


def code_files(script: str | Path, root: str | Path, modules: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Root-relative paths of ``script``, of ``modules`` (dotted names a registry chose for this
    job), and of every pidistill module they (transitively) run."""
    root = Path(root).resolve()
    start = [Path(script).resolve()]
    for name in modules:
        module = name.split(":")[0]  # registries write "module:attribute"
        if not _is_ours(module) or _module_file(root, module) is None:
            raise ValueError(f"no pidistill module {module!r} under {root}")
        start.extend(_with_parents(root, module))
    return list(_closure(tuple(sorted(set(start))), root))
