"""The formal verifier (pidistill.verifiers.formal) and its Lean backend's client
(pidistill.verifiers.lean_server), against a stand-in kimina-lean-server on 127.0.0.1 that answers
with each status, HTTP errors, slow answers and dropped connections."""

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pidistill.domains.minif2f import formal_problem
from pidistill.verifiers import VerifierSettings, verify_samples
from pidistill.verifiers.formal import (CheckerUnavailable, CheckResult, axioms_of, checker_for, extract_proof,
                                        lean_file, soundness_problems, verdict_from, verify_batch)
from pidistill.verifiers.lean_server import LeanServer, LeanServerError, classify

HEADER = "import Mathlib\n\nopen Nat\n\n"
STATEMENT = "theorem two_add (n : ℕ) (h : n = 2) :\n    n + n = 4 := by"
PROBLEM = formal_problem("two_add", HEADER, STATEMENT, split="test", variant="test")
STD = "'two_add' depends on axioms: [propext, Classical.choice, Quot.sound]"


def test_extract_proof():
    assert extract_proof(PROBLEM, "  subst h\n  rfl") == ("  subst h\n  rfl", "")
    block = "Here it is:\n```lean4\nimport Mathlib\n\ntheorem two_add (n : ℕ) (h : n = 2) : n + n = 4 := by\n  subst h\n  rfl\n```\n"
    assert extract_proof(PROBLEM, block) == ("  subst h\n  rfl", "")  # the same statement, whitespace aside
    assert extract_proof(PROBLEM, block.replace("theorem", "lemma"))[1] == ""
    weakened = block.replace("(h : n = 2) : n + n = 4", "(h : n = 2) (h2 : n + n = 4) : n + n = 4")
    assert extract_proof(PROBLEM, weakened) == (None, "statement_changed")
    assert extract_proof(PROBLEM, block.replace("two_add", "easier"))[1] == "statement_changed"
    assert extract_proof(PROBLEM, "```lean4\ntheorem two_add (n : ℕ) : True\n```")[1] == "statement_changed"
    assert extract_proof(PROBLEM, "```lean4\n\n```") == (None, "no_proof")
    # the last block counts (a model's draft, then its answer)
    two = "```lean4\n  simp\n```\nbetter:\n```lean4\n  omega\n```"
    assert extract_proof(PROBLEM, two) == ("  omega", "")


@pytest.mark.parametrize("proof,why", [
    ("  sorry", "`sorry`"), ("  admit", "`admit`"), ("  exact (by sorry)", "`sorry`"),
    ("  rfl\n\naxiom cheat : False", "`axiom`"),
    ("  exact cheat\ntheorem cheat : 1 = 1 := rfl", "command of its own"),
    ("  rfl\n#exit", "command of its own"), ("  rfl\n  @[simp] theorem x : True := trivial", "command of its own"),
    ("  rfl\nset_option maxHeartbeats 400000", "command of its own"),
    ("  set_option debug.skipKernelTC true in\n  rfl", "debug or trust option"),
    ("  exact (unsafe_cast 0)", None), ("  -- no sorry here\n  rfl", None), ("  /- admit -/ rfl", None),
    ("  open Real in\n  simp", None), ("  set_option maxRecDepth 1000 in\n  simp", None),
    ("  have h2 : n = 2 := h\n  omega", None), ("  native_decide", None),
])
def test_soundness_before_the_checker(proof, why):
    found = soundness_problems(proof)
    if why is None:
        assert found == [], found
    else:
        assert any(why in f for f in found), found


def test_the_checked_file_is_the_datasets_statement():
    text = lean_file(PROBLEM, "subst h\nrfl")
    assert text.startswith(HEADER + STATEMENT + "\n  subst h\n  rfl\n")
    assert text.rstrip().endswith("#print axioms two_add")


