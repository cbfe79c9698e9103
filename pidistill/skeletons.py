"""Proof skeletons another model writes, for formal datasets whose records carry none (miniF2F).

The skeleton PI (the retry condition ``pi: skeleton`` and OPSD's ``privileged: skeleton``) is a
proof's outline with holes: the intermediate claims (Lean's ``have h : ... := by sorry``, Coq's
``assert (...). { admit. }``) without their proofs. The toy formal domain writes one per problem
(``meta.skeleton``); miniF2F's records have none. For such a dataset the config names a skeleton
source (``datasets.<name>.skeletons: {model, prompt}``), and two rules make the skeletons:

- ``sample_skeletons`` (``pidistill.sampling.sample_outlines``): the skeleton model writes one outline
  per training problem (``prompt`` with ``{prompt}`` replaced by the problem's prompt; one request
  seed per problem and run seed). It never sees a reference proof (miniF2F has none).
- ``check_skeletons`` (``pidistill.verifiers.formal.check_outlines``): the formal verifier's checker
  judges each outline as an outline: the file is
  rebuilt from the dataset's header and statement (a restated or weakened theorem is refused as for
  proofs), every soundness check of a proof applies except the language's hole (``sorry`` in Lean,
  ``admit`` in Coq), the outline must have at least one hole (a complete proof is the answer, not an
  outline), and the checker must accept the file with its holes: no error (Lean's ``sorry`` status,
  Coq's file closed by ``Admitted``). Outlines that fail are kept in the file with the reason and no
  skeleton: those problems have no skeleton PI, as a toy problem without an outline has none.

``with_skeletons`` gives the problems their checked skeletons (``meta.skeleton``) for the retry
and OPSD jobs that read them: with a skeleton source, its checked outlines are a dataset's only
skeletons (a problem whose outline failed has none, whatever its record carries).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from pidistill.problems import Problem

SKELETON = {"id": (str,), "skeleton": (str, type(None)), "reason": (str,)}  # a check_skeletons record


def with_skeletons(problems: Sequence[Problem], checked: Sequence[dict]) -> list[Problem]:
    """The problems, each with its checked skeleton as ``meta.skeleton``, or without one."""
    skeletons = {r["id"]: r["skeleton"] for r in checked if r.get("skeleton")}
    out = []
    for p in problems:
        meta = {k: v for k, v in p.meta.items() if k != "skeleton"}
        if p.id in skeletons:
            meta["skeleton"] = skeletons[p.id]
        out.append(dataclasses.replace(p, meta=meta))
    return out
