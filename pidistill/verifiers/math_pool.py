"""A small process pool for math judgements with a soft and a hard timeout per task.

Soft: each worker runs :func:`pidistill.verifiers.math_equiv.judge` under an interval timer (the
worker's main thread, so signals work whatever thread the caller is on). Hard: a computation that
the timer cannot interrupt (a huge integer power inside C code) makes the parent kill that worker
after ``timeout + grace`` seconds and start a fresh one; the task gets a ``timeout`` verdict.

Workers are fresh interpreters (``python -m pidistill.verifiers.math_pool FD_IN FD_OUT``) talking
over two pipes: they never inherit the caller's threads or locks and never re-import the caller's
``__main__`` (which multiprocessing's spawn/forkserver would, breaking unguarded scripts). A start
costs about half a second (importing sympy and math-verify), paid in parallel. Each worker's
address space is limited to its size after those imports plus ``memory_mb``.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Sequence

from pidistill.verifiers.math_equiv import Judgement

# Tests set this environment variable to an answer string that makes a worker hang with SIGALRM
# blocked, to exercise the hard kill; it has no effect otherwise.
HANG_ENV = "PIDISTILL_MATH_TEST_HANG"
# A worker's start (a fresh interpreter importing sympy and math-verify, seconds on a loaded node)
# is not part of any comparison's time: tasks go only to workers that said they are ready.
STARTUP_S = 300.0
SLOW_START_ENV = "PIDISTILL_MATH_TEST_SLOW_START"  # test hook: seconds a worker waits before it is ready


def _vm_size() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _worker(conn_in: Connection, conn_out: Connection, timeout_s: float, memory_mb: int) -> None:
    from pidistill.verifiers.math_equiv import _math_verify, judge

    _math_verify()
    hang_marker = os.environ.get(HANG_ENV)
    if memory_mb > 0:
        size = _vm_size()
        if size:
            limit = size + memory_mb * 1024 * 1024
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            except (ValueError, OSError):
                pass
    time.sleep(float(os.environ.get(SLOW_START_ENV, "0")))
    conn_out.send("ready")  # the parent starts a task's clock only now, not while we import sympy
    while True:
        try:
            msg = conn_in.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        idx, gold, pred = msg
        if hang_marker and pred == hang_marker:  # test hook: a computation no signal can interrupt
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
            time.sleep(3600)
        try:
            j = judge(gold, pred, timeout_s)
        except MemoryError:
            j = Judgement(False, 0.0, "error", "out of memory")
        except Exception as exc:  # a verdict for every task, whatever happens
            j = Judgement(False, 0.0, "error", f"{type(exc).__name__}: {exc}"[:200])
        conn_out.send((idx, (j.passed, j.credit, j.reason, j.detail)))


class _Slot:
    """One worker process and its two pipes (``conn`` receives results, ``out`` sends tasks)."""

    def __init__(self, ctx, timeout_s: float, memory_mb: int):
        task_r, task_w = os.pipe()
        res_r, res_w = os.pipe()
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pidistill.verifiers.math_pool", str(task_r), str(res_w), repr(timeout_s), str(memory_mb)],
            pass_fds=(task_r, res_w), stdin=subprocess.DEVNULL, env=env,
        )
        os.close(task_r)
        os.close(res_w)
        self.out = Connection(task_w, readable=False)
        self.conn = Connection(res_r, writable=False)
        self.task: int | None = None
        self.deadline = 0.0
        self.ready = False  # set by the worker's "ready" message, once math-verify is imported
        self.started = time.monotonic()

    def _close(self) -> None:
        for c in (self.out, self.conn):
            try:
                c.close()
            except OSError:
                pass

    def kill(self) -> None:
        try:
            self.proc.kill()
        finally:
            self.proc.wait(timeout=5)
            self._close()

    def stop(self) -> None:
        try:
            self.out.send(None)
        except (OSError, BrokenPipeError):
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._close()


def judge_many(
    tasks: Sequence[tuple[str, str]],
    workers: int,
    timeout_s: float,
    memory_mb: int = 1024,
    grace_s: float = 2.0,
    on_done=None,
) -> list[Judgement]:
    """Judgements for ``(gold, pred)`` pairs, in order, over ``workers`` processes."""
    if not tasks:
        return []
    ctx = None
    hard = (timeout_s if timeout_s and timeout_s > 0 else 60.0) + grace_s
    n = max(1, min(workers, len(tasks)))
    slots = [_Slot(ctx, timeout_s, memory_mb) for _ in range(n)]
    results: list[Judgement | None] = [None] * len(tasks)
    pending = deque(range(len(tasks)))
    try:
        while pending or any(s.task is not None for s in slots):
            for s in slots:
                if s.ready and s.task is None and pending:
                    idx = pending.popleft()
                    gold, pred = tasks[idx]
                    s.out.send((idx, gold, pred))
                    s.task, s.deadline = idx, time.monotonic() + hard
            starting = [s for s in slots if not s.ready]
            busy = [s for s in slots if s.task is not None]
            deadlines = [s.deadline for s in busy] + [s.started + STARTUP_S for s in starting]
            wait_for = max(0.0, min(deadlines) - time.monotonic())
            ready = wait([s.conn for s in busy + starting], timeout=wait_for)
            for s in starting:
                if s.conn in ready:
                    try:
                        hello = s.conn.recv()
                    except (EOFError, OSError):
                        hello = None
                    if hello != "ready":
                        raise RuntimeError(f"math verifier worker failed to start (exit {s.proc.poll()})")
                    s.ready = True
                elif time.monotonic() >= s.started + STARTUP_S:
                    raise RuntimeError(f"math verifier worker did not start within {STARTUP_S:g}s")
            for s in busy:
                if s.conn in ready:
                    try:
                        idx, (passed, credit, reason, detail) = s.conn.recv()
                    except (EOFError, OSError):  # the worker died (e.g. killed by the OOM killer)
                        idx = s.task
                        results[idx] = Judgement(False, 0.0, "error", "verifier worker died")
                        _replace(slots, s, ctx, timeout_s, memory_mb)
                        if on_done:
                            on_done(1)
                        continue
                    results[idx] = Judgement(passed, credit, reason, detail)
                    s.task = None
                    if on_done:
                        on_done(1)
                elif time.monotonic() >= s.deadline:
                    results[s.task] = Judgement(False, 0.0, "timeout", f"comparison exceeded {timeout_s:g}s (killed)")
                    _replace(slots, s, ctx, timeout_s, memory_mb)
                    if on_done:
                        on_done(1)
    finally:
        for s in slots:
            if s.task is None:
                s.stop()
            else:
                s.kill()
    return [r for r in results if r is not None]


def _replace(slots: list, slot: _Slot, ctx, timeout_s: float, memory_mb: int) -> None:
    slot.kill()
    slots[slots.index(slot)] = _Slot(ctx, timeout_s, memory_mb)


if __name__ == "__main__":
    _worker(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False), float(sys.argv[3]), int(sys.argv[4]))
