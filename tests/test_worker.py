"""The warm worker (pidistill/worker.py): a job handed to it runs in a fork of the server with the
client's streams, directory, environment and exit status; what it must not take, it declines; a
client that goes away takes its job with it; a server that goes away takes its jobs with it.

The jobs here are small files shaped like the ones Snakemake runs (a ``snakemake`` object, then
``__real_file__``, then ``import _repo``); the server imports only the standard library's json
(``--preload json``), so these tests take seconds. The real preload and real rule scripts run in the
pipeline tests (tests/test_pipeline_e2e.py), whose rebuild runs without the worker and compares.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pidistill import worker

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not worker.available(), reason="the warm worker is Linux-only")

JOB = '''
import sys
sys.path.insert(0, {scripts!r})
class Smk:
    log = [{log!r}]
    params = {{}}
    config = {{}}
snakemake = Smk()
__real_file__ = __file__
import _repo
import json, os, tempfile, time
print("to stdout", flush=True)
print("to stderr", file=sys.stderr, flush=True)
json.dump({{"pid": os.getpid(), "cwd": os.getcwd(), "argv": sys.argv, "in_worker": os.environ.get("PIDISTILL_IN_WARM_WORKER"),
           "x": os.environ.get("X"), "tmpdir": tempfile.gettempdir()}}, open({report!r}, "w"))
mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode == "sleep":
    time.sleep(30)
    open({report!r} + ".late", "w").write("written after the sleep")
if mode == "raise":
    raise ValueError("the job failed on purpose")
sys.exit(3 if mode == "exit3" else 0)
'''


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    """A running server (stdlib preload) whose driver is this test process; yields its socket."""
    directory = tmp_path / "worker"
    directory.mkdir(mode=0o700)
    sock = directory / "socket"
    env = {k: v for k, v in os.environ.items() if k not in (worker.SOCKET_ENV, "PYTEST_CURRENT_TEST")}
    proc = subprocess.Popen([sys.executable, "-m", "pidistill.worker", "--socket", str(sock), "--driver",
                             str(os.getpid()), "--preload", "json"], cwd=REPO, env=env,
                            stderr=open(tmp_path / "server.log", "w"))
    assert wait_until(sock.exists), (tmp_path / "server.log").read_text()
    yield sock, proc
    proc.kill()
    proc.wait()


def run_job(tmp_path, sock, *args, env=None, wait=True, name="job"):
    job = tmp_path / f"{name}.py"
    report = tmp_path / ("report.json" if name == "job" else f"{name}.report.json")
    job.write_text(JOB.format(scripts=str(REPO / "scripts"), log=str(tmp_path / f"{name}.log"), report=str(report)))
    full_env = {k: v for k, v in os.environ.items()
                if k not in (worker.SOCKET_ENV, worker.CHILD_ENV, "PYTEST_CURRENT_TEST")}
    if sock is not None:
        full_env[worker.SOCKET_ENV] = str(sock)
    full_env.update(env or {})
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    cmd = [sys.executable, str(job), *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)
    return proc, json.loads(report.read_text()) if report.exists() else None


def test_a_job_runs_in_a_fork_with_the_clients_streams_directory_environment_and_status(server, tmp_path):
    sock, proc = server
    tmp = tmp_path / "jobtmp"
    tmp.mkdir()
    # OMP_NUM_THREADS and TMPDIR are Snakemake's per job: they may differ from the server's
    done, report = run_job(tmp_path, sock, "exit3", env={"OMP_NUM_THREADS": "7", "TMPDIR": str(tmp)})
    assert done.returncode == 3, done.stderr
    assert report["in_worker"] == "1" and report["cwd"] == str(tmp_path / "cwd")
    assert report["argv"] == [str(tmp_path / "job.py"), "exit3"]
    assert report["tmpdir"] == str(tmp)
    assert "to stdout" in done.stdout and "to stderr" in done.stderr
    log = (tmp_path / "job.log").read_text()
    assert "ran in the warm worker" in log and "exit 3" in log and "peak memory" in log


def test_the_same_job_without_a_worker_runs_in_its_own_process(tmp_path):
    done, report = run_job(tmp_path, tmp_path / "no-such-socket")
    assert done.returncode == 0 and report["in_worker"] is None
    done, report = run_job(tmp_path, None)
    assert done.returncode == 0 and report["in_worker"] is None


def test_clients_at_once_each_get_their_answer(server, tmp_path):
    """Eight jobs start together, half of them with an environment the server declines."""
    clients = [run_job(tmp_path, server[0], env={"X": "1"} if i % 2 else None, wait=False, name=f"job{i}")
               for i in range(8)]
    for i, client in enumerate(clients):
        assert client.wait(timeout=30) == 0
        report = json.loads((tmp_path / f"job{i}.report.json").read_text())
        assert report["in_worker"] == (None if i % 2 else "1")
        err = client.stderr.read()
        assert "no answer" not in err and ("differs in X" in err) == bool(i % 2)


def test_an_exception_prints_its_traceback_and_exits_1(server, tmp_path):
    done, report = run_job(tmp_path, server[0], "raise")
    assert done.returncode == 1 and report["in_worker"] == "1"
    assert "ValueError: the job failed on purpose" in done.stderr and "Traceback" in done.stderr


def test_a_client_whose_environment_differs_runs_its_job_itself(server, tmp_path):
    done, report = run_job(tmp_path, server[0], env={"X": "another value"})
    assert done.returncode == 0 and report["in_worker"] is None and report["x"] == "another value"
    assert "did not take this job (its environment differs in X)" in done.stderr  # the name, not the value
    assert "another value" not in done.stderr


def test_a_killed_client_takes_its_job_with_it(server, tmp_path):
    client = run_job(tmp_path, server[0], "sleep", wait=False)
    report = tmp_path / "report.json"
    assert wait_until(report.exists)
    child = json.loads(report.read_text())["pid"]
    assert child != client.pid and alive(child)
    client.send_signal(signal.SIGKILL)
    client.wait()
    assert wait_until(lambda: not alive(child), timeout=5), "the job outlived its client"
    time.sleep(0.5)
    assert not (tmp_path / "report.json.late").exists()
    assert server[1].poll() is None  # the server goes on


def test_a_killed_server_takes_its_jobs_with_it_and_the_client_fails(server, tmp_path):
    sock, proc = server
    client = run_job(tmp_path, sock, "sleep", wait=False)
    assert wait_until((tmp_path / "report.json").exists)
    child = json.loads((tmp_path / "report.json").read_text())["pid"]
    proc.kill()
    assert client.wait(timeout=10) != 0
    assert "went away before the job finished" in client.stderr.read()
    assert wait_until(lambda: not alive(child), timeout=5)


def test_the_server_exits_with_its_driver(tmp_path):
    sock = tmp_path / "socket"
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc = subprocess.Popen([sys.executable, "-m", "pidistill.worker", "--socket", str(sock), "--driver",
                             str(driver.pid), "--preload", "json"], cwd=REPO)
    assert wait_until(sock.exists)
    driver.kill()
    driver.wait()
    assert proc.wait(timeout=10) == 0
    assert not sock.exists()


def test_two_answers_that_arrive_in_one_read_are_two_messages():
    """A quick job's exit status can reach the client in the same read as its acceptance."""
    import socket

    a, b = socket.socketpair()
    worker._send(a, {"accepted": True, "pid": 7})
    worker._send(a, {"exit": 0, "maxrss_kib": 1, "cpu_s": 0.1})
    a.close()
    channel = worker.Channel(b)
    assert channel.recv() == ({"accepted": True, "pid": 7}, [])
    assert channel.recv() == ({"exit": 0, "maxrss_kib": 1, "cpu_s": 0.1}, [])
    assert channel.recv() == (None, [])


def test_environment_mismatch_ignores_only_the_per_job_variables():
    server = {"PATH": "/bin", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    assert worker.environment_mismatch({**server, "OMP_NUM_THREADS": "2", "TMPDIR": "/scratch"}, server) == []
    assert worker.environment_mismatch({"PATH": "/bin", "OMP_NUM_THREADS": "1"}, server) == ["HF_HUB_OFFLINE"]
    assert worker.environment_mismatch({**server, "PYTHONHASHSEED": "0"}, server) == ["PYTHONHASHSEED"]
