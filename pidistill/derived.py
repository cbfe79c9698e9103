"""The derived studies: tables computed from results the run studies already have, no generation.

* ``amortized_rows``: base vs a later round of a rounds study: pass@1, pass@N, the gap (stochastic
  headroom) and the fraction of the base policy's headroom the trained policy internalised.
* ``level_rows``: per difficulty level of the test problems, base / method / delta.
* ``scale_points``: one point per (model, dataset, method) over conditions studies: baseline pass@1
  against gain (the inverted-U figure); ``lr_rows``: the learning-rate table of one study.
* ``domain_rows``: model, method, gain and a computed note per domain.
* ``method_rows``: the method table of the controls study: every (study, method) with its gain,
  seeds, tokens generated and notes computed from the runs.
* ``cost_rows``: compute per study from the heavy jobs' benchmark files, shared jobs split equally.

Every gain carries a 95% CI: a t-interval over seeds where there are several, a paired bootstrap over
problems otherwise (``pidistill.stats``); ``ci_method`` says which.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pidistill.aggregate import condition_summary, mean_std_ci
from pidistill.evaluate import pass_at_k
from pidistill.seeding import derive_seed
from pidistill.stats import gain_ci, paired_bootstrap

# ---- amortized inference ------------------------------------------------------------------------


def _counts(evaluation: dict) -> dict[str, tuple[int, int]]:
    return {r["id"]: (r["n"], r["c"]) for r in evaluation["per_problem"]}


def amortized_rows(pairs: Sequence[tuple[int, dict, dict]], round_: int, bootstrap: dict) -> pd.DataFrame:
    """``pairs``: (seed, base evaluation, evaluation of the policy after ``round_`` rounds).

    pass@N uses every sample of the evaluation (N = its samples per problem). gap = pass@N - pass@1
    (pp); internalised = 1 - gap_after / gap_base, the share of the base policy's headroom that no
    longer needs resampling. Each seed's values get paired-bootstrap CIs over problems; with several
    seeds a last row ("mean") gives mean and t-interval over seeds.
    """
    rows = []
    for seed, base, after in sorted(pairs, key=lambda p: p[0]):
        cb, ca = _counts(base), _counts(after)
        if set(cb) != set(ca):
            raise ValueError(f"seed {seed}: base and round-{round_} evaluations cover different problems")
        ns = {n for n, _ in cb.values()} | {n for n, _ in ca.values()}
        if len(ns) != 1:
            raise ValueError(f"seed {seed}: pass@N needs the same samples per problem, got {sorted(ns)}")
        n = ns.pop()
        ids = sorted(cb)
        cols = [[pass_at_k(*cb[i], 1) for i in ids], [pass_at_k(*cb[i], n) for i in ids],
                [pass_at_k(*ca[i], 1) for i in ids], [pass_at_k(*ca[i], n) for i in ids]]
        b = bootstrap["samples"]
        s = lambda what: derive_seed("bootstrap", bootstrap["seed"], "amortized", what, seed)  # noqa: E731
        gap_b = paired_bootstrap(cols, lambda m: m[..., 1] - m[..., 0], b, s("gap_base"))
        gap_a = paired_bootstrap(cols, lambda m: m[..., 3] - m[..., 2], b, s("gap_after"))
        gain = paired_bootstrap(cols, lambda m: m[..., 2] - m[..., 0], b, s("gain"))
        frac = paired_bootstrap(cols, lambda m: 1 - (m[..., 3] - m[..., 2]) / (m[..., 1] - m[..., 0]), b,
                                s("internalised"))
        if gap_b[0] == 0:
            frac = (math.nan, math.nan, math.nan)  # no headroom to internalise
        rows.append({
            "seed": seed, "round": round_, "n_problems": len(ids), "N": n,
            "base_pass@1": float(np.mean(cols[0])), "base_pass@N": float(np.mean(cols[1])),
            "after_pass@1": float(np.mean(cols[2])), "after_pass@N": float(np.mean(cols[3])),
            "base_gap_pp": 100 * gap_b[0], "base_gap_ci_low": 100 * gap_b[1], "base_gap_ci_high": 100 * gap_b[2],
            "after_gap_pp": 100 * gap_a[0], "after_gap_ci_low": 100 * gap_a[1], "after_gap_ci_high": 100 * gap_a[2],
            "gain_pp": 100 * gain[0], "gain_ci_low": 100 * gain[1], "gain_ci_high": 100 * gain[2],
            "internalised": frac[0], "internalised_ci_low": frac[1], "internalised_ci_high": frac[2],
            "ci_method": "bootstrap",
        })
    df = pd.DataFrame(rows)
    if len(df) > 1:
        mean = {"seed": "mean", "round": round_, "n_problems": int(df["n_problems"].iloc[0]), "N": int(df["N"].iloc[0]),
                "ci_method": "t"}
        for col in ("base_pass@1", "base_pass@N", "after_pass@1", "after_pass@N"):
            mean[col] = df[col].mean()
        for col, lo, hi in (("base_gap_pp", "base_gap_ci_low", "base_gap_ci_high"),
                            ("after_gap_pp", "after_gap_ci_low", "after_gap_ci_high"),
                            ("gain_pp", "gain_ci_low", "gain_ci_high"),
                            ("internalised", "internalised_ci_low", "internalised_ci_high")):
            m, _, l, h = mean_std_ci(list(df[col]))
            mean.update({col: m, lo: l, hi: h})
        df = pd.concat([df, pd.DataFrame([mean])], ignore_index=True)
    return df


# ---- per level ----------------------------------------------------------------------------------


def level_rows(evaluations: dict, seeds_of: Mapping[str, Sequence[int]], methods: Sequence[str], labels: dict,
               bootstrap: dict) -> pd.DataFrame:
    """Per (method, level): base and trained pass@1 on that level's test problems, and the gain.

    ``evaluations`` maps (seed, policy) to evaluation.json contents, ``policy`` being ``base`` or
    ``base/r1-<method>``; ``seeds_of`` maps a method to its seeds. A level's gain is the mean over
    seeds with a t-interval, or with one seed the paired bootstrap over that level's problems.
    """
    rows = []
    for method in methods:
        seeds = seeds_of[method]
        per_level: dict = defaultdict(lambda: {"base": [], "post": [], "gain": [], "boot": [], "n": 0})
        for seed in seeds:
            base = evaluations[(seed, "base")]["per_problem"]
            post = {r["id"]: r for r in evaluations[(seed, f"base/r1-{method}")]["per_problem"]}
            if not any("level" in r for r in base):
                raise ValueError("the test problems carry no 'level' (the dataset's records have no difficulty level)")
            groups: dict = defaultdict(list)
            for r in base:
                if r.get("level") is not None:
                    groups[int(r["level"])].append((r["c"] / r["n"], post[r["id"]]["c"] / post[r["id"]]["n"]))
            for level, vals in groups.items():
                b, p = [v[0] for v in vals], [v[1] for v in vals]
                entry = per_level[level]
                entry["n"] = len(vals)
                entry["base"].append(float(np.mean(b)))
                entry["post"].append(float(np.mean(p)))
                entry["gain"].append(100 * (float(np.mean(p)) - float(np.mean(b))))
                if len(seeds) == 1:
                    seed_ = derive_seed("bootstrap", bootstrap["seed"], "levels", method, seed, level)
                    _, lo, hi = gain_ci(b, p, bootstrap["samples"], seed_)
                    entry["boot"] = [100 * lo, 100 * hi]
        for level in sorted(per_level):
            e = per_level[level]
            g_mean, g_std, lo, hi = mean_std_ci(e["gain"])
            method_ci = "t"
            if len(seeds) == 1:
                lo, hi = e["boot"]
                method_ci = "bootstrap"
            rows.append({"method": method, "label": labels.get(method, method), "level": level, "n_problems": e["n"],
                         "n_seeds": len(seeds), "base_pass@1": float(np.mean(e["base"])),
                         "pass@1": float(np.mean(e["post"])), "gain_pp_mean": g_mean, "gain_pp_std": g_std,
                         "gain_pp_ci_low": lo, "gain_pp_ci_high": hi, "ci_method": method_ci})
    return pd.DataFrame(rows)


# ---- scale --------------------------------------------------------------------------------------

DEFAULT_BAND = (0.3, 0.6)


def scale_points(runs: Sequence[pd.DataFrame], band: Sequence[float] = DEFAULT_BAND) -> pd.DataFrame:
    """One point per (model, dataset, method) over the given studies' runs.csv tables.

    A run (dataset, model, seed, policy) that several studies share counts once. x: the mean base
    pass@1 over seeds; y: the mean gain (pp), with its CI as ``condition_summary`` gives it.
    """
    pooled = pd.concat(list(runs), ignore_index=True)
    pooled = pooled[pooled["policy"] != "base"].sort_values(["dataset", "model", "method", "seed", "study"])
    pooled = pooled.drop_duplicates(["dataset", "model", "seed", "policy"]).reset_index(drop=True)
    out = []
    for (dataset, model), sub in pooled.groupby(["dataset", "model"], sort=True):
        summary = condition_summary(sub, sorted(sub["method"].unique()))
        summary.insert(0, "model", model)
        summary.insert(0, "dataset", dataset)
        out.append(summary)
    points = pd.concat(out, ignore_index=True).drop(columns=["study"])
    points["in_band"] = points["base_pass@1_mean"].between(band[0], band[1])
    return points.sort_values(["base_pass@1_mean", "dataset", "model", "method"]).reset_index(drop=True)


def band_statement(points: pd.DataFrame, band: Sequence[float]) -> dict:
    """How gains inside the baseline band compare with those outside it (computed, not asserted)."""
    inside, outside = points[points["in_band"]], points[~points["in_band"]]
    return {"n_points": len(points), "n_in_band": len(inside), "n_out_band": len(outside),
            "gain_in_band": inside["gain_pp_mean"].mean() if len(inside) else math.nan,
            "gain_out_band": outside["gain_pp_mean"].mean() if len(outside) else math.nan,
            "band": list(band)}


def lr_rows(summary: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The learning-rate table: a conditions study's summary with each method's learning rate and
    LoRA rank, sorted by learning rate; ``best`` marks the largest mean gain."""
    df = summary.copy()
    df["learning_rate"] = [settings[m]["learning_rate"] for m in df["method"]]
    df["lora_r"] = [settings[m].get("lora_r") for m in df["method"]]
    df = df.sort_values(["learning_rate", "method"]).reset_index(drop=True)
    best = df.sort_values(["gain_pp_mean", "learning_rate"], ascending=[False, True]).index[0]
    df["best"] = df.index == best
    return df


