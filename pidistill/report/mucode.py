"""The µCode study's CSV, tables, figure data and quoted numbers, from its evaluation JSON files
(pidistill.mucode.evaluate)."""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from pidistill.report.fmt import latex_escape as esc
from pidistill.report.fmt import pct, pp
from pidistill.report.tables import _table

# LaTeX labels (raw LaTeX: not escaped)
LABELS = {
    "base": "Base",
    "mucode": r"$\mu$Code",
    "multi_star": "Multi-STaR (RFT)",
    "multi_star_r": r"Multi-STaR$^2$ (RFT-R)",
    "rft_lv": "RFT(LV)",
    "star": "STaR (single turn)",
    "mucode_r": r"$\mu$Code-R",
}
SELECTOR_LABELS = {"random": "random", "verifier": "learned verifier", "public": "public tests",
                   "public_verifier": "public tests + verifier"}
COLUMNS = ["study", "seed", "method", "iteration", "dataset", "metric", "selector", "verifier", "turn", "rate", "se", "n"]


def long_rows(study: str, evaluations: Sequence[tuple[int, dict]]) -> pd.DataFrame:
    """One row per (seed, policy, dataset, metric, selector, verifier, turn): metric ``pass``
    (greedy), ``bon`` (the policy's own verifier, each selector), ``verifier`` (the method's selector
    with each verifier), ``hidden`` (tests hidden)."""
    rows = []
    for seed, ev in evaluations:
        sel, own = ev["settings"]["selector"], ev["verifier"]
        key = dict(study=study, seed=seed, method=ev["method"], iteration=ev["iteration"], dataset=ev["dataset"])

        def add(metric, selector, verifier, series):
            rows.extend({**key, "metric": metric, "selector": selector, "verifier": verifier, **r} for r in series)

        add("pass", "greedy", "", ev["pass"])
        for s, series in ev["bon"].items():
            add("bon", s, own, series)
        for v, series in ev["bon_by_verifier"].items():
            add("verifier", sel, v, series)
        if "hidden" in ev:
            add("hidden", sel, own, ev["hidden"])
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values(COLUMNS[:9]).reset_index(drop=True)


