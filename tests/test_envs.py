"""The pinned environments: lock files (envs/), what installs them (Makefile), and the switch that
runs each job in its rule's environment (scripts/_repo.py, config key ``environments``)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name
from workdir import SNAKEMAKE, standin_environment

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _load("pidistill_envs_lock", ENVS / "lock.py")
repo = _load("pidistill_repo", REPO / "scripts" / "_repo.py")  # outside Snakemake: sets the path only

LOCKS = lock.names()
GENERATION_SCRIPTS = ["scripts/sample_attempts.py", "scripts/sample_retries.py", "scripts/sample_extra_attempts.py",
                      "scripts/sample_hints.py", "scripts/sample_diagnoses.py", "scripts/sample_skeletons.py"]
# Modules that run only in the named environment (vLLM is not in main and imported only there).
ONLY_IN = {"pidistill/generation/vllm_backend.py": "vllm"}
# Import names that the driver's installed distributions cannot map (not installed in .venv).
EXTRA_PROVIDERS = {"vllm": ["vllm"]}


def index_unreachable() -> str | None:
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        with urllib.request.urlopen(url, timeout=15):
            return None
    except OSError as e:
        return f"package index {url} unreachable ({e}): the lock files cannot be resolved here"


# ---- lock files -------------------------------------------------------------------------------


def test_every_environment_has_its_lock():
    assert LOCKS == ["main", "vllm"]
    for name in LOCKS:
        pins = lock.read_lock(ENVS / f"{name}.txt")  # raises on anything but name==version
        assert len(pins) > 50, name


@pytest.mark.parametrize("name", LOCKS)
def test_the_lock_satisfies_its_in_file(name):
    pins = lock.read_lock(ENVS / f"{name}.txt")
    for req in lock.read_requirements(ENVS / f"{name}.in"):
        key = canonicalize_name(req.name)
        assert key in pins, f"envs/{name}.txt lacks {req.name}: run envs/lock.py {name}"
        assert req.specifier.contains(pins[key][1], prereleases=True), f"envs/{name}.txt: {pins[key]} violates {req}"


@pytest.fixture(scope="module")
def resolutions():
    """Every lock resolved by pip, all at once (each is a pip process that mostly waits on the index)."""
    from concurrent.futures import ThreadPoolExecutor

    reason = index_unreachable()
    if reason:
        pytest.skip(reason)
    pool = ThreadPoolExecutor(len(LOCKS))
    futures = {name: pool.submit(lock.resolve, ["-r", str(ENVS / f"{name}.txt")]) for name in LOCKS}
    yield futures
    pool.shutdown()


@pytest.mark.network
@pytest.mark.parametrize("name", LOCKS)
def test_the_lock_resolves_to_itself(name, resolutions):
    """pip's resolver, given the lock alone, installs exactly the lock: every requirement of every
    pinned distribution is pinned, compatibly, and nothing else gets pulled. Resolution only
    (--dry-run): pip reads the CUDA wheels' metadata without downloading them."""
    report = resolutions[name].result()
    resolved = lock.report_pins(report)
    pinned = lock.read_lock(ENVS / f"{name}.txt")
    assert {k: v[1] for k, v in resolved.items()} == {k: v[1] for k, v in pinned.items()}


def test_conda_files_read_the_locks_and_carry_no_pins():
    for path in sorted(ENVS.glob("*.yaml")):
        text = path.read_text()
        spec = yaml.safe_load(text)
        pip = [d for d in spec["dependencies"] if isinstance(d, dict)]
        if path.name == "latex.yaml":  # TeX Live from conda-forge, no Python
            assert not pip
            continue
        assert [d for d in spec["dependencies"] if isinstance(d, str) and d != "pip"] == ["python=3.11"], path.name
        (section,) = pip
        locks = lock.yaml_locks(text)
        assert locks and section["pip"] == [f"-r ../../envs/{name}" for name in locks], path.name
        for name in locks:
            # Snakemake creates the env from its copy in <checkout>/.snakemake/conda/
            assert (REPO / ".snakemake" / "conda" / "../../envs" / name).resolve() == ENVS / name
            assert f"# envs/{name} sha256: {lock.sha256(ENVS / name)}\n" in text, \
                f"{path.name}: stale lock hash, run envs/lock.py (Snakemake would not rebuild the env)"
    assert {n for p in ENVS.glob("*.yaml") for n in lock.yaml_locks(p.read_text())} == {f"{n}.txt" for n in LOCKS}


