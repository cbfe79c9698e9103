"""Equivalence of a predicted final answer with the gold answer: math-verify plus our corrections.

``judge(gold, pred)`` is the one entry point; it returns a :class:`Judgement` with the binary
verdict and the graded credit. It is pure computation (no I/O) so the batch verifier can run it
in-process or in a worker process. Timeouts: math-verify's own timeouts use ``signal.alarm`` and
fail off the main thread, so we always call it with its timeouts disabled and bound the whole
judgement ourselves with :func:`deadline` (an interval timer on the main thread of a process; the
worker pool in :mod:`pidistill.verifiers.math_pool` adds a hard kill for computations that a
signal cannot interrupt, e.g. a huge integer power inside C code).

Corrections on top of math-verify 0.9.0 (each one tested in tests/test_math_verifier.py):

* numeric veto: math-verify compares numbers with ``(a - b).evalf(chop=True)`` and floats by
  rounding to 6 decimals, so tiny values collapse to 0 and compare equal: ``1/20!`` vs ``1/21!``,
  ``1/2^99`` vs ``1/2^98``, ``e^{-50}`` vs ``e^{-51}``, ``10^{-7}`` vs ``2 \\cdot 10^{-7}`` were all
  judged equal. When math-verify says "equal" and both sides are closed-form numbers (or tuples,
  sets, intervals of them), we re-evaluate them with 60 significant digits and keep the verdict only
  if they agree relatively (1e-12 between exact values; 1e-3 when a side is a decimal, which still
  accepts any answer rounded to 6 decimals for values of at least about 1e-3).
* ``\\mathrm{e}`` is read as Euler's number (math-verify cannot parse ``1 - \\frac{1}{\\mathrm{e}}``
  in a box, and reads it as 1 inside ``$...$``).
* elementwise rescue: a compound answer (tuple, interval, set or list) whose delimiters and part
  count agree with the gold's and whose parts are each equivalent is accepted even if math-verify
  rejects the whole (parts are compared in order, or as a matching for sets and bare lists).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

logging.getLogger("math_verify").setLevel(logging.ERROR)

# math-verify is imported lazily (about 0.5 s) so that the fast paths in math.py never pay for it.
_mv = None


def _math_verify():
    global _mv
    if _mv is None:
        import math_verify

        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _mv = math_verify
    return _mv


class JudgeTimeout(BaseException):
    """Raised inside a judgement when its deadline passes (BaseException: math-verify catches Exception)."""


def signals_usable() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


@contextmanager
def deadline(seconds: float | None):
    """Raise :class:`JudgeTimeout` in the block after ``seconds`` (main thread only; no-op otherwise).

    Saves and restores any previous SIGALRM handler and pending interval timer.
    """
    if not seconds or seconds <= 0 or not signals_usable():
        yield
        return

    def on_alarm(signum, frame):
        raise JudgeTimeout(f"judgement exceeded {seconds:g}s")

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *old_timer)


@dataclass
class Judgement:
    passed: bool
    credit: float  # graded credit in [0, 1]; 1.0 exactly when passed
    reason: str  # "ok", "ok_elementwise", "wrong_answer", "partial", "unparsable", "timeout"
    detail: str = ""


# ---------------------------------------------------------------- parsing


def _prepare(fragment: str) -> str:
    fragment = fragment.strip()
    fragment = re.sub(r"\\(?:mathrm|textrm|mathit|text)\{\s*e\s*\}", "e", fragment)
    return fragment


def parse_fragment(fragment: str) -> list:
    """math-verify's parse of a bare LaTeX fragment (wrapped in ``\\boxed{}`` so it is read as math)."""
    mv = _math_verify()
    fragment = _prepare(fragment)
    if not fragment:
        return []
    return mv.parse(
        "\\boxed{" + fragment + "}",
        extraction_config=[mv.LatexExtractionConfig(), mv.ExprExtractionConfig()],
        parsing_timeout=None,
    )


def _mv_equal(gold_parsed: list, pred_parsed: list) -> bool:
    if not gold_parsed or not pred_parsed:
        return False
    return bool(_math_verify().verify(gold_parsed, pred_parsed, timeout_seconds=None))


# ---------------------------------------------------------------- numeric veto

_DIGITS = 60


def _is_pct(expr) -> bool:
    from sympy import Mul, Rational, UnevaluatedExpr

    return isinstance(expr, Mul) and len(expr.args) == 2 and expr.args[1] == UnevaluatedExpr(Rational(1, 100))


