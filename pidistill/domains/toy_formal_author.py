"""The toy formal domain's imperfect author for a pretraining corpus, who also reads the checker.

Everything of ``pidistill.domains.toy_formal``'s author (items, prompts, right proofs and slips),
plus ``attempt_feedback``: what Coq says of an attempt (the verifier's feedback on it, exactly as a
verification job writes it for the type-checker PI). The pretraining corpus uses it so that the
toy prover has seen retry messages carrying the checker's words, as it has seen ones carrying a
proof or an outline; without them its retries under the type-checker PI were garbage (0 of 118
passed) and the row measured an unseen prompt, not the PI. It is a module of its own so that only
the corpora that use it (``pidistill.tinymodel.AUTHORS``) depend on the verifier's code: the
dataset's loader, ``toy_formal``, does not.
"""

from __future__ import annotations

from typing import Sequence

from pidistill.domains.toy_formal import (DOMAIN, FormalItem, author_attempt, prompt_for, random_item, slips,
                                          statement_for)
from pidistill.problems import Problem

__all__ = ["DOMAIN", "attempt_feedback", "author_attempt", "prompt_for", "random_item", "slips"]


def attempt_feedback(attempts: Sequence[tuple[FormalItem, str, str]], timeout_s: float = 10.0) -> list[str]:
    """The verifier's feedback on each ``(item, theorem name, proof)``, in order, checked by Coq in
    one batch (``verify_batch``: each distinct file once); empty for a proof that checks."""
    from pidistill.verifiers import VerifierSettings
    from pidistill.verifiers.formal import verify_batch

    problems = {}
    for item, name, _ in attempts:
        if name not in problems:
            meta = {"name": name, "header": "", "statement": statement_for(item, name), "language": "coq"}
            problems[name] = Problem(id=name, domain=DOMAIN, prompt=prompt_for(item, name), meta=meta)
    verdicts = verify_batch([(problems[name], proof) for _, name, proof in attempts],
                            VerifierSettings(checker="coq", timeout_s=timeout_s))
    return [v.feedback for v in verdicts]