def test_verdicts_from_the_checker():
    ok = verdict_from(PROBLEM, CheckResult("valid", [{"severity": "info", "data": STD}], 0.4))
    assert ok.passed and ok.extra["axioms"] == ["Classical.choice", "Quot.sound", "propext"]
    smuggled = [{"severity": "info", "data": "'two_add' depends on axioms: [propext, sorryAx]"}]
    assert verdict_from(PROBLEM, CheckResult("valid", smuggled)).reason == "nonstandard_axioms"
    native = [{"severity": "info", "data": "'two_add' depends on axioms: [Lean.ofReduceBool, propext]"}]
    assert not verdict_from(PROBLEM, CheckResult("valid", native)).passed
    assert verdict_from(PROBLEM, CheckResult("valid", [])).reason == "no_axioms_report"
    none = [{"severity": "info", "data": "'two_add' does not depend on any axioms"}]
    assert verdict_from(PROBLEM, CheckResult("valid", none)).passed
    err = [{"severity": "error", "pos": {"line": 7, "column": 2}, "data": "linarith failed"}]
    v = verdict_from(PROBLEM, CheckResult("error", err))
    assert (v.passed, v.reason) == (False, "checker_error") and v.feedback == "error at line 7, column 2: linarith failed"
    for status, reason in [("sorry", "sorry"), ("timeout", "timeout"), ("repl_error", "checker_failed"),
                           ("server_error", "checker_failed")]:
        v = verdict_from(PROBLEM, CheckResult(status, detail="x"))
        assert (v.passed, v.reason) == (False, reason)
    assert axioms_of([{"severity": "info", "data": STD.replace("two_add", "other")}], "two_add") is None


def test_classify_each_result_kind():
    assert classify({"id": "0", "time": 0.1, "response": {"env": 0}}).status == "valid"
    assert classify({"id": "0", "response": {"messages": [{"severity": "warning", "data": "declaration uses 'sorry'"}],
                                             "sorries": [{"goal": "⊢ False"}]}}).status == "sorry"
    assert classify({"id": "0", "response": {"messages": [{"severity": "error", "data": "unknown tactic"}]}}).status == "error"
    assert classify({"id": "0", "response": {"message": "unknown environment"}}).status == "repl_error"
    t = classify({"id": "0", "time": 5.0, "error": "Lean REPL command timed out in 5.0 seconds"})
    assert (t.status, t.time_s) == ("timeout", 5.0)
    assert classify({"id": "0", "error": "REPL process died"}).status == "server_error"
    with pytest.raises(ValueError):
        classify({"id": "0"})


# ---- a stand-in kimina-lean-server ------------------------------------------------------------

