"""The two halves of one code sample's run: the trusted judge and the untrusted candidate server.

The candidate program runs alone in an isolated process (U, see ``sandbox``). The tests never run
there: they run in the judge (J), a separate trusted process, where every name the tests take from
the candidate (the entry point, helper functions, classes, constants) is a ``Remote`` proxy. A call
sends plain arguments to U and gets back plain data (``code_wire``), so nothing U does can change
how the tests compare values, what they count as a pass, or whether they ran to the end: a pass is
"J executed every test to completion". U exiting, hanging, lying on its channel, returning an object
with an ``__eq__`` of its own, patching builtins or printing anything is at worst a failed test.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
import resource
import signal
import socket
import sys
import time
import traceback

from pidistill.verifiers import code_wire as wire
from pidistill.verifiers.sandbox.candidate import Candidate, Context

_MSG = 300  # characters kept of an exception message


# ==== U: the candidate server =================================================================

def _frames(exc: BaseException, lines: list[str]) -> list[list]:
    out = []
    for fr in traceback.extract_tb(exc.__traceback__):
        if fr.filename == "<candidate>" and fr.lineno:
            text = lines[fr.lineno - 1].strip() if 0 < fr.lineno <= len(lines) else ""
            out.append([fr.lineno, fr.name, text[:160]])
    return out[-5:]


def _exc_info(exc: BaseException, lines: list[str]) -> dict:
    try:
        msg = str(exc)[:_MSG]
    except BaseException:  # noqa: BLE001 - a hostile __str__
        msg = "<unprintable>"
    return {"type": type(exc).__name__[:80], "msg": msg, "frames": _frames(exc, lines)}


def serve(sock: socket.socket, program: str) -> None:
    """In U: run the program, then answer the judge's requests until it hangs up."""
    lines = program.splitlines()
    objects: dict[int, object] = {}
    refs: dict[int, int] = {}

    def to_handle(obj) -> wire.Handle:
        key = id(obj)
        if key not in refs:
            refs[key] = len(objects) + 1
            objects[refs[key]] = obj
        return wire.Handle(refs[key], type(obj).__name__[:80])

    def resolve(ref, _type_name):
        try:
            return objects[ref]
        except KeyError:
            raise wire.WireError("unknown handle") from None

    def reply_value(value, extra=None):
        msg = {"ok": wire.encode(value, to_handle)}
        if extra:
            msg.update(extra)
        wire.send_msg(sock, msg)

    ns = {"__name__": "__candidate__", "__builtins__": builtins}
    sys.setrecursionlimit(3000)
    try:
        exec(compile(program, "<candidate>", "exec"), ns)
    except BaseException as exc:  # noqa: BLE001 - includes SystemExit
        wire.send_msg(sock, {"load_error": _exc_info(exc, lines)})
        return
    names = {}
    for name, value in list(ns.items()):
        if not name.startswith("__"):
            names[name] = "module" if type(value).__name__ == "module" else "object"
            if names[name] == "module":
                names[name] = "module:" + str(getattr(value, "__name__", ""))[:80]
    wire.send_msg(sock, {"loaded": names})
    while True:
        try:
            req = wire.recv_msg(sock)
        except (EOFError, OSError, wire.WireError):
            return
        try:
            op = req["op"]
            if op == "get":
                name = req["name"]
                if name not in ns:
                    raise NameError(f"name {name!r} is not defined")
                reply_value(ns[name])
                continue
            target = resolve(req["ref"], "")
            if op == "call":
                args = wire.decode(req["args"], resolve)
                kwargs = wire.decode(req["kwargs"], resolve)
                result = target(*args, **kwargs)
                mutated = []
                for i, arg in enumerate(args):
                    if type(arg) in (list, dict, set, bytearray):
                        mutated.append([i, wire.encode(arg, to_handle)])
                reply_value(result, {"mut": mutated})
            elif op == "getattr":
                reply_value(getattr(target, req["attr"]))
            elif op == "setattr":
                setattr(target, req["attr"], wire.decode(req["value"], resolve))
                reply_value(None)
            elif op == "list":
                reply_value(list(target))
            elif op == "len":
                reply_value(int(len(target)))
            elif op == "getitem":
                reply_value(target[wire.decode(req["key"], resolve)])
            elif op == "str":
                reply_value(str(target))
            else:
                raise wire.WireError(f"unknown op {op!r}")
        except BaseException as exc:  # noqa: BLE001 - everything the candidate raises is data
            try:
                wire.send_msg(sock, {"exc": _exc_info(exc, lines)})
            except BaseException:  # noqa: BLE001
                return


