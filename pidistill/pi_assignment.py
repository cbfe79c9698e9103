"""Donors for the "wrong answer" and "another problem's tests" PI conditions, truly wrong.

The ``wrong`` condition shows a problem another problem's gold (math: its answer; code: its canonical
solution), ``other_tests`` another problem's test suite (code). A seeded derangement of the split
(:func:`pidistill.seeding.derangement`) never gives a problem itself, but it may give it a donor whose
PI is *equivalent* to its own: MATH-500 has many equal golds (several problems whose answer is 2, or
``\\frac{4}{2}`` beside ``2``), and two toy-code functions may agree on every hidden input. Such a
"wrong" PI is in fact the right one. Here the donors are instead the solution of an assignment
problem:

* **Candidate graph** (:func:`candidate_donors`): every problem draws ``per_problem`` distinct
  partners (a seeded sample, never itself) and the graph holds the edge both ways, so every problem
  has at least ``per_problem`` candidate donors *and* is a candidate donor of at least
  ``per_problem`` recipients. A sparse graph keeps the integer program small (about
  ``2 * per_problem * n`` variables) while a random graph of that minimum degree has a perfect
  matching with overwhelming probability.
* **Equivalence** (:func:`judge_equivalent`): an edge (recipient, donor) is excluded when the
  project's verifier cannot tell the donor's PI from the recipient's own: ``wrong`` math, the
  recipient judged with ``\\boxed{<donor's answer>}`` passes; ``wrong`` code, the donor's solution
  passes the recipient's tests; ``other_tests``, the recipient's own gold solution passes the donor's
  test suite (those tests cannot tell that it is wrong for them). A donor whose PI text is exactly
  the recipient's own (same answer string, same solution, same tests) is equivalent without running
  anything.
* **Assignment** (:func:`assign_donors`): binary ``x[r, d]`` per allowed edge, each recipient's row
  and each donor's column summing to 1 (a permutation: every problem is a donor exactly once, as in
  the derangement), minimising seeded random integer edge costs, so the solution is deterministic and
  (ties aside) unique. Solved with PuLP and CBC (one thread). If the problem is infeasible the
  candidate lists are widened (``per_problem`` doubled, up to every other problem) and it is solved
  again; if even the complete graph is infeasible (all problems share one gold, say) a ValueError
  says how many problems have no non-equivalent donor at all and how many can be served at once.

Equivalence judgements cost verifier runs (sandboxed programs for code), so when the exclusions are
given as a function they are found lazily: solve over the candidate edges not yet known to be
equivalent, judge only the assigned edges not judged before, exclude those found equivalent, and
solve again until every assigned edge has been judged non-equivalent. The result is exactly the
optimum over the candidate graph minus *all* its equivalent edges: it is feasible there (each of its
edges was judged non-equivalent) and optimal over a superset of that graph. It costs about n
judgements plus a few per round instead of every candidate edge (2 * per_problem * n).

Every random choice derives from (pi, seed) and problem ids through
:func:`pidistill.seeding.derive_seed`, after sorting the ids: the order of the input file never
matters.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from pidistill.problems import Problem
from pidistill.seeding import derangement, derive_seed
from pidistill.verifiers import VerifierSettings, verify_items

ASSIGNED = ("wrong", "other_tests")  # the PI conditions whose donors this module picks
COST_RANGE = 1_000_000  # edge costs are integers in [1, COST_RANGE]

Edge = tuple[str, str]  # (recipient id, donor id)
Judge = Callable[[list[Edge]], set[Edge]]


# ---------------------------------------------------------------- candidate graph


def _sorted_ids(problem_ids: Iterable[str]) -> list[str]:
    ids = sorted(problem_ids)
    if len(set(ids)) != len(ids):
        dup = next(a for a, b in zip(ids, ids[1:]) if a == b)
        raise ValueError(f"problem id {dup!r} given twice")
    if len(ids) < 2:
        raise ValueError("a donor assignment needs at least two problems")
    return ids


def _sample_others(rng: random.Random, i: int, n: int, k: int) -> list[int]:
    """``k`` distinct indices of ``range(n)`` other than ``i``, uniformly at random, in O(k): a
    partial Fisher-Yates shuffle over the n - 1 others kept as a sparse map of swaps. The first k
    draws do not depend on how many more follow, so widening a list only extends it."""
    m = n - 1
    swaps: dict[int, int] = {}
    out = []
    for t in range(min(k, m)):
        j = rng.randrange(t, m)
        picked = swaps.get(j, j)
        swaps[j] = swaps.get(t, t)
        out.append(picked if picked < i else picked + 1)  # skip i itself
    return out


def candidate_donors(problem_ids: Iterable[str], seed: int, per_problem: int = 8) -> dict[str, list[str]]:
    """Each recipient's candidate donors: distinct, never itself, at least ``min(per_problem, n-1)``.

    Every problem draws ``per_problem`` partners (seeded per problem id); the candidate graph holds
    each drawn pair both ways. A recipient's list is its own draws followed by the problems that drew
    it (sorted by id). Deterministic in (ids as a set, seed, per_problem)."""
    if per_problem < 1:
        raise ValueError("per_problem must be at least 1")
    ids = _sorted_ids(problem_ids)
    n = len(ids)
    drawn = {r: [ids[j] for j in _sample_others(random.Random(derive_seed("pi-candidates", seed, r)), i, n, per_problem)]
             for i, r in enumerate(ids)}
    out = {r: list(ds) for r, ds in drawn.items()}
    member = {r: set(ds) for r, ds in drawn.items()}
    for r in ids:
        for d in drawn[r]:
            if r not in member[d]:
                member[d].add(r)
                out[d].append(r)
    return out


def edge_cost(pi: str, seed: int, recipient: str, donor: str) -> int:
    """The seeded random cost of giving ``recipient`` the PI of ``donor`` (1..COST_RANGE)."""
    return 1 + derive_seed("pi-assignment-cost", pi, seed, recipient, donor) % COST_RANGE


# ---------------------------------------------------------------- equivalence


def _index(problems: Sequence[Problem] | Mapping[str, Problem]) -> dict[str, Problem]:
    return dict(problems) if isinstance(problems, Mapping) else {p.id: p for p in problems}


def pi_text(problem: Problem, pi: str) -> str:
    """What ``problem`` gives as a donor under ``pi`` (as pidistill.retry renders it): its gold
    answer or canonical solution for ``wrong``, its test suite for ``other_tests``."""
    if pi == "wrong":
        return (problem.answer or "") if problem.domain == "math" else (problem.solution or "")
    if pi == "other_tests":
        return "\n".join(problem.tests) if problem.tests else (problem.test_program or "")
    raise ValueError(f"PI condition {pi!r} has no donors (those that do: {', '.join(ASSIGNED)})")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _donor_suite_for(recipient: Problem, donor: Problem) -> Problem:
    """The donor's test suite (exactly the ``other_tests`` PI) as a problem whose candidate is the
    recipient's solution: the tests call the donor's entry point, the judge runs the donor's
    trusted prelude (its imports and, for HumanEval, its prompt's helpers), the candidate gets the
    recipient's candidate prelude, and no code prefix is prepended (the recipient's solution is a
    whole program)."""
    judge = [donor.meta.get("judge_prelude") or ""]
    if donor.code_prefix and _parses(donor.code_prefix):
        judge.append(donor.code_prefix)
    meta = {k: v for k, v in donor.meta.items() if k not in ("judge_prelude", "candidate_prelude")}
    meta["judge_prelude"] = "\n".join(part for part in judge if part)
    if recipient.meta.get("candidate_prelude"):
        meta["candidate_prelude"] = recipient.meta["candidate_prelude"]
    return dataclasses.replace(donor, code_prefix="", public_tests=[], tests=list(donor.tests),
                               test_program=None if donor.tests else donor.test_program, meta=meta)


def _judged_item(recipient: Problem, donor: Problem, pi: str) -> tuple[Problem, str] | None:
    """The (problem, completion) whose pass means the edge is equivalent; None when there is nothing
    to run (no gold to show or to test with: the edge counts as not equivalent)."""
    if pi == "wrong":
        if recipient.domain == "math":
            return recipient, "\\boxed{" + (donor.answer or "") + "}"
        return (recipient, donor.solution) if donor.solution else None
    return (_donor_suite_for(recipient, donor), recipient.solution) if recipient.solution else None


def judge_equivalent(problems: Sequence[Problem] | Mapping[str, Problem], pi: str, edges: Iterable[Edge],
                     settings: VerifierSettings | None = None) -> set[Edge]:
    """The edges (recipient, donor) among ``edges`` whose donor PI the verifier judges equivalent to
    the recipient's own (see the module docstring), in one batch through ``verify_items``."""
    if pi not in ASSIGNED:
        raise ValueError(f"PI condition {pi!r} has no donors (those that do: {', '.join(ASSIGNED)})")
    index = _index(problems)
    equivalent: set[Edge] = set()
    runs: list[tuple[Problem, str]] = []
    run_edges: list[Edge] = []
    for r, d in dict.fromkeys(edges):
        recipient, donor = index[r], index[d]
        if pi == "other_tests" and not recipient.domain == donor.domain == "code":
            raise ValueError(f"PI condition 'other_tests' needs code problems; {recipient.id!r} is {recipient.domain}, "
                             f"{donor.id!r} is {donor.domain}")
        if r == d or pi_text(recipient, pi) == pi_text(donor, pi):
            equivalent.add((r, d))  # the very PI the recipient's own gold would give
            continue
        item = _judged_item(recipient, donor, pi)
        if item is not None:
            runs.append(item)
            run_edges.append((r, d))
    if runs:
        for edge, verdict in zip(run_edges, verify_items(runs, settings or VerifierSettings(progress=False))):
            if verdict.passed:
                equivalent.add(edge)
    return equivalent


