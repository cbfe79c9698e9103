"""evaluate_mucode: one µCode policy (the base at iteration 0, a method's generator after) on one
dataset's test split: Pass@t (greedy), multi-turn BoN@t with the method's selector (and every other
selector for the last µCode generator, the selectors table), BoN@t with each verifier of the
verifier-iteration table, and with the tests hidden where asked (pidistill.mucode.evaluate)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_json
from pidistill.mucode import FEEDBACK_TEMPLATE, CachedGenerate, CachedVerify, EvalSettings, evaluate
from pidistill.problems import read_problems
from pidistill.provenance import pinned_revision
from pidistill.reward import VerifierScorer
from pidistill.smk import rule_log
from pidistill.verifiers import VerifierSettings

with rule_log(snakemake) as log:
    study = snakemake.params.study
    problems = read_problems(snakemake.input.problems)
    backend = rule_backend(snakemake.params, list(snakemake.input.generator),
                           pinned_revision(snakemake.input.model_provenance), snakemake.threads)
    sampling = SamplingSettings.from_config(study.get("sampling", {}))
    greedy = CachedGenerate(backend, SamplingSettings(temperature=0.0, max_new_tokens=sampling.max_new_tokens))
    sample = CachedGenerate(backend, sampling)
    verify = CachedVerify(VerifierSettings.from_config(snakemake.params.verifier))
    # the policy's own verifier first (the newest one trained before its generator), then the others
    scorers = {name: VerifierScorer(path) for name, path in zip(snakemake.params.verifier_names, snakemake.input.verifiers)}
    settings = EvalSettings(**study.get("eval", {}))
    out = evaluate(greedy, sample, verify, scorers, problems, settings, int(snakemake.wildcards.seed),
                   hidden=snakemake.params.hidden, template=study.get("feedback_template", FEEDBACK_TEMPLATE),
                   selectors=snakemake.params.selectors)
    out.update(method=snakemake.wildcards.method, iteration=int(snakemake.wildcards.iteration),
               dataset=snakemake.wildcards.eval_dataset, feedback_template=study.get("feedback_template", FEEDBACK_TEMPLATE))
    write_json(snakemake.output[0], out)
    t = settings.report_turns
    log.info("%s iter %s on %s: Pass@%d %.3f, BoN@%d %.3f", snakemake.wildcards.method, snakemake.wildcards.iteration,
             snakemake.wildcards.eval_dataset, t, out["pass"][t - 1]["rate"], t, out["bon"][settings.selector][t - 1]["rate"])
