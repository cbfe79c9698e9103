"""Proof skeletons another model writes (pidistill/skeletons.py): the outlines' requests, their check
by the formal verifier's checker (Coq for real, Lean through a checker that answers as the server
does), the skeleton PI they give the retry and OPSD jobs, the config checks, and the rule script."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pidistill.config import ConfigError, validate_config
from pidistill.domains import toy_formal
from pidistill.domains.minif2f import formal_problem
from pidistill.generation import SamplingSettings
from pidistill.retry import RetrySpec, privileged_info
from pidistill.sampling import sample_outlines
from pidistill.skeletons import with_skeletons
from pidistill.verifiers import VerifierSettings
from pidistill.verifiers.formal import CheckerUnavailable, CheckResult, check_outlines

REPO = Path(__file__).resolve().parents[1]
coq_missing = pytest.mark.skipif(not shutil.which("coqc"), reason="coqc not installed (make coq)")

COQ = formal_problem("add_0_r", "", "Theorem add_0_r : forall n : nat, n + 0 = n.\nProof.", split="train",
                     variant="toy", language="coq")
LEAN = formal_problem("two_add", "import Mathlib\n\n", "theorem two_add (n : ℕ) (h : n = 2) :\n    n + n = 4 := by",
                      split="train", variant="test")


def _rows(*completions, problem=COQ):
    return [{"id": problem.id, "completion": c} for c in completions]


@coq_missing
def test_coq_outlines_judged_as_outlines():
    outlines = {
        "ok": "intros n. induction n as [|n IH].\n- admit.\n- admit.",
        "ok, one case proved": "intros n. induction n as [|n IH].\n- reflexivity.\n- admit.",
        "wrong step": "intros n. discriminate.\n admit.",
        "complete proof": "intros n. induction n as [|n IH].\n- reflexivity.\n- simpl. rewrite IH. reflexivity.",
        "closes itself": "intros n. induction n as [|n IH].\n- admit.\n- admit.\nAdmitted.",
        "other theorem": "```coq\nTheorem add_0_r : forall n : nat, n = n.\nProof.\nadmit.\n```",
        "gives up": "intros n. give_up.",
    }
    problems = [formal_problem(f"t{i}", "", COQ.meta["statement"].replace("add_0_r", f"t{i}"), split="train",
                               variant="toy", language="coq") for i in range(len(outlines))]
    rows = [{"id": p.id, "completion": c} for p, c in zip(problems, outlines.values())]
    got = check_outlines(problems, rows, VerifierSettings(checker="coq", timeout_s=10))
    reasons = dict(zip(outlines, (r["reason"] for r in got)))
    assert reasons == {"ok": "ok", "ok, one case proved": "ok", "wrong step": "checker_error",
                       "complete proof": "no_hole", "closes itself": "unsound", "other theorem": "statement_changed",
                       "gives up": "no_hole"}
    assert got[0]["skeleton"] == outlines["ok"] and got[0]["checker_status"] == "valid"
    assert got[2]["skeleton"] is None and "Error" in got[2]["feedback"]
    assert "Admitted" in got[4]["feedback"]  # the file closes an outline, as it closes a proof with Qed


@coq_missing
def test_the_toy_domains_own_skeletons_check_as_outlines():
    problems = [p for p in toy_formal.make_splits(3, 60, 4)[0] if p.meta.get("skeleton")]
    assert problems
    got = check_outlines(problems, [{"id": p.id, "completion": p.meta["skeleton"]} for p in problems],
                         VerifierSettings(checker="coq", timeout_s=10))
    assert [r["reason"] for r in got] == ["ok"] * len(problems)


class Answering:
    """A Lean checker that answers each file as kimina-lean-server would (sorry / error / lost)."""

    name, language = "fake-lean", "lean4"

    def __init__(self, status):
        self.status, self.files = status, []

    def check(self, snippets):
        self.files += [code for _, code in snippets]
        messages = {"sorry": [{"severity": "warning", "data": "declaration uses 'sorry'"}],
                    "error": [{"severity": "error", "pos": {"line": 4, "column": 2}, "data": "unknown identifier 'h2'"}],
                    "server_error": []}[self.status]
        return [CheckResult(self.status, messages, 0.1, "connection refused" if self.status == "server_error" else "")
                for _ in snippets]


def test_lean_outlines_need_their_sorrys_and_no_error():
    outline = "have h2 : n + n = 2 + 2 := by sorry\nsimpa using h2"
    checker = Answering("sorry")
    got = check_outlines([LEAN], _rows(outline, outline, problem=LEAN), VerifierSettings(), checker)
    assert [r["reason"] for r in got] == ["ok", "ok"] and got[0]["skeleton"] == outline
    assert len(checker.files) == 1  # each distinct file once
    assert checker.files[0].startswith("import Mathlib\n\ntheorem two_add") and "#print axioms" not in checker.files[0]
    got = check_outlines([LEAN], _rows(outline, problem=LEAN), VerifierSettings(), Answering("error"))
    assert got[0]["reason"] == "checker_error" and got[0]["skeleton"] is None and "h2" in got[0]["feedback"]
    refused = check_outlines([LEAN], _rows("omega", "have h : n = 2 := by sorry\naxiom x : False", problem=LEAN),
                             VerifierSettings(), Answering("sorry"))
    assert [r["reason"] for r in refused] == ["no_hole", "unsound"]
    with pytest.raises(CheckerUnavailable, match="outlines could not be checked"):
        check_outlines([LEAN], _rows(outline, problem=LEAN), VerifierSettings(), Answering("server_error"))


def test_skeleton_pi_comes_from_the_checked_outlines():
    problems = toy_formal.make_splits(3, 40, 4)[0]
    own = next(p for p in problems if p.meta.get("skeleton"))
    other = next(p for p in problems if p.id != own.id)
    checked = [{"id": other.id, "skeleton": "intros. admit.", "reason": "ok"},
               {"id": own.id, "skeleton": None, "reason": "checker_error"}]
    attached = with_skeletons(problems, checked)
    by_id = {p.id: p for p in attached}
    assert by_id[other.id].meta["skeleton"] == "intros. admit."
    assert "skeleton" not in by_id[own.id].meta  # the source's outline failed: no skeleton, not the record's
    assert own.meta.get("skeleton")  # the input problems are untouched
    pi = privileged_info(RetrySpec.build("skeleton", 1), attached, 1)
    assert pi[other.id] == "intros. admit." and pi[own.id] is None


def test_outline_requests_are_per_problem_and_seeded():
    class Recording:
        def __init__(self):
            self.requests = []

        def generate(self, requests, sampling):
            self.requests += requests
            return [f"outline of {r.request_id}" for r in requests]

    problems = toy_formal.make_splits(3, 5, 2)[0]
    backend = Recording()
    rows = sample_outlines(backend, problems[::-1], "Outline:\n{prompt}", 7, SamplingSettings())
    assert [r["id"] for r in rows] == sorted(p.id for p in problems)
    assert rows[0]["skeleton_prompt"].startswith("Outline:\nProve in Coq")
    assert all(p.solution not in r.messages[0]["content"] for p, r in zip(sorted(problems, key=lambda p: p.id),
                                                                          backend.requests))
    again = sample_outlines(Recording(), problems, "Outline:\n{prompt}", 7, SamplingSettings())
    other_seed = sample_outlines(Recording(), problems, "Outline:\n{prompt}", 8, SamplingSettings())
    assert [r["seed"] for r in rows] == [r["seed"] for r in again] != [r["seed"] for r in other_seed]
    assert len({r["seed"] for r in rows}) == len(rows)


# ---- configuration -------------------------------------------------------------------------------


@pytest.fixture
def paper():
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def test_the_paper_lean_study_has_its_skeleton_rows(paper):
    validate_config(copy.deepcopy(paper))
    assert {"lean_skeleton_retry", "opsd_skeleton"} <= set(paper["studies"]["lean"]["methods"])
    assert paper["datasets"]["minif2f"]["skeletons"]["model"] in paper["models"]


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["datasets"]["minif2f"].pop("skeletons"),
     r"methods\.lean_skeleton_retry\.pi: the skeleton PI needs a skeleton per problem, and dataset 'minif2f'"),
    (lambda c: c["datasets"]["minif2f"]["skeletons"].update(model="nosuch"),
     r"datasets\.minif2f\.skeletons\.model: unknown model 'nosuch'"),
    (lambda c: c["datasets"]["minif2f"]["skeletons"].update(prompt="Outline it."),
     r"datasets\.minif2f\.skeletons\.prompt: must contain \{prompt\}"),
    (lambda c: c["datasets"]["minif2f"]["skeletons"].update(prompt="{prompt} {answer}"),
     r"datasets\.minif2f\.skeletons\.prompt: must contain \{prompt\} and no other field"),
    (lambda c: c["datasets"]["math"].update(skeletons={"model": "qwen3_8b", "prompt": "{prompt}"}),
     r"datasets\.math\.skeletons: proof skeletons are for formal datasets"),
])
def test_bad_skeleton_sources_name_the_key(paper, mutate, message):
    mutate(paper)
    with pytest.raises(ConfigError, match=message):
        validate_config(paper)


def test_opsd_skeleton_without_a_source_names_its_key(paper):
    paper["datasets"]["minif2f"].pop("skeletons")
    paper["studies"]["lean"]["methods"] = ["tryagain", "opsd_skeleton"]
    with pytest.raises(ConfigError, match=r"methods\.opsd_skeleton\.train\.privileged: the skeleton PI needs"):
        validate_config(paper)


# ---- the rule's script ---------------------------------------------------------------------------

DISPATCH = r"""
import json, runpy, sys, types
sys.path.insert(0, {scripts!r})
spec = json.loads(sys.argv[1])
inputs = types.SimpleNamespace(outlines=spec["outlines"], problems=spec["problems"], code=spec["code"])
snakemake = types.SimpleNamespace(
    input=inputs, output=[spec["out"]], log=[spec["out"] + ".log"], rule="check_skeletons", threads=1,
    wildcards={{}}, params=types.SimpleNamespace(verifier=spec["verifier"]))
