"""Imported first by every rule script: puts this checkout's ``pidistill`` package on ``sys.path``,
and runs the job in the Python environment its rule names.

Checkout. Snakemake adds only scripts/ to the path; in a ``--sdm conda`` or pinned environment the
package is not installed, and in the driver's venv it must be this checkout's code that runs (the
code the rules list as inputs).

Environment. A rule that runs a script passes ``params: environment="<name>"`` (``main``, ``vllm``:
one lock file envs/<name>.txt each). The config key ``environments`` maps a name to the prefix of a
Python environment (a venv that ``make cluster`` built; relative to the checkout unless absolute),
e.g. ``environments: {vllm: .envs/vllm}``. A name it does not map runs in the interpreter that
Snakemake runs on (``main``: the driver's .venv). Snakemake runs a rule's script as
``<its python> .snakemake/scripts/tmpXXXX.<script>.py``, a copy that starts with a preamble which
unpickles the ``snakemake`` object; when the rule's environment is configured and is not the
running one, this module ``exec``s that environment's ``bin/python`` on the same file, so the job
runs whole (preamble included) in the process Snakemake started, under the other interpreter.

Garbage collection (``tune_collector``). A heavy job's first seconds are imports: torch,
transformers and peft make some 400,000 objects that live until the job ends. Under Python's default
thresholds (700, 10, 10) the collector's full passes walk all of them again each time they have grown
by a quarter (about 1 s of a job's start on the development machine), and the interpreter's exit
walks them once more. So this raises the third threshold (full passes 100x rarer; the young
generations, where a training step's garbage dies, are collected as before) and freezes the heap at
exit (``gc.freeze``: what is left is freed by reference counting, every output file is closed by
then). A heavy job's start and exit take 0.75x the time (about 1.6 s less on the development
machine, bench/bench_startup.py); long jobs still get full passes, every 10,000 young ones.

Warm worker (``hand_to_warm_worker``). In a local run the Snakefile starts a server that has
imported torch, transformers, PEFT and TRL once; once the job's interpreter is settled, this hands
the job to it (the same file runs from its first line in a fork of the server) and exits with its
status. See pidistill/worker.py.

Standard library only: this runs first, in whichever interpreter Snakemake started, and again
after the exec before the path is cut back to the environment's own (``isolate``). Outside
Snakemake (tests, the CLI) only the path and the collector are set.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Set on the exec: the process that arrives knows it was sent, so a target whose interpreter does not
# land in its prefix is an error instead of an endless chain of execs.
GUARD = "PIDISTILL_ENVIRONMENT"
BUILD_HINT = "build it with `make cluster` (`make cluster ENVS=<dir>` for another directory)"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# full collections 100x rarer than Python's default (700, 10, 10); see the module's docstring
FULL_COLLECTION_THRESHOLD = 1000


def tune_collector() -> None:
    """Fewer full collections while the job imports and runs, none over the whole heap at exit."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)
    atexit.register(gc.freeze)  # handlers registered later (the job's imports') run before it


tune_collector()


class UnusableEnvironment(RuntimeError):
    """A configured environment that cannot be used (the message says which and why)."""


def environment_prefix(name: str | None, environments: dict | None, root: Path = ROOT) -> Path | None:
    """The prefix configured for environment ``name``, absolute; None where none is configured."""
    if not name or not environments or name not in environments:
        return None
    path = Path(os.path.expanduser(str(environments[name])))
    return path if path.is_absolute() else root / path


def in_environment(prefix: Path) -> bool:
    """Whether this interpreter is the one of ``prefix`` (a venv's or conda env's sys.prefix)."""
    return os.path.realpath(sys.prefix) == os.path.realpath(prefix)


def exec_into(name: str, prefix: Path, argv: list[str] | None = None) -> None:
    """Replace this process by ``prefix``'s python running the same command line (never returns)."""
    python = prefix / "bin" / "python"
    if not os.access(python, os.X_OK):
        raise UnusableEnvironment(
            f"config key environments.{name}: no Python environment at {prefix} ({python} does not exist); "
            f"{BUILD_HINT}, or point environments.{name} at one")
    argv = list(sys.orig_argv if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(python, [str(python), *argv[1:]], {**os.environ, GUARD: f"{name}={prefix}"})


def isolate(keep: list[str]) -> list[str]:
    """Drop from ``sys.path`` what this interpreter would not have on it by itself, except ``keep``;
    returns the entries dropped.

    Snakemake's preamble appends the driver's whole ``sys.path`` (its site-packages included) as a
    fallback, so that the ``snakemake`` object unpickles where Snakemake is not installed (the vllm
    environment). Left there, any package the job's environment lacks would be imported silently
    from the driver's, built against another torch. So once the preamble has run, the path is cut
    back to this interpreter's own (asked from a fresh ``python -c``, same environment variables:
    its stdlib, its site-packages and their .pth entries, PYTHONPATH) plus the checkout and the
    script's directory; a missing package then fails the import by name. What the preamble already
    imported from the driver stays loaded and keeps working (submodules import through their
    package's ``__path__``): Snakemake and the few packages it needs to unpickle, nothing the job's
    code chose.
    """
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path))"],
                         capture_output=True, text=True, check=True).stdout
    own = {os.path.realpath(p) for p in [*json.loads(out), *keep] if p}
    kept, seen, dropped = [], set(), []
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else None
        if real in own:
            if real not in seen:  # the preamble repeats the stdlib: keep the first of each
                kept.append(entry)
                seen.add(real)
        else:
            dropped.append(entry)
    sys.path[:] = kept
    return dropped


def enter(main=None) -> None:
    """Run the Snakemake job of ``main`` (default ``__main__``) in its rule's configured environment."""
    main = sys.modules.get("__main__") if main is None else main
    smk = getattr(main, "snakemake", None)
    if smk is None:  # not a Snakemake job
        return
    params = getattr(smk, "params", None)
    name = params.get("environment") if hasattr(params, "get") else None
    prefix = environment_prefix(name, (getattr(smk, "config", None) or {}).get("environments"))
    if prefix is None:
        hand_to_warm_worker(main)
        return
    sent = os.environ.pop(GUARD, None)
    if not in_environment(prefix):
        if sent == f"{name}={prefix}":
            raise UnusableEnvironment(
                f"config key environments.{name}: {prefix}/bin/python ran with sys.prefix {sys.prefix}, "
                f"not {prefix}: that is not the prefix of a virtual (or conda) environment; {BUILD_HINT}")
        exec_into(name, prefix)
    script = getattr(main, "__file__", None)
    isolate([str(ROOT), str(ROOT / "scripts"), *([os.path.dirname(os.path.abspath(script))] if script else [])])
    hand_to_warm_worker(main)


def hand_to_warm_worker(main) -> None:
    """In a local run with a warm worker (pidistill/worker.py), let it run this job and exit with the
    job's status; otherwise (no worker, or it declines) return and run the job here."""
    if os.environ.get("PIDISTILL_WARM_WORKER"):  # (else the worker module need not be imported)
        from pidistill.worker import delegate

        delegate(main)


try:
    enter()
except UnusableEnvironment as e:
    raise SystemExit(f"pidistill: {e}") from None
