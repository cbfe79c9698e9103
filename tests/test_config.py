import copy

import pytest
import yaml

from pidistill.config import (
    ConfigError,
    child_policy,
    policy_lineage,
    policy_method,
    policy_parent,
    policy_round,
    study_runs,
    validate_config,
)


@pytest.fixture
def demo(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def test_demo_config_is_valid(demo):
    validate_config(demo)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["studies"]["pi_content"].update(seeds=["one"]), r"studies\.pi_content\.seeds\[0\]"),
        (lambda c: c["methods"]["gold"].update(pii="gold"), r"methods\.gold: unknown key\(s\) \['pii'\]"),
        (lambda c: c["methods"]["gold"].update(pi="golden"), r"methods\.gold\.pi"),
        (lambda c: c["studies"]["pi_content"].update(methods=["gold", "nosuch"]), r"studies\.pi_content: unknown method 'nosuch'"),
        (lambda c: c["studies"]["pi_content"].update(methods=["tests"]), r"methods\.tests\.pi: 'tests' needs a code dataset"),
        (lambda c: c["datasets"]["toy_math"]["evaluation"].update(k=[1, 99]), r"datasets\.toy_math\.evaluation\.k"),
        (lambda c: c["train_defaults"].update(learning_rate=-1), r"train_defaults\.learning_rate"),
        (lambda c: c.update(typo=1), r"unknown key\(s\) \['typo'\]"),
        (lambda c: c["studies"]["iterative"].pop("rounds"), r"studies\.iterative: kind 'rounds' needs"),
        (lambda c: c["models"]["tiny"]["pretrain"].update(micro_batches=5),
         r"models\.tiny\.pretrain\.micro_batches: 5 does not divide batch_size 64"),
    ],
)
def test_config_errors_name_the_key(demo, mutate, message):
    bad = copy.deepcopy(demo)
    mutate(bad)
    with pytest.raises(ConfigError, match=message):
        validate_config(bad)


def test_policy_paths():
    p = child_policy(child_policy("base", "gold"), "tryagain")
    assert p == "base/r1-gold/r2-tryagain"
    assert policy_round(p) == 2 and policy_method(p) == "tryagain" and policy_parent(p) == "base/r1-gold"
    assert policy_lineage(p) == ["base/r1-gold", "base/r1-gold/r2-tryagain"]
    assert policy_lineage("base") == []


def test_study_runs_share_the_base(demo):
    runs = study_runs(demo, "pi_content")
    assert len(runs) == len(demo["studies"]["pi_content"]["seeds"]) * (1 + 5)
    assert {r.policy for r in runs if r.seed == 1} == {"base", "base/r1-gold", "base/r1-gibberish", "base/r1-wrong",
                                                       "base/r1-tryagain", "base/r1-opsd_answer"}
    rounds = study_runs(demo, "iterative")
    assert [r.policy for r in rounds] == ["base", "base/r1-tryagain", "base/r1-tryagain/r2-tryagain"]


def test_a_method_with_its_own_seeds_runs_them_each_with_its_base(demo):
    """method_seeds (the paper's 5-seed OPSD row of a 3-seed study): the method runs its own seeds,
    every seed any method runs has its base policy, the other methods keep the study's seeds."""
    cfg = copy.deepcopy(demo)
    cfg["studies"]["pi_content"].update(methods=["gold", "opsd_answer"], seeds=[1, 2], method_seeds={"opsd_answer": [1, 2, 3]})
    validate_config(cfg)
    runs = {(r.seed, r.policy) for r in study_runs(cfg, "pi_content")}
    assert runs == {(1, "base"), (2, "base"), (3, "base"), (1, "base/r1-gold"), (2, "base/r1-gold"),
                    (1, "base/r1-opsd_answer"), (2, "base/r1-opsd_answer"), (3, "base/r1-opsd_answer")}
    cfg["studies"]["pi_content"]["method_seeds"] = {"tryagain": [3]}
    with pytest.raises(ConfigError, match="method_seeds.tryagain: not one of the study's methods"):
        validate_config(cfg)


@pytest.mark.parametrize("edit, match", [
    # test results as PI on a math study
    (lambda c: c["studies"]["pi_content"]["methods"].append("opsd_tests"), r"opsd_tests.train.privileged: 'tests' needs a code"),
    # a graded threshold without candidates
    (lambda c: c["methods"]["opsd_answer"].update(filter={"threshold": 0.5}), r"opsd_answer.filter.threshold"),
    # the base teacher from round 2 on
    (lambda c: c["studies"]["iterative"].update(method="opsd_answer"), r"opsd_answer.train.teacher_model_kind: 'base'"),
    # a PI the domain has no meaning for
    (lambda c: c["methods"]["opsd_answer"]["train"].update(privileged="skeleton"), None),
])
def test_opsd_methods_are_checked_against_their_studies(demo, edit, match):
    cfg = copy.deepcopy(demo)
    edit(cfg)
    if match is None:  # skeleton is a hook any domain may fill (meta.skeleton): accepted
        validate_config(cfg)
        return
    with pytest.raises(ConfigError, match=match):
        validate_config(cfg)


