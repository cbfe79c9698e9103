"""Write the pinned lock files envs/<name>.txt from envs/<name>.in with pip's own resolver.

    .venv/bin/python envs/lock.py                     # every environment (make lock)
    .venv/bin/python envs/lock.py vllm                # one
    .venv/bin/python envs/lock.py --upgrade-package numpy main
    .venv/bin/python envs/lock.py --upgrade           # newest versions the .in files allow

envs/ is the one place that holds versions: ``<name>.in`` says what an environment needs (pinned
where it matters), ``<name>.txt`` is its whole resolved closure as ``name==version`` lines, which
``make install`` (main) and ``make cluster`` (every other one) install. The resolution is
``pip install --dry-run --ignore-installed --report``: nothing is installed, the multi-GB CUDA wheels
are not downloaded (pip reads their metadata), and the closure is the one pip would install for this
interpreter's platform (CPython 3.11 on Linux x86_64 here; the header of each lock says so).

Like pip-tools, a rerun keeps the versions already locked (they are passed as constraints), so
regenerating an unchanged .in rewrites the same file; a locked version that the .in no longer
allows is dropped, and ``--upgrade-package NAME`` / ``--upgrade`` release pins on purpose. Local
version labels are not locked (``torch==2.13.0``, not ``2.13.0+cpu``): which build an index serves
for a version (CPU here, CUDA from PyPI on a cluster) is the index's business, not the lock's.

The conda files envs/*.yaml carry no versions: their pip section reads the lock with ``-r``, and a
``# envs/<name>.txt sha256: ...`` line, rewritten here, changes the yaml whenever its lock changes
(Snakemake hashes only the yaml's own text to decide when to rebuild a conda environment).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ENVS = Path(__file__).resolve().parent
# A conda file's pip section names its lock relative to Snakemake's copy of the yaml in
# <checkout>/.snakemake/conda/, hence ../../envs/ (see the yaml files).
YAML_LOCK_REF = re.compile(r"^\s*-\s+-r\s+(?:\.\./\.\./envs/)(?P<lock>[\w.-]+\.txt)\s*$", re.M)
YAML_HASH = re.compile(r"^# envs/(?P<lock>[\w.-]+\.txt) sha256: (?P<sha>[0-9a-f]{64})\n", re.M)


def names() -> list[str]:
    """Every environment: one envs/<name>.in each."""
    return sorted(p.stem for p in ENVS.glob("*.in"))


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements of a .in or lock file (comments and blank lines skipped)."""
    reqs = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            reqs.append(Requirement(line))
    return reqs


def read_lock(path: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (name as written, version) of a lock file."""
    pins = {}
    for req in read_requirements(path):
        spec = list(req.specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            raise ValueError(f"{path}: {req} is not a name==version pin")
        pins[canonicalize_name(req.name)] = (req.name, spec[0].version)
    return pins


def resolve(args: list[str], python: str = sys.executable) -> dict:
    """pip's installation report for ``pip install <args>``, resolved without installing anything
    (``--ignore-installed``: what is in ``python``'s environment does not matter)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(report), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-6000:]}")
        return json.loads(report.read_text())


def report_pins(report: dict) -> dict[str, tuple[str, str]]:
    """canonical name -> (name, public version) of every distribution a report installs."""
    pins = {}
    for item in report["install"]:
        meta = item["metadata"]
        pins[canonicalize_name(meta["name"])] = (meta["name"], meta["version"].split("+", 1)[0])
    return pins


def lock_text(name: str, report: dict) -> str:
    env = report["environment"]
    pins = sorted(f"{n}=={v}" for n, v in report_pins(report).values())
    return "".join([
        f"# The pinned closure of envs/{name}.in for {env['implementation_name']} {env['python_version']} on "
        f"{env['sys_platform']} {env['platform_machine']}: {len(pins)} distributions.\n",
        f"# Written by envs/lock.py (make lock): edit envs/{name}.in and rerun it rather than editing this file.\n",
        *(p + "\n" for p in pins),
    ])


def constraints(name: str, release: set[str], upgrade: bool) -> list[str]:
    """The versions locked now that a rerun keeps: all, minus released names and minus those the
    .in no longer allows."""
    lock = ENVS / f"{name}.txt"
    if upgrade or not lock.exists():
        return []
    wanted = {canonicalize_name(r.name): r for r in read_requirements(ENVS / f"{name}.in")}
    keep = []
    for key, (dist, version) in sorted(read_lock(lock).items()):
        req = wanted.get(key)
        if key in release or (req is not None and not req.specifier.contains(version, prereleases=True)):
            continue
        keep.append(f"{dist}=={version}")
    return keep


def lock(name: str, release: set[str] = frozenset(), upgrade: bool = False) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as cons:
        cons.write("".join(c + "\n" for c in constraints(name, release, upgrade)))
        cons.flush()
        report = resolve(["-r", str(ENVS / f"{name}.in"), "-c", cons.name])
    out = ENVS / f"{name}.txt"
    text = lock_text(name, report)
    if not out.exists() or out.read_text() != text:  # an unchanged lock keeps its mtime: no rebuild
        out.write_text(text)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def yaml_locks(text: str) -> list[str]:
    """The lock files a conda yaml's pip section reads."""
    return YAML_LOCK_REF.findall(text)


def refresh_yaml_hashes() -> list[Path]:
    """Rewrite the ``# envs/<lock> sha256:`` line of every conda yaml that reads a lock."""
    changed = []
    for path in sorted(ENVS.glob("*.yaml")):
        text = path.read_text()
        locks = yaml_locks(text)
        if not locks:
            continue
        new = YAML_HASH.sub("", text).rstrip("\n") + "\n"
        new += "".join(f"# envs/{lock} sha256: {sha256(ENVS / lock)}\n" for lock in locks)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("envs", nargs="*", help=f"environments to lock (default all: {', '.join(names())})")
    parser.add_argument("--upgrade", action="store_true", help="ignore the versions locked now")
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                        help="release this distribution's locked version (repeatable)")
    args = parser.parse_args(argv)
    unknown = set(args.envs) - set(names())
    if unknown:
        parser.error(f"no envs/<name>.in for {', '.join(sorted(unknown))} (known: {', '.join(names())})")
    release = {canonicalize_name(n) for n in args.upgrade_package}
    for name in args.envs or names():
        out = lock(name, release, args.upgrade)
        print(f"{out.relative_to(ENVS.parent)}: {len(read_lock(out))} pins")
    for path in refresh_yaml_hashes():
        print(f"{path.relative_to(ENVS.parent)}: lock hash updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
