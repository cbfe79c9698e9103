"""Numbers and sentences quoted in the paper's text, written as LaTeX definitions.

The paper's prose refers to ``\\result{<key>}``; the keys are defined here from the aggregate CSVs,
so no result is typed by hand into the text and the prose never goes stale.
"""

from __future__ import annotations

import math

import pandas as pd

from pidistill.aggregate import ci_overlap
from pidistill.report.fmt import latex_escape as esc
from pidistill.report.fmt import is_missing, pct, pp


def define(key: str, value: str) -> str:
    return f"\\expandafter\\def\\csname pdresult@{key}\\endcsname{{{value}}}\n"


def ci_text(lo: float, hi: float) -> str:
    return "--" if is_missing(lo) or is_missing(hi) else f"[{pp(lo)}, {pp(hi)}]"


def ci_statement(summary: pd.DataFrame) -> str:
    """Whether the conditions' 95% CIs of the gain overlap, computed from the CIs the summary carries
    (t over seeds, or the paired bootstrap over problems for single-seed conditions)."""
    kinds = set(summary["ci_method"]) if "ci_method" in summary else {"t"}
    how = ("over seeds" if kinds == {"t"} else "paired bootstrap over the test problems" if kinds == {"bootstrap"}
           else "over seeds, or by paired bootstrap over problems for single-seed conditions")
    if len(summary) == 1:
        r = summary.iloc[0]
        return f"The 95\\% confidence interval of the gain is {ci_text(r['gain_pp_ci_low'], r['gain_pp_ci_high'])}\\,pp ({how})."
    if summary["gain_pp_ci_low"].isna().any():
        return "Not every condition has a confidence interval, so no overlap statement is made."
    apart = ci_overlap(summary)
    labels = dict(zip(summary["method"], summary["label"]))
    if not apart:
        return f"The 95\\% confidence intervals of all conditions' gains overlap ({how})."
    pairs = "; ".join(f"{esc(labels[a])} vs {esc(labels[b])}" for a, b in apart)
    return f"The 95\\% confidence intervals ({how}) do not overlap for: {pairs}."


def conditions_numbers(study: str, summary: pd.DataFrame) -> dict[str, str]:
    out = {}
    for r in summary.to_dict("records"):
        k = f"{study}/{r['method']}"
        out[f"{k}/gain"] = pp(r["gain_pp_mean"])
        out[f"{k}/gain_std"] = "--" if math.isnan(r["gain_pp_std"]) else pp(r["gain_pp_std"], sign=False)
        out[f"{k}/base"] = pct(r["base_pass@1_mean"])
        out[f"{k}/post"] = pct(r["pass@1_mean"])
        out[f"{k}/seeds"] = str(r["n_seeds"])
        out[f"{k}/ci"] = ci_text(r["gain_pp_ci_low"], r["gain_pp_ci_high"])
    best = summary.sort_values(["gain_pp_mean", "method"], ascending=[False, True]).iloc[0]
    worst = summary.sort_values(["gain_pp_mean", "method"], ascending=[True, True]).iloc[0]
    out[f"{study}/best"] = esc(best["label"])
    out[f"{study}/best_gain"] = pp(best["gain_pp_mean"])
    out[f"{study}/worst"] = esc(worst["label"])
    out[f"{study}/worst_gain"] = pp(worst["gain_pp_mean"])
    out[f"{study}/base"] = pct(summary["base_pass@1_mean"].iloc[0])
    out[f"{study}/ci_statement"] = ci_statement(summary)
    return out


