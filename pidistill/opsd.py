"""On-policy self-distillation (OPSD): the PI teacher as a trainer of the method catalogue.

A method with ``train.trainer: opsd`` trains its round with TRL's ``SDFTTrainer``
(``trl.experimental.sdft``): at every step the student samples ``num_generations`` completions of
a training problem WITHOUT privileged information; the teacher is the same model WITH the PI in
its prompt; the student is trained toward the teacher's token distribution on the student's own
completions (the divergence is TRL's: ``distillation_mode``, ``distillation_alpha``). The output is
a LoRA adapter directory exactly like the SFT path's, so sampling, evaluation and the per-problem
results (which the ``levels`` study reads) use it unchanged.

The teacher (``teacher_model_kind``): ``base`` (the default, as the documents describe it: the
initial model, here the LoRA student with its adapter switched off), ``live`` (the current
student) or ``ema`` (an exponential average of the student, a second LoRA adapter). ``base`` is the
model *without any adapter*, so it is the parent policy only in a round trained from the base
model: a round whose parent already has an adapter must use ``live`` or ``ema``
(:func:`train_opsd` refuses otherwise, and the config check says so for a study's later rounds).

The training prompts (:func:`training_rows`, written by the ``build_opsd_prompts`` rule) are one row
per problem: ``id``, ``prompt`` (the conversation ``[{"role": "user", "content": problem}]``, the
student's prompt) and ``privileged_context`` (the PI block, already rendered through the method's
``pi_template``). The teacher's prompt is TRL's ``teacher_prompt_template``
``"{prompt}\\n\\n{privileged_context}"`` applied to the last user turn, tokenized with the same
chat template (and ``chat_template_kwargs``) as the student's; the completion tokens the teacher
scores are the student's own ids, appended to both prompts.

Which problems (the method's source and filter, as for every trainer):

- source ``first_attempts`` (no new generation): every training problem; ``filter.frontier`` keeps
  those with a failed first attempt;
- any other source (e.g. the ``retry`` of the retry methods, sharing its job): the problems with a
  kept candidate (the method's filter). ``opsd_frontier`` (the documents' PCCG) is source
  ``retry`` with ``filter.frontier``: the problems the policy fails first-try but solves on retry.

The PI (``train.privileged``):

- ``answer``: the gold answer (math) or the reference solution (code); "answer-only" OPSD.
- ``tests`` (code): the test results of the problem's first failed first attempt (its first
  attempt when none failed): each test with PASS or FAIL and the verifier's feedback. From the
  first attempt, not the rollout being scored: the first attempts' verdicts are computed once by
  the verify job, so training stays deterministic and no candidate program runs inside a GPU
  training step (which would need the code verifier's isolation in the training job); and it is
  the feedback a retry sees, so OPSD-with-tests and retry-with-tests differ only in the trainer.
- ``skeleton``: a proof skeleton the problem record carries in ``meta["skeleton"]`` (the formal
  proofs datasets; the hook the Lean study uses). A problem without one gets no row.

A problem without its PI (no reference solution, no skeleton) gets no row; the count is in the
rule's log. The teacher prompt is left-truncated by TRL to ``max_prompt_length`` tokens: a long PI
would cut the problem off the teacher's prompt, so :func:`train_opsd` measures every teacher prompt
first and stops with the problem id when one is longer.

Determinism: the run's ``seed`` seeds the adapter's initialisation, the trainer (torch, numpy,
random) and its prompt sampler; generation is ``model.generate`` sampling from torch's global
generator. On CPU two runs write the same bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from pidistill.io import write_json
from pidistill.methods import filter_candidates
from pidistill.problems import Problem
from pidistill.sft import TrainSection

PRIVILEGED = ("answer", "tests", "skeleton")
TEACHER_KINDS = ("base", "live", "ema")
TEACHER_PROMPT_TEMPLATE = "{prompt}\n\n{privileged_context}"  # TRL's default, kept
DEFAULT_PI_TEMPLATES = {
    ("answer", "math"): "The correct answer is: {pi}",
    ("answer", "code"): "A correct solution is:\n{pi}",
    ("tests", "code"): "Your first attempt was run on the tests:\n{pi}",
    ("answer", "formal"): "A proof that checks:\n{pi}",
    ("skeleton", "math"): "A proof skeleton:\n{pi}",
    ("skeleton", "code"): "A proof skeleton:\n{pi}",
    ("skeleton", "formal"): "A proof outline (fill in each admit):\n{pi}",  # the retry PI's wording
}


@dataclass
class OPSDSettings(TrainSection):
    """A ``trainer: opsd`` method's ``train`` section. Defaults are TRL's SDFTConfig's where the
    documents are silent (divergence, top-k, clipping), except those marked "ours"."""

    trainer: str = "opsd"
    privileged: str = "answer"
    pi_template: str | None = None  # how the PI reads in the teacher's prompt; {pi} is replaced (default per PI and domain)
    teacher_model_kind: str = "base"
    distillation_mode: str = "topk_logits"
    distillation_alpha: float = 0.5
    distillation_topk: int = 100
    steps: int = 50
    learning_rate: float = 1e-5
    batch_size: int = 8  # completions per device and optimizer step
    grad_accum: int = 1
    num_generations: int = 4  # ours (TRL: 8): completions per prompt
    max_completion_length: int = 256
    max_prompt_length: int = 2048  # ours (TRL: 512); a longer teacher prompt is an error, never truncated
    temperature: float = 1.0
    top_p: float = 1.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: list | str = "all-linear"
    min_prompts: int = 1
    bf16: bool = False  # ours (TRL: True); on a GPU the method's config turns it on
    gradient_checkpointing: bool = False  # ours (TRL: True)

    def __post_init__(self) -> None:
        if self.trainer != "opsd":
            raise ValueError(f"OPSDSettings: train.trainer must be 'opsd', got {self.trainer!r}")
        if self.privileged not in PRIVILEGED:
            raise ValueError(f"train.privileged {self.privileged!r}: one of {', '.join(PRIVILEGED)}")
        if self.teacher_model_kind not in TEACHER_KINDS:
            raise ValueError(f"train.teacher_model_kind {self.teacher_model_kind!r}: one of {', '.join(TEACHER_KINDS)}")
        if self.pi_template is not None and "{pi}" not in self.pi_template:
            raise ValueError(f"train.pi_template {self.pi_template!r} must contain {{pi}}")
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(f"train.batch_size * train.grad_accum = {self.batch_size * self.grad_accum} must be a "
                             f"multiple of train.num_generations = {self.num_generations}")

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size * self.grad_accum // self.num_generations

    def template_for(self, domain: str) -> str:
        if self.pi_template is not None:
            return self.pi_template
        try:
            return DEFAULT_PI_TEMPLATES[(self.privileged, domain)]
        except KeyError:
            raise ValueError(f"train.privileged {self.privileged!r} has no meaning for {domain} problems") from None



# ---- the training prompts -------------------------------------------------------------------------


def render_test_results(problem: Problem, verdict: dict) -> str:
    """One line per test of ``problem`` with PASS or FAIL as the verdict judged it (every test
    listed without an outcome where the tests are one program), then the verifier's feedback."""
    results = verdict.get("test_results")
    tests = list(problem.tests) if problem.tests else [problem.test_program or ""]
    if results is not None and len(results) == len(tests):
        lines = [f"{'PASS' if ok else 'FAIL'}: {test}" for ok, test in zip(results, tests)]
    else:
        lines = tests
    feedback = (verdict.get("feedback") or "").strip()
    return "\n".join(lines + ([f"Result: {feedback}"] if feedback else []))