def _mean(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds; the SE of that mean from the seeds' own SEs (sqrt(mean(se^2) / k))."""
    keys = ["method", "iteration", "dataset", "metric", "selector", "verifier", "turn"]
    g = df.groupby(keys, sort=True)
    out = g.agg(rate=("rate", "mean"), se2=("se", lambda s: float((s ** 2).mean())), k=("seed", "nunique"),
                n=("n", "first")).reset_index()
    out["se"] = [math.sqrt(a / k) for a, k in zip(out["se2"], out["k"])]
    return out.drop(columns="se2")


def _cell(frame: pd.DataFrame, **where) -> str:
    m = frame
    for k, v in where.items():
        m = m[m[k] == v]
    if m.empty:
        return "--"
    r = m.iloc[0]
    return f"{pct(r['rate'])} $\\pm$ {pct(r['se'])}"


def _policies(df: pd.DataFrame) -> list[tuple[str, int]]:
    order = list(LABELS)
    pol = sorted({(m, int(i)) for m, i in zip(df["method"], df["iteration"])},
                 key=lambda x: (x[1], order.index(x[0]) if x[0] in order else len(order), x[0]))
    return pol


def tables(study: dict, df: pd.DataFrame) -> str:
    """The study's four tables, in one file: Pass@t and BoN@t per policy and dataset; the selectors;
    the verifier-iteration table; the tests-hidden table."""
    name, title = study["name"], esc(study.get("title", study["name"]))
    ev = study.get("eval", {})
    t = ev.get("report_turns", 3)
    sel = ev.get("selector", "public_verifier")
    last = study["iterations"]
    m = _mean(df)
    datasets = list(study["eval_datasets"])
    seeds = f"{df['seed'].nunique()} seed(s)"
    se_note = ("mean $\\pm$ standard error over the test problems (with several seeds: the mean over seeds and the "
               "standard error of that mean)")

    # 1. per policy
    header = ["Policy", "Iter."] + [h for ds in datasets for h in (f"\\texttt{{{esc(ds)}}} Pass@{t}", f"BoN@{t}")]
    body = []
    for method, it in _policies(m):
        row = [LABELS.get(method, esc(method)), str(it)]
        for ds in datasets:
            row += [_cell(m, method=method, iteration=it, dataset=ds, metric="pass", turn=t),
                    _cell(m, method=method, iteration=it, dataset=ds, metric="bon", selector=sel, turn=t)]
        body.append(row)
    out = [_table("lr" + "rr" * len(datasets), header, body,
                  f"{title}: Pass@{t} (one greedy code a turn, {t} turns) and multi-turn BoN@{t} "
                  f"({ev.get('candidates', 5)} candidates a turn, picked by {SELECTOR_LABELS[sel]}; the pick's public-test "
                  f"feedback starts the next turn), in \\%, {se_note}; {seeds}. Iteration 0 is the base model; every "
                  "generator is fine-tuned from it on the rollouts of all earlier iterations.", f"tab:{name}")]

    # 2. selectors (the last µCode generator)
    header = ["Selector"] + [f"\\texttt{{{esc(ds)}}} BoN@{t}" for ds in datasets]
    body = [[esc(SELECTOR_LABELS[s])] + [_cell(m, method="mucode", iteration=last, dataset=ds, metric="bon", selector=s,
                                               turn=t) for ds in datasets]
            for s in SELECTOR_LABELS]
    out.append(_table("l" + "r" * len(datasets), header, body,
                      f"{title}: BoN@{t} of the iteration-{last} $\\mu$Code generator by the selector that picks each "
                      f"turn's candidate, in \\%, {se_note}.", f"tab:{name}_selectors"))

    # 3. verifier iteration
    verifiers = sorted(set(m[(m["metric"] == "verifier") & (m["method"] == "mucode") & (m["iteration"] == last)]["verifier"]),
                       key=lambda v: int(v[4:]))
    if len(verifiers) > 1:
        header = ["Verifier"] + [f"\\texttt{{{esc(ds)}}} BoN@{t}" for ds in datasets]
        body = [[f"iteration {v[4:]}"] + [_cell(m, method="mucode", iteration=last, dataset=ds, metric="verifier",
                                                verifier=v, turn=t) for ds in datasets] for v in verifiers]
        out.append(_table("l" + "r" * len(datasets), header, body,
                          f"{title}: the iteration-{last} $\\mu$Code generator's BoN@{t} with the first iteration's "
                          f"learned verifier and with the newest one ({SELECTOR_LABELS[sel]}), in \\%, {se_note}.",
                          f"tab:{name}_verifier"))

    # 4. tests hidden
    hidden = m[m["metric"] == "hidden"]
    if not hidden.empty:
        header = ["Policy", "Dataset"] + [f"BoN@{k}" for k in range(1, t + 1)]
        body = []
        for method, it in _policies(hidden):
            for ds in datasets:
                body.append([LABELS.get(method, esc(method)) + (f" (iter.\\ {it})" if it else ""), f"\\texttt{{{esc(ds)}}}"]
                            + [_cell(hidden, method=method, iteration=it, dataset=ds, turn=k) for k in range(1, t + 1)])
        out.append(_table("ll" + "r" * t, header, body,
                          f"{title}: tests hidden (the unit tests taken out of the prompts; the public-test feedback "
                          f"still comes after a failed turn): BoN@$t$ for $t = 1..{t}$, in \\%, {se_note}.",
                          f"tab:{name}_hidden"))
    return "\n".join(out)


def turn_curves(study: dict, df: pd.DataFrame) -> pd.DataFrame:
    """The figure's data: BoN@t by turn limit, the method's selector, every policy of the last
    iteration and the base, mean over seeds."""
    m = _mean(df)
    sel = study.get("eval", {}).get("selector", "public_verifier")
    last = study["iterations"]
    keep = (m["metric"] == "bon") & (m["selector"] == sel) & ((m["iteration"] == last) | (m["method"] == "base"))
    return m[keep].sort_values(["dataset", "method", "turn"]).reset_index(drop=True)


def numbers(study: dict, df: pd.DataFrame) -> dict[str, str]:
    """Numbers the section quotes (first evaluation dataset): the base's and the last µCode
    generator's BoN@t and Pass@t, the gain, the best method of the last iteration by BoN@t."""
    name = study["name"]
    ev = study.get("eval", {})
    t, sel, last = ev.get("report_turns", 3), ev.get("selector", "public_verifier"), study["iterations"]
    ds = study["eval_datasets"][0]
    m = _mean(df)
    m = m[(m["dataset"] == ds) & (m["turn"] == t)]

    def rate(method, it, metric, selector):
        r = m[(m["method"] == method) & (m["iteration"] == it) & (m["metric"] == metric) & (m["selector"] == selector)]
        return float(r["rate"].iloc[0])

    bon = {meth: rate(meth, last, "bon", sel) for meth in study["methods"]}
    top = max(bon.values())
    best = [meth for meth in LABELS if bon.get(meth) == top]  # every method at the top (ties are common)
    base_bon, mu_bon = rate("base", 0, "bon", sel), bon["mucode"]
    return {
        f"{name}/dataset": esc(ds),
        f"{name}/turns": str(t),
        f"{name}/iterations": str(last),
        f"{name}/base_bon": pct(base_bon),
        f"{name}/mucode_bon": pct(mu_bon),
        f"{name}/base_pass": pct(rate("base", 0, "pass", "greedy")),
        f"{name}/mucode_pass": pct(rate("mucode", last, "pass", "greedy")),
        f"{name}/gain_bon": pp(100 * (mu_bon - base_bon)),
        f"{name}/best_method": ", ".join(LABELS[m] for m in best),
        f"{name}/best_bon": pct(top),
    }
