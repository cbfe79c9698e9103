"""The toy formal domain (Coq): its problems, and, with coqc for real, that every reference proof
checks, that the skeletons are outlines (holes the verifier refuses) and that the author's slips fail."""

import random
import shutil
from pathlib import Path

import pytest

from pidistill.domains import toy_formal
from pidistill.domains.registry import load
from pidistill.verifiers import VerifierSettings
from pidistill.verifiers.formal import verify_batch

coq_missing = pytest.mark.skipif(not shutil.which("coqc"), reason="coqc not installed (make coq)")
SETTINGS = VerifierSettings(checker="coq", timeout_s=10, workers=2)


def _every_item():
    items = [toy_formal.FormalItem("eq", a, b) for a in range(10) for b in range(10)]
    items += [toy_formal.FormalItem("le", a, b) for a in range(10) for b in range(a, 10)]
    items += [toy_formal.FormalItem("ind", lemma=k) for k in sorted(toy_formal.INDUCTIVE)]
    items += [toy_formal.FormalItem("prop", lemma=k) for k in sorted(toy_formal.PROPOSITIONAL)]
    return items


def test_splits_are_distinct_formal_problems():
    train = load("toy_formal", split="train", n_train=40, n_test=20)
    test = load("toy_formal", split="test", n_train=40, n_test=20)
    assert len(train) == 40 and len(test) == 20
    assert not {p.meta["key"] for p in train} & {p.meta["key"] for p in test}
    p = train[0]
    assert p.domain == "formal" and p.meta["language"] == "coq" and p.meta["header"] == ""
    assert p.meta["statement"].startswith(f"Theorem {p.meta['name']} : ") and p.meta["statement"].endswith("Proof.")
    assert p.meta["statement"] in p.prompt and p.solution
    assert len(_every_item()) == toy_formal.space_size() == len({i.key for i in _every_item()})
    with_skeleton = [i for i in _every_item() if i.skeleton]
    assert with_skeleton and all("admit." in i.skeleton for i in with_skeleton)
    assert all(i.skeleton is None for i in _every_item() if i.family in ("eq", "le"))


@coq_missing
def test_reference_proofs_check_skeletons_are_holes_and_slips_fail():
    items = _every_item()
    problems = [toy_formal.to_problem(it, n, "test") for n, it in enumerate(items)]
    verdicts = verify_batch([(p, p.solution) for p in problems], SETTINGS)
    assert [p.meta["key"] for p, v in zip(problems, verdicts) if not v.passed] == []
    skeletal = [(p, p.meta["skeleton"]) for p in problems if "skeleton" in p.meta]
    assert all(v.reason == "unsound" for v in verify_batch(skeletal, SETTINGS))
    # every slip of one item per kind of theorem
    kinds = {}
    for it in items:
        kinds.setdefault((it.family, it.lemma, it.family == "le" and it.a == it.b), it)
    slipped = [(toy_formal.to_problem(it, n, "test"), s) for n, it in enumerate(kinds.values()) for s in toy_formal.slips(it)]
    verdicts = verify_batch(slipped, SETTINGS)
    assert [(p.meta["key"], s) for (p, s), v in zip(slipped, verdicts) if v.passed] == []
    assert {v.reason for v in verdicts} <= {"checker_error", "unsound"}


def test_the_author_is_right_at_its_rate():
    rng = random.Random(0)
    item = toy_formal.FormalItem("ind", lemma="add_0_r")
    attempts = [toy_formal.author_attempt(item, rng, 0.3) for _ in range(2000)]
    share = sum(a == item.proof for a in attempts) / len(attempts)
    assert 0.26 < share < 0.34 and set(attempts) - {item.proof} <= set(toy_formal.slips(item))