def _scalar_values(expr):
    """``([(re, im), ...], has_float)`` for a closed-form scalar, or None; a percentage ``x\\%``
    has two candidate values, x/100 and x (math-verify accepts both readings)."""
    from sympy import Basic, Float

    if not isinstance(expr, Basic) or not getattr(expr, "is_number", False) or expr.free_symbols:
        return None
    candidates = [expr.args[0] / 100, expr.args[0]] if _is_pct(expr) else [expr]
    out = []
    for c in candidates:
        try:
            value = c.doit().evalf(_DIGITS)
            re_, im_ = value.as_real_imag()
        except Exception:
            return None
        if not (re_.is_Number and im_.is_Number) or not (re_.is_finite and im_.is_finite):
            return None
        out.append((Float(re_, _DIGITS), Float(im_, _DIGITS)))
    return out, bool(expr.atoms(Float))


def _close(a, b, tol: float) -> bool:
    (ar, ai), (br, bi) = a, b
    try:
        diff = ((ar - br) ** 2 + (ai - bi) ** 2) ** 0.5
        scale = max((ar**2 + ai**2) ** 0.5, (br**2 + bi**2) ** 0.5)
        if scale == 0:
            return True
        return bool(diff <= tol * scale)
    except Exception:
        return True  # cannot tell: no veto


def _scalars_disagree(g, p) -> bool:
    gv, pv = _scalar_values(g), _scalar_values(p)
    if gv is None or pv is None:
        return False
    (g_vals, g_float), (p_vals, p_float) = gv, pv
    tol = 1e-3 if (g_float or p_float) else 1e-12
    return not any(_close(a, b, tol) for a in g_vals for b in p_vals)


def _sort_values(items):
    vals = []
    for it in items:
        v = _scalar_values(it)
        if v is None or v[0][0][1] != 0:
            return None
        vals.append((v[0][0][0], it))
    return [it for _, it in sorted(vals, key=lambda t: t[0])]


def numeric_mismatch(g, p) -> bool:
    """True when ``g`` and ``p`` are closed-form numbers (or same-shape tuples/sets/intervals of
    them) whose high-precision values clearly differ."""
    from sympy import FiniteSet, Interval, Tuple

    if isinstance(g, Tuple) and isinstance(p, Tuple):
        return len(g) == len(p) and any(numeric_mismatch(a, b) for a, b in zip(g.args, p.args))
    if isinstance(g, FiniteSet) and isinstance(p, FiniteSet):
        if len(g) != len(p):
            return False
        gs, ps = _sort_values(list(g.args)), _sort_values(list(p.args))
        if gs is None or ps is None:
            return False
        return any(_scalars_disagree(a, b) for a, b in zip(gs, ps))
    if isinstance(g, Interval) and isinstance(p, Interval):
        return _scalars_disagree(g.start, p.start) or _scalars_disagree(g.end, p.end)
    return _scalars_disagree(g, p)


def _vetoed(gold_parsed: list, pred_parsed: list) -> bool:
    """Veto math-verify's "equal" when the sympy objects it compared clearly differ numerically."""
    from sympy import Basic

    g_objs = [x for x in gold_parsed if isinstance(x, Basic)]
    p_objs = [x for x in pred_parsed if isinstance(x, Basic)]
    if not g_objs or not p_objs:
        return False
    if len(g_objs) == 1 and len(p_objs) == 1:
        # math-verify judged the lists equal; with one sympy object a side, either that pair was
        # judged equal or the raw strings were identical (and then the values cannot differ).
        return numeric_mismatch(g_objs[0], p_objs[0])
    mv = _math_verify()
    # Keep the verdict if some sympy pair is judged equal by math-verify and not contradicted.
    for g in g_objs:
        for p in p_objs:
            if mv.verify(g, p, timeout_seconds=None) and not numeric_mismatch(g, p):
                return False
    return True


def equal(gold_parsed: list, pred_parsed: list) -> bool:
    return _mv_equal(gold_parsed, pred_parsed) and not _vetoed(gold_parsed, pred_parsed)


# ---------------------------------------------------------------- compound answers

_OPEN = {"(": ")", "[": "]", "\\{": "\\}"}
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,(?:\\!)?\d{3})+(?:\.\d+)?$")


def _strip_sizing(s: str) -> str:
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\[,;:! ]", " ", s)
    return s.strip().strip("$").strip().rstrip(".").strip()


