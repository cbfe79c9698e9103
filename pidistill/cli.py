"""The ``pidistill`` console command: the pipeline's stages, usable outside Snakemake.

    pidistill prepare NAME [--source FILE] --out problems.jsonl [--option key=value ...]
    pidistill verify --problems problems.jsonl --samples samples.jsonl --out verdicts.jsonl [--checker coq|lean-server]
    pidistill sample --model DIR_OR_HUB_ID [--adapter DIR ...] --problems P --n N --seed S --out samples.jsonl
    pidistill retry --model M [--adapter DIR ...] --problems P --verdicts first.verdicts.jsonl --pi gold --out retries.jsonl
    pidistill pairs --problems P --first-verdicts F --retry-verdicts R --out sft_pairs.jsonl
    pidistill train --model M [--adapter DIR ...] --pairs sft_pairs.jsonl [--trainer lora|full] --out round_dir
    pidistill evaluate --problems P --verdicts eval.verdicts.jsonl --k 1 8 --out evaluation.json
    pidistill trace KEY [--configfile FILE ...] [--profile slurm] [--directory DIR] [--all]

Each subcommand but trace is the stage a Snakemake rule runs, with the same library code. trace
follows a quoted number (a \\result key) or a CSV cell (PATH:ROW:COLUMN) of a finished build back to
the raw data through Snakemake's own metadata; its exit status is 1 when a link is not up to date.

Bad input (a missing or malformed file, a record without a field the stage needs, an option the
loader does not take) ends the command with one line, "pidistill CMD: error: ...", naming the file,
line and field, and exit status 2; --debug also prints the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import yaml

from pidistill.io import InputError
from pidistill.sft import TRAINERS


def _options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--option expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputError(f"--option {pair}: the value is not valid YAML ({detail})") from None
    return out


def _check_model(args: argparse.Namespace) -> None:
    """A local ``--model`` / ``--adapter`` that is not there is the user's mistake: say so before
    transformers answers with a hub lookup error."""
    model = Path(args.model).expanduser()
    if model.exists():
        if not model.is_dir():
            raise InputError(f"--model {args.model}: not a directory (expected a model directory holding config.json, or a hub id)")
        if not (model / "config.json").is_file():
            raise InputError(f"--model {args.model}: no config.json in this directory (expected a model saved with "
                             "save_pretrained, or a hub id)")
    elif args.model.startswith(("/", ".", "~")) or args.model.count("/") > 1:
        raise InputError(f"--model {args.model}: no such directory (expected a local model directory, or a hub id "
                         "such as Qwen/Qwen2.5-0.5B-Instruct)")
    for adapter in getattr(args, "adapter", None) or []:
        path = Path(adapter)
        if not path.is_dir():
            raise InputError(f"--adapter {adapter}: no such directory (expected an adapter directory `pidistill train` wrote)")
        if not ((path / "adapter_config.json").is_file() or (path / "training.json").is_file()):
            raise InputError(f"--adapter {adapter}: neither adapter_config.json nor training.json in it (expected an "
                             "adapter directory `pidistill train` wrote)")


def cmd_prepare(args: argparse.Namespace) -> int:
    from pidistill.domains.registry import load
    from pidistill.problems import write_problems

    problems = load(args.name, args.source, **_options(args.option))
    n = write_problems(args.out, problems)
    print(f"wrote {n} problems to {args.out}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pidistill.io import write_jsonl
    from pidistill.problems import index_problems, read_problems
    from pidistill.records import read_samples
    from pidistill.verifiers import VerifierSettings, verify_samples

    problems = index_problems(read_problems(args.problems))
    samples = read_samples(args.samples, problems, args.problems)
    settings = VerifierSettings(workers=args.workers, timeout_s=args.timeout, answer_fallback=args.answer_fallback,
                                graded=args.graded, checker=args.checker or "", server_url=args.server_url or "")
    verdicts = verify_samples(problems, samples, settings)
    write_jsonl(args.out, verdicts)
    n_pass = sum(v["passed"] for v in verdicts)
    print(f"{n_pass}/{len(verdicts)} samples passed; verdicts in {args.out}", file=sys.stderr)
    return 0


def _backend(args: argparse.Namespace):
    from pidistill.generation import PolicySpec, load_backend

    policy = PolicySpec(model=args.model, adapters=list(args.adapter or []), revision=args.revision)
    return load_backend(args.backend, policy, batch_size=args.batch_size)


def _sampling(args: argparse.Namespace):
    from pidistill.generation import SamplingSettings

    return SamplingSettings(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens)


def cmd_sample(args: argparse.Namespace) -> int:
    from pidistill.io import write_jsonl
    from pidistill.problems import read_problems
    from pidistill.sampling import sample_attempts

    _check_model(args)
    problems = read_problems(args.problems)
    rows = sample_attempts(_backend(args), problems, args.n, args.seed, args.stage, _sampling(args))
    write_jsonl(args.out, rows)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from pidistill.io import write_jsonl
    from pidistill.problems import index_problems, read_problems
    from pidistill.records import RETRY_SOURCE, read_verdicts
    from pidistill.retry import RetrySpec
    from pidistill.sampling import sample_retries

    _check_model(args)
    problems = read_problems(args.problems)
    spec = RetrySpec.build(args.pi, args.k, retry_texts={p.domain: args.retry_text for p in problems})
    verdicts = read_verdicts(args.verdicts, index_problems(problems), args.problems, fields=RETRY_SOURCE)
    backend = _backend(args) if any(not v["passed"] for v in verdicts) else None
    write_jsonl(args.out, sample_retries(backend, problems, verdicts, spec, args.seed, _sampling(args)))
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    from pidistill.io import write_json, write_jsonl
    from pidistill.problems import index_problems, read_problems
    from pidistill.records import RETRY_SOURCE, read_verdicts
    from pidistill.methods import candidate_statistics, filter_candidates
    from pidistill.sft import build_pairs

    problems = read_problems(args.problems)
    index = index_problems(problems)
    first = read_verdicts(args.first_verdicts, index, args.problems)
    retries = read_verdicts(args.retry_verdicts, index, args.problems, fields=RETRY_SOURCE)
    kept = filter_candidates(retries, first, threshold=args.threshold)
    pairs = build_pairs(problems, kept)
    write_jsonl(args.out, pairs)
    stats = candidate_statistics(first, retries, kept, pairs, {"kind": "retry"})
    if args.stats:
        write_json(args.stats, stats)
    print(f"{stats['n_pairs']} pairs; retry success on failed problems {stats['retry_success_rate']:.3f}", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pidistill.records import read_pairs
    from pidistill.sft import TrainSettings, train_adapter

    _check_model(args)
    settings = TrainSettings(trainer=args.trainer, steps=args.steps, learning_rate=args.learning_rate,
                             batch_size=args.batch_size, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                             min_pairs=args.min_pairs)
    summary = train_adapter(read_pairs(args.pairs), args.model, args.adapter or [], settings, args.seed, args.out,
                            threads=args.threads, revision=args.revision)
    print(f"trained={summary['trained']} on {summary['n_pairs']} pairs ({summary['reason']})", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pidistill.evaluate import summarize
    from pidistill.io import write_json
    from pidistill.problems import index_problems, read_problems
    from pidistill.records import read_verdicts

    problems = read_problems(args.problems)
    summary = summarize(problems, read_verdicts(args.verdicts, index_problems(problems), args.problems), args.k)
    write_json(args.out, summary)
    print(" ".join(f"{k}={v:.4f}" for k, v in summary["metrics"].items()), file=sys.stderr)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from pidistill.trace import main_trace

    text, up_to_date = main_trace(args.key, args.directory, args.configfile, args.profile, args.snakefile, args.all)
    sys.stdout.write(text)
    return 0 if up_to_date else 1


def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a local model directory or a hub id")
    p.add_argument("--adapter", action="append", help="adapter directory of an earlier round (repeat, oldest first)")
    p.add_argument("--revision", help="hub revision of the model")
    p.add_argument("--seed", type=int, default=0, help="run seed (request seeds derive from it)")


def _generation_args(p: argparse.ArgumentParser) -> None:
    _policy_args(p)
    p.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pidistill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="on an error, also print the traceback")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="on an error, also print the traceback")
    subparsers = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kw) -> argparse.ArgumentParser:  # every subcommand also takes --debug after its name
        return subparsers.add_parser(name, parents=[common], **kw)

    p = add("prepare", help="convert a dataset to problem records (JSONL)")
    p.add_argument("name", help="dataset name, e.g. toy_math, humaneval, mbpp, math500")
    p.add_argument("--source", help="local raw file in its authors' published format (default: the loader's own source)")
    p.add_argument("--out", required=True)
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="loader option (repeatable)")
    p.set_defaults(func=cmd_prepare)

    v = add("verify", help="verify samples against their problems")
    v.add_argument("--problems", required=True)
    v.add_argument("--samples", required=True, help='JSONL, one {"id": ..., "completion": ...} per line')
    v.add_argument("--out", required=True)
    v.add_argument("--workers", type=int, default=1)
    v.add_argument("--timeout", type=float, default=5.0, help="seconds per sample")
    v.add_argument("--answer-fallback", action="store_true", help='math: accept "the answer is X" without \\boxed{}')
    v.add_argument("--graded", action="store_true", help="math: score is the graded credit in [0, 1] (default: 0/1)")
    v.add_argument("--checker", choices=["lean-server", "coq"], help="formal: the proof checker")
    v.add_argument("--server-url", help="formal, lean-server: the kimina-lean-server's base URL")
    v.set_defaults(func=cmd_verify)

    s = add("sample", help="sample n attempts per problem from a policy")
    _generation_args(s)
    s.add_argument("--problems", required=True)
    s.add_argument("--n", type=int, default=1)
    s.add_argument("--stage", default="first_attempt", help="stage name mixed into request seeds")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_sample)

    r = add("retry", help="retry every failed first attempt K times under a PI condition")
    _generation_args(r)
    r.add_argument("--problems", required=True)
    r.add_argument("--verdicts", required=True, help="verdicts of the first attempts")
    r.add_argument("--pi", default="none", choices=["none", "gold", "gibberish", "wrong", "tests", "other_tests"])
    r.add_argument("--k", type=int, default=1)
    r.add_argument("--retry-text", help="override the domain's retry message")
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_retry)

    pr = add("pairs", help="filter correct retries into SFT pairs")
    pr.add_argument("--problems", required=True)
    pr.add_argument("--first-verdicts", required=True)
    pr.add_argument("--retry-verdicts", required=True)
    pr.add_argument("--threshold", type=float, help="keep retries with graded score >= threshold (default: passed)")
    pr.add_argument("--out", required=True)
    pr.add_argument("--stats", help="also write the round statistics (JSON)")
    pr.set_defaults(func=cmd_pairs)

    t = add("train", help="SFT of one round (TRL SFTTrainer): a LoRA adapter (PEFT) or the full model")
    _policy_args(t)
    t.add_argument("--pairs", required=True)
    t.add_argument("--out", required=True, help="the round's directory (a LoRA adapter, or the fine-tuned model)")
    t.add_argument("--trainer", choices=TRAINERS, default="lora",
                   help="lora (default) or full fine-tune (the lora options then do not apply); GRPO and OPSD "
                        "sample their own completions and run from the pipeline's rules only")
    t.add_argument("--steps", type=int, default=60)
    t.add_argument("--learning-rate", type=float, default=2e-5)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lora-r", type=int, default=16)
    t.add_argument("--lora-alpha", type=int, default=32)
    t.add_argument("--min-pairs", type=int, default=1)
    t.add_argument("--threads", type=int, default=1)
    t.set_defaults(func=cmd_train)

    e = add("evaluate", help="pass@1 and unbiased pass@k from verified samples")
    e.add_argument("--problems", required=True)
    e.add_argument("--verdicts", required=True)
    e.add_argument("--k", type=int, nargs="+", default=[1])
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_evaluate)

    tr = add("trace", help="from a quoted number or a CSV cell back to the raw data, through Snakemake's metadata")
    tr.add_argument("key", help="a \\result key (e.g. pi_content/gold/gain) or PATH:ROW:COLUMN of a CSV "
                                "(e.g. studies/pi_content/summary.csv:gold:gain_pp_mean)")
    tr.add_argument("--directory", "-d", default=".", help="where Snakemake ran (default: here)")
    tr.add_argument("--configfile", nargs="+", help="the --configfile(s) the build used")
    tr.add_argument("--profile", help="the --profile the build used (e.g. slurm for the paper)")
    tr.add_argument("--snakefile", help="the Snakefile, when it is not in the directory")
    tr.add_argument("--all", action="store_true", help="follow every input, not only the runs of the key's method")
    tr.set_defaults(func=cmd_trace)
    return parser


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and (exc.filename or exc.filename2):
        return f"{exc.filename2 or exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__  # one line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = getattr(args, "out", None)
        if out and args.command != "train" and Path(out).is_dir():
            raise InputError(f"--out {out}: is a directory (expected the path of the file to write)")
        return args.func(args)
    except (InputError, ValueError, OSError) as exc:  # bad input, config values, unreadable or unwritable paths
        if args.debug:
            traceback.print_exc()
        print(f"pidistill {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