# ---- domains ------------------------------------------------------------------------------------


def _merge_shared_runs(rows: list[dict]) -> list[dict]:
    """A run that several studies share (try again at seed 1 is a condition of pi_content, k_retries
    and controls) is one row, naming every study it belongs to."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = (row["dataset"], row["model"], row["method"], row["seeds"])
        if key in merged:
            merged[key]["study"] += ", " + row["study"]
        else:
            merged[key] = row
    return list(merged.values())


def domain_rows(summaries: dict, specs: dict, overlaps: dict, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (study, method) (a run several studies share: one row): domain, dataset, model,
    baseline, gain with CI, and a note that says what a reader must know to read the gain (seeds, CI
    kind, train/test overlap)."""
    rows = []
    for study in specs:
        spec = specs[study]
        overlap = overlaps[spec["dataset"]]
        for r in summaries[study].to_dict("records"):
            if methods and r["method"] not in methods:
                continue
            notes = [f"{r['n_seeds']} seeds" if r["n_seeds"] > 1 else "1 seed (CI: bootstrap over problems)"]
            if overlap["n_test_in_train"]:
                notes.append(f"train/test overlap {100 * overlap['fraction']:.0f}% of test problems")
            if r.get("n_untrained"):
                notes.append(f"{r['n_untrained']} run(s) trained nothing")
            rows.append({"domain": spec["domain"], "dataset": spec["dataset"], "model": spec["model"], "study": study,
                         "method": r["method"], "label": r["label"], "n_seeds": r["n_seeds"], "seeds": str(r["seeds"]),
                         "base_pass@1": r["base_pass@1_mean"], "gain_pp_mean": r["gain_pp_mean"],
                         "gain_pp_std": r["gain_pp_std"], "gain_pp_ci_low": r["gain_pp_ci_low"],
                         "gain_pp_ci_high": r["gain_pp_ci_high"], "ci_method": r["ci_method"],
                         "overlap": overlap["fraction"], "note": "; ".join(notes)})
    df = pd.DataFrame(_merge_shared_runs(rows))
    return df.sort_values(["domain", "dataset", "model", "study", "method"]).reset_index(drop=True)


