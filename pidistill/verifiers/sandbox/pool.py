"""The verifier's side of the sandbox: a pool of zygotes that judges a list of jobs in parallel.

``Pool(workers, isolation)`` starts ``workers`` zygotes (``zygote``) at once and raises
``IsolationUnavailable`` when they cannot isolate as asked. ``map(jobs)`` returns one result per
job, in order. ``workers`` is the number of samples judged at a time, one CPU each. A sample
whose candidate sits idle (a sleep, a wait), or still computes after half its ``timeout_s`` (a
likely timeout), gives its CPU to the next sample, which a spare zygote takes (started when first
needed, at most ``2 * workers`` of them); it keeps its deadline. So samples on their way to a
timeout do not hold the pool up, while every sample has a CPU of its own for the first half of its
time. Each sample's judge and candidate run on one CPU of those this process may use (fewer
migrations and cross-CPU wake-ups per call). A zygote that dies or hangs is replaced, and its
sample is retried once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from pidistill.verifiers import code_wire as wire

# Code these processes run by name, which pidistill.codedeps follows like imports: the zygote's
# entry point (the interpreter each zygote is) and the default judge.
__code_deps__ = ("pidistill.verifiers.sandbox.zygote", "pidistill.verifiers.code_runner")

DEFAULT_HANDLER = "pidistill.verifiers.code_runner:judge"
MODES = {"auto": "namespaces", "namespaces": "namespaces", "rlimits": "rlimits"}
_REPO = str(Path(__file__).resolve().parents[3])


class IsolationUnavailable(RuntimeError):
    """The sandbox cannot give the isolation the config asks for on this machine."""


def _sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def diagnose() -> str:
    """What on this machine stands in the way of unprivileged user namespaces, if anything known."""
    found = []
    if _sysctl("user.max_user_namespaces") == "0":
        found.append("user.max_user_namespaces is 0")
    if _sysctl("kernel.unprivileged_userns_clone") == "0":
        found.append("kernel.unprivileged_userns_clone is 0")
    if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        found.append("kernel.apparmor_restrict_unprivileged_userns is 1")
    return "; ".join(found)


def unavailable_message(why: str) -> str:
    found = diagnose()
    return (
        f"The code verifier cannot isolate candidate programs here: {why}"
        + (f" ({found})" if found else "") + ". "
        "Its namespaces mode needs user namespaces, which ordinary users get on most kernels "
        "(sysctl user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on older Debian "
        "kernels; kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 23.10+), or a container "
        "that allows unshare. To run with the weaker isolation instead (no network block, host "
        "files readable, and without root a candidate can signal every process of the user), set "
        "`verifier.isolation: rlimits` in the config (see docs/code-verifier.md)."
    )


def _site_dirs() -> list[str]:
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


class Zygote:
    """The pool's handle on one zygote process and the socket to it."""

    def __init__(self, index: int, mode: str, handler: str, tmpfs_mb: int):
        self.index = index
        self.sock, theirs = socket.socketpair()
        # -S: no site module (.pth files, an editable install's finder), only its directories
        code = (f"import sys; sys.path.insert(0, {_REPO!r}); sys.path.extend({_site_dirs()!r}); "
                f"from pidistill.verifiers.sandbox.zygote import main; main({theirs.fileno()})")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-s", "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, start_new_session=True, cwd="/", pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        wire.send_msg(self.sock, {"mode": mode, "index": index, "handler": handler, "tmpfs_mb": tmpfs_mb})
        self.isolation = self.detail = None

    def hello(self, timeout: float = 60.0) -> None:
        """Wait until the zygote is ready; RuntimeError with its reason if it is not."""
        self.sock.settimeout(timeout)
        try:
            msg = wire.recv_msg(self.sock)
        except (EOFError, OSError, wire.WireError) as exc:
            status = self.proc.poll()
            msg = {"error": f"no answer ({type(exc).__name__}" + (f", exit status {status})" if status is not None else ")")}
        if not isinstance(msg, dict) or "error" in msg or "isolation" not in msg:
            self.close()
            raise RuntimeError(str(msg.get("error") if isinstance(msg, dict) else msg))
        self.isolation, self.detail = msg["isolation"], msg["detail"]

    def run(self, job: dict, on_parked, timeout: float) -> dict | None:
        """The zygote's result for ``job``; None if it died or overran ``timeout`` seconds."""
        try:
            self.sock.settimeout(timeout)
            wire.send_msg(self.sock, job)
            while True:
                msg = wire.recv_msg(self.sock)
                if not isinstance(msg, dict):
                    return None
                if msg.get("parked") is True:
                    on_parked()
                    continue
                return msg
        except (EOFError, OSError, wire.WireError):
            return None

    def close(self, wait: bool = True) -> None:
        try:
            self.sock.close()  # the zygote reads the end of its input and exits
        except OSError:
            pass
        if not wait:
            return
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pool:
    """``workers`` zygotes; ``map(jobs)`` judges the jobs in parallel and returns results in order."""

    def __init__(self, workers: int, isolation: str = "auto", handler: str = DEFAULT_HANDLER,
                 tmpfs_mb: int = 256, pin: bool = True):
        if isolation not in MODES:
            raise ValueError(f"unknown isolation mode {isolation!r} (known: {', '.join(MODES)})")
        self.mode = MODES[isolation]
        self.handler = handler
        self.tmpfs_mb = tmpfs_mb
        self.workers = max(1, int(workers))
        self.max_zygotes = 3 * self.workers
        self.cpus = sorted(os.sched_getaffinity(0)) if pin else None
        self.parked = 0  # samples that gave their CPU away while waiting (all map calls)
        self.zygotes: list[Zygote | None] = [self._start(i) for i in range(self.workers)]
        try:
            for z in self.zygotes:
                z.hello()
        except RuntimeError as exc:
            self.close()
            if self.mode == "namespaces":
                raise IsolationUnavailable(unavailable_message(str(exc))) from None
            raise RuntimeError(f"sandbox zygote failed to start: {exc}") from None
        self.isolation = self.zygotes[0].isolation
        self.detail = self.zygotes[0].detail

    def _start(self, index: int) -> Zygote:
        return Zygote(index, self.mode, self.handler, self.tmpfs_mb)

    def _judge(self, k: int, job: dict, slot: int, parked) -> dict:
        if self.cpus:
            job = {**job, "cpu": self.cpus[slot % len(self.cpus)]}
        limit = float(job.get("timeout_s", 5.0)) * 2 + 15.0  # past the zygote's own hard deadline
        for _ in range(2):  # a zygote that died or hung is replaced and the job retried once
            if self.zygotes[k] is None:
                try:
                    z = self._start(k)
                    z.hello()
                except (RuntimeError, OSError) as exc:
                    return {"error": f"sandbox worker failed to start: {exc}"[:500]}
                self.zygotes[k] = z
            res = self.zygotes[k].run(job, parked, limit)
            if res is not None:
                return res
            self.zygotes[k].proc.kill()
            self.zygotes[k].close()
            self.zygotes[k] = None
        return {"error": "sandbox worker died"}

    def map(self, jobs: list[dict], progress=None) -> list[dict]:
        """Results in the order of ``jobs``. One thread per zygote takes the next job as soon as
        its last one ends, keeping its CPU slot; a job that gives its slot away (parks) wakes a
        zygote waiting for one, or starts a spare."""
        results: list[dict | None] = [None] * len(jobs)
        cond = threading.Condition()
        st = {"next": 0, "waiting": 0}  # the next job to start; threads waiting for a slot
        free = list(range(self.workers))  # CPU slots nobody holds
        threads: list[threading.Thread] = []

        def serve(k: int) -> None:
            slot = None
            while True:
                with cond:
                    while slot is None and st["next"] < len(jobs):
                        if free:
                            slot = free.pop()
                        else:
                            st["waiting"] += 1
                            cond.wait()
                            st["waiting"] -= 1
                    if st["next"] >= len(jobs):
                        if slot is not None:
                            free.append(slot)
                        cond.notify_all()
                        return
                    i = st["next"]
                    st["next"] += 1
                held = [slot]

                def park() -> None:
                    self.parked += 1
                    with cond:
                        free.append(held.pop())
                        if st["waiting"] == 0 and st["next"] < len(jobs) and len(self.zygotes) < self.max_zygotes:
                            self.zygotes.append(None)  # a spare, started by its own thread
                            spawn(len(self.zygotes) - 1)
                        cond.notify()

                results[i] = self._judge(k, jobs[i], slot, park)
                if progress is not None:
                    progress(1)
                slot = held[0] if held else None

        def spawn(k: int) -> None:
            threads.append(threading.Thread(target=serve, args=(k,), daemon=True))
            threads[-1].start()

        with cond:
            for k in range(len(self.zygotes)):
                spawn(k)
        joined = 0
        while True:
            with cond:
                if joined == len(threads):
                    break
                t = threads[joined]
            t.join()
            joined += 1
        return results  # type: ignore[return-value]

    def close(self) -> None:
        live = [z for z in self.zygotes if z is not None]
        for z in live:
            z.close(wait=False)
        for z in live:
            z.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