@coq_missing
def test_the_corpus_has_the_checkers_word_on_the_first_attempt_as_the_type_checker_pi_has():
    """A third of a formal corpus's hinted retries carry Coq's messages on the slip just made, as
    the verifier writes them for the type-checker PI (cut to feedback_max_chars); a math corpus is
    untouched and its author module does not reach the verifier."""
    from pidistill.codedeps import code_files
    from pidistill.domains import toy_formal_author
    from pidistill.retry import DEFAULT_RETRY_TEXT
    from pidistill.tinymodel import AUTHORS, TinyModelConfig, corpus_dialogues

    cfg = TinyModelConfig(seed=3, corpus_size=600, feedback_max_chars=120,
                          p_correct={"math": 0.5, "code": 0.5, "formal": 0.45})
    rows = corpus_dialogues({"toy_formal": "toy_formal"}, {"formal": DEFAULT_RETRY_TEXT["formal"]}, cfg)
    retries = [r["messages"] for r in rows if len(r["messages"]) == 4]
    checked = [m for m in retries if "The checker says:" in m[2]["content"]]
    hinted = [m for m in retries if m[2]["content"] != DEFAULT_RETRY_TEXT["formal"]]
    assert checked and 0.2 < len(checked) / len(hinted) < 0.5
    for m in checked[:10]:
        theorem = m[0]["content"].split("Theorem ")[1].split(" :")[0]
        item = next(i for i in _every_item() if toy_formal.prompt_for(i, theorem) == m[0]["content"])
        [feedback] = toy_formal_author.attempt_feedback([(item, theorem, m[1]["content"])])
        assert m[2]["content"].endswith("The checker says:\n" + feedback.strip()[:120])
        assert m[3]["content"] != m[1]["content"]
    repo = Path(__file__).resolve().parents[1]
    deps = code_files(repo / "scripts" / "pretrain_demo_model.py", repo, [AUTHORS["toy_math"]])
    assert not any("verifiers" in str(d) for d in deps)
    assert any("verifiers/coq.py" in str(d) for d in code_files(repo / "scripts" / "pretrain_demo_model.py", repo,
                                                                 [AUTHORS["toy_formal"]]))


def test_a_tokenizer_corpus_reads_the_formal_author_without_the_checker():
    """``tokenizer_datasets``: the toy prover's first model's tokenizer also reads toy Coq (unchecked:
    no coqc call, the checker's hints are peer hints), so the provers' corpora take about half the
    tokens a math-and-code tokenizer makes of them; the plain formal module never reaches the
    verifier, so tiny's pretraining does not depend on it."""
    import statistics

    from pidistill.codedeps import code_files
    from pidistill.retry import DEFAULT_RETRY_TEXT
    from pidistill.tinymodel import WRITERS, TinyModelConfig, build_tokenizer, corpus_dialogues, tokenizer_corpus

    retry = {d: DEFAULT_RETRY_TEXT[d] for d in ("math", "formal")}
    cfg = TinyModelConfig(seed=0, corpus_size=3000, p_correct={"math": 0.5})  # formal: right half the time
    math_rows = corpus_dialogues({"toy_math": "toy_math"}, retry, cfg)
    unchecked = tokenizer_corpus({"toy_formal": "toy_formal"}, retry, cfg, corpus_datasets=2)
    assert len(unchecked) == 1500  # as many as each of the corpus's two datasets has
    assert not any("The checker says:" in m["content"] for r in unchecked for m in r["messages"])
    hinted = [r for r in unchecked if len(r["messages"]) == 4 and r["messages"][2]["content"] != retry["formal"]]
    assert hinted  # the hints are still there, all of them a peer's
    texts = [m["content"] for r in math_rows for m in r["messages"]]
    formal = [m["content"] for r in unchecked for m in r["messages"]]
    narrow = build_tokenizer(texts, vocab_size=512)
    broad = build_tokenizer(texts + formal, vocab_size=512)
    proofs = [toy_formal.FormalItem("ind", lemma=k).proof for k in sorted(toy_formal.INDUCTIVE)]
    mean = {name: statistics.mean(len(tok(p)["input_ids"]) for p in proofs) for name, tok in
            (("narrow", narrow), ("broad", broad))}
    assert mean["broad"] < 0.7 * mean["narrow"]
    assert len(broad) == 512
    repo = Path(__file__).resolve().parents[1]
    deps = code_files(repo / "scripts" / "pretrain_demo_model.py", repo, [WRITERS["toy_formal"]])
    assert not any("verifiers" in str(d) for d in deps)


def test_a_model_that_continues_another_keeps_its_tokenizer():
    import yaml

    from pidistill.config import ConfigError, validate_config

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    config["models"]["tiny_prover"]["pretrain"]["tokenizer_datasets"] = ["toy_code"]
    with pytest.raises(ConfigError, match=r"models\.tiny_prover\.pretrain\.tokenizer_datasets: .*keeps its tokenizer"):
        validate_config(config)
    del config["models"]["tiny_prover"]["pretrain"]["tokenizer_datasets"]
    config["models"]["tiny"]["pretrain"]["tokenizer_datasets"] = ["toy_nothing"]
    with pytest.raises(ConfigError, match=r"models\.tiny\.pretrain\.tokenizer_datasets: unknown dataset 'toy_nothing'"):
        validate_config(config)
