"""LaTeX tables (booktabs) from the aggregate CSVs; every cell is formatted by ``report.fmt``."""

from __future__ import annotations

import math

import pandas as pd

from pidistill.report.fmt import latex_escape as esc
from pidistill.report.fmt import num, pct, pp


def _table(colspec: str, header: list[str], body: list[list[str]], caption: str, label: str) -> str:
    lines = [
        r"\begin{table}[!ht]", r"\centering", r"\small",
        rf"\caption{{{caption}}}", rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{colspec}}}", r"\toprule",
        " & ".join(header) + r" \\", r"\midrule",
        *[" & ".join(row) + r" \\" for row in body],
        r"\bottomrule", r"\end{tabular}", r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _pm(mean: float, std: float, f=pp) -> str:
    if isinstance(std, float) and math.isnan(std):
        return f(mean)
    return f"{f(mean)} $\\pm$ {f(std, sign=False) if f is pp else f(std)}"


def conditions_table(study: str, title: str, summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Baseline, post-training pass@1, gain (mean +/- std over seeds), per-seed gains, 95% CI, data counts."""
    body = []
    for r in summary.to_dict("records"):
        sub = runs[runs["method"] == r["method"]].sort_values("seed")
        per_seed = ", ".join(pp(g) for g in sub["gain_pp"])
        ci = "--" if math.isnan(r["gain_pp_ci_low"]) else f"[{pp(r['gain_pp_ci_low'])}, {pp(r['gain_pp_ci_high'])}]"
        post = pct(r["pass@1_mean"]) if math.isnan(r["pass@1_std"]) else f"{pct(r['pass@1_mean'])} $\\pm$ {pct(r['pass@1_std'])}"
        body.append([
            esc(r["label"]), str(r["n_seeds"]), pct(r["base_pass@1_mean"]), post,
            _pm(r["gain_pp_mean"], r["gain_pp_std"]), per_seed, ci,
            num(r["retry_success_rate_mean"] * 100, 1), num(r["n_pairs_mean"], 1),
        ])
    header = ["Condition", "Seeds", "Base (\\%)", "After SFT (\\%)", "Gain (pp)", "Per-seed gains", "95\\% CI",
              "Retry succ. (\\%)", "Pairs"]
    caption = (f"{esc(title)}: test pass@1 of the base policy and after one round of retry, filter and LoRA SFT "
               "under each condition; gains against the same seed's base policy. Retry success: share of training "
               "problems failed on the first attempt that a retry solved. Pairs: SFT pairs after filtering.")
    return _table("lrrrrlrrr", header, body, caption, f"tab:{study}")


def rounds_table(study: str, title: str, rounds: pd.DataFrame, stop_below: float | None) -> str:
    body = []
    for r in rounds.sort_values(["seed", "round"]).to_dict("records"):
        stage = "Base" if r["round"] == 0 else f"Round {r['round']}"
        trained = "" if r["round"] == 0 or r["trained"] else " (no SFT)"
        body.append([
            stage + trained, str(r["seed"]), pct(r["pass@1"]),
            "--" if r["round"] == 0 else pp(r["gain_pp"]),
            "--" if r["round"] == 0 else pp(r["gain_parent_pp"]),
            num(r["decay"], 2),
            "--" if r["round"] == 0 else pct(r["retry_success_rate"]),
            "--" if r["round"] == 0 else str(int(r["n_pairs"])),
            ("yes" if r["below_stop"] else "no") if r["round"] > 0 and stop_below is not None else "--",
        ])
    header = ["Stage", "Seed", "pass@1 (\\%)", "$\\Delta$ base (pp)", "$\\Delta$ prev. (pp)", "Decay",
              "Retry succ. (\\%)", "Pairs", "Stop?"]
    rule = "" if stop_below is None else f" Stop?: the round's retry success rate on the remaining frontier is below {pct(stop_below, 0)}\\%."
    caption = (f"{esc(title)}: each round retries the current policy's failures, filters, and continues training "
               "the previous round's adapter on the new pairs. Decay: this round's gain over the previous round's." + rule)
    return _table("lrrrrrrrr", header, body, caption, f"tab:{study}")