def _first_verdict_of(first_verdicts: Sequence[dict]) -> dict[str, dict]:
    """Problem id -> its first failed first attempt (lowest attempt number), else its first attempt."""
    out: dict[str, dict] = {}
    for v in sorted(first_verdicts, key=lambda v: (v["id"], v["passed"], v.get("attempt", 0))):
        out.setdefault(v["id"], v)
    return out


def privileged_text(problem: Problem, privileged: str, first_verdict: dict | None) -> str | None:
    """The raw PI of one problem (None: the problem has none of this kind)."""
    if privileged == "answer":
        return problem.answer if problem.domain == "math" else problem.solution
    if privileged == "tests":
        if problem.domain != "code":
            raise ValueError(f"train.privileged 'tests' needs code problems; {problem.id!r} is {problem.domain}")
        if first_verdict is None:
            raise ValueError(f"train.privileged 'tests': problem {problem.id!r} has no first-attempt verdict")
        return render_test_results(problem, first_verdict)
    if privileged == "skeleton":
        skeleton = problem.meta.get("skeleton")
        return skeleton if isinstance(skeleton, str) and skeleton.strip() else None
    raise ValueError(f"train.privileged {privileged!r}: one of {', '.join(PRIVILEGED)}")


def training_problem_ids(problems: Sequence[Problem], first_verdicts: Sequence[dict],
                         candidates: Sequence[dict] | None, method_filter: Mapping) -> list[str]:
    """The ids OPSD trains on, sorted (see the module docstring): every training problem (or those
    with a failed first attempt) without candidates; else the problems with a kept candidate."""
    if candidates is None:
        if method_filter.get("threshold") is not None:
            raise ValueError("filter.threshold needs candidates: OPSD with source 'first_attempts' trains on problems")
        ids = {p.id for p in problems}
        if method_filter.get("frontier"):
            ids &= {v["id"] for v in first_verdicts if not v["passed"]}
        return sorted(ids)
    kept = filter_candidates(candidates, first_verdicts, threshold=method_filter.get("threshold"),
                             frontier=bool(method_filter.get("frontier")))
    return sorted({v["id"] for v in kept} & {p.id for p in problems})


