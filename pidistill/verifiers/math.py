"""Math verifier: final-answer extraction and equivalence with the gold answer.

Extraction (see docs/math-verifier.md for the full rules):

* reasoning is dropped first: everything up to the last ``</think>``; an unclosed ``<think>``
  drops the rest of the text;
* the answer is the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested and escaped braces handled;
  ``\\boxed 5`` too). Boxes that end the text joined only by commas, "and" or "or" form one list
  answer (``\\boxed{2}, \\boxed{3}`` -> ``2, 3``). An empty last box is an empty answer;
* with ``VerifierSettings.answer_fallback`` (off by default: the paper's strict setting) a
  completion without a box may give its answer as "the (final) answer is X".

Equivalence: fast exact paths first (identical normalised strings; two plain integers), then
math-verify with our corrections (:mod:`pidistill.verifiers.math_equiv`), in-process or in a
worker pool (:mod:`pidistill.verifiers.math_pool`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from pidistill.problems import Problem
from pidistill.verifiers import Verdict, VerifierSettings

# ---------------------------------------------------------------- extraction


def strip_think(text: str) -> str:
    """The text after the reasoning: after the last ``</think>``; an unclosed ``<think>`` and
    everything after it are dropped."""
    close = text.rfind("</think>")
    if close >= 0:
        text = text[close + len("</think>") :]
    opened = text.find("<think>")
    if opened >= 0:
        text = text[:opened]
    return text


_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])\s*")


_BRACE = re.compile(r"\\[{}]|[{}]")
_BARE = re.compile(r"[^\s$\\]+")


def _closing_braces(text: str) -> dict[int, int]:
    """Position of each ``{`` -> position of the ``}`` that closes it (escaped ``\\{``, ``\\}`` are
    not braces), in one pass; a brace never closed has no entry."""
    closes, stack = {}, []
    for m in _BRACE.finditer(text):
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}" and stack:
            closes[stack.pop()] = m.start()
    return closes


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every complete ``\\boxed``/``\\fbox`` in ``text``, in order."""
    out = []
    closes = None
    for m in _BOX.finditer(text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            if closes is None:
                closes = _closing_braces(text)
            j = closes.get(i)
            if j is not None:
                out.append((m.start(), j + 1, text[i + 1 : j]))
        elif m.group(0) != m.group(0).rstrip():  # "\\boxed 5"
            tok = _BARE.match(text, i)
            if tok:
                out.append((m.start(), tok.end(), tok.group(0).rstrip(".,")))
    return out


_JOIN = re.compile(r"^[\s$,;]*(?:(?:and|or|&|\\text\{\s*(?:and|or)\s*\}|\\quad|\\qquad)[\s$,;]*)?$")


def last_boxed(text: str) -> str | None:
    """The final boxed answer (after dropping ``<think>`` blocks), or None if there is no box.

    Boxes at the end joined only by separators (",", "and", "or") are returned as one list.
    """
    text = strip_think(text)
    spans = boxed_spans(text)
    if not spans:
        return None
    group = [spans[-1]]  # built from the last box backwards, then put in text order
    for prev in reversed(spans[:-1]):
        between = text[prev[1] : group[-1][0]]
        if _JOIN.match(between) and between.strip(" $"):
            group.append(prev)
        else:
            break
    group.reverse()
    contents = [c.strip() for _, _, c in group]
    if len(contents) > 1 and all(contents):
        return ", ".join(contents)
    return contents[-1]


_FALLBACK = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:is|:|=)\s*[:=]?\s*(?:\*\*)?\s*"
    r"(?:\$\$(?P<dd>.+?)\$\$|\$(?P<d>[^$]+)\$|\\\((?P<p>.+?)\\\)|\\\[(?P<b>.+?)\\\]|(?P<plain>[^\n]*?)(?=\.(?:\s|$)|\*\*|\n|$))",
    re.IGNORECASE | re.DOTALL,
)


def answer_is(text: str) -> str | None:
    """The fallback answer: the last "the answer is X" / "final answer: X" in the text."""
    text = strip_think(text)
    last = None
    for m in _FALLBACK.finditer(text):
        last = m
    if last is None:
        return None
    for key in ("dd", "d", "p", "b"):
        if last.group(key):
            return last.group(key).strip()
    plain = (last.group("plain") or "").strip().rstrip(".").strip()
    return plain or None


@dataclass
class Extraction:
    answer: str | None
    method: str  # "boxed", "fallback" or "none"


def extract_answer(completion: str, fallback: bool = False) -> Extraction:
    boxed = last_boxed(completion)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    if fallback:
        found = answer_is(completion)
        if found is not None:
            return Extraction(found, "fallback")
    return Extraction(None, "none")


# ---------------------------------------------------------------- fast paths


