"""The zygote: a worker process that judges one sample at a time and has one candidate forked for each.

The pool starts it as a fresh interpreter (``python -S -s -c "... main(fd)"``) with one end of a
socketpair as ``fd``; everything on it is a ``code_wire`` frame: the config, then a hello (or an
error), then one job and one result at a time, with a ``{"parked": true}`` frame before the
result when the sample gave its CPU away (``pool``). It imports the stdlib modules candidates
commonly use and its judge, then (namespaces mode) shuts itself in:

    Z0   the interpreter the pool started. It creates a user namespace (a helper H left in the
         parent namespace writes the id maps: as root "0 0 1" and the candidates' uid, otherwise
         just the user's own uid), unshares mount, network, IPC, UTS and pid namespaces, forks
         Z and watches it (``_watch``).
    Z    the zygote proper, pid 1 of its own pid namespace. It makes the minimal read-only tree
         of ``rootfs`` its root, freezes its heap, forks the spawner T and runs the judge for
         each job; T forks the job's candidate U (``candidate``), pid 1 of a fresh pid namespace
         below Z's.

Neither needs root: user namespaces give Z the capabilities it needs over its own namespaces and
nothing outside them. Where they are refused, Z0 answers with an error naming the step that
failed; the pool raises it (there is no silent fallback). In ``rlimits`` mode Z0 judges itself,
unshut.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import resource
import select
import signal
import socket
import time

from pidistill.verifiers import code_wire as wire
from pidistill.verifiers.sandbox import libc, rootfs
from pidistill.verifiers.sandbox.candidate import SANDBOX_UID_BASE, Context, count_processes, start_spawner

# What candidates import most, loaded once here (every U starts with it); each adds to what every
# fork copies, so the rare ones (hashlib, statistics, datetime, ...) are left to the candidates.
PREIMPORT = (
    "array bisect collections collections.abc copy dataclasses decimal fractions functools heapq "
    "itertools json math operator random re string struct typing"
).split()
# A sample that sleeps gives its CPU to the next one at once; one still computing after this
# share of its time budget is likely a timeout: it keeps its deadline and shares the CPUs.
PARK_AFTER = 0.5
NAMESPACES = libc.CLONE_NEWNS | libc.CLONE_NEWNET | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS | libc.CLONE_NEWPID


def _unshare_user(uid_map: str, gid_map: str, deny_setgroups: bool) -> None:
    """Move this process into a new user namespace whose id maps a helper (H) writes from the
    parent namespace: only a process there may map more than its own uid."""
    me = os.getpid()
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:  # H
        os.close(go_w)
        os.close(done_r)
        answer = b"ok"
        try:
            if os.read(go_r, 1) != b"g":
                os._exit(1)
            if deny_setgroups:
                _write(f"/proc/{me}/setgroups", "deny")
            _write(f"/proc/{me}/uid_map", uid_map)
            _write(f"/proc/{me}/gid_map", gid_map)
        except OSError as exc:
            answer = f"writing the id maps: {exc}".encode()
        os.write(done_w, answer)
        os._exit(0)
    os.close(go_r)
    os.close(done_w)
    try:
        libc.unshare(libc.CLONE_NEWUSER)
    finally:
        os.write(go_w, b"g")
        os.close(go_w)
        answer = os.read(done_r, 4096)
        os.close(done_r)
        os.waitpid(helper, 0)
    if answer != b"ok":
        raise OSError(answer.decode(errors="replace") or "the id-map helper died")


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _nproc_offset(uid: int) -> tuple[int, str]:
    """How many processes already count against a candidate's RLIMIT_NPROC when it keeps the
    user's uid. Since Linux 5.14 the count is per user namespace (here: Z0, Z and the spawner
    T); before, it is every process of the user, which a probe tells apart: it allows itself
    one child."""
    probe = os.fork()
    if probe == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (4, 4))  # Z0, Z, the probe and its child
            child = os.fork()
            if child == 0:
                os._exit(0)
            os.waitpid(child, 0)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(probe, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return 3, "per user namespace"
    return count_processes(uid) + 16, "per user (old kernel): the user's process count + 16"


def _mapped(n: int, which: str) -> bool:
    """Whether id ``n`` exists in this process's user namespace (not so for root in a container
    that maps only itself)."""
    try:
        with open(f"/proc/self/{which}_map") as fh:
            rows = [[int(x) for x in line.split()] for line in fh if line.strip()]
    except OSError:
        return False
    return any(inside <= n < inside + count for inside, _, count in rows)


def candidate_uid(index: int) -> int | None:
    """The uid worker ``index``'s candidates run as: root's own unprivileged one, where it can
    have one; None: they keep the invoking user's uid (without any capability)."""
    n = SANDBOX_UID_BASE + index
    return n if os.geteuid() == 0 and _mapped(n, "uid") and _mapped(n, "gid") else None


