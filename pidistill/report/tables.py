"""LaTeX tables (booktabs) from the aggregate CSVs; every cell is formatted by ``report.fmt``."""

from __future__ import annotations

import math

import pandas as pd

from pidistill.report.fmt import latex_escape as esc
from pidistill.report.fmt import is_missing, num, pct, pp


def _table(colspec: str, header: list[str], body: list[list[str]], caption: str, label: str) -> str:
    lines = [
        r"\begin{table}[!ht]", r"\centering", r"\small",
        rf"\caption{{{caption}}}", rf"\label{{{label}}}",
        # at most the text width: a wide table is scaled down to fit, a narrow one keeps its size
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        rf"\begin{{tabular}}{{{colspec}}}", r"\toprule",
        " & ".join(header) + r" \\", r"\midrule",
        *[" & ".join(row) + r" \\" for row in body],
        r"\bottomrule", r"\end{tabular}}", r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _pm(mean: float, std: float, f=pp) -> str:
    if isinstance(std, float) and math.isnan(std):
        return f(mean)
    return f"{f(mean)} $\\pm$ {f(std, sign=False) if f is pp else f(std)}"


def _ci(lo: float, hi: float, f=pp) -> str:
    return "--" if is_missing(lo) or is_missing(hi) else f"[{f(lo)}, {f(hi)}]"


BOOT_MARK = "$^{b}$"


def _gain_ci(r: dict) -> tuple[str, bool]:
    """A row's 95% CI cell, marked when it is a paired bootstrap (one seed); and whether it is."""
    ci = _ci(r["gain_pp_ci_low"], r["gain_pp_ci_high"])
    boot = r.get("ci_method") == "bootstrap" and ci != "--"
    return ci + (BOOT_MARK if boot else ""), boot


def _boot_note(bootstrap: dict | None, lead: str = "a single seed; the 95\\% CI is") -> str:
    n = f"{bootstrap['samples']} " if bootstrap else ""
    return (f" {BOOT_MARK}: {lead} a paired bootstrap over the test problems ({n}resamples, "
            "the same resampled problems for both policies), not a spread over seeds.")


def overlap_note(overlap: dict | None) -> str:
    """One sentence on train/test overlap, from the problem records' content hashes."""
    if overlap is None:
        return ""
    if overlap["n_test_in_train"]:
        return (f" \\textbf{{Train/test overlap:}} {overlap['n_test_in_train']} of the {overlap['n_test']} test problems "
                f"({pct(overlap['fraction'], 0)}\\%) also appear in the training split (same prompt and tests), so "
                "the gain is partly measured on problems the policy was trained on.")
    return " No test problem appears in the training split (content hash of prompt and tests)."


def shared_baseline(runs: pd.DataFrame) -> bool:
    """Whether every condition of each seed is compared with one and the same base pass@1."""
    return bool((runs.groupby("seed")["base_pass@1"].nunique() <= 1).all())


def baseline_note(runs: pd.DataFrame) -> str:
    if shared_baseline(runs):
        return (" Every condition is compared with one baseline, the base policy of its seed (evaluated once and "
                "shared), so the gains of different conditions are comparable.")
    return " \\textbf{The conditions do not share one baseline} per seed: compare their gains with care."


def conditions_table(study: str, title: str, summary: pd.DataFrame, runs: pd.DataFrame, overlap: dict | None = None,
                     bootstrap: dict | None = None) -> str:
    """Baseline, post-training pass@1, gain (mean +/- std over seeds), per-seed gains, 95% CI, data counts."""
    body = []
    marked = False
    for r in summary.to_dict("records"):
        sub = runs[runs["method"] == r["method"]].sort_values("seed")
        per_seed = ", ".join(pp(g) for g in sub["gain_pp"])
        ci, boot = _gain_ci(r)
        marked |= boot
        post = pct(r["pass@1_mean"]) if math.isnan(r["pass@1_std"]) else f"{pct(r['pass@1_mean'])} $\\pm$ {pct(r['pass@1_std'])}"
        body.append([
            esc(r["label"]), str(r["n_seeds"]), pct(r["base_pass@1_mean"]), post,
            _pm(r["gain_pp_mean"], r["gain_pp_std"]), per_seed, ci,
            num(r["retry_success_rate_mean"] * 100, 1), num(r["n_pairs_mean"], 1),
        ])
    header = ["Condition", "Seeds", "Base (\\%)", "After (\\%)", "Gain (pp)", "Per-seed gains", "95\\% CI",
              "Retry succ. (\\%)", "Pairs"]
    caption = (f"{esc(title)}: test pass@1 of the base policy and after one round of each condition's method (by "
               "default retry, filter and LoRA SFT; GRPO and OPSD sample their own completions and train on no "
               "pairs); gains against the same seed's base policy."
               + (" 95\\% CI: $t$-interval of the mean gain over seeds." if (summary["n_seeds"] > 1).any() else "")
               + " Retry success: share of training "
               "problems failed on the first attempt that a retry solved. Pairs: SFT pairs after filtering."
               + baseline_note(runs) + (_boot_note(bootstrap) if marked else "") + overlap_note(overlap))
    return _table("lrrrrlrrr", header, body, caption, f"tab:{study}")


def rounds_table(study: str, title: str, rounds: pd.DataFrame, stop_below: float | None, overlap: dict | None = None,
                 bootstrap: dict | None = None) -> str:
    body = []
    for r in rounds.sort_values(["seed", "round"]).to_dict("records"):
        stage = "Base" if r["round"] == 0 else f"Round {r['round']}"
        trained = "" if r["round"] == 0 or r["trained"] else " (no SFT)"
        ci = "--" if r["round"] == 0 else _ci(r.get("gain_pp_ci_low"), r.get("gain_pp_ci_high"))
        body.append([
            stage + trained, str(r["seed"]), pct(r["pass@1"]),
            "--" if r["round"] == 0 else pp(r["gain_pp"]),
            ci + (BOOT_MARK if ci != "--" else ""),
            "--" if r["round"] == 0 else pp(r["gain_parent_pp"]),
            num(r["decay"], 2),
            "--" if r["round"] == 0 else pct(r["retry_success_rate"]),
            "--" if r["round"] == 0 else str(int(r["n_pairs"])),
            ("yes" if r["below_stop"] else "no") if r["round"] > 0 and stop_below is not None else "--",
        ])
    header = ["Stage", "Seed", "pass@1 (\\%)", "$\\Delta$ base (pp)", "95\\% CI", "$\\Delta$ prev. (pp)", "Decay",
              "Retry succ. (\\%)", "Pairs", "Stop?"]
    rule = "" if stop_below is None else f" Stop?: the round's retry success rate on the remaining frontier is below {pct(stop_below, 0)}\\%."
    caption = (f"{esc(title)}: each round retries the current policy's failures, filters, and continues training "
               "the previous round's adapter on the new pairs. Decay: this round's gain over the previous round's." + rule
               + _boot_note(bootstrap, "the 95\\% CI of each round's gain is") + overlap_note(overlap))
    return _table("lrrrlrrrrr", header, body, caption, f"tab:{study}")


# ---- derived studies -----------------------------------------------------------------------------


def amortized_table(study: str, title: str, rows: pd.DataFrame, source_title: str, bootstrap: dict | None = None) -> str:
    """Base vs the policy after round R: pass@1, pass@N, gap (stochastic headroom), headroom internalised."""
    body = []
    for r in rows.to_dict("records"):
        seed = "mean" if r["seed"] == "mean" else str(r["seed"])
        mark = "" if r["ci_method"] == "t" else BOOT_MARK
        body.append(["Base", seed, pct(r["base_pass@1"]), pct(r["base_pass@N"]), pp(r["base_gap_pp"], sign=False),
                     _ci(r["base_gap_ci_low"], r["base_gap_ci_high"]) + mark, "--", "--", "--"])
        body.append([f"After round {r['round']}", seed, pct(r["after_pass@1"]), pct(r["after_pass@N"]),
                     pp(r["after_gap_pp"], sign=False), _ci(r["after_gap_ci_low"], r["after_gap_ci_high"]) + mark,
                     pp(r["gain_pp"]), _ci(r["gain_ci_low"], r["gain_ci_high"]) + mark,
                     f"{pct(r['internalised'], 0)} {_ci(r['internalised_ci_low'], r['internalised_ci_high'], lambda x: pct(x, 0))}"
                     + mark])
    n = int(rows["N"].iloc[0])
    header = ["Policy", "Seed", "pass@1 (\\%)", f"pass@{n} (\\%)", "Gap (pp)", "95\\% CI", "$\\Delta$ pass@1 (pp)",
              "95\\% CI", "Internalised (\\%) [95\\% CI]"]
    caption = (f"{esc(title)}: the base policy and the policy after round {int(rows['round'].iloc[0])} of "
               f"study \\texttt{{{esc(source_title)}}}, each evaluated with {n} samples per test problem. Gap: pass@{n} $-$ pass@1, "
               "the stochastic headroom that resampling finds and a first attempt misses. Internalised: "
               "1 $-$ gap after / gap of the base, the share of the base policy's headroom that the trained policy no "
               "longer needs resampling for." + _boot_note(bootstrap, "per seed, the 95\\% CIs are")
               + (" Mean: over seeds, with the $t$-interval." if (rows["seed"] == "mean").any() else ""))
    return _table("lrrrrlrlr", header, body, caption, f"tab:{study}")


def levels_table(study: str, title: str, rows: pd.DataFrame, source_title: str, bootstrap: dict | None = None) -> str:
    body = []
    marked = False
    for method, sub in rows.groupby("method", sort=False):
        for i, r in enumerate(sub.to_dict("records")):
            ci, boot = _gain_ci(r)
            marked |= boot
            body.append([esc(r["label"]) if i == 0 else "", str(r["level"]), str(r["n_problems"]),
                         pct(r["base_pass@1"]), pct(r["pass@1"]), _pm(r["gain_pp_mean"], r["gain_pp_std"]), ci])
    header = ["Condition", "Level", "Problems", "Base (\\%)", "After (\\%)", "Gain (pp)", "95\\% CI"]
    n_seeds = int(rows["n_seeds"].iloc[0])
    caption = (f"{esc(title)}: test pass@1 of the base policy and after one round of each condition of "
               f"study \\texttt{{{esc(source_title)}}}, per difficulty level of the test problems (the problem records' own "
               f"\\texttt{{level}}), from the per-problem results of the same evaluations; mean over {n_seeds} seed"
               f"{'s' if n_seeds > 1 else ''}" + (", 95\\% CI the $t$-interval over seeds." if n_seeds > 1 else ".")
               + (_boot_note(bootstrap) if marked else ""))
    return _table("lrrrrrl", header, body, caption, f"tab:{study}")


def _lr(x: float) -> str:
    mantissa, exp = f"{x:.0e}".split("e")
    return f"${mantissa}\\times 10^{{{int(exp)}}}$"


def lr_table(study: str, title: str, lr: pd.DataFrame, lr_title: str, bootstrap: dict | None = None) -> str:
    body = []
    marked = False
    for r in lr.to_dict("records"):
        ci, boot = _gain_ci(r)
        marked |= boot
        gain = _pm(r["gain_pp_mean"], r["gain_pp_std"])
        body.append([esc(r["label"]), _lr(r["learning_rate"]), "--" if is_missing(r["lora_r"]) else str(int(r["lora_r"])),
                     str(r["n_seeds"]), pct(r["base_pass@1_mean"]), pct(r["pass@1_mean"]),
                     f"\\textbf{{{gain}}}" if r["best"] else gain, ci,
                     num(r["retry_success_rate_mean"] * 100, 1), num(r["n_pairs_mean"], 1)])
    header = ["Condition", "LR", "LoRA $r$", "Seeds", "Base (\\%)", "After SFT (\\%)", "Gain (pp)", "95\\% CI",
              "Retry succ. (\\%)", "Pairs"]
    caption = (f"{esc(title)}: the learning-rate sweep of study \\texttt{{{esc(lr_title)}}}: the same retries and pairs, trained at "
               "each learning rate; bold: the largest mean gain." + (_boot_note(bootstrap) if marked else ""))
    return _table("lrrrrrrlrr", header, body, caption, f"tab:{study}")


def _gain_rows(rows: pd.DataFrame, cells) -> tuple[list[list[str]], bool]:
    """The body of a table of gains: ``cells(row, ci)`` per row, and whether a CI is a bootstrap one."""
    body, marked = [], False
    for r in rows.to_dict("records"):
        ci, boot = _gain_ci(r)
        marked |= boot
        body.append(cells(r, ci))
    return body, marked


def domains_table(study: str, title: str, rows: pd.DataFrame, bootstrap: dict | None = None) -> str:
    body, marked = _gain_rows(rows, lambda r, ci: [
        esc(r["domain"]), f"\\texttt{{{esc(r['dataset'])}}}", f"\\texttt{{{esc(r['model'])}}}", esc(r["label"]),
        str(r["n_seeds"]), pct(r["base_pass@1"]), _pm(r["gain_pp_mean"], r["gain_pp_std"]), ci, esc(r["note"])])
    header = ["Domain", "Dataset", "Model", "Method", "Seeds", "Base (\\%)", "Gain (pp)", "95\\% CI", "Note"]
    caption = (f"{esc(title)}: one round of each method (its source, filter and trainer) per domain; gains against "
               "the same seed's base policy. A run that several studies share is one row. The note is computed from "
               "the runs and the problem records (seeds, train/test overlap)."
               + (_boot_note(bootstrap) if marked else ""))
    return _table("llllrrrlp{4.2cm}", header, body, caption, f"tab:{study}")


def cost_table(study: str, title: str, rows: pd.DataFrame, device: str) -> str:
    unit_c = rows["unit_compute"].iloc[0]
    unit_w = rows["unit_wall"].iloc[0]
    digits = 2 if device == "gpu" else 1
    body = []
    for r in rows.to_dict("records"):
        name = "All studies (each job once)" if r["study"] == "total" else f"\\texttt{{{esc(r['study'])}}}"
        body.append([name, str(r["jobs"]), str(r["shared_jobs"]), num(r["compute"], digits), num(r["wall"], digits),
                     num(r["compute_alone"], digits), num(r["wall_alone"], digits)])
    total = rows[rows["study"] == "total"].iloc[0]
    saved = total["saved_compute"] / total["compute_alone"] if total["compute_alone"] else math.nan
    what = ("GPU-hours: wall time of the jobs that hold one GPU each (generation and training)" if device == "gpu"
            else "CPU-seconds of the benchmarked jobs (generation, training, pretraining), as their benchmark files record")
    header = ["Study", "Jobs", "Shared", f"Compute ({unit_c})", f"Job time ({unit_w})", f"Alone: compute ({unit_c})",
              f"Alone: job time ({unit_w})"]
    caption = (f"{esc(title)}, from the benchmark file Snakemake writes for every heavy job. Compute: {what}; job time: "
               "the jobs' wall-clock durations added up (jobs that ran side by side count each). "
               "\\textbf{Attribution:} a job that several studies need (a shared base evaluation, the first attempts, "
               "a round shared with another study, the model's pretraining) is counted once and split equally among "
               "the studies that need it, so the compute column adds up to the total. Alone: what the study would "
               "cost if it ran by itself, its shared jobs included in full. Sharing saved "
               f"{num(total['saved_compute'], digits)} {unit_c} ({pct(saved, 0)}\\% of the alone total).")
    return _table("lrrrrrr", header, body, caption, f"tab:{study}")


def hierarchy_table(study: str, title: str, rows: pd.DataFrame, bootstrap: dict | None = None) -> str:
    """The hierarchy of one domain's methods (each round of a rounds study a row), largest gain first."""
    body, marked = _gain_rows(rows, lambda r, ci: [
        esc(r["label"]), f"\\texttt{{{esc(r['model'])}}}", pct(r["base_pass@1"]), _pm(r["gain_pp_mean"], r["gain_pp_std"]),
        ci, str(r["n_seeds"]), _tokens(r["tokens_generated"]), esc(r["note"])])
    header = ["Method", "Model", "Base (\\%)", "Gain (pp)", "95\\% CI", "Seeds", "Tokens", "Note"]
    caption = (f"{esc(title)}: the methods of one domain, largest mean gain first (a method repeated over rounds: "
               "one row per round, its gain over the base policy); gains in test pass@1 against the same seed's base "
               "policy. Tokens as in the method table. The notes are computed from the runs."
               + (_boot_note(bootstrap) if marked else ""))
    return _table("llrrlrrp{4.6cm}", header, body, caption, f"tab:{study}")


def _tokens(x: float) -> str:
    if is_missing(x):
        return "--"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def methods_table(study: str, title: str, rows: pd.DataFrame, bootstrap: dict | None = None) -> str:
    """The method table: one row per (study, method), largest gain first."""
    body, marked = _gain_rows(rows, lambda r, ci: [
        esc(r["label"]), f"\\texttt{{{esc(r['model'])}}}", f"\\texttt{{{esc(r['dataset'])}}}",
        _pm(r["gain_pp_mean"], r["gain_pp_std"]), ", ".join(pp(float(g)) for g in str(r["gains_pp"]).split(";") if g),
        ci, str(r["n_seeds"]), _tokens(r["tokens_generated"]), f"\\texttt{{{esc(r['study'])}}}", esc(r["note"])])
    header = ["Method", "Model", "Dataset", "Gain (pp)", "Per seed", "95\\% CI", "Seeds", "Tokens", "Study", "Note"]
    caption = (f"{esc(title)}: every method of every study, largest mean gain first; gains in test pass@1 against "
               "the same seed's base policy, mean $\\pm$ std over seeds. Tokens: generated for the training set "
               "(first attempts, the source's candidates, hints or diagnoses, and the completions GRPO and OPSD sample while "
               "training; mean over seeds), counted by the generating model's tokenizer. The notes are computed from the runs: single seed, a baseline outside the band where retry "
               "helps, train/test overlap, a 95\\% CI that includes zero."
               + (_boot_note(bootstrap) if marked else ""))
    return _table("lllrp{2.4cm}lrrlp{4.2cm}", header, body, caption, f"tab:{study}")
