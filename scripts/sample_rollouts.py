"""sample_rollouts: one µCode iteration's episodes on the training problems: ``rollouts`` episodes of up
to ``turns`` turns each, every turn's code judged on the public and private tests, a failed turn's
public-test feedback the next user turn (pidistill.mucode.run_episodes). Iteration 0 samples the
base model, iteration i the µCode generator of iteration i."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.mucode import FEEDBACK_TEMPLATE, CachedGenerate, CachedVerify, run_episodes
from pidistill.problems import read_problems
from pidistill.provenance import pinned_revision
from pidistill.smk import rule_log
from pidistill.verifiers import VerifierSettings

with rule_log(snakemake) as log:
    study = snakemake.params.study
    iteration = int(snakemake.wildcards.iteration)
    problems = read_problems(snakemake.input.problems)
    backend = rule_backend(snakemake.params, list(snakemake.input.generator),
                           pinned_revision(snakemake.input.model_provenance), snakemake.threads)
    generate = CachedGenerate(backend, SamplingSettings.from_config(study.get("sampling", {})))
    verify = CachedVerify(VerifierSettings.from_config(snakemake.params.verifier))
    rows = run_episodes(generate, verify, problems, study["rollouts"], study["turns"], int(snakemake.wildcards.seed),
                        stage=f"rollout/iter{iteration}", template=study.get("feedback_template", FEEDBACK_TEMPLATE))
    write_jsonl(snakemake.output[0], [{"iteration": iteration, **r} for r in rows])
    solved = {r["id"] for r in rows if r["correct"]}
    log.info("iteration %d: %d turns over %d episodes; %d of %d problems solved in some episode", iteration,
             len(rows), len(problems) * study["rollouts"], len(solved), len(problems))