def _enter_namespaces(sock: socket.socket, index: int, tmpfs_mb: int) -> Context:
    """Z0 -> Z (see the module docstring). Returns only in Z; Z0 watches Z and exits with it."""
    euid, egid = os.geteuid(), os.getegid()
    cand = candidate_uid(index)
    with _step("creating a user namespace"):
        if cand is not None:
            _unshare_user(f"0 0 1\n{cand} {cand} 1\n", f"0 0 1\n{cand} {cand} 1\n", deny_setgroups=False)
        else:
            _unshare_user(f"{euid} {euid} 1\n", f"{egid} {egid} 1\n", deny_setgroups=True)
    with _step("creating mount, network, IPC, UTS and pid namespaces"):
        libc.unshare(NAMESPACES)
    pid = os.fork()
    if pid:  # Z0
        _watch(pid, sock)
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
    offset, counting = (0, "") if cand is not None else _nproc_offset(euid)
    with _step("building the candidates' read-only root"):
        workdir = rootfs.enter_minimal_root(tmpfs_mb, cand)
    who = f"uid {cand} (root run)" if cand is not None else f"the user's own uid {euid}, RLIMIT_NPROC counted {counting}"
    detail = (f"user+pid+mount+net+ipc+uts namespaces, read-only minimal root, candidates as {who}, "
              "no capabilities, rlimits")
    return Context("namespaces", detail, cand, workdir, offset, pidns_fd)


@contextlib.contextmanager
def _step(what: str):
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"{what}: {exc.strerror or exc}") from None


def _watch(pid: int, sock: socket.socket) -> None:
    """Z0: wait for Z; if the pool's end of the socket closes first (the verifier is done, or
    gone) and Z has not ended within 2 s (it was judging), kill it, which ends its pid namespace
    with every candidate in it."""
    poll = select.poll()
    poll.register(sock, select.POLLRDHUP)  # the peer's close, not its data (that is Z's to read)
    try:
        pidfd = os.pidfd_open(pid)  # readable when Z exits (Linux 5.3+)
        poll.register(pidfd, select.POLLIN)
        tick = None
    except (AttributeError, OSError):
        tick = 500  # ms: look for Z's exit this often instead
    grace_until = None
    while True:
        events = dict(poll.poll(tick if grace_until is None else min(tick or 100, 100)))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
        if grace_until is None and sock.fileno() in events:  # Z reads the end of its input too
            poll.unregister(sock)
            grace_until = time.monotonic() + 2.0
        if grace_until is not None and time.monotonic() > grace_until:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os._exit(0)


def _rlimits_context(index: int) -> Context:
    uid = candidate_uid(index)
    detail = ("rlimits, own session, private working directory" + (", unprivileged uid" if uid else "")
              + "; network NOT blocked, host files readable" + ("" if uid else ", the user's processes NOT protected"))
    return Context("rlimits", detail, uid)


def main(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not go anywhere
    cfg = wire.recv_msg(sock)
    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    module_name, fn_name = cfg["handler"].split(":")
    judge = getattr(importlib.import_module(module_name), fn_name)
    try:
        if cfg["mode"] == "namespaces":
            ctx = _enter_namespaces(sock, int(cfg["index"]), int(cfg["tmpfs_mb"]))
        else:
            ctx = _rlimits_context(int(cfg["index"]))
    except Exception as exc:  # noqa: BLE001 - reported to the pool, which raises
        wire.send_msg(sock, {"error": f"{type(exc).__name__}: {exc}"})
        return
    all_cpus = os.sched_getaffinity(0)
    gc.collect()
    gc.freeze()  # keep the pre-imported heap shared (fewer copy-on-write faults per fork)
    spawner = start_spawner(ctx)
    wire.send_msg(sock, {"isolation": ctx.mode, "detail": ctx.detail})
    pinned = [all_cpus]

    def parked(cand) -> None:  # the pool may give our CPU to another sample
        wire.send_msg(sock, {"parked": True})
        for pid in (0, cand.pid):
            try:
                os.sched_setaffinity(pid, all_cpus)
            except OSError:
                pass
        pinned[0] = all_cpus

    while True:
        try:
            job = wire.recv_msg(sock)
        except (EOFError, OSError, wire.WireError):
            break
        cpu = job.pop("cpu", None)
        want = {cpu} if cpu in all_cpus else all_cpus
        if want != pinned[0]:
            os.sched_setaffinity(0, want)
            pinned[0] = want
        ctx.cpu = cpu if cpu in all_cpus else None  # the spawner starts the candidate there
        ctx.on_park = parked
        ctx.park_at = time.monotonic() + PARK_AFTER * float(job.get("timeout_s", 5.0))
        result = _run_job(ctx, judge, job)
        ctx.on_park = None
        try:
            wire.send_msg(sock, result)
        except OSError:
            break
        if ctx.spawner is None:
            break  # out of step with the spawner: the pool starts a fresh zygote
    if ctx.spawner is not None:
        ctx.spawner.close()  # T ends; reaping it counts its candidates' CPU time to this process tree
    try:
        os.waitpid(spawner, 0)
    except ChildProcessError:
        pass
    os._exit(0)  # nothing else to tear down


class JudgeOverrun(BaseException):
    """Raised in the judge when a sample overruns its hard deadline."""


def _alarm(signum, frame):
    raise JudgeOverrun("the judge overran its hard deadline")


def _run_job(ctx: Context, judge, job: dict) -> dict:
    """Judge one job in the zygote itself (the judge runs only trusted code and plain data)."""
    t0 = time.monotonic()
    hard = float(job.get("timeout_s", 5.0)) * 2 + 5.0
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, hard)
    try:
        result = judge(ctx, job)
    except BaseException as exc:  # noqa: BLE001 - a verdict with a reason, never a crash
        result = {"error": f"judge failed: {type(exc).__name__}: {exc}"[:500]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    result.setdefault("isolation", ctx.mode)
    result["wall_s"] = round(time.monotonic() - t0, 4)
    return result
