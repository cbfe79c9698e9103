"""assign_pi_donors: each problem's donor for the "wrong" / "other_tests" PI conditions, truly wrong.

A one-to-one assignment (every problem a donor exactly once) in which no problem gets a donor whose
PI the verifier judges equivalent to its own (pidistill.pi_assignment). The verifier runs through
``verify_items``, which imports only the split's domain module (the rule lists it as a code input);
the log and the output say how many problems the old seeded derangement gave an equivalent donor.
"""

import time

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json
from pidistill.pi_assignment import EquivalenceJudge, derangement_collisions, solve_assignment
from pidistill.problems import read_problems
from pidistill.smk import rule_log
from pidistill.verifiers import VerifierSettings

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    pi = str(snakemake.params.pi)
    seed = int(snakemake.wildcards.seed)
    per_problem = int(getattr(snakemake.params, "per_problem", 8) or 8)
    settings = VerifierSettings.from_config(snakemake.params.verifier)
    judge = EquivalenceJudge(problems, pi, settings)  # one cache: an edge both methods use is judged once
    collisions = derangement_collisions(problems, pi, seed, judge=judge)
    log.info("the seeded derangement gives %d of %d problems an equivalent donor (pi=%s, seed=%d)",
             collisions, len(problems), pi, seed)
    t = time.perf_counter()
    result = solve_assignment(problems, pi, seed, judge, per_problem=per_problem)
    log.info("assignment: %d problems, %d candidate edges (per_problem %d), %d judged equivalent and excluded, "
             "%d integer programs in %.2f s; %d edges judged in all in %.2f s; total %.2f s",
             len(problems), result.n_edges, result.per_problem, len(result.excluded), result.rounds, result.solve_s,
             len(judge.judged), judge.seconds, time.perf_counter() - t)
    write_json(snakemake.output[0], {
        "pi": pi,
        "seed": seed,
        "donors": dict(sorted(result.donors.items())),
        "n_problems": len(problems),
        "n_equivalent_edges_excluded": len(result.excluded),
        "derangement_collisions": collisions,
    })