# ---- the method table (study controls) ---------------------------------------------------------


def _method_notes(r: dict, overlap: dict, band: Sequence[float], fixed: str | None) -> str:
    """What a reader must know to read a gain, computed from the row: seeds, the baseline against the
    band where retry helps, train/test overlap, a CI that includes zero, runs that trained nothing."""
    notes = [fixed] if fixed else []
    if r["n_seeds"] == 1:
        notes.append("single seed")
    base = r["base_pass@1"]
    if not math.isnan(base) and not band[0] <= base <= band[1]:
        notes.append(f"baseline {100 * base:.0f}% outside {100 * band[0]:.0f}-{100 * band[1]:.0f}%")
    if overlap["n_test_in_train"]:
        notes.append(f"train/test overlap {100 * overlap['fraction']:.0f}%")
    lo, hi = r["gain_pp_ci_low"], r["gain_pp_ci_high"]
    if not (math.isnan(lo) or math.isnan(hi)) and lo <= 0 <= hi:
        notes.append("95% CI includes 0")
    if r.get("n_untrained"):
        notes.append(f"{r['n_untrained']} run(s) trained nothing")
    return "; ".join(notes)


def _round_method_rows(summary: pd.DataFrame, label: str) -> list[dict]:
    """A rounds study's rows for the method table: each trained round's gain over the base policy,
    mean over seeds (t-interval), or the seed's bootstrap CI when there is one seed."""
    rows = []
    for rnd, sub in summary[summary["round"] > 0].groupby("round", sort=True):
        gains = list(sub["gain_pp"])
        mean, std, lo, hi = mean_std_ci(gains)
        ci = "t"
        if len(sub) == 1:
            lo, hi, ci = sub["gain_pp_ci_low"].iloc[0], sub["gain_pp_ci_high"].iloc[0], "bootstrap"
        base = summary[summary["round"] == 0]["pass@1"].mean()
        rows.append({"method": f"{sub['policy'].iloc[0].rsplit('-', 1)[-1]}@r{rnd}", "label": f"{label}, round {rnd}",
                     "n_seeds": len(sub), "seeds": ";".join(str(x) for x in sub["seed"]), "base_pass@1_mean": base,
                     "gain_pp_mean": mean, "gain_pp_std": std, "gain_pp_ci_low": lo, "gain_pp_ci_high": hi,
                     "ci_method": ci, "gains_pp": ";".join(f"{g:.2f}" for g in gains),
                     "tokens_generated_mean": math.nan, "n_untrained": int((~sub["trained"].astype(bool)).sum())})
    return rows