def test_canonical_sorts_mappings_not_lists():
    from pidistill.config import canonical

    out = canonical({"b": 1, "a": {"d": [3, {"z": 1, "y": 2}], "c": 0}})
    assert list(out) == ["a", "b"] and list(out["a"]) == ["c", "d"]
    assert out["a"]["d"][0] == 3 and list(out["a"]["d"][1]) == ["y", "z"]


def test_a_formal_study_needs_a_named_checker(demo):
    cfg = copy.deepcopy(demo)
    cfg["datasets"]["minif2f"] = {**copy.deepcopy(cfg["datasets"]["toy_math"]), "loader": "minif2f-deepseek",
                                  "source": "minif2f.jsonl", "domain": "formal", "train_options": {}, "test_options": {}}
    cfg["studies"]["lean"] = {"title": "Lean", "kind": "conditions", "dataset": "minif2f", "model": "tiny",
                              "methods": ["tryagain"], "seeds": [1]}
    del cfg["verifier"]["checker"]  # the demo's is coq
    with pytest.raises(ConfigError, match=r"verifier.checker: study '\w+' has formal problems"):
        validate_config(cfg)
    cfg["verifier"]["checker"] = "lean-server"
    with pytest.raises(ConfigError, match=r"verifier.server_url: verifier.checker is lean-server"):
        validate_config(cfg)
    cfg["verifier"]["server_url"] = "ftp://x"
    with pytest.raises(ConfigError, match=r"verifier.server_url"):
        validate_config(cfg)
    cfg["verifier"]["server_url"] = "http://lean-node:8000"
    validate_config(cfg)
    # or the installation each verification job starts, for the dataset's miniF2F variant; not both
    cfg["verifier"]["lean_server"] = {"variant": "minif2f-deepseek"}
    with pytest.raises(ConfigError, match=r"verifier.server_url: .*either .*not both"):
        validate_config(cfg)
    del cfg["verifier"]["server_url"]
    validate_config(cfg)
    cfg["verifier"]["lean_server"] = {"variant": "minif2f-lean4", "prefix": "/shared/lean"}
    with pytest.raises(ConfigError, match=r"lean_server.variant: 'minif2f-lean4', but study 'lean' uses .*minif2f-deepseek"):
        validate_config(cfg)
    cfg["verifier"]["lean_server"] = {"variant": "lean3"}
    with pytest.raises(ConfigError, match=r"verifier.lean_server.variant"):
        validate_config(cfg)
    cfg["verifier"] = {"checker": "coq"}
    validate_config(cfg)


def test_skeleton_pi_needs_formal_problems_and_a_diagnosis_its_model(demo):
    cfg = copy.deepcopy(demo)
    cfg["methods"]["skel"] = {"pi": "skeleton"}
    cfg["studies"]["pi_content"]["methods"] = ["tryagain", "skel"]
    with pytest.raises(ConfigError, match=r"methods.skel.pi: 'skeleton' needs a formal dataset.*toy_math"):
        validate_config(cfg)
    cfg = copy.deepcopy(demo)
    cfg["methods"]["diag"] = {"pi": "diagnosis", "source": {"kind": "retry", "diagnosis_model": "nobody"}}
    cfg["studies"]["pi_content"]["methods"] = ["tryagain", "diag"]
    with pytest.raises(ConfigError, match=r"methods.diag.source.diagnosis_model: unknown model 'nobody'"):
        validate_config(cfg)
    cfg["methods"]["diag"] = {"pi": "diagnosis"}
    with pytest.raises(ConfigError, match=r"methods.diag.source: pi 'diagnosis' needs source.diagnosis_model"):
        validate_config(cfg)
    cfg["methods"]["diag"] = {"source": {"kind": "samples", "n": 2}, "pi_max_chars": 10}
    with pytest.raises(ConfigError, match=r"methods.diag: pi, k and the retry wording belong to retry sources"):
        validate_config(cfg)


def test_the_demo_runs_every_study_of_the_paper(demo):
    """The demo builds every study id of PAPER.md (and its variants): none is switched off."""
    from pidistill.config import run_studies

    assert not [s for s, v in demo["studies"].items() if not v.get("enabled", True)]
    paper_ids = {"pi_content", "code_retry", "iterative", "amortized", "k_retries", "controls", "opsd", "levels",
                 "scale", "domains", "lean", "mucode", "cost"}
    assert paper_ids <= set(demo["studies"])
    assert {"lean", "lean_iterative"} <= set(run_studies(demo)) and demo["verifier"]["checker"] == "coq"