def rounds_numbers(study: str, rounds: pd.DataFrame, stop_below: float | None) -> dict[str, str]:
    out = {}
    first_seed = rounds["seed"].min()
    sub = rounds[rounds["seed"] == first_seed].sort_values("round")
    for r in sub.to_dict("records"):
        k = f"{study}/r{r['round']}"
        out[f"{k}/acc"] = pct(r["pass@1"])
        if r["round"] > 0:
            out[f"{k}/gain"] = pp(r["gain_pp"])
            out[f"{k}/delta"] = pp(r["gain_parent_pp"])
            out[f"{k}/retry_rate"] = pct(r["retry_success_rate"])
            out[f"{k}/pairs"] = str(int(r["n_pairs"]))
            out[f"{k}/ci"] = ci_text(r.get("gain_pp_ci_low"), r.get("gain_pp_ci_high"))
    later = sub[sub["round"] > 0]
    best = later.sort_values(["pass@1", "round"], ascending=[False, True]).iloc[0]
    out[f"{study}/best_round"] = str(int(best["round"]))
    out[f"{study}/best_gain"] = pp(best["gain_pp"])
    out[f"{study}/rounds"] = str(int(later["round"].max()))
    if stop_below is not None:
        stops = later[later["below_stop"]]
        if stops.empty:
            out[f"{study}/stop_statement"] = (f"The retry success rate on the remaining frontier stayed at or above "
                                              f"{pct(stop_below, 0)}\\% in every round, so the stopping rule never fired.")
        else:
            r = int(stops["round"].iloc[0])
            out[f"{study}/stop_statement"] = (f"The stopping rule fires at round {r}: its retry success rate on the "
                                              f"remaining frontier, {pct(stops['retry_success_rate'].iloc[0])}\\%, "
                                              f"is below {pct(stop_below, 0)}\\%.")
    return out


# ---- derived studies ---------------------------------------------------------------------------


def amortized_numbers(study: str, rows: pd.DataFrame) -> dict[str, str]:
    """The single seed's values, or the mean over seeds where there are several (the last row)."""
    r = rows.iloc[-1].to_dict()
    frac = "--" if is_missing(r["internalised"]) else pct(r["internalised"], 0)
    lo, hi = r["internalised_ci_low"], r["internalised_ci_high"]
    out = {
        f"{study}/round": str(int(r["round"])), f"{study}/N": str(int(r["N"])),
        f"{study}/base_pass1": pct(r["base_pass@1"]), f"{study}/base_passN": pct(r["base_pass@N"]),
        f"{study}/after_pass1": pct(r["after_pass@1"]), f"{study}/after_passN": pct(r["after_pass@N"]),
        f"{study}/base_gap": pp(r["base_gap_pp"], sign=False), f"{study}/after_gap": pp(r["after_gap_pp"], sign=False),
        f"{study}/gain": pp(r["gain_pp"]), f"{study}/internalised": frac,
        f"{study}/internalised_ci": "--" if is_missing(lo) or is_missing(hi) else f"[{pct(lo, 0)}, {pct(hi, 0)}]",
    }
    if is_missing(r["internalised"]):
        out[f"{study}/statement"] = "The base policy has no stochastic headroom here, so nothing can be internalised."
    elif r["internalised_ci_low"] > 0:
        out[f"{study}/statement"] = "Its 95\\% CI excludes zero: the trained policy needs resampling less than the base."
    elif r["internalised_ci_high"] < 0:
        out[f"{study}/statement"] = ("Its 95\\% CI lies below zero: the trained policy has MORE headroom than the "
                                    "base, not less.")
    else:
        out[f"{study}/statement"] = "Its 95\\% CI includes zero: no internalisation is resolved at this sample size."
    return out


def levels_numbers(study: str, rows: pd.DataFrame) -> dict[str, str]:
    out = {}
    for r in rows.to_dict("records"):
        k = f"{study}/{r['method']}/L{r['level']}"
        out[f"{k}/base"] = pct(r["base_pass@1"])
        out[f"{k}/post"] = pct(r["pass@1"])
        out[f"{k}/gain"] = pp(r["gain_pp_mean"])
        out[f"{k}/ci"] = ci_text(r["gain_pp_ci_low"], r["gain_pp_ci_high"])
    levels = sorted(rows["level"].unique())
    out[f"{study}/levels"] = f"{levels[0]}--{levels[-1]}" if len(levels) > 1 else str(levels[0])
    mean = rows.groupby("level")["gain_pp_mean"].mean().round(6)
    best = [int(lv) for lv in mean.index if mean[lv] == mean.max()]  # every level that ties for the largest
    names = [str(lv) for lv in best]
    out[f"{study}/best_level"] = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    out[f"{study}/best_level_gain"] = pp(mean.max())
    resolved = rows[(rows["gain_pp_ci_low"] > 0) | (rows["gain_pp_ci_high"] < 0)]
    if resolved.empty:
        out[f"{study}/ci_statement"] = ("No per-level gain has a 95\\% CI that excludes zero: the per-level "
                                        "differences are not resolved at this sample size.")
    else:
        cells = "; ".join(f"{esc(r['label'])} at level {r['level']} ({pp(r['gain_pp_mean'])}\\,pp)"
                          for r in resolved.to_dict("records"))
        out[f"{study}/ci_statement"] = f"The per-level gains whose 95\\% CI excludes zero: {cells}."
    return out