def split_compound(fragment: str) -> tuple[str, str, list[str]]:
    """``(open, close, parts)`` of an answer at its top-level commas: ``"(1, 2]"`` -> ``("(", "]",
    ["1", "2"])``, ``"1, 2"`` -> ``("", "", ["1", "2"])``; a scalar gives a single part."""
    s = _strip_sizing(fragment)
    if _THOUSANDS.match(s.replace(" ", "")):
        return "", "", [s]
    open_, close, body = "", "", s
    for o in ("\\{", "(", "["):
        if s.startswith(o):
            for c in (("\\}",) if o == "\\{" else (")", "]")):
                if s.endswith(c) and _balanced_inner(s[len(o) : len(s) - len(c)]):
                    open_, close, body = o, c, s[len(o) : len(s) - len(c)]
                    break
            if open_:
                break
    parts, depth, cur, i = [], 0, [], 0
    while i < len(body):
        ch = body[i]
        if body.startswith("\\{", i) or body.startswith("\\}", i):
            depth += 1 if body[i + 1] == "{" else -1
            cur.append(body[i : i + 2])
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur).strip())
    parts = [re.sub(r"^(?:\\text\{\s*and\s*\}|and)\s+", "", p).strip() for p in parts]
    if len(parts) == 1:  # "(x+1)" or "[2]" alone: not a compound
        return "", "", [s]
    return open_, close, parts


def _balanced_inner(s: str) -> bool:
    depth = 0
    i = 0
    while i < len(s):
        if s.startswith("\\{", i) or s.startswith("\\}", i):
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if s[i] in "([{":
            depth += 1
        elif s[i] in ")]}":
            depth -= 1
        if depth < 0:
            return False
        i += 1
    return depth == 0


def _part_equal(g: str, p: str, cache: dict) -> bool:
    key = (g, p)
    if key not in cache:
        if _norm_simple(g) == _norm_simple(p):
            cache[key] = True
        else:
            cache[key] = equal(_parsed(g, cache), _parsed(p, cache))
    return cache[key]


def _parsed(fragment: str, cache: dict) -> list:
    key = ("parse", fragment)
    if key not in cache:
        cache[key] = parse_fragment(fragment)
    return cache[key]


def _norm_simple(s: str) -> str:
    return re.sub(r"\s+", "", _strip_sizing(s)).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def compound_credit(gold: str, pred: str) -> tuple[float, bool]:
    """``(credit, same_shape)`` for a compound gold (0 for a scalar gold).

    credit = matched parts / max(#gold parts, #pred parts), halved when the outer delimiters
    differ. Parts are matched in order when the gold is delimited by ``()``/``[]`` (tuples,
    intervals, vectors) and as a one-to-one matching when it is a set ``\\{...\\}`` or a bare list.
    ``same_shape`` is true when delimiters and part counts agree.
    """
    g_open, g_close, g_parts = split_compound(gold)
    if len(g_parts) < 2 or len(g_parts) > 12:
        return 0.0, False
    p_open, p_close, p_parts = split_compound(pred)
    if len(p_parts) > 24:
        return 0.0, False
    cache: dict = {}
    if g_open in ("(", "["):
        matched = sum(_part_equal(g, p, cache) for g, p in zip(g_parts, p_parts))
    else:
        free = list(range(len(p_parts)))
        matched = 0
        for g in g_parts:
            for j in free:
                if _part_equal(g, p_parts[j], cache):
                    free.remove(j)
                    matched += 1
                    break
    credit = matched / max(len(g_parts), len(p_parts))
    same_delims = (g_open, g_close) == (p_open, p_close)
    if not same_delims:
        credit *= 0.5
    return credit, same_delims and len(g_parts) == len(p_parts)


# ---------------------------------------------------------------- the judgement


def judge(gold: str, pred: str, timeout_s: float | None = None) -> Judgement:
    """Binary verdict and graded credit of ``pred`` against ``gold`` (both bare LaTeX fragments)."""
    try:
        with deadline(timeout_s):
            return _judge(gold, pred)
    except JudgeTimeout:
        return Judgement(False, 0.0, "timeout", f"comparison exceeded {timeout_s:g}s")
    except RecursionError:
        return Judgement(False, 0.0, "unparsable", "expression too deep")


def _judge(gold: str, pred: str) -> Judgement:
    g = parse_fragment(gold)
    p = parse_fragment(pred)
    if not p:
        return Judgement(False, 0.0, "unparsable", "the answer could not be read")
    if equal(g, p):
        return Judgement(True, 1.0, "ok")
    credit, same_shape = compound_credit(gold, pred)
    if credit >= 1.0 and same_shape:
        return Judgement(True, 1.0, "ok_elementwise")
    credit = min(credit, 0.99)
    return Judgement(False, credit, "partial" if credit > 0 else "wrong_answer")