def make_dry(*args: str) -> str:
    proc = subprocess.run(["make", "-n", "-B", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_installs_the_locks(tmp_path):
    install = make_dry("install")
    assert ".venv/bin/pip install --quiet \"$(grep -m1 '^torch==' envs/main.txt)\"" in install
    assert ".venv/bin/pip install --quiet -r envs/main.txt" in install
    assert install.index("'^torch=='") < install.index("-r envs/main.txt")  # torch first and alone
    shared = tmp_path / "shared"
    cluster = make_dry("cluster", f"ENVS={shared}")
    assert "-r envs/main.txt" in cluster  # the driver too
    for name in set(LOCKS) - {"main"}:
        assert f"python3.11 -m venv {shared}/{name}" in cluster
        assert f"{shared}/{name}/bin/pip install --quiet -r envs/{name}.txt" in cluster
        assert f"touch {shared}/{name}/.installed" in cluster
    assert "-r envs/main.txt" in make_dry("cluster")
    assert ".envs/vllm/bin/pip install --quiet -r envs/vllm.txt" in make_dry("cluster")
    assert not (REPO / "requirements.txt").exists()


PIN = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9._-]*(==|===|~=)[0-9]")
OUTSIDE = ["Makefile", "pyproject.toml", "README.md", ".ci/run", "slurm/config.yaml", "config/config.yaml",
           "config/paper.yaml", *[f"envs/{p.name}" for p in sorted(ENVS.glob("*.yaml"))]]


def test_no_versions_outside_the_locks():
    """Versions live in envs/<name>.in and .txt only: no pin elsewhere, and no prose restating the
    version of a distribution the .in files pin (it would go stale at the next lock)."""
    pinned = sorted({r.name for n in LOCKS for r in lock.read_requirements(ENVS / f"{n}.in")
                     if any(s.operator == "==" for s in r.specifier)})
    restated = re.compile(r"\b(" + "|".join(re.escape(n) for n in pinned) + r")\b[ =<>~!v]*[0-9]+\.[0-9]+", re.I)
    for rel in OUTSIDE:
        text = (REPO / rel).read_text()
        for i, line in enumerate(text.splitlines(), 1):
            assert not PIN.search(line), f"{rel}:{i}: version pin outside envs/: {line.strip()}"
            assert not restated.search(line), f"{rel}:{i}: restates a locked version: {line.strip()}"


# ---- imports covered by each environment --------------------------------------------------------


def third_party_imports(files: list[str]) -> dict[str, set[str]]:
    """Top-level module -> files importing it (anywhere in the file), stdlib and pidistill aside."""
    local = {p.stem for p in (REPO / "scripts").glob("*.py")} | {"pidistill"}
    found: dict[str, set[str]] = {}
    for rel in files:
        for node in ast.walk(ast.parse((REPO / rel).read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(rel)
    return found


def environment_code(name: str) -> list[str]:
    """The files that run in environment ``name``. vllm: the generation scripts with the backend the
    vllm config selects, as the rules list them (``code(script, backend_module(BACKEND))``). main:
    everything else, i.e. every script and every pidistill module but those that run only in vllm."""
    from pidistill.codedeps import code_files
    from pidistill.generation import backend_module

    if name == "vllm":
        files = {f for s in GENERATION_SCRIPTS for f in code_files(REPO / s, REPO, [backend_module("vllm")])}
    else:
        files = {str(p.relative_to(REPO)) for p in [*(REPO / "scripts").glob("*.py"), *(REPO / "pidistill").rglob("*.py")]}
    return sorted(f for f in files if ONLY_IN.get(f, name) == name)


@pytest.mark.parametrize("name", LOCKS)
def test_the_lock_provides_every_import_of_the_code_run_in_it(name):
    providers = {**importlib.metadata.packages_distributions(), **EXTRA_PROVIDERS}
    pinned = set(lock.read_lock(ENVS / f"{name}.txt"))
    files = environment_code(name)
    assert any(f.startswith("pidistill/") for f in files)
    missing = []
    for module, users in sorted(third_party_imports(files).items()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"no installed distribution provides {module!r} (imported by {sorted(users)}): add it to EXTRA_PROVIDERS"
        if not dists & pinned:
            missing.append(f"{module} ({'/'.join(sorted(dists))}, imported by {', '.join(sorted(users))})")
    assert not missing, f"envs/{name}.txt lacks: " + "; ".join(missing)


def test_generation_runs_vllm_in_the_vllm_environment():
    assert "vllm" in third_party_imports(environment_code("vllm"))
    assert "vllm" not in third_party_imports(environment_code("main"))


def test_repo_needs_only_the_standard_library():
    """_repo runs first, in any environment, before the path is cut back to the environment's own."""
    assert third_party_imports(["scripts/_repo.py"]) == {}


# ---- the switch: scripts/_repo.py ----------------------------------------------------------------


def test_environment_prefix(tmp_path):
    envs = {"vllm": ".envs/vllm", "main": str(tmp_path / "m")}
    assert repo.environment_prefix("vllm", envs, root=tmp_path) == tmp_path / ".envs" / "vllm"
    assert repo.environment_prefix("main", envs, root=Path("/elsewhere")) == tmp_path / "m"
    assert repo.environment_prefix("main", {}, root=tmp_path) is None
    assert repo.environment_prefix("vllm", None, root=tmp_path) is None
    assert repo.environment_prefix(None, envs, root=tmp_path) is None
    assert repo.in_environment(Path(sys.prefix))
    assert not repo.in_environment(tmp_path)


def test_outside_snakemake_importing_repo_only_sets_the_path():
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'scripts'); import _repo, pidistill;"
                           "print(sys.executable, pidistill.__file__)"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [sys.executable, str(REPO / "pidistill" / "__init__.py")]


def test_exec_into_a_missing_environment_names_key_path_and_command(tmp_path):
    with pytest.raises(repo.UnusableEnvironment) as err:
        repo.exec_into("vllm", tmp_path / "nowhere")
    msg = str(err.value)
    assert "config key environments.vllm" in msg and str(tmp_path / "nowhere") in msg and "make cluster" in msg


PROBE = """
import json, os, sys
sys.path.insert(0, {scripts!r})  # as a rule script's directory is on its path
import _repo

driver_site = os.path.realpath({driver_site!r})
try:
    import yaml
    yaml_from = os.path.realpath(yaml.__file__)
except ModuleNotFoundError:
    yaml_from = None
from_driver = sorted({{n.split(".")[0] for n, m in list(sys.modules.items())
                      if os.path.realpath(getattr(m, "__file__", None) or "/").startswith(driver_site + os.sep)}})
with open(snakemake.output[0], "w") as fh:
    json.dump({{"executable": sys.executable, "prefix": sys.prefix, "yaml": yaml_from, "from_driver": from_driver,
               "path": sys.path, "wildcards": dict(snakemake.wildcards), "env": os.environ.get(_repo.GUARD)}}, fh)
"""

SNAKEFILE = """
rule probe:
    output: "out/{env}.json"
    params: environment=lambda wildcards: wildcards.env
    script: "probe.py"
"""


def run_probe(workdir: Path, environments: dict | None, *targets: str) -> subprocess.CompletedProcess:
    import sysconfig

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(SNAKEFILE)
    (workdir / "probe.py").write_text(textwrap.dedent(PROBE).format(
        scripts=str(REPO / "scripts"), driver_site=sysconfig.get_path("purelib")))
    (workdir / "config.yaml").write_text(yaml.safe_dump({"environments": environments} if environments else {}))
    env = {k: v for k, v in os.environ.items() if k != repo.GUARD}
    return subprocess.run([str(SNAKEMAKE), *[f"out/{t}.json" for t in targets], "--cores", "1", "--keep-going",
                           "--configfile", "config.yaml"], cwd=workdir, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """One Snakemake run over every case (keep-going), one without ``environments``."""
    tmp = tmp_path_factory.mktemp("envs")
    standin = standin_environment(tmp / "standin")
    bare = standin_environment(tmp / "bare", inherit=False)
    fake = tmp / "fake"  # bin/python is a real interpreter, but the directory is no environment
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    configured = run_probe(tmp / "configured", {"main": str(standin), "vllm": str(bare), "missing": str(tmp / "nowhere"),
                                                "fake": str(fake)}, "main", "vllm", "missing", "fake")
    unconfigured = run_probe(tmp / "unconfigured", None, "main")
    return tmp, configured, unconfigured


def probe_result(workdir: Path, env: str) -> dict:
    return json.loads((workdir / "out" / f"{env}.json").read_text())


def test_a_configured_environment_runs_the_job(probes):
    tmp, configured, _ = probes
    out = probe_result(tmp / "configured", "main")
    assert out["executable"] == str(tmp / "standin" / "bin" / "python")
    assert os.path.realpath(out["prefix"]) == os.path.realpath(tmp / "standin")
    assert out["wildcards"] == {"env": "main"} and out["env"] is None  # the guard does not leak into the job
    assert out["yaml"] is not None  # the stand-in reaches the driver's packages through its .pth


def test_without_environments_the_job_runs_in_the_driver(probes):
    tmp, _, unconfigured = probes
    assert unconfigured.returncode == 0, unconfigured.stderr[-3000:]
    out = probe_result(tmp / "unconfigured", "main")
    assert out["prefix"] == sys.prefix and os.path.realpath(out["executable"]) == os.path.realpath(sys.executable)


def test_a_job_imports_only_from_its_environment(probes):
    """A bare venv (standard library only) as the vllm environment: the job still gets its
    ``snakemake`` object (unpickled through Snakemake's fallback path to the driver), but no
    package of the driver's is importable any more, and none but Snakemake's own got loaded."""
    tmp, _, _ = probes
    out = probe_result(tmp / "configured", "vllm")
    assert out["executable"] == str(tmp / "bare" / "bin" / "python")
    assert out["yaml"] is None  # the driver has PyYAML; the bare environment has not
    import sysconfig

    site = os.path.realpath(sysconfig.get_path("purelib"))
    assert not [p for p in out["path"] if os.path.realpath(p).startswith(site)]
    snakemake_closure = requirement_closure("snakemake")
    loaded = {canonicalize_name(d) for m in out["from_driver"] for d in importlib.metadata.packages_distributions().get(m, [m])}
    assert "snakemake" in loaded and loaded <= snakemake_closure, loaded - snakemake_closure


def requirement_closure(dist: str) -> set[str]:
    """``dist`` and every distribution it requires, transitively (installed ones, markers evaluated)."""
    from packaging.requirements import Requirement

    seen, todo = set(), [dist]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_a_missing_environment_stops_the_job_with_one_clear_error(probes):
    tmp, configured, _ = probes
    assert configured.returncode != 0
    assert not (tmp / "configured" / "out" / "missing.json").exists()
    assert (f"pidistill: config key environments.missing: no Python environment at {tmp / 'nowhere'}"
            in configured.stderr), configured.stderr[-4000:]
    assert "make cluster" in configured.stderr


def test_an_interpreter_outside_its_prefix_is_an_error_not_an_exec_loop(probes):
    tmp, configured, _ = probes
    assert not (tmp / "configured" / "out" / "fake.json").exists()
    assert f"config key environments.fake: {tmp / 'fake'}/bin/python ran with sys.prefix" in configured.stderr, \
        configured.stderr[-4000:]
