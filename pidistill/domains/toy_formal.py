"""Toy formal: small Coq theorems about natural numbers and propositions, checked by ``coqc``.

The foundation of the demo's formal domain (the formal study itself is not in the DAG yet; see
docs/formal-verifier.md). Four families, none needing a ``Require``, so a proof checks in a few
hundredths of a second:

* ``eq``: a true ground sum, ``a + b = c`` (a, b in 0..9): ``reflexivity.``;
* ``le``: a true ground inequality, ``a <= b`` (a <= b <= 9): ``repeat constructor.``;
* ``ind``: an identity of Peano arithmetic that needs induction (``n + 0 = n``, ``n * 1 = n``...);
* ``prop``: a propositional tautology (``P /\\ Q -> Q /\\ P``...) proved by introduction and cases.

Each problem carries its reference proof (``solution``) and, where the proof has structure (an
induction's cases, a conjunction's components), a **skeleton**: the proof's outline with every
case's body replaced by a hole (``admit.``), the structural PI of the documents' Lean study (their
"have-skeleton"). A one-step proof has no skeleton: its outline would be the proof.

The imperfect *author* (for a pretraining corpus, like the other toys') writes the reference
proof with probability ``p_correct`` and otherwise one of the slips a beginner makes: closing a
goal that needs induction by computation, ``discriminate`` on a true equation, an inequality
closed by a single constructor step, a conjunction split without taking the hypothesis apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pidistill.domains.raw import dataset_loader
from pidistill.domains.toyspace import distinct_splits, toy_split
from pidistill.problems import Problem

DOMAIN = "formal"
FAMILIES = ("eq", "le", "ind", "prop")
VARIANT = "toy-formal-coq"

# name -> (statement body, reference proof, skeleton or None, slips)
_IND_BASE = "intros n. induction n as [|n IH].\n- reflexivity.\n- simpl. rewrite IH. reflexivity."
_IND_SKELETON = "intros n. induction n as [|n IH].\n- admit.\n- admit."
INDUCTIVE = {
    "add_0_r": ("forall n : nat, n + 0 = n", _IND_BASE, _IND_SKELETON),
    "mul_1_r": ("forall n : nat, n * 1 = n", _IND_BASE, _IND_SKELETON),
    "mul_0_r": ("forall n : nat, n * 0 = 0", "intros n. induction n as [|n IH].\n- reflexivity.\n- simpl. exact IH.",
                _IND_SKELETON),
    "add_succ_r": ("forall n m : nat, n + S m = S (n + m)",
                   "intros n m. induction n as [|n IH].\n- reflexivity.\n- simpl. rewrite IH. reflexivity.",
                   "intros n m. induction n as [|n IH].\n- admit.\n- admit."),
    "add_0_l": ("forall n : nat, 0 + n = n", "intros n. reflexivity.", None),
}
PROPOSITIONAL = {
    "and_swap": ("forall P Q : Prop, P /\\ Q -> Q /\\ P",
                 "intros P Q H. destruct H as [HP HQ]. split.\n- exact HQ.\n- exact HP.",
                 "intros P Q H. destruct H as [HP HQ]. split.\n- admit.\n- admit."),
    "or_swap": ("forall P Q : Prop, P \\/ Q -> Q \\/ P",
                "intros P Q H. destruct H as [HP | HQ].\n- right. exact HP.\n- left. exact HQ.",
                "intros P Q H. destruct H as [HP | HQ].\n- admit.\n- admit."),
    "and_proj_l": ("forall P Q : Prop, P /\\ Q -> P", "intros P Q H. destruct H as [HP HQ]. exact HP.", None),
    "impl_trans": ("forall P Q R : Prop, (P -> Q) -> (Q -> R) -> P -> R",
                   "intros P Q R HPQ HQR HP. apply HQR. apply HPQ. exact HP.", None),
    "and_intro": ("forall P Q : Prop, P -> Q -> P /\\ Q", "intros P Q HP HQ. split.\n- exact HP.\n- exact HQ.",
                  "intros P Q HP HQ. split.\n- admit.\n- admit."),
}


@dataclass(frozen=True)
class FormalItem:
    family: str
    a: int = 0
    b: int = 0
    lemma: str = ""

    @property
    def key(self) -> str:
        return f"{self.family}:{self.lemma}" if self.lemma else f"{self.family}:{self.a}:{self.b}"

    @property
    def body(self) -> str:
        if self.family == "eq":
            return f"{self.a} + {self.b} = {self.a + self.b}"
        if self.family == "le":
            return f"{self.a} <= {self.b}"
        return (INDUCTIVE if self.family == "ind" else PROPOSITIONAL)[self.lemma][0]

    @property
    def proof(self) -> str:
        if self.family == "eq":
            return "reflexivity."
        if self.family == "le":
            return "repeat constructor."
        return (INDUCTIVE if self.family == "ind" else PROPOSITIONAL)[self.lemma][1]

    @property
    def skeleton(self) -> str | None:
        if self.family in ("eq", "le"):
            return None
        return (INDUCTIVE if self.family == "ind" else PROPOSITIONAL)[self.lemma][2]


def random_item(rng: random.Random) -> FormalItem:
    """A uniformly drawn family, then a uniformly drawn theorem of it."""
    family = rng.choice(FAMILIES)
    if family == "eq":
        return FormalItem("eq", rng.randint(0, 9), rng.randint(0, 9))
    if family == "le":
        a = rng.randint(0, 9)
        return FormalItem("le", a, rng.randint(a, 9))
    table = INDUCTIVE if family == "ind" else PROPOSITIONAL
    return FormalItem(family, lemma=rng.choice(sorted(table)))


def slips(item: FormalItem) -> list[str]:
    """Plausible proofs that do not check (never the reference)."""
    if item.family == "eq":
        return ["discriminate.", "exact I.", "apply le_n."]
    if item.family == "le":
        return (["constructor."] if item.a < item.b else []) + ["reflexivity." if item.a != item.b else "discriminate.",
                                                               "exact I."]
    if item.family == "ind":
        if item.lemma == "add_0_l":  # (0 + n computes to n: computing closes it, so that is no slip here)
            return ["intros n. discriminate.", "intros. exact I.", "intros n. induction n."]
        return ["intros n. reflexivity.", "intros n. simpl. reflexivity.", "intros. exact I."]
    return ["intros P Q H. exact H.", "intros. split.", "intros. assumption."]


def author_attempt(item: FormalItem, rng: random.Random, p_correct: float) -> str:
    if rng.random() < p_correct:
        return item.proof
    return rng.choice(slips(item))


def statement_for(item: FormalItem, name: str) -> str:
    return f"Theorem {name} : {item.body}.\nProof."


def prompt_for(item: FormalItem, name: str) -> str:
    return f"Prove in Coq (tactics only):\n{statement_for(item, name)}"


def to_problem(item: FormalItem, index: int, split: str) -> Problem:
    name = f"toy_{split}_{index:04d}"
    meta = {"name": name, "header": "", "statement": statement_for(item, name), "language": "coq",
            "variant": VARIANT, "split": split, "family": item.family, "key": item.key}
    if item.skeleton:
        meta["skeleton"] = item.skeleton
    return Problem(id=f"toy_formal/{split}/{index:04d}", domain=DOMAIN, prompt=prompt_for(item, name),
                   solution=item.proof, meta=meta)


def make_splits(seed: int, n_train: int, n_test: int) -> tuple[list[Problem], list[Problem]]:
    return distinct_splits(random_item, to_problem, seed, n_train, n_test)


def space_size() -> int:
    return 100 + 55 + len(INDUCTIVE) + len(PROPOSITIONAL)


@dataset_loader("toy_formal")
def load_toy_formal(source=None, *, seed: int = 0, n_train: int = 100, n_test: int = 60, split: str = "all") -> list[Problem]:
    return toy_split("toy_formal", make_splits, source, seed, n_train, n_test, split)