def normalize(answer: str) -> str:
    """Light normalisation for the exact-match fast path (never makes different answers equal)."""
    s = answer.strip()
    s = re.sub(r"^\$+|\$+$", "", s).strip()
    s = re.sub(r"\\(?:left|right)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\(?:displaystyle)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\[,;:! ]", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


_INT = re.compile(r"^[+-]?\d+$")
_INT_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+$")


def _as_int(s: str) -> int | None:
    if _INT.match(s):
        return int(s)
    if _INT_THOUSANDS.match(s):
        return int(s.replace(",", ""))
    return None


def quick_verdict(gold: str, pred: str) -> bool | None:
    """True/False when decidable without math-verify, else None."""
    g, p = normalize(gold), normalize(pred)
    if g == p and g:
        return True
    gi, pi = _as_int(g), _as_int(p)
    if gi is not None and pi is not None:
        return gi == pi
    return None


# ---------------------------------------------------------------- verdicts

_FEEDBACK = {
    "wrong_answer": "Wrong answer.",
    "partial": "Partly correct answer.",
    "unparsable": "The final answer could not be read as mathematics.",
    "timeout": "Checking the answer took too long.",
    "error": "The answer could not be checked.",
}


def _verdict(passed: bool, credit: float, reason: str, extraction: Extraction, settings: VerifierSettings, detail: str = "") -> Verdict:
    graded = getattr(settings, "graded", False)
    score = float(credit) if graded else float(passed)
    extra = {"answer_method": extraction.method, "credit": round(float(credit), 6)}
    if detail:
        extra["detail"] = detail
    return Verdict(passed, score, reason, "" if passed else _FEEDBACK.get(reason, "Wrong answer."), extraction.answer, extra=extra)


def _pre(problem: Problem, completion: str, settings: VerifierSettings) -> tuple[Extraction, Verdict | None]:
    """Extraction plus a verdict when one is decidable without math-verify."""
    ex = extract_answer(completion, fallback=settings.answer_fallback)
    if ex.answer is None:
        v = Verdict(False, 0.0, "no_answer", "No final answer found (expected \\boxed{...}).", None, extra={"answer_method": "none", "credit": 0.0})
        return ex, v
    if not ex.answer.strip():
        return ex, Verdict(False, 0.0, "empty_answer", "The final \\boxed{} is empty.", "", extra={"answer_method": ex.method, "credit": 0.0})
    quick = quick_verdict(problem.answer or "", ex.answer)
    if quick is not None:
        return ex, _verdict(quick, float(quick), "ok" if quick else "wrong_answer", ex, settings)
    return ex, None


def verify_one(problem: Problem, completion: str, settings: VerifierSettings | None = None) -> Verdict:
    return verify_batch([(problem, completion)], settings or VerifierSettings(progress=False))[0]


# Below this many math-verify comparisons a pool does not pay for its start (each worker imports
# sympy and math-verify and warms its own caches: about 1-2 s of CPU; see docs/math-verifier.md).
POOL_MIN = 200


def verify_batch(items: Sequence[tuple[Problem, str]], settings: VerifierSettings) -> list[Verdict]:
    """Verdicts in input order. Decidable items are settled in-process; the rest go to math-verify,
    in a worker pool when ``settings.workers > 1`` and there are enough of them (or always when
    called off the main thread, where signal-based timeouts cannot work)."""
    from pidistill.verifiers import math_equiv
    from pidistill.verifiers.text import judged_text

    out: list[Verdict | None] = [None] * len(items)
    notes: dict[int, dict] = {}
    slow: list[tuple[int, Extraction]] = []
    for i, (problem, completion) in enumerate(items):
        text, note, unjudged = judged_text(completion)
        if unjudged is not None:  # no text, or too long: failed without reading an answer
            unjudged.extra = {"answer_method": "none", "credit": 0.0, **unjudged.extra}
            out[i] = unjudged
            continue
        if note:
            notes[i] = note
        ex, verdict = _pre(problem, text, settings)
        if verdict is None:
            slow.append((i, ex))
        else:
            out[i] = verdict
    if slow:
        tasks = [(items[i][0].answer or "", ex.answer or "") for i, ex in slow]
        use_pool = not math_equiv.signals_usable() or (settings.workers > 1 and len(tasks) >= POOL_MIN)
        bar = _progress(len(tasks), settings)
        try:
            if use_pool:
                from pidistill.verifiers.math_pool import judge_many

                judgements = judge_many(tasks, max(1, settings.workers), settings.timeout_s, memory_mb=max(settings.memory_mb, 1024), on_done=bar.update)
            else:
                judgements = []
                for gold, pred in tasks:
                    judgements.append(math_equiv.judge(gold, pred, settings.timeout_s))
                    bar.update(1)
        finally:
            bar.close()
        for (i, ex), j in zip(slow, judgements):
            out[i] = _verdict(j.passed, j.credit, j.reason, ex, settings, j.detail)
    for i, note in notes.items():
        out[i].extra.update(note)
    return [v for v in out if v is not None]


def _progress(total: int, settings: VerifierSettings):
    from tqdm import tqdm

    return tqdm(total=total, desc="verify math", disable=not settings.progress or total < 50, mininterval=2)
