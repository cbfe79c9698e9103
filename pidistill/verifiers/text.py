"""What the verifiers judge of a completion. Model output is data: odd text is judged, never raised.

* ``None`` (a tool that wrote ``"completion": null``) is not judged: failed, reason ``no_completion``.
* A completion longer than :data:`MAX_COMPLETION_CHARS` is not judged (its code is not extracted or
  run, its answer not read): failed, reason ``too_long``. No model in this project's configs comes
  near it (2048 new tokens are about 10,000 characters); it bounds the verifier's own work.
* Lone surrogates (U+D800..U+DFFF: what ``"\\udcff"`` in JSON or a ``surrogateescape`` decoding of
  invalid UTF-8 gives) cannot be encoded, compiled or sent to a sandbox. They stand for bytes the
  model emitted that are not text, so each is judged as U+FFFD, the replacement character a
  tokenizer's own decoding shows there; the verdict records ``replaced_surrogates`` (how many).
* NUL bytes and any other characters are judged as they are (Python refuses a program holding
  NUL: a ``load_error``).
"""

from __future__ import annotations

import re

from pidistill.verifiers import Verdict

MAX_COMPLETION_CHARS = 1_000_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def judged_text(completion) -> tuple[str | None, dict, Verdict | None]:
    """``(text to judge, notes for the verdict, None)``, or ``(None, notes, failed verdict)`` when the
    completion is not judged at all."""
    if completion is None:
        return None, {}, Verdict(False, 0.0, "no_completion", "There is no completion to judge.")
    if not isinstance(completion, str):
        return None, {}, Verdict(False, 0.0, "not_text", f"The completion is not text ({type(completion).__name__}).")
    if len(completion) > MAX_COMPLETION_CHARS:
        notes = {"completion_chars": len(completion)}
        feedback = f"The completion is {len(completion):,} characters long; at most {MAX_COMPLETION_CHARS:,} are judged."
        return None, notes, Verdict(False, 0.0, "too_long", feedback, extra=dict(notes))
    text, n = _LONE_SURROGATE.subn("\ufffd", completion)
    return text, ({"replaced_surrogates": n} if n else {}), None