def method_rows(summaries: dict, specs: dict, overlaps: dict, band: Sequence[float] = DEFAULT_BAND,
                notes: dict | None = None) -> pd.DataFrame:
    """The method table: one row per (study, method) of every run study (per round for a rounds
    study), with gain mean +/- std, per-seed gains, CI, tokens generated and computed notes.
    ``specs``: study -> kind, dataset, model, domain (and ``label`` of a rounds study's method);
    ``notes``: method -> its fixed note from the config."""
    notes = notes or {}
    rows = []
    for study, spec in specs.items():
        summary = summaries[study]
        if spec["kind"] == "rounds":
            records = _round_method_rows(summary, spec["label"])
        else:
            records = summary.to_dict("records")
        for r in records:
            row = {"study": study, "domain": spec["domain"], "dataset": spec["dataset"], "model": spec["model"],
                   "method": r["method"], "label": r["label"], "n_seeds": int(r["n_seeds"]), "seeds": str(r["seeds"]),
                   "base_pass@1": float(r["base_pass@1_mean"]), "gain_pp_mean": float(r["gain_pp_mean"]),
                   "gain_pp_std": float(r["gain_pp_std"]), "gains_pp": str(r["gains_pp"]),
                   "gain_pp_ci_low": float(r["gain_pp_ci_low"]), "gain_pp_ci_high": float(r["gain_pp_ci_high"]),
                   "ci_method": r["ci_method"], "tokens_generated": float(r.get("tokens_generated_mean", math.nan)),
                   "n_untrained": int(r.get("n_untrained", 0))}
            row["note"] = _method_notes(row, overlaps[spec["dataset"]], band, notes.get(r["method"].split("@")[0]))
            rows.append(row)
    df = pd.DataFrame(_merge_shared_runs(rows))
    # the seed document's order: by gain, largest first (ties: study, method)
    return df.sort_values(["gain_pp_mean", "study", "method"], ascending=[False, True, True]).reset_index(drop=True)


