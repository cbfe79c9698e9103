"""Math verifier: final-answer extraction and equivalence with the gold answer.

Spine version: the last ``\\boxed{...}`` (nested braces) after dropping ``<think>`` blocks, compared
with the gold answer after light normalisation. The math-verifier issue extends this with
math-verify equivalence and graded credit behind the same ``verify_batch`` interface.
"""

from __future__ import annotations

import re
from typing import Sequence

from pidistill.problems import Problem
from pidistill.verifiers import Verdict, VerifierSettings

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}``, braces balanced; None if absent."""
    text = _THINK.sub("", text)
    best = None
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        i = start
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth == 0:
            best = text[start : i - 1]
    return best


def normalize(answer: str) -> str:
    answer = answer.strip().strip("$").strip()
    answer = re.sub(r"\\(?:left|right|,|;|!|\s)", "", answer)
    answer = answer.replace(" ", "").rstrip(".")
    return answer


def verify_one(problem: Problem, completion: str) -> Verdict:
    extracted = last_boxed(completion)
    if extracted is None:
        return Verdict(False, 0.0, "no_answer", "No \\boxed{} answer found.", None)
    ok = normalize(extracted) == normalize(problem.answer or "")
    return Verdict(ok, float(ok), "ok" if ok else "wrong_answer", "" if ok else "Wrong answer.", extracted)


def verify_batch(items: Sequence[tuple[Problem, str]], settings: VerifierSettings) -> list[Verdict]:
    from tqdm import tqdm

    return [verify_one(p, c) for p, c in tqdm(items, desc="verify math", disable=not settings.progress, mininterval=2)]