runpy.run_path({script!r}, init_globals={{"snakemake": snakemake}}, run_name="__main__")
"""


@coq_missing
def test_check_skeletons_script_writes_the_checked_outlines(tmp_path):
    from pidistill.codedeps import code_files
    from pidistill.io import write_jsonl
    from pidistill.problems import write_problems
    from pidistill.verifiers import verifier_module

    problems = toy_formal.make_splits(3, 30, 2)[0]
    write_problems(tmp_path / "train.jsonl", problems)
    outlines = [{"id": p.id, "completion": p.meta.get("skeleton") or p.solution} for p in problems]
    write_jsonl(tmp_path / "outlines.jsonl", outlines)
    script = REPO / "scripts" / "check_skeletons.py"
    spec = {"problems": str(tmp_path / "train.jsonl"), "outlines": str(tmp_path / "outlines.jsonl"),
            "out": str(tmp_path / "skeletons.jsonl"), "verifier": {"checker": "coq", "timeout_s": 10.0},
            "code": [str(REPO / f) for f in code_files(script, REPO, [verifier_module("formal")])]}
    proc = subprocess.run([sys.executable, "-c", DISPATCH.format(scripts=str(REPO / "scripts"), script=str(script)),
                           json.dumps(spec)], capture_output=True, text=True, cwd=REPO)
    log = Path(spec["out"] + ".log").read_text() if Path(spec["out"] + ".log").exists() else ""
    assert proc.returncode == 0, proc.stderr + log
    rows = [json.loads(line) for line in Path(spec["out"]).read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(p.id for p in problems)
    with_outline = {p.id for p in problems if p.meta.get("skeleton")}
    assert {r["id"] for r in rows if r["skeleton"]} == with_outline  # the others wrote complete proofs
    assert {r["reason"] for r in rows if r["id"] not in with_outline} == {"no_hole"}
    assert f"{len(with_outline)} of {len(problems)} outlines are skeletons" in log