def training_rows(problems: Sequence[Problem], first_verdicts: Sequence[dict], candidates: Sequence[dict] | None,
                  method_filter: Mapping, settings: OPSDSettings) -> tuple[list[dict], dict]:
    """The SDFT dataset (``id``, ``prompt``, ``privileged_context``; id order) and its counts."""
    by_id = {p.id: p for p in problems}
    firsts = _first_verdict_of(first_verdicts)
    ids = training_problem_ids(problems, first_verdicts, candidates, method_filter)
    rows, without = [], []
    for pid in ids:
        problem = by_id[pid]
        pi = privileged_text(problem, settings.privileged, firsts.get(pid))
        if pi is None:
            without.append(pid)
            continue
        rows.append({
            "id": pid,
            "prompt": [{"role": "user", "content": problem.prompt}],
            "privileged_context": settings.template_for(problem.domain).format(pi=pi),
        })
    stats = {"privileged": settings.privileged, "n_selected": len(ids), "n_prompts": len(rows),
             "n_without_pi": len(without), "without_pi": without[:20]}
    return rows, stats


# ---- training ---------------------------------------------------------------------------------


def prompt_token_lengths(tokenizer, prompts: Sequence, chat_template_kwargs: Mapping | None = None) -> list[int]:
    """Tokens of each conversational prompt with the generation prompt, as the trainer tokenizes it."""
    if not prompts:
        return []
    ids = tokenizer.apply_chat_template(conversation=list(prompts), add_generation_prompt=True, tokenize=True,
                                        return_dict=True, **dict(chat_template_kwargs or {}))["input_ids"]
    return [len(x) for x in ids]