class EquivalenceJudge:
    """``judge_equivalent`` as a function of a list of edges, remembering every judgement (so edges
    shared by the derangement and the assignment are judged once). ``judged`` maps edge -> bool."""

    def __init__(self, problems: Sequence[Problem] | Mapping[str, Problem], pi: str, settings: VerifierSettings | None = None):
        self.problems = _index(problems)
        self.pi = pi
        self.settings = settings
        self.judged: dict[Edge, bool] = {}
        self.seconds = 0.0

    def __call__(self, edges: Iterable[Edge]) -> set[Edge]:
        edges = list(dict.fromkeys(edges))
        new = [e for e in edges if e not in self.judged]
        if new:
            t = time.perf_counter()
            found = judge_equivalent(self.problems, self.pi, new, self.settings)
            self.seconds += time.perf_counter() - t
            self.judged.update((e, e in found) for e in new)
        return {e for e in edges if self.judged[e]}


# ---------------------------------------------------------------- assignment


@dataclass
class Assignment:
    """A solved donor assignment and how it was found."""

    donors: dict[str, str]  # recipient id -> donor id, sorted by recipient
    excluded: set[Edge] = field(default_factory=set)  # candidate edges found equivalent (lazily: those judged)
    per_problem: int = 0  # the candidate list size that was feasible
    n_edges: int = 0  # candidate edges in the final graph
    rounds: int = 0  # integer programs solved
    solve_s: float = 0.0  # building and solving the programs (judging excluded)


