"""Aggregate evaluations into CSVs: one row per run, and per-condition / per-round summaries.

Gains are in percentage points (pp) of pass@1 against the same seed's base policy, so every
condition of a study is compared with the same baseline. Seeds are summarised by mean, sample std
and a 95% t-interval of the mean. Every run's gain also gets a 95% paired-bootstrap interval over
the test problems (``pidistill.stats``); a condition with a single seed reports that interval as
its CI (``ci_method`` says which one a row carries).
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from pidistill.config import DEFAULT_BOOTSTRAP, Run
from pidistill.seeding import derive_seed
from pidistill.stats import gain_ci, paired_rates

# Two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30 (beyond: the normal 1.96).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def mean_std_ci(values: Sequence[float]) -> tuple[float, float, float, float]:
    """Mean, sample std, and the 95% t-interval of the mean (NaN where undefined)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


STAT_COLUMNS = ["n_train_problems", "n_first_attempts", "n_first_correct", "n_failed_problems", "n_retries",
                "n_retries_correct", "n_frontier", "retry_success_rate", "n_pairs", "tokens_first_attempts",
                "tokens_source", "tokens_hints"]
# what a method generated for its training set: its first attempts, its source's candidates, any hints
# or diagnoses another model wrote for it (tokens_hints)
TOKEN_COLUMNS = ["tokens_first_attempts", "tokens_source", "tokens_hints"]


def bootstrap_seed(bootstrap: dict, run: Run) -> int:
    """The resampling seed of one run's gain: the configured seed and the run's identity (not the
    study: a run shared by two studies gets the same interval in both)."""
    return derive_seed("bootstrap", bootstrap["seed"], run.dataset, run.model, run.seed, run.policy)


def run_gain_ci(run: Run, evaluations: dict, bootstrap: dict) -> tuple[float, float]:
    """95% paired-bootstrap interval (pp) of a run's pass@1 gain over its seed's base policy."""
    base, other = paired_rates(evaluations[(run.run_dir, "base")], evaluations[(run.run_dir, run.policy)])
    _, lo, hi = gain_ci(base, other, bootstrap["samples"], bootstrap_seed(bootstrap, run))
    return 100 * lo, 100 * hi


def run_rows(runs: Sequence[Run], evaluations: dict, round_stats: dict, trainings: dict, labels: dict,
             bootstrap: dict | None = None) -> pd.DataFrame:
    """One row per run. ``evaluations`` etc. map (run_dir, policy) to the loaded JSON files."""
    bootstrap = {**DEFAULT_BOOTSTRAP, **(bootstrap or {})}
    rows = []
    for run in runs:
        key = (run.run_dir, run.policy)
        ev = evaluations[key]
        row = {
            "study": run.study, "dataset": run.dataset, "model": run.model, "seed": run.seed, "policy": run.policy,
            "round": run.round, "method": run.method or "base",
            "label": labels.get(run.method, run.method) if run.method else "base",
            "n_test_problems": ev["n_problems"], "n_test_samples": ev["n_samples"],
        }
        for metric, value in ev["metrics"].items():
            row[metric] = value
        stats = round_stats.get(key, {})
        for col in STAT_COLUMNS:
            row[col] = stats.get(col, math.nan)
        row["tokens_generated"] = (sum(int(stats.get(c) or 0) for c in TOKEN_COLUMNS) if stats else math.nan)
        # GRPO and OPSD sample their own completions while training: those count too
        row["tokens_generated"] += int(trainings.get(key, {}).get("tokens_generated_in_training") or 0)
        row["trained"] = bool(trainings[key]["trained"]) if key in trainings else False
        row["gain_pp_boot_low"], row["gain_pp_boot_high"] = (
            run_gain_ci(run, evaluations, bootstrap) if run.policy != "base" else (math.nan, math.nan))
        rows.append(row)
    df = pd.DataFrame(rows)
    base = df[df["policy"] == "base"].set_index(["study", "seed"])["pass@1"]
    df["base_pass@1"] = [base[(s, seed)] for s, seed in zip(df["study"], df["seed"])]
    by_policy = df.set_index(["study", "seed", "policy"])["pass@1"]
    df["parent_pass@1"] = [
        by_policy[(s, seed, p.rsplit("/", 1)[0])] if p != "base" else math.nan
        for s, seed, p in zip(df["study"], df["seed"], df["policy"])
    ]
    df["gain_pp"] = 100 * (df["pass@1"] - df["base_pass@1"])
    df["gain_parent_pp"] = 100 * (df["pass@1"] - df["parent_pass@1"])
    return df.sort_values(["study", "seed", "round", "policy"]).reset_index(drop=True)