def check_teacher_prompts(trainer, rows: Sequence[dict], max_prompt_length: int,
                          chat_template_kwargs: Mapping | None = None) -> dict:
    """Every teacher prompt (built by the trainer's own context builder) fits ``max_prompt_length``:
    TRL would cut a longer one from the left, losing the problem. Returns the longest lengths."""
    prompts = [r["prompt"] for r in rows]
    teacher = trainer.teacher_context_builder.select_generation_prompts(prompts, [r["privileged_context"] for r in rows])
    student_len = prompt_token_lengths(trainer.processing_class, prompts, chat_template_kwargs)
    teacher_len = prompt_token_lengths(trainer.processing_class, teacher, chat_template_kwargs)
    for row, n in zip(rows, teacher_len):
        if n > max_prompt_length:
            raise ValueError(f"problem {row['id']!r}: its teacher prompt (problem + PI) is {n} tokens, more than "
                             f"train.max_prompt_length={max_prompt_length}; TRL would cut it from the left (the "
                             "problem first). Raise train.max_prompt_length or shorten the PI (train.pi_template)")
    return {"max_student_prompt_tokens": max(student_len, default=0),
            "max_teacher_prompt_tokens": max(teacher_len, default=0)}


def sdft_config(out_dir: Path, settings: OPSDSettings, seed: int, cuda: bool, chat_template_kwargs: Mapping | None):
    """The SDFTConfig of one round: the shared trainer arguments and the OPSD settings, nothing left
    to TRL's bf16 or gradient-checkpointing defaults."""
    from trl.experimental.sdft import SDFTConfig

    from pidistill.sft import trainer_arguments

    return SDFTConfig(
        **trainer_arguments(out_dir, settings, seed, cuda),
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        max_prompt_length=settings.max_prompt_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        teacher_model_kind=settings.teacher_model_kind,
        teacher_prompt_template=TEACHER_PROMPT_TEMPLATE,
        distillation_mode=settings.distillation_mode,
        distillation_alpha=settings.distillation_alpha,
        distillation_topk=settings.distillation_topk,
        lr_scheduler_type="constant",
        chat_template_kwargs=dict(chat_template_kwargs or {}),
    )


def train_opsd(
    rows: Sequence[dict], model: str, parent_adapters: Sequence[str], settings: OPSDSettings, seed: int,
    out_dir: str | Path, threads: int = 1, revision: str | None = None, chat_template_kwargs: dict | None = None,
) -> dict:
    """Train one round's LoRA adapter with OPSD into ``out_dir``; returns the training summary."""
    from pidistill.generation import resolve_policy
    from pidistill.sft import finish, sampling_lora_student, save_adapter, setup_torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"n_prompts": len(rows), "settings": asdict(settings), "seed": seed, "base_model": str(model),
               "base_revision": revision, "parent_adapters": list(parent_adapters), "loss_history": []}
    parent = resolve_policy(model, parent_adapters, revision)
    if parent.adapter is not None and settings.teacher_model_kind == "base":
        raise ValueError(f"train.teacher_model_kind 'base' is the model without any adapter, but the parent policy has "
                         f"one ({parent.adapter}): the teacher would not be the parent. Use 'live' or 'ema'")
    needed = max(settings.min_prompts, settings.prompts_per_step)
    if len(rows) < needed:
        summary.update(trained=False, reason=(
            f"{len(rows)} prompts < {needed} needed (min_prompts={settings.min_prompts}, a step's "
            f"prompts={settings.prompts_per_step}): policy is the parent's"))
        write_json(out_dir / "training.json", summary)
        return summary

    import torch
    from datasets import Dataset
    from trl.experimental.sdft import SDFTTrainer

    setup_torch(threads)
    cuda = torch.cuda.is_available()
    net, tokenizer = sampling_lora_student(model, parent_adapters, revision, settings, seed, summary)
    args = sdft_config(out_dir, settings, seed, cuda, chat_template_kwargs)
    data = Dataset.from_list([{"prompt": r["prompt"], "privileged_context": r["privileged_context"]} for r in rows])
    trainer = SDFTTrainer(model=net, args=args, train_dataset=data, processing_class=tokenizer)
    summary.update(check_teacher_prompts(trainer, rows, settings.max_prompt_length, chat_template_kwargs))
    trainer.train()
    save_adapter(net, out_dir)
    return finish(trainer, out_dir, summary, history_keys=(
        "loss", "self_distillation/distillation_loss", "completions/mean_length"),
        completions_per_step=settings.batch_size * settings.grad_accum)