# ==== J: the judge ==============================================================================

class CandidateGone(BaseException):
    """The candidate timed out, died or broke the protocol; tests cannot catch this."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(detail or kind)
        self.kind = kind  # "timeout" | "crash" | "protocol"


class CandidateAborted(BaseException):
    """The candidate raised SystemExit/KeyboardInterrupt/... inside a call."""


class CandidateError(Exception):
    """An exception of a non-builtin type raised by candidate code."""


class UntrustedValue(TypeError):
    pass


class Channel:
    def __init__(self, sock: socket.socket, deadline: float, wait=None):
        self.sock = sock
        self.deadline = deadline
        self.wait = wait  # wait(deadline) -> bool: the candidate sent something before the deadline
        self.dead: CandidateGone | None = None
        self.first_reply: float | None = None  # when the candidate's first message arrived

    def recv(self):
        if self.dead is not None:
            raise self.dead
        if self.wait is not None and not self.wait(self.deadline):
            self.dead = CandidateGone("timeout")
            raise self.dead
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.dead = CandidateGone("timeout")
            raise self.dead
        self.sock.settimeout(left)
        try:
            msg = wire.recv_msg(self.sock)
            if self.first_reply is None:
                self.first_reply = time.monotonic()
            return msg
        except (socket.timeout, TimeoutError):
            self.dead = CandidateGone("timeout")
        except (EOFError, ConnectionError, OSError):
            self.dead = CandidateGone("crash")
        except wire.WireError as exc:
            self.dead = CandidateGone("protocol", str(exc))
        raise self.dead

    def request(self, msg: dict, args: tuple = ()):
        if self.dead is not None:
            raise self.dead
        try:
            wire.send_msg(self.sock, msg)
        except (OSError, ConnectionError):
            self.dead = CandidateGone("crash")
            raise self.dead from None
        reply = self.recv()
        if not isinstance(reply, dict):
            self.dead = CandidateGone("protocol", "reply is not an object")
            raise self.dead
        if "exc" in reply:
            raise _remote_exception(reply["exc"])
        try:
            value = wire.decode(reply.get("ok"), self.remote)
            for item in reply.get("mut") or []:
                i, tree = item
                _copy_back(args[i], wire.decode(tree, self.remote))
        except (wire.WireError, TypeError, ValueError, IndexError) as exc:
            self.dead = CandidateGone("protocol", f"bad reply: {exc}")
            raise self.dead from None
        return value

    def remote(self, ref: int, type_name: str) -> "Remote":
        return Remote(self, ref, type_name)


def _copy_back(original, new) -> None:
    """Mirror in-place changes the candidate made to a list/dict/set/bytearray argument."""
    if type(original) is not type(new) or original == new:
        return
    if isinstance(original, (list, bytearray)):
        original[:] = new
    elif isinstance(original, (dict, set)):
        original.clear()
        original.update(new)


def _remote_exception(info) -> BaseException:
    if not isinstance(info, dict):
        return CandidateGone("protocol", "bad exception record")
    name = str(info.get("type", "Exception"))
    msg = str(info.get("msg", ""))
    cls = getattr(builtins, name, None)
    exc: BaseException
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls(msg)
        except TypeError:
            exc = CandidateError(f"{name}: {msg}")
    elif isinstance(cls, type) and issubclass(cls, BaseException):
        exc = CandidateAborted(f"{name}: {msg}")
    else:
        exc = CandidateError(f"{name}: {msg}")
    exc.remote_info = {"type": name, "msg": msg, "frames": info.get("frames") or []}  # type: ignore[attr-defined]
    return exc


class Remote:
    """An object that lives in the candidate process. Its truth value and comparisons are never
    trusted: only plain data that comes back from it is."""

    __slots__ = ("_ch", "_ref", "_type")

    def __init__(self, ch: Channel, ref: int, type_name: str):
        object.__setattr__(self, "_ch", ch)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)

    def _req(self, op: str, **kw):
        return self._ch.request({"op": op, "ref": self._ref, **kw})

    def __call__(self, *args, **kwargs):
        enc = lambda v: wire.encode(v, _handle_of)  # noqa: E731
        return self._ch.request({"op": "call", "ref": self._ref, "args": enc(list(args)), "kwargs": enc(dict(kwargs))}, args)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._req("getattr", attr=attr)

    def __setattr__(self, attr: str, value) -> None:
        self._req("setattr", attr=attr, value=wire.encode(value, _handle_of))

    def __iter__(self):
        return iter(self._req("list"))

    def __len__(self) -> int:
        n = self._req("len")
        if type(n) is not int:
            raise UntrustedValue("len() of a candidate object did not return an int")
        return n

    def __getitem__(self, key):
        return self._req("getitem", key=wire.encode(key, _handle_of))

    def __str__(self) -> str:
        s = self._req("str")
        if type(s) is not str:
            raise UntrustedValue("str() of a candidate object did not return a str")
        return s

    def __repr__(self) -> str:
        return f"<candidate {self._type} object>"

    def __bool__(self) -> bool:
        raise UntrustedValue(f"the truth value of a candidate {self._type} object is not trusted")

    def __eq__(self, other):
        if isinstance(other, Remote) and other._ch is self._ch and other._ref == self._ref:
            return True
        raise UntrustedValue(f"comparing a candidate {self._type} object is not trusted (return plain data)")

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("remote", self._ref))


def _handle_of(obj) -> wire.Handle:
    if isinstance(obj, Remote):
        return wire.Handle(obj._ref, obj._type)
    raise wire.WireError(f"cannot pass a {type(obj).__name__} to the candidate")


@functools.lru_cache(maxsize=1024)
def _free_names(sources: tuple[str, ...]) -> list[str]:
    """Global names the test code reads (candidates for binding to candidate objects). Cached:
    the samples of one problem share their tests."""
    names: list[str] = []
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in names:
                names.append(node.id)
    return names


def _outcome(exc: BaseException | None) -> dict:
    if exc is None:
        return {"ok": True, "kind": "pass"}
    if isinstance(exc, CandidateGone):
        return {"ok": False, "kind": exc.kind, "type": exc.kind, "msg": str(exc)[:_MSG], "frames": []}
    remote = getattr(exc, "remote_info", None)
    if remote is not None:
        kind = "aborted" if isinstance(exc, CandidateAborted) else "error"
        return {"ok": False, "kind": kind, "type": remote["type"], "msg": remote["msg"], "frames": remote["frames"], "remote": True}
    kind = "assertion" if isinstance(exc, AssertionError) else "error"
    try:
        msg = str(exc)[:_MSG]
    except BaseException:  # noqa: BLE001
        msg = ""
    return {"ok": False, "kind": kind, "type": type(exc).__name__, "msg": msg, "frames": []}


@functools.lru_cache(maxsize=2048)
def _compiled(src: str, label: str):
    return compile(src, label, "exec")  # trusted test code; the samples of a problem share it


def _run_test(src: str, jns: dict, label: str) -> BaseException | None:
    try:
        exec(_compiled(src, label), jns)
    except BaseException as exc:  # noqa: BLE001 - recorded as the test's outcome
        return exc
    return None


def judge(ctx: Context, job: dict) -> dict:
    """In J: start the candidate, run every test against it, return the raw outcomes."""
    limits = job["limits"]
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    t0 = time.monotonic()
    program = job["program"]
    cand = Candidate(ctx, serve, program, limits)
    t_started = time.monotonic()
    ch = Channel(cand.sock, t0 + float(job["timeout_s"]), cand.wait)
    result: dict = {"isolation": ctx.mode}
    try:
        result.update(_judge(ch, job))
    except BaseException as exc:  # noqa: BLE001 - e.g. the hard deadline: keep what is known
        result.update({"loaded": False, "load_error": {"type": "timeout", "msg": str(exc)[:_MSG], "frames": []}})
    finally:
        t_tested = time.monotonic()
        result["output_bytes"] = cand.output_size()
        status = cand.close()
    result["exit"] = _describe_status(status)
    t_end = time.monotonic()
    t_loaded = ch.first_reply or t_tested
    # where the time went (the bench reports it; verdicts never record timing)
    result["timing_ms"] = {"start": (t_started - t0) * 1e3, "load": (t_loaded - t_started) * 1e3,
                           "tests": (t_tested - t_loaded) * 1e3, "cleanup": (t_end - t_tested) * 1e3}
    result["judge_s"] = round(t_end - t0, 4)
    return result


def _describe_status(status: int | None) -> str:
    if status is None:
        return "unknown"
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


def _judge(ch: Channel, job: dict) -> dict:
    try:
        hello = ch.recv()
    except CandidateGone as exc:
        return {"loaded": False, "load_error": {"type": exc.kind, "msg": str(exc), "frames": []}}
    if not isinstance(hello, dict) or ("loaded" not in hello and "load_error" not in hello):
        return {"loaded": False, "load_error": {"type": "protocol", "msg": "bad hello", "frames": []}}
    if "load_error" in hello:
        info = hello["load_error"] if isinstance(hello["load_error"], dict) else {}
        return {"loaded": False, "load_error": {k: info.get(k) for k in ("type", "msg", "frames")}}
    cand_names = hello["loaded"] if isinstance(hello["loaded"], dict) else {}

    jns: dict = {"__name__": "__judge__", "__builtins__": builtins}
    out: dict = {"loaded": True}
    prelude = job.get("prelude") or ""
    if prelude:
        exc = _run_test(prelude, jns, "<prelude>")
        if exc is not None:
            out["prelude_error"] = f"{type(exc).__name__}: {exc}"[:_MSG]
    tests = list(job.get("tests") or [])
    public = list(job.get("public") or [])
    test_program = job.get("test_program")
    entry = job.get("entry_point")
    wanted = list(_free_names(tuple([job.get("test_setup") or "", test_program or ""] + tests + public)))
    if entry:
        wanted.append(entry)
    for name in dict.fromkeys(wanted):
        kind = cand_names.get(name)
        if kind is None or (name in jns and name != entry):
            continue  # the trusted prelude defines it, or the candidate does not
        if kind.startswith("module:"):
            mod = kind.split(":", 1)[1]
            if mod in sys.stdlib_module_names:
                jns[name] = __import__(mod)
                for part in mod.split(".")[1:]:
                    jns[name] = getattr(jns[name], part)
            continue
        try:
            jns[name] = ch.request({"op": "get", "name": name})
        except CandidateGone:
            break
        except Exception:  # noqa: BLE001 - the name just stays unbound
            pass
    if entry and entry not in cand_names:
        out["missing_entry_point"] = entry
    setup = job.get("test_setup") or ""
    setup_exc = _run_test(setup, jns, "<test setup>") if setup else None
    if setup_exc is not None:
        out["setup_error"] = _outcome(setup_exc)
    results = []
    for i, src in enumerate(tests):
        exc = setup_exc or _run_test(src, jns, f"<test {i}>")
        results.append(_outcome(exc))
    out["tests"] = results
    if test_program is not None:
        exc = setup_exc or _run_test(test_program, jns, "<test program>")
        if exc is None and entry and callable(jns.get("check")):
            try:
                candidate = ch.request({"op": "get", "name": entry}) if entry in cand_names else None
                if candidate is None:
                    raise NameError(f"name {entry!r} is not defined")
                jns["check"](candidate)
            except BaseException as e:  # noqa: BLE001
                exc = e
        out["test_program"] = _outcome(exc)
    out["public"] = [_outcome(_run_test(src, jns, f"<public {i}>")) for i, src in enumerate(public)]
    return out