def condition_summary(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per method of a 'conditions' study: means over seeds, per-seed gains, 95% CI of the gain
    (t-interval over seeds; with one seed, the run's paired bootstrap over problems)."""
    rows = []
    for method in order:
        sub = runs[runs["method"] == method].sort_values("seed")
        gains = list(sub["gain_pp"])
        g_mean, g_std, g_lo, g_hi = mean_std_ci(gains)
        ci_method = "t"
        if len(sub) == 1:
            g_lo, g_hi, ci_method = sub["gain_pp_boot_low"].iloc[0], sub["gain_pp_boot_high"].iloc[0], "bootstrap"
        p_mean, p_std, _, _ = mean_std_ci(list(sub["pass@1"]))
        rows.append({
            "study": sub["study"].iloc[0], "method": method, "label": sub["label"].iloc[0], "n_seeds": len(sub),
            "seeds": ";".join(str(s) for s in sub["seed"]),
            "base_pass@1_mean": sub["base_pass@1"].mean(), "pass@1_mean": p_mean, "pass@1_std": p_std,
            "gain_pp_mean": g_mean, "gain_pp_std": g_std, "gain_pp_ci_low": g_lo, "gain_pp_ci_high": g_hi,
            "ci_method": ci_method, "gains_pp": ";".join(f"{g:.2f}" for g in gains),
            "n_pairs_mean": sub["n_pairs"].mean(), "retry_success_rate_mean": sub["retry_success_rate"].mean(),
            "n_untrained": int((~sub["trained"]).sum()),
            "tokens_generated_mean": sub["tokens_generated"].mean() if "tokens_generated" in sub else math.nan,
        })
    return pd.DataFrame(rows)


def ci_overlap(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of conditions whose 95% CIs of the gain do NOT overlap (empty: all overlap)."""
    out = []
    rows = list(summary.itertuples())
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if any(math.isnan(x) for x in (a.gain_pp_ci_low, a.gain_pp_ci_high, b.gain_pp_ci_low, b.gain_pp_ci_high)):
                continue
            if a.gain_pp_ci_high < b.gain_pp_ci_low or b.gain_pp_ci_high < a.gain_pp_ci_low:
                out.append((a.method, b.method))
    return out


def round_summary(runs: pd.DataFrame, stop_below: float | None) -> pd.DataFrame:
    """Per seed and round of a 'rounds' study: accuracy, deltas, decay factor, frontier retry success."""
    rows = []
    for seed, sub in runs.sort_values("round").groupby("seed", sort=True):
        prev_delta = math.nan
        for r in sub.to_dict("records"):
            delta_prev = r["gain_parent_pp"] if r["round"] > 0 else math.nan
            decay = delta_prev / prev_delta if r["round"] > 1 and prev_delta and not math.isnan(prev_delta) else math.nan
            rate = r["retry_success_rate"]
            rows.append({
                "study": r["study"], "seed": seed, "round": r["round"], "policy": r["policy"], "pass@1": r["pass@1"],
                "gain_pp": r["gain_pp"] if r["round"] > 0 else 0.0,
                "gain_pp_ci_low": r["gain_pp_boot_low"], "gain_pp_ci_high": r["gain_pp_boot_high"],
                "gain_parent_pp": delta_prev, "decay": decay,
                "n_failed_problems": r["n_failed_problems"], "n_frontier": r["n_frontier"],
                "retry_success_rate": rate, "n_pairs": r["n_pairs"], "trained": r["trained"],
                "below_stop": bool(stop_below is not None and r["round"] > 0 and rate < stop_below),
            })
            if r["round"] > 0:
                prev_delta = delta_prev
    return pd.DataFrame(rows)


def training_curves(runs: Sequence[Run], trainings: dict) -> pd.DataFrame:
    rows = []
    for run in runs:
        t = trainings.get((run.run_dir, run.policy))
        if not t:
            continue
        for h in t.get("loss_history", []):
            rows.append({"study": run.study, "seed": run.seed, "policy": run.policy, "method": run.method,
                         "step": h["step"], "loss": h["loss"]})
    return pd.DataFrame(rows, columns=["study", "seed", "policy", "method", "step", "loss"])


def write_csv(df: pd.DataFrame, path) -> None:
    from pidistill.io import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6f", lineterminator="\n")