def _as_judge(equivalent_pairs: set[Edge] | Judge | None) -> tuple[Judge, bool]:
    """A function edges -> equivalent edges, and whether it is lazy (a caller's function)."""
    if equivalent_pairs is None:
        return (lambda edges: set()), False
    if callable(equivalent_pairs):
        return equivalent_pairs, True
    pairs = set(equivalent_pairs)
    return (lambda edges: {e for e in edges if e in pairs}), False


class _Program:
    """The integer program over one candidate graph: binary x[j] per edge j, row and column sums 1
    (``<= 1`` and the count maximised with ``maximize_count``: the largest partial assignment).
    Built once; excluding an edge fixes its variable to 0, so the lazy rounds only re-solve."""

    def __init__(self, edges: list[Edge], costs: list[int], ids: list[str], maximize_count: bool = False):
        import pulp

        self.edges = edges
        self.maximize_count = maximize_count
        self.prob = pulp.LpProblem("pi_assignment", pulp.LpMaximize if maximize_count else pulp.LpMinimize)
        self.x = [self.prob.add_variable(f"x{j}", cat=pulp.LpBinary) for j in range(len(edges))]
        rows: dict[str, list] = {r: [] for r in ids}
        cols: dict[str, list] = {d: [] for d in ids}
        for var, (r, d) in zip(self.x, edges):
            rows[r].append(var)
            cols[d].append(var)
        self.prob += pulp.LpAffineExpression([(v, 1 if maximize_count else c) for v, c in zip(self.x, costs)])
        for k, group in enumerate([*rows.values(), *cols.values()]):
            expr = pulp.LpAffineExpression([(v, 1) for v in group])
            self.prob += (expr <= 1) if maximize_count else (expr == 1), f"c{k}"
        self.live_out = {r: len(g) for r, g in rows.items()}
        self.live_in = {d: len(g) for d, g in cols.items()}
        self.excluded: set[int] = set()

    def exclude(self, index: Iterable[int]) -> None:
        for j in index:
            if j not in self.excluded:
                self.excluded.add(j)
                self.x[j].upBound = 0
                r, d = self.edges[j]
                self.live_out[r] -= 1
                self.live_in[d] -= 1

    def solve(self) -> list[Edge] | None:
        """The chosen edges; None when infeasible."""
        import pulp

        if not self.maximize_count and (min(self.live_out.values()) < 1 or min(self.live_in.values()) < 1):
            return None  # a problem without any allowed donor (or recipient): no need to ask CBC
        # The assignment polytope is integral, so the root LP already gives the integer optimum: CBC's
        # presolve and cut generation only cost time (7500 problems: 35 s with them, 5 to 8 s without).
        with warnings.catch_warnings():  # PuLP 3.3 announces that 4.0 drops the bundled CBC binary
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, threads=1, presolve=False, cuts=False)
        status = self.prob.solve(solver)
        if pulp.LpStatus[status] != "Optimal":
            return None
        return [e for j, (e, v) in enumerate(zip(self.edges, self.x)) if j not in self.excluded and (v.varValue or 0) > 0.5]