class StandIn:
    """Answers POST /api/check from a script of behaviours (one per request; the last one repeats):
    "lean" judges each snippet by its text, "429"/"500"/"401"/"422" answer that status, "slow" waits
    past the client's timeout, "drop" closes the connection without a reply, "garbage" is not JSON."""

    def __init__(self, script):
        self.script = list(script)
        self.requests, self.auth = [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._send(200, {"status": "ok"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.auth.append(self.headers.get("Authorization"))
                what = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                if what == "drop":
                    self.connection.shutdown(2)
                    return
                if what == "slow":
                    time.sleep(1.5)
                if what == "garbage":
                    self.send_response(200)
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    self.wfile.write(b"<html>hi<")
                    return
                if what.isdigit():
                    return self._send(int(what), {"detail": {"429": "No available REPLs", "401": "Invalid API key"}
                                                  .get(what, "boom")})
                self._send(200, {"results": [judge(s) for s in body["snippets"]]})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def judge(snippet):
    """What a Lean server would say of the test's proofs (by their text)."""
    code, sid = snippet["code"], snippet["id"]
    if "omega" in code:
        return {"id": sid, "time": 0.2, "response": {"env": 0, "messages": [{"severity": "info", "pos": {"line": 9, "column": 0},
                                                                             "data": STD}]}}
    if "native_decide" in code:
        return {"id": sid, "time": 0.2, "response": {"env": 0, "messages": [
            {"severity": "info", "data": "'two_add' depends on axioms: [Lean.ofReduceBool, propext]"}]}}
    if "spin" in code:
        return {"id": sid, "time": 5.0, "error": "Lean REPL command timed out in 5.0 seconds"}
    if "crash" in code:
        return {"id": sid, "response": {"message": "Lean (version 4.26.0) crashed"}}
    return {"id": sid, "time": 0.1, "response": {"messages": [{"severity": "error", "pos": {"line": 6, "column": 2},
                                                              "data": "linarith failed to find a contradiction"}]}}


@pytest.fixture
def standin(request):
    servers = []

    def make(*script):
        s = StandIn(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def _client(url, **kw):
    return LeanServer(url, timeout_s=5, backoff_s=0.01, request_timeout_s=0.5, **kw)


def test_verify_batch_through_the_server(standin):
    server = standin("lean")
    completions = ["  subst h\n  omega", "  linarith", "  spin", "  crash", "  native_decide", "  sorry",
                   "```lean4\ntheorem two_add (n : ℕ) (h2 : n + n = 4) : n + n = 4 := by\n  omega\n```"]
    verdicts = verify_batch([(PROBLEM, c) for c in completions], VerifierSettings(), checker=_client(server.url))
    assert [(v.passed, v.reason) for v in verdicts] == [
        (True, "ok"), (False, "checker_error"), (False, "timeout"), (False, "checker_failed"),
        (False, "nonstandard_axioms"), (False, "unsound"), (False, "statement_changed")]
    assert "linarith failed" in verdicts[1].feedback  # the checker's words: the type-checker PI
    sent = server.requests[0]["snippets"]
    assert len(sent) == 5 and all(s["code"].startswith(HEADER + STATEMENT) for s in sent)  # sorry/changed never sent
    assert server.requests[0]["timeout"] == 5 and server.requests[0]["reuse"] is True


def test_transient_failures_are_retried_then_never_pass(standin):
    for first in ("429", "500", "drop", "slow", "garbage"):
        server = standin(first, "lean")
        client = _client(server.url)
        [r] = client.check([("0", lean_file(PROBLEM, "omega"))])
        assert r.status == "valid", first
        assert client.requests == 2
    server = standin("429")
    client = _client(server.url, retries=2)
    results = client.check([("0", "omega"), ("1", "omega")])
    assert [r.status for r in results] == ["server_error"] * 2 and "HTTP 429 No available REPLs" in results[0].detail
    assert client.requests == 3 == len(server.requests)  # bounded: 1 + retries
    v = verdict_from(PROBLEM, results[0])
    assert not v.passed and v.reason == "checker_failed"


def test_a_refused_request_stops_with_the_url(standin):
    server = standin("401")
    with pytest.raises(LeanServerError, match=r"refused the request: HTTP 401 Invalid API key"):
        _client(server.url, api_key="wrong").check([("0", "omega")])
    assert server.auth == ["Bearer wrong"] and len(server.requests) == 1  # not retried


def test_unreachable_server_and_health(standin):
    server = standin("lean")
    assert _client(server.url).health()
    url = server.url
    server.close()
    client = _client(url, retries=1)
    assert not client.health()
    assert [r.status for r in client.check([("0", "omega")])] == ["server_error"]
    # a batch the checker could not judge stops: no verdicts (and no pass rate) from an absent checker
    with pytest.raises(CheckerUnavailable, match=r"1 of 1 proofs could not be checked .*failed 2 times"):
        verify_batch([(PROBLEM, "  omega"), (PROBLEM, "  sorry")], VerifierSettings(), checker=client)


def test_batches_and_no_checker_configured(standin):
    server = standin("lean")
    client = _client(server.url, batch_size=2)
    assert [r.status for r in client.check([(str(i), "omega") for i in range(5)])] == ["valid"] * 5
    assert [len(r["snippets"]) for r in server.requests] == [2, 2, 1]
    with pytest.raises(ValueError, match="need a real proof checker"):
        checker_for(VerifierSettings())
    with pytest.raises(ValueError, match="neither verifier.server_url .* nor verifier.lean_server"):
        checker_for(VerifierSettings(checker="lean-server"))
    with pytest.raises(ValueError, match="need a real proof checker"):
        verify_samples({"two_add": PROBLEM}, [{"id": "two_add", "completion": "omega"}])
    rows = verify_samples({"two_add": PROBLEM}, [{"id": "two_add", "completion": "  subst h\n  omega"}],
                          VerifierSettings(checker="lean-server", server_url=server.url, timeout_s=5))
    assert rows[0]["passed"] and rows[0]["checker"] == "lean-server" and rows[0]["axioms"]


# ---- Coq, the demo's checker, for real ---------------------------------------------------------

coq_missing = pytest.mark.skipif(not shutil.which("coqc"), reason="coqc not installed (make coq)")
COQ_STATEMENT = "Theorem add_0_r : forall n : nat, n + 0 = n.\nProof."


def _coq(statement=COQ_STATEMENT, header="", name="add_0_r", **meta):
    return formal_problem(name, header, statement, split="test", variant="toy", language="coq", **meta)


def test_coq_proof_extraction_and_soundness():
    from pidistill.verifiers import coq

    p = _coq()
    assert coq.extract_proof(p, "intros n. induction n; simpl; auto.\nQed.") == ("intros n. induction n; simpl; auto.", "")
    assert coq.extract_proof(p, "Proof.\n  auto.\nQed.") == ("auto.", "")
    block = "```coq\nTheorem add_0_r : forall n : nat,\n  n + 0 = n.\nProof.\n  auto.\nQed.\n```"
    assert coq.extract_proof(p, block) == ("auto.", "")
    assert coq.extract_proof(p, block.replace("n + 0 = n", "0 + n = n"))[1] == "statement_changed"
    assert coq.extract_proof(p, "Lemma easy : True.\nProof. trivial. Qed.")[1] == "statement_changed"
    assert coq.soundness_problems("intros n. admit.") == ["uses `admit`"]
    assert "runs a command (Admitted)" in coq.soundness_problems("intros n.\nAdmitted")[0]
    assert "Axiom" in coq.soundness_problems("intros. Axiom cheat : False. destruct cheat.")[0]
    assert "Extraction" in coq.soundness_problems("Extraction \"/tmp/x.ml\" nat. auto.")[0]
    assert coq.soundness_problems("intros n.\n- simpl. (* Admitted *) reflexivity.\n- apply Nat.add_0_r.") == []


@coq_missing
def test_coq_checker_for_real():
    settings = VerifierSettings(checker="coq", timeout_s=3, workers=2)
    cheat_header = "Axiom cheat : forall P : Prop, P.\n"
    items = [
        (_coq(), "intros n. induction n as [|n IH]; simpl; [reflexivity | rewrite IH; reflexivity]."),  # valid
        (_coq(), "intros n. reflexivity."),  # wrong: n + 0 does not reduce for a variable n
        (_coq(), "intros n. admit."),  # sorry-like
        (_coq(statement="Theorem add_0_r : forall n : nat, n + 0 = n.\nProof.", header=cheat_header), "apply cheat."),
        (_coq(statement="Theorem add_0_r : forall n : nat, n + 0 = n.\nProof.", header=cheat_header,
              allowed_axioms=["cheat"]), "apply cheat."),
        (_coq(), "```coq\nTheorem add_0_r : forall n : nat, 0 + n = n.\nProof. reflexivity. Qed.\n```"),  # changed
        (_coq(), "intros n. repeat (assert True by exact I)."),  # never ends
    ]
    verdicts = verify_batch(items, settings)
    assert [(v.passed, v.reason) for v in verdicts] == [
        (True, "ok"), (False, "checker_error"), (False, "unsound"), (False, "nonstandard_axioms"),
        (True, "ok"), (False, "statement_changed"), (False, "timeout")]
    assert "Unable to unify" in verdicts[1].feedback or "Error" in verdicts[1].feedback
    assert verdicts[3].extra["axioms"] == ["cheat"]
    assert verdicts[0].extra["checker"] == "coq"
    assert not any("time" in key for v in verdicts for key in v.extra)  # verdicts are data: no timings


@coq_missing
def test_one_coqtop_per_batch_judges_as_coqc_does_per_file():
    """The batch (Reset Initial between files) and coqc on each file agree; a proof that prints a
    marker-like line cannot move the boundary (the marker's nonce is drawn after it was written)."""
    from pidistill.verifiers import coq

    checker = coq.CoqChecker(timeout_s=2)
    proofs = ["intros n. induction n as [|n IH]; simpl; [reflexivity | rewrite IH; reflexivity].",
              "intros n. reflexivity.", "intros n. repeat (assert True by exact I).",
              'idtac "pidistill_mark_0_1 is defined". intros n. reflexivity.',
              "intros n. induction n as [|n IH]; simpl; [reflexivity | rewrite IH; reflexivity]."]
    files = [coq.build_file(_coq(), p) for p in proofs]
    batch = checker._batch(files)
    assert batch is not None
    assert [r.status for r in batch] == [checker._one(f).status for f in files] == \
        ["valid", "error", "timeout", "error", "valid"]
    assert coq.axioms_of(batch[4].messages, "add_0_r") == []  # the file after a failed one is judged afresh
    assert "Unable to unify" in batch[1].messages[0]["data"]


@coq_missing
def test_each_distinct_file_is_checked_once():
    from pidistill.verifiers.coq import CoqChecker

    class Counting(CoqChecker):
        def check(self, snippets):
            self.seen = [code for _, code in snippets]
            return super().check(snippets)

    right = "intros n. induction n as [|n IH]; simpl; [reflexivity | rewrite IH; reflexivity]."
    other = _coq(statement="Theorem mul_0_r : forall n : nat, n * 0 = 0.\nProof.", name="mul_0_r")
    items = [(_coq(), right), (_coq(), "intros n. reflexivity."), (_coq(), right), (_coq(), "  " + right),
             (other, "intros n. reflexivity."), (_coq(), "intros n. reflexivity.")]
    checker = Counting(timeout_s=3)
    verdicts = verify_batch(items, VerifierSettings(checker="coq"), checker)
    assert len(checker.seen) == 3 == len(set(checker.seen))  # right, wrong, and the other theorem's wrong
    assert [v.passed for v in verdicts] == [True, False, True, True, False, False]
    assert verdicts[1].feedback == verdicts[5].feedback and "Unable to unify" in verdicts[1].feedback
    assert "mul_0_r" not in verdicts[1].feedback


@coq_missing
def test_the_checker_must_match_the_language():
    with pytest.raises(ValueError, match="is lean4; checker coq checks coq"):
        verify_batch([(PROBLEM, "omega")], VerifierSettings(checker="coq"))


@coq_missing
def test_the_verify_command_on_coq_problems(tmp_path):
    from pidistill.cli import main
    from pidistill.io import read_jsonl
    from pidistill.problems import write_problems

    write_problems(tmp_path / "p.jsonl", [_coq()])
    samples = [{"id": "add_0_r", "completion": c} for c in
               ("intros n. induction n as [|n IH]; simpl; [reflexivity | rewrite IH; reflexivity].", "intros n. admit.")]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    args = ["verify", "--problems", str(tmp_path / "p.jsonl"), "--samples", str(tmp_path / "s.jsonl"),
            "--out", str(tmp_path / "v.jsonl")]
    assert main(args) == 2  # no checker named: an error, no verdicts
    assert not (tmp_path / "v.jsonl").exists()
    assert main(args + ["--checker", "coq"]) == 0
    assert [(v["passed"], v["reason"]) for v in read_jsonl(tmp_path / "v.jsonl")] == [(True, "ok"), (False, "unsound")]
