"""µCode (seed 001): multi-turn code generation with a learned verifier and expert iteration.

The pieces, each a plain function so that the rules stay thin and the tests can run them on hand-made
data:

- **Episodes** (``run_episodes``): N rollouts of up to T turns per problem. A turn's code is run on the
  problem's public and private tests; a turn that fails gets the public tests' feedback as the next
  user turn (``feedback_message``); an episode ends when its code passes every test, or after T turns.
- **Verifier data** (``verifier_pairs`` for Bradley-Terry, ``verifier_labels`` for BCE): distinct
  (correct, incorrect) codes of one problem, scored without the history (``verifier_messages``).
- **Relabeling** (``relabel``): every history prefix of every trajectory, with a target chosen per
  method (``METHODS``).
- **Multi-turn best-of-N** (``best_of_n``): N candidates a turn, a selector picks one (``SELECTORS``),
  its public-test feedback starts the next turn; ``success_by_turn`` applies the success rule.

Generation and verification come in as callables, so the same loops run with the transformers or the
vLLM backend and with the sandboxed code verifier, or, in the unit tests, with tables of answers.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from pidistill.generation import GenerationRequest
from pidistill.problems import Problem
from pidistill.seeding import derive_seed

FEEDBACK_TEMPLATE = "Feedback: {feedback}"
# a code's relabeling score is ORACLE_WEIGHT x (passes every test) + its learned-verifier score
ORACLE_WEIGHT = 100.0

# method -> what it fine-tunes the generator on (all start again from the base model)
METHODS = {
    "mucode": "every history prefix, relabeled with the problem's best code by 100 x oracle + learned verifier "
              "(all problems, even those without a correct code)",
    "multi_star": "Multi-STaR (RFT): the correct multi-turn trajectories as they were sampled",
    "multi_star_r": "Multi-STaR squared (RFT-R): every history prefix of problems with a correct code, relabeled "
                    "with their most frequent correct code (the oracle alone)",
    "rft_lv": "RFT(LV): single turn, the first-turn codes ranked in the top k by the learned verifier",
    "star": "STaR (single-turn RFT): single turn, the first-turn codes that pass every test",
    "mucode_r": "muCode-R: muCode's and Multi-STaR squared's data together",
}
SELECTORS = ("random", "verifier", "public", "public_verifier")

Generate = Callable[[list[GenerationRequest]], list[str]]
Verify = Callable[[list[tuple[Problem, str]]], list[dict]]
Score = Callable[[list[tuple[Problem, str]]], list[float]]


# ---- one turn ---------------------------------------------------------------------------------


def turn_outcome(verdict: dict) -> dict:
    """What a turn keeps of a code verdict: the code, whether it passed the public tests, the private
    ones, both (``correct``), and the feedback. A program that did not load has no public results and
    fails them; a problem without public tests counts its private verdict as the public one."""
    public = verdict.get("public_test_results")
    public_ok = all(public) if public else bool(verdict["passed"])
    return {
        "code": verdict.get("extracted") or "",
        "public": bool(public_ok),
        "private": bool(verdict["passed"]),
        "correct": bool(public_ok and verdict["passed"]),
        "feedback": public_feedback(verdict),
    }


def public_feedback(verdict: dict) -> str:
    """The public tests' verdict in words (the code verifier's ``public_feedback``, which never quotes
    a private test); for a program that did not load, the verifier's own feedback (the load error)."""
    if verdict.get("public_feedback"):
        return verdict["public_feedback"]
    return verdict.get("feedback") or ("The tests passed." if verdict["passed"] else "The program failed.")


def feedback_message(outcome: dict, template: str = FEEDBACK_TEMPLATE) -> dict:
    return {"role": "user", "content": template.format(feedback=outcome["feedback"])}


def history(problem_prompt: str, turns: Sequence[dict], template: str = FEEDBACK_TEMPLATE) -> list[dict]:
    """The conversation before the next turn: the prompt, then each earlier turn's completion and its
    feedback."""
    messages = [{"role": "user", "content": problem_prompt}]
    for t in turns:
        messages.append({"role": "assistant", "content": t["completion"]})
        messages.append(feedback_message(t, template))
    return messages


def _seed(seed: int, stage: str, problem_id: str, *parts) -> int:
    return derive_seed("mucode", seed, stage, problem_id, *parts, bits=31)


# ---- rollouts ---------------------------------------------------------------------------------


