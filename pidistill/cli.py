"""The ``pidistill`` console command: the pipeline's stages, usable outside Snakemake.

    pidistill prepare NAME [--source FILE] --out problems.jsonl [--option key=value ...]
    pidistill verify --problems problems.jsonl --samples samples.jsonl --out verdicts.jsonl
"""

from __future__ import annotations

import argparse
import sys

import yaml


def _options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"--option expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def cmd_prepare(args: argparse.Namespace) -> int:
    from pidistill.domains.registry import load
    from pidistill.problems import write_problems

    problems = load(args.name, args.source, **_options(args.option))
    n = write_problems(args.out, problems)
    print(f"wrote {n} problems to {args.out}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pidistill.io import read_jsonl, write_jsonl
    from pidistill.problems import index_problems, read_problems
    from pidistill.verifiers import VerifierSettings, verify_samples

    problems = index_problems(read_problems(args.problems))
    samples = read_jsonl(args.samples)
    settings = VerifierSettings(workers=args.workers, timeout_s=args.timeout, answer_fallback=args.answer_fallback, graded=args.graded)
    verdicts = verify_samples(problems, samples, settings)
    write_jsonl(args.out, verdicts)
    n_pass = sum(v["passed"] for v in verdicts)
    print(f"{n_pass}/{len(verdicts)} samples passed; verdicts in {args.out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pidistill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="convert a dataset to problem records (JSONL)")
    p.add_argument("name", help="dataset name, e.g. toy_math, humaneval, mbpp, math500")
    p.add_argument("--source", help="local raw file in its authors' published format (default: the loader's own source)")
    p.add_argument("--out", required=True)
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="loader option (repeatable)")
    p.set_defaults(func=cmd_prepare)

    v = sub.add_parser("verify", help="verify samples against their problems")
    v.add_argument("--problems", required=True)
    v.add_argument("--samples", required=True, help='JSONL, one {"id": ..., "completion": ...} per line')
    v.add_argument("--out", required=True)
    v.add_argument("--workers", type=int, default=1)
    v.add_argument("--timeout", type=float, default=5.0, help="seconds per sample")
    v.add_argument("--answer-fallback", action="store_true", help='math: accept "the answer is X" without \\boxed{}')
    v.add_argument("--graded", action="store_true", help="math: score is the graded credit in [0, 1] (default: 0/1)")
    v.set_defaults(func=cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pidistill.io import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ValueError) as exc:
        print(f"pidistill {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