def solve_assignment(problems: Sequence[Problem] | Iterable[str], pi: str, seed: int,
                     equivalent_pairs: set[Edge] | Judge | None = None, per_problem: int = 8) -> Assignment:
    """:func:`assign_donors` with the details (excluded edges, rounds, candidate size, seconds)."""
    ids = _sorted_ids(p.id if isinstance(p, Problem) else p for p in problems)
    n = len(ids)
    judge, lazy = _as_judge(equivalent_pairs)
    graph_seed = derive_seed("pi-assignment", pi, seed)
    known: dict[Edge, bool] = {}  # edge -> equivalent, for every edge judged so far
    rounds, solve_s = 0, 0.0
    k = max(1, min(per_problem, n - 1))
    while True:
        cands = candidate_donors(ids, graph_seed, k)
        edges = [(r, d) for r in ids for d in cands[r]]
        if not lazy:  # a given set: every candidate edge is "judged" at once, for free
            unseen = [e for e in edges if e not in known]
            found = judge(unseen)
            known.update((e, e in found) for e in unseen)
        costs = [edge_cost(pi, seed, r, d) for r, d in edges]
        t = time.perf_counter()
        program = _Program(edges, costs, ids)
        solve_s += time.perf_counter() - t
        while True:
            t = time.perf_counter()
            program.exclude(j for j, e in enumerate(edges) if known.get(e, False))
            chosen = program.solve()
            solve_s += time.perf_counter() - t
            rounds += 1
            if chosen is None:
                break
            new = [e for e in chosen if e not in known]
            found = judge(new) if new else set()
            known.update((e, e in found) for e in new)
            if not found:  # every chosen edge is known to be non-equivalent
                donors = dict(sorted(chosen))
                excluded = {e for e, eq in known.items() if eq}
                return Assignment(donors, excluded, k, len(edges), rounds, solve_s)
        if k >= n - 1:
            break
        k = min(2 * k, n - 1)
    # even the complete graph has no assignment: say why
    unseen = [e for e in edges if e not in known]
    if unseen:
        found = judge(unseen)
        known.update((e, e in found) for e in unseen)
    stranded = n - len({r for r, d in edges if not known[r, d]})
    program = _Program(edges, costs, ids, maximize_count=True)
    program.exclude(j for j, e in enumerate(edges) if known[e])
    best = program.solve()
    served = len(best) if best is not None else 0
    raise ValueError(
        f"no donor assignment for PI condition {pi!r} avoids an equivalent donor: {stranded} of {n} problems have "
        f"no non-equivalent donor at all, and at most {served} of the {n} can be given a non-equivalent donor at once "
        "(every problem must also be a donor exactly once)")


def assign_donors(problems: Sequence[Problem] | Iterable[str], pi: str, seed: int,
                  equivalent_pairs: set[Edge] | Judge | None = None, per_problem: int = 8) -> dict[str, str]:
    """A permutation ``recipient id -> donor id`` of the problems (every problem a donor exactly
    once, none its own) that uses no equivalent edge.

    ``equivalent_pairs``: the (recipient, donor) edges to exclude, as a set, or a function that takes
    a list of edges and returns those among them that are equivalent (e.g. an
    :class:`EquivalenceJudge`); a function is asked lazily, only about edges the solver picks (see
    the module docstring). Raises ValueError for fewer than two problems, or when no assignment
    exists even over the complete graph."""
    return solve_assignment(problems, pi, seed, equivalent_pairs, per_problem).donors


# ---------------------------------------------------------------- the derangement, for comparison


def derangement_donors(problems: Sequence[Problem], pi: str, seed: int) -> dict[str, str]:
    """The donors the seeded derangement gives (as pidistill.retry's ``privileged_info`` did)."""
    ordered = sorted(problems, key=lambda p: p.id)
    donors = derangement(ordered, derive_seed("pi-derangement", pi, seed))
    return {p.id: d.id for p, d in zip(ordered, donors)}


def derangement_collisions(problems: Sequence[Problem], pi: str, seed: int, settings: VerifierSettings | None = None,
                           judge: Judge | None = None) -> int:
    """How many problems the derangement gives an equivalent donor (``judge``: a shared
    :class:`EquivalenceJudge`, else a fresh one over ``settings``)."""
    judge = judge or EquivalenceJudge(problems, pi, settings)
    return len(judge(list(derangement_donors(problems, pi, seed).items())))