def run_episodes(generate: Generate, verify: Verify, problems: Sequence[Problem], n: int, turns: int, seed: int,
                 stage: str = "rollout", template: str = FEEDBACK_TEMPLATE) -> list[dict]:
    """``n`` episodes of up to ``turns`` turns per problem; one row per turn, sorted by (id, rollout,
    turn). An episode ends at the first turn whose code passes every test (public and private)."""
    live = {(p.id, r): [] for p in problems for r in range(n)}
    by_id = {p.id: p for p in problems}
    rows = []
    for t in range(turns):
        keys = sorted(live)
        if not keys:
            break
        requests = [GenerationRequest(f"{pid}#r{r}#t{t}", tuple(history(by_id[pid].prompt, live[(pid, r)], template)),
                                      _seed(seed, stage, pid, r, t)) for pid, r in keys]
        completions = generate(requests)
        verdicts = verify([(by_id[pid], c) for (pid, _), c in zip(keys, completions)])
        for (pid, r), completion, verdict in zip(keys, completions, verdicts):
            row = {"id": pid, "rollout": r, "turn": t, "completion": completion, **turn_outcome(verdict)}
            rows.append(row)
            live[(pid, r)].append(row)
            if row["correct"]:
                del live[(pid, r)]
    return sorted(rows, key=lambda x: (x["id"], x["rollout"], x["turn"]))


def trajectories(rows: Sequence[dict]) -> dict[tuple, list[dict]]:
    """Turn rows grouped by (iteration, id, rollout), each list in turn order."""
    out: dict[tuple, list[dict]] = {}
    for row in sorted(rows, key=lambda x: (x.get("iteration", 0), x["id"], x["rollout"], x["turn"])):
        out.setdefault((row.get("iteration", 0), row["id"], row["rollout"]), []).append(row)
    return out


# ---- the learned verifier's data ---------------------------------------------------------------


def verifier_messages(problem: Problem, code: str) -> list[dict]:
    """What the verifier scores: the problem and one code, without the history."""
    return [{"role": "user", "content": problem.prompt}, {"role": "assistant", "content": code}]


def distinct_codes(rows: Sequence[dict]) -> dict[str, dict[str, bool]]:
    """problem id -> {code: correct} over every turn of every rollout (an empty code is left out)."""
    out: dict[str, dict[str, bool]] = {}
    for row in rows:
        if row["code"].strip():
            out.setdefault(row["id"], {})[row["code"]] = row["correct"]
    return out


def verifier_pairs(rows: Sequence[dict], per_problem: int, seed: int) -> list[dict]:
    """Up to ``per_problem`` distinct (correct, incorrect) code pairs per problem (all of them when
    there are fewer), drawn without replacement under ``seed``; sorted by (id, chosen, rejected)."""
    out = []
    for pid, codes in sorted(distinct_codes(rows).items()):
        good = sorted(c for c, ok in codes.items() if ok)
        bad = sorted(c for c, ok in codes.items() if not ok)
        pairs = [(g, b) for g in good for b in bad]
        if len(pairs) > per_problem:
            pairs = random.Random(_seed(seed, "pairs", pid)).sample(pairs, per_problem)
        out += [{"id": pid, "chosen": g, "rejected": b} for g, b in sorted(pairs)]
    return out


def verifier_labels(rows: Sequence[dict]) -> list[dict]:
    """Every distinct (problem, code) with its label (1.0: passes every test), for BCE."""
    return [{"id": pid, "code": c, "label": float(ok)}
            for pid, codes in sorted(distinct_codes(rows).items()) for c, ok in sorted(codes.items())]


# ---- relabeling -------------------------------------------------------------------------------


def relabel_score(correct: bool, verifier_score: float) -> float:
    return ORACLE_WEIGHT * float(correct) + float(verifier_score)


def best_codes(rows: Sequence[dict], scores: dict[tuple[str, str], float]) -> dict[str, str]:
    """problem id -> its best code by 100 x oracle + verifier score (ties: the smaller code text)."""
    best: dict[str, tuple] = {}
    for pid, codes in distinct_codes(rows).items():
        ranked = sorted(codes.items(), key=lambda kv: (-relabel_score(kv[1], scores[(pid, kv[0])]), kv[0]))
        best[pid] = ranked[0][0]
    return best


def oracle_codes(rows: Sequence[dict]) -> dict[str, str]:
    """problem id -> its most frequent correct code (ties: the smaller text), for problems that have one."""
    counts: dict[str, Counter] = {}
    for row in rows:
        if row["correct"] and row["code"].strip():
            counts.setdefault(row["id"], Counter())[row["code"]] += 1
    return {pid: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for pid, c in counts.items()}