def scale_numbers(study: str, points: pd.DataFrame, band: dict, lr: pd.DataFrame) -> dict[str, str]:
    lo, hi = band["band"]
    out = {f"{study}/n_points": str(band["n_points"]), f"{study}/n_in_band": str(band["n_in_band"]),
           f"{study}/band": f"{pct(lo, 0)}--{pct(hi, 0)}"}
    if band["n_in_band"] and band["n_out_band"]:
        out[f"{study}/band_statement"] = (
            f"The {band['n_in_band']} points with a baseline in the band gain {pp(band['gain_in_band'])}\\,pp on "
            f"average, the {band['n_out_band']} outside it {pp(band['gain_out_band'])}\\,pp.")
    else:
        where = "inside" if band["n_in_band"] else "outside"
        out[f"{study}/band_statement"] = (f"All {band['n_points']} points have a baseline {where} the band "
                                          f"(mean gain {pp(points['gain_pp_mean'].mean())}\\,pp), so this "
                                          "configuration cannot show the inverted U.")
    best = lr[lr["best"]].iloc[0]
    out[f"{study}/best_lr"] = f"{best['learning_rate']:g}"
    out[f"{study}/best_lr_gain"] = pp(best["gain_pp_mean"])
    out[f"{study}/best_lr_ci"] = ci_text(best["gain_pp_ci_low"], best["gain_pp_ci_high"])
    out[f"{study}/lr_ci_statement"] = ci_statement(lr)
    return out


def domains_numbers(study: str, rows: pd.DataFrame) -> dict[str, str]:
    out = {}
    for r in rows.to_dict("records"):
        k = f"{study}/{r['study']}/{r['method']}"
        out[f"{k}/gain"] = pp(r["gain_pp_mean"])
        out[f"{k}/ci"] = ci_text(r["gain_pp_ci_low"], r["gain_pp_ci_high"])
    flagged = rows[rows["overlap"] > 0]
    if flagged.empty:
        out[f"{study}/overlap_statement"] = "No row trains and evaluates on overlapping problems."
    else:
        names = ", ".join(sorted({f"\\texttt{{{esc(d)}}}" for d in flagged["dataset"]}))
        out[f"{study}/overlap_statement"] = (f"Rows on {names} train and evaluate on overlapping problems (see their "
                                             "note): their gains are partly measured on trained problems.")
    return out


def methods_numbers(study: str, rows: pd.DataFrame) -> dict[str, str]:
    """Numbers the method table's prose quotes: how many rows, and how many have a CI including 0."""
    n_zero = int(sum("95% CI includes 0" in n for n in rows["note"]))
    n_single = int((rows["n_seeds"] == 1).sum())
    return {f"{study}/n_rows": str(len(rows)), f"{study}/n_ci_zero": str(n_zero),
            f"{study}/n_single_seed": str(n_single)}


def hierarchy_numbers(study: str, rows: pd.DataFrame) -> dict[str, str]:
    """Numbers the hierarchy's prose quotes: the best and the worst method, how many gains are
    positive, and how many have a CI that includes 0."""
    out = methods_numbers(study, rows)
    best, worst = rows.iloc[0], rows.iloc[-1]  # method_rows: largest gain first
    out.update({f"{study}/best_method": esc(best["label"]), f"{study}/best_gain": pp(best["gain_pp_mean"]),
                f"{study}/worst_method": esc(worst["label"]), f"{study}/worst_gain": pp(worst["gain_pp_mean"]),
                f"{study}/n_positive": str(int((rows["gain_pp_mean"] > 0).sum()))})
    for r in rows.to_dict("records"):
        out[f"{study}/{r['study']}/{r['method']}/gain"] = pp(r["gain_pp_mean"])
    return out


def numbers_tex(values: dict[str, str]) -> str:
    header = ("% Generated by pidistill (rule write_numbers): every number quoted in the paper's text.\n"
              "\\providecommand{\\result}[1]{\\ifcsname pdresult@#1\\endcsname\\csname pdresult@#1\\endcsname"
              "\\else\\errmessage{pidistill: no result named #1}\\fi}\n")
    return header + "".join(define(k, values[k]) for k in sorted(values))