# ---- cost ---------------------------------------------------------------------------------------

GPU_RULES = ("sample_first_attempts", "sample_retries", "sample_extra_attempts", "sample_hints", "sample_diagnoses",
             "sample_skeletons",
             "sample_evaluation", "train_adapter", "sample_rollouts", "train_verifier", "train_generator",
             "evaluate_mucode")


def benchmark_rule(path: str | Path) -> str:
    """The rule a benchmark file belongs to: ``.../benchmarks/<rule>.tsv`` or ``benchmarks/<rule>/<x>.tsv``."""
    p = Path(path)
    return p.stem if p.parent.name == "benchmarks" else p.parent.name


def read_benchmark(path: str | Path) -> dict:
    """Wall seconds (``s``) and CPU seconds (``cpu_time``) of one job's benchmark file (summed over
    repeats, if the rule repeats its benchmark)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: empty benchmark file")

    def total(key):
        vals = [float(r[key]) for r in rows if r.get(key) not in (None, "", "NA", "-")]
        return sum(vals) if vals else math.nan
    return {"s": total("s"), "cpu_time": total("cpu_time")}


def cost_rows(jobs: dict[str, Sequence[str]], timings: dict[str, dict], device: str) -> pd.DataFrame:
    """Per study: its jobs' compute and wall time, each shared job split equally among the studies
    that need it (so the column sums to the total, every job counted once), and what the study
    would cost run alone. A last row ``total`` gives the whole DAG, the sum of the alone costs and
    what sharing saved.

    ``jobs``: study -> the benchmark files of the jobs it needs; ``timings``: file -> read_benchmark.
    ``device`` gpu: compute is GPU-hours (wall hours of the jobs that hold one GPU each); cpu:
    CPU-seconds of every benchmarked job.
    """
    users: dict[str, int] = defaultdict(int)
    for files in jobs.values():
        for f in set(files):
            users[f] += 1

    def compute(f: str) -> float:
        if device == "gpu":
            return timings[f]["s"] / 3600 if benchmark_rule(f) in GPU_RULES else 0.0
        return timings[f]["cpu_time"]

    def wall(f: str) -> float:
        return timings[f]["s"] / (3600 if device == "gpu" else 1)

    rows = []
    for study in sorted(jobs):
        files = sorted(set(jobs[study]))
        rows.append({"study": study, "jobs": len(files), "shared_jobs": sum(users[f] > 1 for f in files),
                     "compute": sum(compute(f) / users[f] for f in files),
                     "wall": sum(wall(f) / users[f] for f in files),
                     "compute_alone": sum(compute(f) for f in files), "wall_alone": sum(wall(f) for f in files)})
    every = sorted(users)
    total = {"study": "total", "jobs": len(every), "shared_jobs": sum(users[f] > 1 for f in every),
             "compute": sum(compute(f) for f in every), "wall": sum(wall(f) for f in every),
             "compute_alone": sum(r["compute_alone"] for r in rows), "wall_alone": sum(r["wall_alone"] for r in rows)}
    rows.append(total)
    df = pd.DataFrame(rows)
    df["saved_compute"] = df["compute_alone"] - df["compute"]
    df["saved_wall"] = df["wall_alone"] - df["wall"]
    df.loc[df["study"] != "total", ["saved_compute", "saved_wall"]] = math.nan
    df["unit_compute"] = "GPU-h" if device == "gpu" else "CPU-s"
    df["unit_wall"] = "h" if device == "gpu" else "s"
    return df