def _as_answer(code: str) -> str:
    return code.strip()


def _prefix_pairs(rows, problems, targets: dict[str, str], template: str) -> list[dict]:
    """Every history prefix of every trajectory of a problem in ``targets``, with that target."""
    by_id = {p.id: p for p in problems}
    out = []
    for (_, pid, _), turns in trajectories(rows).items():
        if pid not in targets:
            continue
        for t in range(len(turns)):
            out.append({"id": pid, "turn": t, "prompt": history(by_id[pid].prompt, turns[:t], template),
                        "completion": [{"role": "assistant", "content": _as_answer(targets[pid])}]})
    return out


def _dedupe(pairs: list[dict]) -> list[dict]:
    seen, out = set(), []
    for p in sorted(pairs, key=lambda x: (x["id"], x["turn"], json.dumps(x["prompt"], sort_keys=True),
                                          x["completion"][0]["content"])):
        key = json.dumps([p["prompt"], p["completion"]], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def relabel(method: str, rows: Sequence[dict], problems: Sequence[Problem], scores: dict[tuple[str, str], float],
            top_k: int = 6, template: str = FEEDBACK_TEMPLATE) -> list[dict]:
    """The generator's training pairs (``prompt`` messages, ``completion``) for ``method``
    (see METHODS) from the turn rows of every iteration so far and the learned verifier's scores of
    their codes ((id, code) -> score). Duplicate pairs are kept once; sorted."""
    if method == "mucode":
        return _dedupe(_prefix_pairs(rows, problems, best_codes(rows, scores), template))
    if method == "multi_star_r":
        return _dedupe(_prefix_pairs(rows, problems, oracle_codes(rows), template))
    if method == "mucode_r":  # the two sets concatenated: a pair in both is there twice
        return (_dedupe(_prefix_pairs(rows, problems, best_codes(rows, scores), template))
                + _dedupe(_prefix_pairs(rows, problems, oracle_codes(rows), template)))
    if method == "multi_star":
        by_id = {p.id: p for p in problems}
        out = []
        for (_, pid, _), turns in trajectories(rows).items():
            if turns[-1]["correct"]:
                for t, turn in enumerate(turns):
                    out.append({"id": pid, "turn": t, "prompt": history(by_id[pid].prompt, turns[:t], template),
                                "completion": [{"role": "assistant", "content": turn["completion"]}]})
        return _dedupe(out)
    if method == "star":
        by_id = {p.id: p for p in problems}
        out = [{"id": row["id"], "turn": 0, "prompt": [{"role": "user", "content": by_id[row["id"]].prompt}],
                "completion": [{"role": "assistant", "content": _as_answer(row["code"])}]}
               for row in rows if row["turn"] == 0 and row["correct"]]
        return _dedupe(out)
    if method == "rft_lv":
        by_id = {p.id: p for p in problems}
        first: dict[str, list[tuple]] = {}
        for row in rows:
            if row["turn"] == 0 and row["code"].strip():
                first.setdefault(row["id"], []).append(
                    (-scores[(row["id"], row["code"])], row.get("iteration", 0), row["rollout"], row["code"]))
        out = []
        for pid, ranked in first.items():
            for *_, code in sorted(ranked)[:top_k]:
                out.append({"id": pid, "turn": 0, "prompt": [{"role": "user", "content": by_id[pid].prompt}],
                            "completion": [{"role": "assistant", "content": _as_answer(code)}]})
        return _dedupe(out)
    raise ValueError(f"unknown µCode method {method!r} (known: {', '.join(METHODS)})")


# ---- multi-turn best-of-N ---------------------------------------------------------------------


def select(selector: str, candidates: Sequence[dict], scores: Sequence[float], rng: random.Random) -> int:
    """The index of the candidate ``selector`` picks: ``random``; ``verifier`` (highest score);
    ``public`` (at random among those that pass the public tests, else among all); ``public_verifier``
    (the highest score among those that pass the public tests, else among all). Ties: the first."""
    idx = list(range(len(candidates)))
    if selector in ("public", "public_verifier"):
        passing = [i for i in idx if candidates[i]["public"]]
        idx = passing or idx
    if selector in ("random", "public"):
        return idx[rng.randrange(len(idx))]
    if selector in ("verifier", "public_verifier"):
        return max(idx, key=lambda i: (scores[i], -i))
    raise ValueError(f"unknown selector {selector!r} (known: {', '.join(SELECTORS)})")


def best_of_n(generate: Generate, verify: Verify, score: Score | None, problems: Sequence[Problem], n: int,
              turns: int, selector: str, seed: int, stage: str = "bon", template: str = FEEDBACK_TEMPLATE,
              prompt_of: Callable[[Problem], str] | None = None) -> dict[str, list[dict]]:
    """Multi-turn best-of-N: at each turn ``n`` candidates from the conversation so far; ``selector``
    picks one; the episode ends when the pick passes the public tests (all the policy can see), else
    its feedback starts the next turn. Returns problem id -> the picked turns, in order.

    Candidate j of turn t has the seed of (problem, j, t), so selectors that share a history share
    their candidates (the callables may cache on the request)."""
    prompt_of = prompt_of or (lambda p: p.prompt)
    by_id = {p.id: p for p in problems}
    picked: dict[str, list[dict]] = {p.id: [] for p in problems}
    live = sorted(picked)
    for t in range(turns):
        if not live:
            break
        requests = [GenerationRequest(f"{pid}#c{j}#t{t}", tuple(history(prompt_of(by_id[pid]), picked[pid], template)),
                                      _seed(seed, stage, pid, j, t)) for pid in live for j in range(n)]
        completions = generate(requests)
        items = [(by_id[r.request_id.split("#")[0]], c) for r, c in zip(requests, completions)]
        outcomes = [turn_outcome(v) for v in verify(items)]
        needs_score = selector in ("verifier", "public_verifier")
        scores = score(items) if needs_score and score is not None else [0.0] * len(items)
        still = []
        for k, pid in enumerate(live):
            cands = [{**outcomes[k * n + j], "completion": completions[k * n + j]} for j in range(n)]
            i = select(selector, cands, scores[k * n:(k + 1) * n], random.Random(_seed(seed, f"{stage}/pick", pid, t)))
            picked[pid].append({**cands[i], "candidate": i, "score": round(float(scores[k * n + i]), 6)})
            if not cands[i]["public"]:
                still.append(pid)
        live = still
    return picked


def success_by_turn(turns: Sequence[dict], limit: int) -> list[bool]:
    """Success at turn t = 1..limit: some pick at a turn <= t passed the public tests, and the first
    such pick (where the episode stopped) passes the private tests."""
    out = []
    for t in range(1, limit + 1):
        stop = next((x for x in turns[:t] if x["public"]), None)
        out.append(bool(stop is not None and stop["private"]))
    return out


# ---- tests hidden -----------------------------------------------------------------------------


def prompt_without_tests(problem: Problem) -> str:
    """The prompt with its unit tests taken out (the tests-hidden, POMDP setting): a doctest
    (``>>>`` and the line after it), a line quoting an assert, or an ``Example: <call> == <value>``
    sentence. A prompt that quotes none of its public tests is an error (nothing would be hidden)."""
    text = problem.prompt
    exprs = [re.sub(r"^assert\s+", "", t.strip()) for t in problem.public_tests]
    out = text
    for expr in exprs:
        out = re.sub(r"\s*Example:\s*" + re.escape(expr) + r"\.?", "", out)
    lines, kept, skip = out.split("\n"), [], False
    for line in lines:
        if skip:
            skip = False
            continue
        if line.strip().startswith(">>>"):
            skip = True
            continue
        if any(expr in line for expr in exprs) or line.strip() == "Your code should pass this test:":
            continue
        kept.append(line)
    out = "\n".join(kept)
    if out == text:
        raise ValueError(f"problem {problem.id}: its prompt quotes none of its public tests, so the tests-hidden "
                         "setting would hide nothing")
    return out


@dataclass(frozen=True)
class EvalSettings:
    """How ``evaluate`` runs: ``candidates`` (N) per turn, ``turns`` (the longest turn limit),
    ``report_turns`` (BoN@t and Pass@t are quoted at this t), ``selector`` (the method's own),
    ``repeats`` (independent BoN runs, averaged per problem; their spread is in the SE)."""

    candidates: int = 5
    turns: int = 6
    report_turns: int = 3
    selector: str = "public_verifier"
    repeats: int = 1


def _mean_successes(runs: list[dict[str, list[dict]]], limit: int) -> list[list[float]]:
    pids = sorted(runs[0])
    return [[sum(success_by_turn(run[pid], limit)[t] for run in runs) / len(runs) for t in range(limit)]
            for pid in pids]


def summarize_runs(runs: list[dict[str, list[dict]]], limit: int) -> list[dict]:
    """Per turn limit 1..limit: the mean success over problems (each problem's mean over the
    repeats), its standard error over problems and the number of problems."""
    per_problem = _mean_successes(runs, limit)
    n = len(per_problem)
    out = []
    for t in range(limit):
        values = [row[t] for row in per_problem]
        mean = sum(values) / n if n else 0.0
        var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        out.append({"turn": t + 1, "rate": round(mean, 6), "se": round(math.sqrt(var / n), 6) if n else 0.0, "n": n})
    return out


# ---- the callables a job passes in --------------------------------------------------------------


class CachedGenerate:
    """``backend.generate`` with fixed sampling, each distinct (conversation, seed) generated once:
    selectors that share a history share their candidates and pay for them once."""

    def __init__(self, backend, sampling):
        self.backend, self.sampling, self.cache = backend, sampling, {}

    def __call__(self, requests: list[GenerationRequest]) -> list[str]:
        keys = [(json.dumps(r.messages, sort_keys=True), r.seed) for r in requests]
        todo = {k: r for k, r in zip(keys, requests) if k not in self.cache}
        if todo:
            ordered = sorted(todo.items())
            for (k, _), text in zip(ordered, self.backend.generate([r for _, r in ordered], self.sampling)):
                self.cache[k] = text
        return [self.cache[k] for k in keys]


class CachedVerify:
    """The code verifier on (problem, completion) pairs, each distinct pair judged once; returns
    verdict dicts."""

    def __init__(self, settings):
        self.settings, self.cache = settings, {}

    def __call__(self, items: list[tuple[Problem, str]]) -> list[dict]:
        from pidistill.verifiers import verify_items

        keys = [(p.id, c) for p, c in items]
        todo = sorted({k: (p, c) for k, (p, c) in zip(keys, items) if k not in self.cache}.items())
        for (k, _), verdict in zip(todo, verify_items([pc for _, pc in todo], self.settings)):
            self.cache[k] = verdict.to_dict()
        return [self.cache[k] for k in keys]


def evaluate(greedy: Generate, sample: Generate, verify: Verify, scorers: dict[str, Score],
             problems: Sequence[Problem], settings: EvalSettings, seed: int, hidden: bool = False,
             template: str = FEEDBACK_TEMPLATE, selectors: Sequence[str] = SELECTORS) -> dict:
    """One policy's µCode evaluation on one dataset:

    - ``pass``: Pass@t, one greedy candidate a turn (the authors' script), t = 1..turns;
    - ``bon``: BoN@t per selector of ``selectors`` (the method's own always), with the first scorer of
      ``scorers`` (the policy's own verifier); the method's selector runs to ``turns``, the others to
      ``report_turns``;
    - ``bon_by_verifier``: BoN@t with the method's selector and each other scorer (the
      verifier-iteration table);
    - ``hidden`` (when asked): BoN@t, t = 1..report_turns, with the unit tests taken out of the prompts.
    Rates are fractions; ``se`` is the standard error over problems."""
    own = next(iter(scorers))
    out: dict = {"n_problems": len(problems), "settings": asdict(settings), "verifier": own}
    greedy_run = best_of_n(greedy, verify, None, problems, 1, settings.turns, "random", seed, stage="greedy",
                           template=template)
    out["pass"] = summarize_runs([greedy_run], settings.turns)

    def bon(scorer, selector, turns, prompt_of=None, stage="bon"):
        runs = [best_of_n(sample, verify, scorer, problems, settings.candidates, turns, selector,
                          derive_seed(seed, "repeat", k), stage=stage, template=template, prompt_of=prompt_of)
                for k in range(settings.repeats)]
        return summarize_runs(runs, turns)

    for sel in selectors:
        if sel not in SELECTORS:
            raise ValueError(f"unknown selector {sel!r} (known: {', '.join(SELECTORS)})")
    out["bon"] = {sel: bon(scorers[own], sel, settings.turns if sel == settings.selector else settings.report_turns)
                  for sel in SELECTORS if sel in selectors or sel == settings.selector}
    out["bon_by_verifier"] = {name: (out["bon"][settings.selector][:settings.report_turns] if name == own
                                     else bon(s, settings.selector, settings.report_turns))
                              for name, s in scorers.items()}
    if hidden:
        out["hidden"] = bon(scorers[own], settings.selector, settings.report_turns, prompt_without_tests, "hidden")
    return out
