"""µCode (pidistill.mucode, pidistill.reward, pidistill.report.mucode): episodes and their feedback,
pair sampling, relabeling on hand-made trajectories with known scores, the success-at-turn-t rule, the
selectors, the tests-hidden prompts, and a few real steps of verifier (BT and BCE) and generator
training on a tiny toy-code model."""

import copy
import json
import random

import pytest
import yaml

from conftest import SHARED_DATASETS, pretrain_tiny
from pidistill import mucode
from pidistill.config import ConfigError, validate_config
from pidistill.domains.toy_code import make_splits
from pidistill.generation import GenerationRequest
from pidistill.problems import Problem


def _problem(pid, prompt="Write f. Example: f(1) == 2"):
    return Problem(id=pid, domain="code", prompt=prompt, solution="def f(x):\n    return x+1", entry_point="f",
                   tests=["assert f(5) == 6"], public_tests=["assert f(1) == 2"])


def _verdict(code, public, private):
    return {"extracted": code, "passed": private, "public_test_results": [public],
            "public_feedback": "All 1 public test(s) passed." if public else f"Public test 1 of 1 failed: {code}"}


class Table:
    """A policy that answers from a table: (problem id, turn) -> code (the turn from the request id),
    and a verifier that judges codes by name: 'ok' passes all, 'pub' only the public test."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def generate(self, requests):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            pid, *_, t = r.request_id.split("#")
            out.append(self.answers[(pid, int(t[1:]))])
        return out

    @staticmethod
    def verify(items):
        return [_verdict(c, c.startswith(("ok", "pub")), c.startswith("ok")) for _, c in items]


def test_an_episode_ends_at_its_first_correct_turn_and_a_failed_turn_feeds_back_the_public_tests():
    a, b = _problem("a"), _problem("b")
    table = Table({("a", 0): "bad1", ("a", 1): "ok1", ("a", 2): "never", ("b", 0): "pub", ("b", 1): "bad", ("b", 2): "bad"})
    rows = mucode.run_episodes(table.generate, table.verify, [a, b], n=2, turns=3, seed=7)
    turns = {(r["id"], r["rollout"]): [x["turn"] for x in rows if (x["id"], x["rollout"]) == (r["id"], r["rollout"])]
             for r in rows}
    assert turns[("a", 0)] == [0, 1]  # correct at turn 1: no turn 2
    assert turns[("b", 1)] == [0, 1, 2]  # passing the public test alone does not end a rollout
    a1 = next(r for r in rows if (r["id"], r["rollout"], r["turn"]) == ("a", 0, 1))
    assert a1["correct"] and a1["public"] and a1["private"]
    # the turn-1 request saw the prompt, the failed code and its public-test feedback
    req = next(r for r in table.calls[1] if r.request_id == "a#r0#t1")
    assert [m["role"] for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[1]["content"] == "bad1"
    assert req.messages[2]["content"] == "Feedback: Public test 1 of 1 failed: bad1"
    # per-request seeds: the rollouts of one problem differ, the same run repeats
    seeds = {r.request_id: r.seed for calls in table.calls for r in calls}
    assert seeds["a#r0#t0"] != seeds["a#r1#t0"]
    again = Table(table.answers)
    mucode.run_episodes(again.generate, again.verify, [a, b], n=2, turns=3, seed=7)
    assert {r.request_id: r.seed for calls in again.calls for r in calls} == seeds


def test_the_code_verifiers_public_feedback_quotes_the_public_test_and_never_a_private_one():
    from pidistill.verifiers import VerifierSettings, verify_items

    problem = make_splits(0, 5, 5)[0][0]
    right = problem.solution
    public_only = f"def f(x):\n    return {problem.public_tests[0].split('== ')[1]} if x == {problem.public_tests[0].split('f(')[1].split(')')[0]} else -99"
    wrong = "def f(x):\n    return -99"
    verdicts = [v.to_dict() for v in verify_items([(problem, c) for c in (right, public_only, wrong)],
                                                  VerifierSettings(progress=False))]
    outcomes = [mucode.turn_outcome(v) for v in verdicts]
    assert [(o["public"], o["private"], o["correct"]) for o in outcomes] == [
        (True, True, True), (True, False, False), (False, False, False)]
    assert outcomes[1]["feedback"] == "All 1 public test(s) passed."
    assert problem.public_tests[0] in outcomes[2]["feedback"]
    for o in outcomes:
        assert not any(t in o["feedback"] for t in problem.tests if t not in problem.public_tests)
    # a program that does not load fails the public tests, with its load error as the feedback
    broken = mucode.turn_outcome(verify_items([(problem, "def f(x) return")], VerifierSettings(progress=False))[0].to_dict())
    assert not broken["public"] and "SyntaxError" in broken["feedback"]


def _rows():
    """Problem a: rollout 0 fails then succeeds; rollout 1 fails three times. Problem b: never correct."""
    spec = [("a", 0, ["a_bad1", "a_ok"]), ("a", 1, ["a_bad2", "a_bad3", "a_bad1"]), ("b", 0, ["b_low", "b_high"])]
    rows = []
    for pid, r, codes in spec:
        for t, code in enumerate(codes):
            ok = code.endswith("ok")
            rows.append({"iteration": 0, "id": pid, "rollout": r, "turn": t, "completion": f"<{code}>", "code": code,
                         "public": ok, "private": ok, "correct": ok, "feedback": f"fb {code}"})
    return rows


SCORES = {("a", "a_bad1"): 0.9, ("a", "a_ok"): -3.0, ("a", "a_bad2"): 0.1, ("a", "a_bad3"): 0.2,
          ("b", "b_low"): -1.0, ("b", "b_high"): 2.0}
PROBLEMS = [_problem("a", "prompt a"), _problem("b", "prompt b")]


def _targets(pairs):
    return {(p["id"], p["turn"], len(p["prompt"])): p["completion"][0]["content"] for p in pairs}


def test_mucode_relabels_every_prefix_with_the_best_code_by_100_oracle_plus_verifier():
    pairs = mucode.relabel("mucode", _rows(), PROBLEMS, SCORES)
    # the oracle outweighs the verifier (a_ok scores -3 but passes); b has no correct code: its top score
    assert {p["completion"][0]["content"] for p in pairs if p["id"] == "a"} == {"a_ok"}
    assert {p["completion"][0]["content"] for p in pairs if p["id"] == "b"} == {"b_high"}
    # prefixes: a has the shared prompt-only one, rollout 0's turn-1 prefix, rollout 1's turns 1 and 2
    assert sorted((p["id"], p["turn"]) for p in pairs) == [("a", 0), ("a", 1), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    a2 = next(p for p in pairs if (p["id"], p["turn"]) == ("a", 2))
    assert [m["content"] for m in a2["prompt"]] == ["prompt a", "<a_bad2>", "Feedback: fb a_bad2", "<a_bad3>",
                                                   "Feedback: fb a_bad3"]
    assert pairs == mucode.relabel("mucode", list(reversed(_rows())), PROBLEMS, SCORES)  # order-free


def test_the_baselines_data():
    rows = _rows()
    star_r = mucode.relabel("multi_star_r", rows, PROBLEMS, SCORES)
    assert {p["id"] for p in star_r} == {"a"} and {p["completion"][0]["content"] for p in star_r} == {"a_ok"}
    star = mucode.relabel("multi_star", rows, PROBLEMS, SCORES)  # the one correct trajectory as sampled
    assert [(p["turn"], p["completion"][0]["content"]) for p in star] == [(0, "<a_bad1>"), (1, "<a_ok>")]
    lv = mucode.relabel("rft_lv", rows, PROBLEMS, SCORES, top_k=1)  # first turns ranked by the verifier
    assert {p["id"]: p["completion"][0]["content"] for p in lv} == {"a": "a_bad1", "b": "b_low"}
    assert all(len(p["prompt"]) == 1 for p in lv)
    # STaR, the single-turn baseline: first turns that pass, as single-turn pairs (none here: a's
    # correct code came at turn 1); a rollout right at once gives its first turn, once however often
    assert mucode.relabel("star", rows, PROBLEMS, SCORES) == []
    right_away = [dict(rows[1], rollout=r, turn=0) for r in (2, 3)]
    star1 = mucode.relabel("star", rows + right_away, PROBLEMS, SCORES)
    assert [(p["id"], p["turn"], p["completion"][0]["content"], len(p["prompt"])) for p in star1] == [("a", 0, "a_ok", 1)]
    both = mucode.relabel("mucode_r", rows, PROBLEMS, SCORES)
    assert len(both) == len(mucode.relabel("mucode", rows, PROBLEMS, SCORES)) + len(star_r)
    with pytest.raises(ValueError, match="unknown µCode method 'nope'"):
        mucode.relabel("nope", rows, PROBLEMS, SCORES)


def test_verifier_pairs_are_distinct_capped_per_problem_and_seeded():
    rows = _rows()
    pairs = mucode.verifier_pairs(rows, per_problem=16, seed=1)
    assert {(p["chosen"], p["rejected"]) for p in pairs} == {("a_ok", "a_bad1"), ("a_ok", "a_bad2"), ("a_ok", "a_bad3")}
    capped = mucode.verifier_pairs(rows, per_problem=2, seed=1)
    assert len(capped) == 2 and capped == mucode.verifier_pairs(rows, per_problem=2, seed=1)
    assert {p["chosen"] for p in capped} == {"a_ok"}
    labels = mucode.verifier_labels(rows)
    assert [(x["code"], x["label"]) for x in labels if x["id"] == "a"] == [
        ("a_bad1", 0.0), ("a_bad2", 0.0), ("a_bad3", 0.0), ("a_ok", 1.0)]


@pytest.mark.parametrize("turns, expected", [
    ([(False, False), (True, True)], [False, True, True]),
    ([(True, False), (True, True)], [False, False, False]),  # stopped at a pick that fails the private tests
    ([(False, True), (False, True), (False, True)], [False, False, False]),  # never passed the public tests
    ([(True, True)], [True, True, True]),
])
def test_success_at_turn_t(turns, expected):
    picks = [{"public": pub, "private": priv} for pub, priv in turns]
    assert mucode.success_by_turn(picks, 3) == expected


def test_selectors():
    cands = [{"public": False}, {"public": True}, {"public": True}, {"public": False}]
    scores = [5.0, 1.0, 2.0, 9.0]
    assert mucode.select("verifier", cands, scores, random.Random(0)) == 3
    assert mucode.select("public_verifier", cands, scores, random.Random(0)) == 2
    assert {mucode.select("public", cands, scores, random.Random(s)) for s in range(20)} == {1, 2}
    assert {mucode.select("random", cands, scores, random.Random(s)) for s in range(40)} == {0, 1, 2, 3}
    none_pass = [{"public": False}] * 3
    assert mucode.select("public_verifier", none_pass, [0.0, 3.0, 1.0], random.Random(0)) == 1
    with pytest.raises(ValueError, match="unknown selector"):
        mucode.select("oracle", cands, scores, random.Random(0))


def test_best_of_n_stops_at_a_public_pass_and_selectors_share_candidates():
    a = _problem("a")
    table = {("c0", "t0"): "bad", ("c1", "t0"): "pub", ("c0", "t1"): "ok", ("c1", "t1"): "pub2"}

    def generate(requests):
        return [table[tuple(r.request_id.split("#")[1:])] for r in requests]

    class Backend:
        def __init__(self):
            self.n = 0

        def generate(self, requests, sampling):
            self.n += len(requests)
            return generate(requests)

    backend = Backend()
    cached = mucode.CachedGenerate(backend, None)
    score = lambda items: [1.0 if c == "bad" else 0.0 for _, c in items]  # noqa: E731  a verifier that is wrong
    by_v = mucode.best_of_n(cached, Table.verify, score, [a], 2, 3, "verifier", seed=1)
    assert [p["completion"] for p in by_v["a"]] == ["bad", "ok"]  # the wrong pick's feedback, then a fix
    assert mucode.success_by_turn(by_v["a"], 3) == [False, True, True]
    by_pub = mucode.best_of_n(cached, Table.verify, score, [a], 2, 3, "public", seed=1)
    assert [p["completion"] for p in by_pub["a"]] == ["pub"]  # passes the public test: stop (fails the private)
    assert mucode.success_by_turn(by_pub["a"], 3) == [False, False, False]
    assert backend.n == 4  # turn 0's two candidates were generated once for both selectors


def test_evaluate_reports_every_table_at_every_turn():
    problems = [_problem("a"), _problem("b")]
    gen = lambda requests: ["ok" if r.request_id.startswith("a") else "bad" for r in requests]  # noqa: E731
    settings = mucode.EvalSettings(candidates=2, turns=4, report_turns=2)
    out = mucode.evaluate(gen, gen, Table.verify, {"iter1": lambda items: [0.0] * len(items),
                                                   "iter0": lambda items: [1.0] * len(items)}, problems, settings, 3,
                          hidden=True)
    assert [r["rate"] for r in out["pass"]] == [0.5] * 4
    assert len(out["bon"]["public_verifier"]) == 4 and len(out["bon"]["random"]) == 2
    assert set(out["bon_by_verifier"]) == {"iter1", "iter0"} and len(out["hidden"]) == 2
    assert out["pass"][0]["se"] == pytest.approx(0.5)  # two problems, one solved: sqrt(0.25 / 1) / sqrt(2) * sqrt(2)
    # a policy outside the selectors table runs its method's selector alone, with the same result
    calls = []
    counted = lambda requests: calls.extend(requests) or gen(requests)  # noqa: E731
    own_scorer = {"iter1": lambda items: [0.0] * len(items)}
    own = mucode.evaluate(gen, counted, Table.verify, own_scorer, problems, settings, 3, selectors=["verifier"])
    assert set(own["bon"]) == {"verifier", "public_verifier"} and own["bon"]["public_verifier"] == out["bon"]["public_verifier"]
    calls.clear()
    alone = mucode.evaluate(gen, counted, Table.verify, own_scorer, problems, settings, 3, selectors=[])
    assert set(alone["bon"]) == {"public_verifier"}
    fewer = len(calls)
    calls.clear()
    mucode.evaluate(gen, counted, Table.verify, own_scorer, problems, settings, 3)
    assert fewer < len(calls)
    with pytest.raises(ValueError, match="unknown selector 'best'"):
        mucode.evaluate(gen, gen, Table.verify, own_scorer, problems, settings, 3, selectors=["best"])


def test_prompt_without_tests_on_the_toy_and_when_nothing_can_be_hidden():
    problem = make_splits(0, 3, 3)[0][0]
    hidden = mucode.prompt_without_tests(problem)
    assert "Example" not in hidden and hidden and problem.prompt.startswith(hidden)
    with pytest.raises(ValueError, match="quotes none of its public tests"):
        mucode.prompt_without_tests(_problem("x", "Write f, with no example."))


@pytest.mark.skipif(not (SHARED_DATASETS / "mbpp.jsonl").exists(), reason="needs ../shared/datasets")
def test_prompt_without_tests_on_real_mbpp_and_humaneval():
    from pidistill.domains.code_benchmarks import load_humaneval, load_mbpp

    for problem in load_mbpp(str(SHARED_DATASETS / "mbpp.jsonl"), split="test")[:20]:
        hidden = mucode.prompt_without_tests(problem)
        assert "assert" not in hidden and problem.public_tests[0] not in hidden
    humaneval = [p for p in load_humaneval(str(SHARED_DATASETS / "HumanEval.jsonl.gz")) if p.public_tests][:20]
    for problem in humaneval:
        assert ">>>" not in mucode.prompt_without_tests(problem)


# ---- a few real steps on a tiny toy-code model -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_code_model(tmp_path_factory):
    return pretrain_tiny(tmp_path_factory.mktemp("tiny_code_model"), "toy_code", "code")


@pytest.fixture(scope="module")
def rollouts(tiny_code_model):
    from pidistill.generation import PolicySpec, SamplingSettings, load_backend
    from pidistill.verifiers import VerifierSettings

    train = make_splits(0, 12, 4)[0]
    backend = load_backend("transformers", PolicySpec(tiny_code_model), batch_size=64, progress=False)
    generate = mucode.CachedGenerate(backend, SamplingSettings(temperature=0.7, max_new_tokens=40))
    rows = mucode.run_episodes(generate, mucode.CachedVerify(VerifierSettings(progress=False)), train, 3, 2, seed=5)
    return train, rows


def test_real_rollouts_on_the_tiny_model(rollouts):
    train, rows = rollouts
    assert {r["id"] for r in rows} == {p.id for p in train}
    assert all(r["turn"] == 0 or not prev["correct"] for r, prev in zip(rows[1:], rows) if r["turn"] > 0)
    # a briefly trained model: some episodes run to the turn limit, and each turn's verdict is the verifier's
    assert max(r["turn"] for r in rows) == 1 and all(r["code"] for r in rows)
    assert all(r["feedback"] for r in rows) and all(r["correct"] == (r["public"] and r["private"]) for r in rows)


@pytest.mark.parametrize("loss", ["bt", "bce"])
def test_verifier_training_and_its_seeded_head(rollouts, tiny_code_model, tmp_path, loss):
    from pidistill.reward import VerifierScorer, VerifierSettings, train_verifier

    train, rows = rollouts
    # the briefly trained model rarely writes a correct code: the reference solutions are the correct ones
    rows = rows + [{"id": p.id, "rollout": 9, "turn": 0, "code": p.solution, "correct": True} for p in train]
    settings = VerifierSettings(loss=loss, steps=4, learning_rate=1e-3, batch_size=4, pairs_per_problem=4)
    summary = train_verifier(tiny_code_model, train, rows, settings, seed=3, out_dir=tmp_path / "v", threads=1)
    assert summary["trained"] and len(summary["loss_history"]) == 4
    items = [(next(p for p in train if p.id == r["id"]), r["code"]) for r in rows[:6]]
    scores = VerifierScorer(tmp_path / "v")(items)
    assert len(scores) == 6 and len(set(scores)) > 1
    # the head is drawn under the seed: the same seed gives the same verifier, another seed another
    untrained = VerifierSettings(loss=loss, steps=1, learning_rate=1e-12, batch_size=4, pairs_per_problem=4)
    heads = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        train_verifier(tiny_code_model, train, rows, untrained, seed, tmp_path / name)
        heads.append(VerifierScorer(tmp_path / name)(items))
    assert heads[0] == heads[1] and heads[0] != heads[2]


def test_verifier_settings_refuse_an_unknown_loss():
    from pidistill.reward import VerifierSettings

    with pytest.raises(ValueError, match="verifier.loss 'mse'"):
        VerifierSettings(loss="mse")


def test_generator_sft_on_relabeled_multi_turn_pairs(rollouts, tiny_code_model, tmp_path):
    from pidistill.generation import PolicySpec, SamplingSettings, load_backend
    from pidistill.sft import TrainSettings, train_adapter

    train, rows = rollouts
    scores = {(r["id"], r["code"]): 0.0 for r in rows}
    pairs = mucode.relabel("mucode", rows, train, scores)
    assert any(len(p["prompt"]) == 3 for p in pairs)  # a multi-turn prefix
    settings = TrainSettings(trainer="full", steps=3, learning_rate=1e-3, batch_size=4)
    summary = train_adapter(pairs, tiny_code_model, [], settings, seed=1, out_dir=tmp_path / "g", threads=1)
    assert summary["trained"] and len(summary["loss_history"]) == 3
    backend = load_backend("transformers", PolicySpec(tiny_code_model, [str(tmp_path / "g")]), progress=False)
    request = GenerationRequest("x", tuple(pairs[0]["prompt"]), 1)
    assert backend.generate([request], SamplingSettings(temperature=0.0, max_new_tokens=8))[0]


# ---- config and report ---------------------------------------------------------------------------


@pytest.fixture
def with_mucode(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["studies"]["mucode"]["enabled"] = True
    return config


def test_the_demo_mucode_study_is_valid(with_mucode):
    validate_config(copy.deepcopy(with_mucode))


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(methods=["mucode", "sft"]), r"studies\.mucode\.methods: unknown µCode method 'sft'"),
    (lambda s: s.update(methods=["multi_star"]), r"must include 'mucode'"),
    (lambda s: s.update(eval_datasets=["toy_math"]), r"studies\.mucode\.eval_datasets: 'toy_math' is a math dataset"),
    (lambda s: s.update(dataset="nosuch"), r"studies\.mucode\.dataset: unknown dataset 'nosuch'"),
    (lambda s: s["eval"].update(report_turns=9), r"studies\.mucode\.eval\.report_turns"),
    (lambda s: s["verifier"].update(loss="mse"), r"studies\.mucode\.verifier\.loss"),
    (lambda s: s.update(feedback_template="Try again"), r"feedback_template: must contain"),
    (lambda s: s.pop("rollouts"), r"rollouts"),
])
def test_bad_mucode_studies_name_the_key(with_mucode, mutate, message):
    mutate(with_mucode["studies"]["mucode"])
    with pytest.raises(ConfigError, match=message):
        validate_config(with_mucode)


def test_the_report_tables_and_numbers_from_evaluations():
    from pidistill.report.mucode import long_rows, numbers, tables, turn_curves

    def ev(method, it, rate, hidden=False):
        series = lambda r, n: [{"turn": t + 1, "rate": r, "se": 0.1, "n": 10} for t in range(n)]  # noqa: E731
        out = {"method": method, "iteration": it, "dataset": "toy_code", "verifier": f"iter{max(0, it - 1)}",
               "settings": {"selector": "public_verifier"}, "pass": series(rate / 2, 4),
               "bon": {s: series(rate, 4 if s == "public_verifier" else 3) for s in mucode.SELECTORS},
               "bon_by_verifier": {f"iter{max(0, it - 1)}": series(rate, 3)}}
        if it == 2 and method == "mucode":
            out["bon_by_verifier"]["iter0"] = series(rate - 0.1, 3)
        if hidden:
            out["hidden"] = series(rate / 4, 3)
        return out

    study = {"name": "mu", "title": "T", "iterations": 2, "turns": 3, "methods": ["mucode", "rft_lv"],
             "eval_datasets": ["toy_code"], "eval": {"turns": 4, "report_turns": 3, "candidates": 2}}
    evals = [(1, ev("base", 0, 0.4, True)), (1, ev("mucode", 1, 0.6)), (1, ev("rft_lv", 1, 0.5)),
             (1, ev("mucode", 2, 0.8, True)), (1, ev("rft_lv", 2, 0.9))]
    df = long_rows("mu", evals)
    tex = tables(study, df)
    assert tex.count(r"\begin{table}") == 4
    assert r"$\mu$Code & 2 & 40.0 $\pm$ 10.0 & 80.0 $\pm$ 10.0" in tex
    assert "iteration 0 & 70.0" in tex
    got = numbers(study, df)
    assert got["mu/base_bon"] == "40.0" and got["mu/mucode_bon"] == "80.0" and got["mu/gain_bon"] == "+40.0"
    assert got["mu/best_method"] == "RFT(LV)" and got["mu/best_bon"] == "90.0"
    tied = long_rows("mu", evals[:-1] + [(1, ev("rft_lv", 2, 0.8))])
    assert numbers(study, tied)["mu/best_method"] == r"$\mu$Code, RFT(LV)"
    curves = turn_curves(study, df)
    assert set(curves["method"]) == {"base", "mucode", "rft_lv"} and curves["turn"].max() == 4
    json.dumps(got)


def test_the_cost_table_counts_every_heavy_mucode_job(with_mucode):
    from pidistill.dagstats import benchmark_files
    from pidistill.derived import GPU_RULES, benchmark_rule

    cfg = validate_config(copy.deepcopy(with_mucode))
    files = benchmark_files(cfg, "mucode", "results")
    study = cfg["studies"]["mucode"]
    methods, iterations = len(study["methods"]), study["iterations"]
    datasets = len(study["eval_datasets"])
    # per iteration: rollouts, verifier and a generator per method; the base and every iteration's
    # policies evaluated on each evaluation set; the tiny model
    assert len(files) == iterations * (2 + methods) + (1 + iterations * methods) * datasets + 1
    assert {benchmark_rule(f) for f in files} == {"sample_rollouts", "train_verifier", "train_generator",
                                                  "evaluate_mucode", "pretrain_demo_model"}
    assert all(benchmark_rule(f) in GPU_RULES for f in files if "pretrain" not in f)
