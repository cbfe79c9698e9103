"""studies.tex: one paper section per enabled study (table, figures, generated sentences).

Prose refers to numbers only through ``\\result{key}`` (see ``report.numbers``). Studies that are
declared but switched off are listed with their note, not silently dropped.
"""

from __future__ import annotations

from pidistill.report.fmt import latex_escape as esc


def _quoter(name: str):
    """``r(key)``: the LaTeX that quotes the study's generated number ``name/key``."""
    return lambda key: f"\\result{{{name}/{key}}}"


def _figure(path: str, label: str, caption: str) -> str:
    return (
        "\\begin{figure}[!ht]\n\\centering\n"
        f"\\includegraphics[width=0.78\\linewidth]{{../figures/{path}}}\n"
        f"\\caption{{{caption}}}\n\\label{{{label}}}\n\\end{{figure}}\n"
    )


# What the method table's compute-matched row answers, stated once in the paper (pidistill/methods.py).
COMPUTE_MATCHED = (
    "\\textbf{Compute-matched (2x).} The question is whether spending twice the generation budget without the "
    "retry signal matches retry. A one-retry method spends, beyond the first attempts, one generation on each failed "
    "first attempt, with the failed attempt and the retry message in context. The compute-matched control spends two "
    "fresh generations on each failed first attempt, of the bare problem, with no failure signal: twice the retry "
    "method's extra generations, on the same failures. The tokens column counts what each method actually generated "
    "for its training set."
)


def _methods_paragraph(name: str, study: dict, methods: dict) -> str:
    """What each method of a method-table study is (source, filter, trainer), and the definitions."""
    items = "".join(f"\\item \\textbf{{{esc(methods[m]['label'])}}}: {esc(methods[m]['text'])}.\n"
                    for m in study["methods"] if m in methods)
    r = _quoter(name)
    return (f"Each method is a source of candidate solutions, a filter and a trainer:\n\\begin{{itemize}}\n{items}"
            f"\\end{{itemize}}\n{COMPUTE_MATCHED}\n\nTable~\\ref{{tab:{name}}} lists every method of every study "
            f"({r('n_rows')} rows); {r('n_single_seed')} of them rest on a single seed and {r('n_ci_zero')} have a "
            "95\\% CI that includes zero.\n\n")


def _own_seeds(study: dict) -> str:
    """The methods with seeds of their own (``method_seeds``), as a parenthesis."""
    own = study.get("method_seeds") or {}
    if not own:
        return ""
    parts = [f"\\texttt{{{esc(m)}}} over {len(s)}" for m, s in sorted(own.items())]
    return " (" + ", ".join(parts) + ")"


def _conditions(name: str, study: dict, figures: list[str], methods: dict | None = None) -> str:
    r = _quoter(name)
    seeds = len(study["seeds"])
    text = (
        f"Each condition is one round of a method: its candidate solutions (by default retries of the failed first "
        f"attempts), its filter (by default: the ones that pass), and training on the pairs (problem without PI or "
        f"failed attempt $\\to$ kept solution), on "
        f"\\texttt{{{esc(study['dataset'])}}} with \\texttt{{{esc(study['model'])}}}, over {seeds} seed"
        f"{'s' if seeds > 1 else ''}{_own_seeds(study)}. The base policy solves {r('base')}\\% of the test problems (pass@1, "
        f"mean over seeds). The largest mean gain is {r('best_gain')}\\,pp ({r('best')}), the smallest "
        f"{r('worst_gain')}\\,pp ({r('worst')}). {r('ci_statement')}\n\n"
    )
    if study.get("method_table"):
        text += _methods_paragraph(name, study, methods or {})
    text += f"\\input{{../tables/{name}.tex}}\n"
    text += _figure(figures[0], f"fig:{name}-gains",
                    f"{esc(study.get('title', name))}: gain in test pass@1 over the same seed's base policy.")
    if len(figures) > 1:
        text += _figure(figures[1], f"fig:{name}-training",
                        f"{esc(study.get('title', name))}: training loss of each condition's adapter.")
    if len(figures) > 2:
        text += _figure(figures[2], f"fig:{name}-curve",
                        f"{esc(study.get('title', name))}: gain in test pass@1 against the number of retries K per "
                        "failed first attempt.")
    return text


def _rounds(name: str, study: dict, figures: list[str]) -> str:
    r = _quoter(name)
    text = (
        f"Round $r+1$ retries the failures of round $r$'s policy with the \\texttt{{{esc(study['method'])}}} method "
        f"and continues training its adapter, for {study['rounds']} rounds on \\texttt{{{esc(study['dataset'])}}}. "
        f"Round~1 changes test pass@1 by {r('r1/gain')}\\,pp (from {r('r0/acc')}\\% to {r('r1/acc')}\\%); "
        f"the best round is round~{r('best_round')}, at {r('best_gain')}\\,pp over the base policy. "
    )
    if study.get("stop_below") is not None:
        text += r("stop_statement")
    text += "\n\n" + f"\\input{{../tables/{name}.tex}}\n"
    text += _figure(figures[0], f"fig:{name}-rounds",
                    f"{esc(study.get('title', name))}: test pass@1 by round, and each round's retry success rate "
                    "on the remaining frontier.")
    return text


def _tt(text: str) -> str:
    return f"\\texttt{{{esc(text)}}}"


def provenance_tex(models: dict[str, dict], datasets: dict[str, dict]) -> str:
    """A section naming exactly what the results were computed from (resolve_model, prepare_dataset)."""
    out = ["\\section{Models and data}\\label{sec:provenance}\n",
           "Hub models and datasets were resolved to a commit once and loaded at that commit by every job; "
           "local files are identified by their sha256 (both abbreviated to 12 hex digits here; the full values are in "
           "\\texttt{models/*.provenance.json} and \\texttt{data/*/provenance.json}).\n\n",
           "\\begin{itemize}\n"]
    for name in sorted(models):
        rec = models[name]
        if rec["source"] == "hub":
            what = f"{_tt(rec['id'])} at {esc(rec['revision'])} = commit {_tt(rec['commit'][:12])}"
        else:
            what = f"{esc(rec['source'])} model, sha256 {_tt(rec['sha256'][:12])}"
        out.append(f"\\item Model {_tt(name)}: {what}\n")
    for name in sorted(datasets):
        for split, rec in sorted(datasets[name]["splits"].items()):
            if rec["origin"] == "hub":
                where = "from " + "; ".join(
                    f"{_tt(h['repo'] + (':' + h['config'] if h['config'] else ''))} commit {_tt(h['commit'][:12])}"
                    for h in rec["hub"])
            elif rec["origin"] == "file":
                where = f"from file {_tt(rec['source'])} (sha256 {_tt(rec['source_sha256'][:12])})"
            else:
                where = f"generated by loader {_tt(rec['loader'])} (seeded)"
            out.append(f"\\item Data {_tt(name)}, {esc(split)} split: {rec['problems']} problems {where}; "
                       f"records sha256 {_tt(rec['sha256'][:12])}\n")
    out.append("\\end{itemize}\n")
    return "".join(out)


def _source_title(studies: dict, name: str) -> str:
    return esc(studies[name].get("title", name))


def _amortized(name: str, study: dict, studies: dict) -> str:
    r = _quoter(name)
    return (
        f"The base policy and the policy after round~{r('round')} of {_source_title(studies, study['from'])} "
        f"(Section~\\ref{{sec:{study['from']}}}), each with {r('N')} samples per test problem. The base policy's "
        f"stochastic headroom (pass@{r('N')} $-$ pass@1) is {r('base_gap')}\\,pp; after round~{r('round')} it is "
        f"{r('after_gap')}\\,pp, while pass@1 changed by {r('gain')}\\,pp. The trained policy internalised "
        f"{r('internalised')}\\% of the base policy's headroom (95\\% CI {r('internalised_ci')}\\%). {r('statement')}\n\n"
        f"\\input{{../tables/{name}.tex}}\n"
    )


def _levels(name: str, study: dict, studies: dict) -> str:
    r = _quoter(name)
    return (
        f"The evaluations of {_source_title(studies, study['from'])} (Section~\\ref{{sec:{study['from']}}}) split by "
        f"the difficulty level each test problem carries (levels {r('levels')}; no new generation). Averaged over "
        f"the conditions, the largest mean gain is at level(s)~{r('best_level')} ({r('best_level_gain')}\\,pp). "
        f"{r('ci_statement')}\n\n\\input{{../tables/{name}.tex}}\n"
    )


def _scale(name: str, study: dict, studies: dict, figures: list[str]) -> str:
    r = _quoter(name)
    text = (
        f"Every (model, dataset, condition) of the conditions studies is one point: its baseline pass@1 against its "
        f"gain ({r('n_points')} points; a run that several studies share counts once). The source documents' sweet spot "
        f"is a baseline of {r('band')}\\%. {r('band_statement')} In the learning-rate sweep of "
        f"{_source_title(studies, study['lr_study'])}, the largest mean gain is at a learning rate of {r('best_lr')} "
        f"({r('best_lr_gain')}\\,pp, 95\\% CI {r('best_lr_ci')}\\,pp). {r('lr_ci_statement')}\n\n"
        f"\\input{{../tables/{name}.tex}}\n"
    )
    text += _figure(figures[0], f"fig:{name}-scale",
                    f"{esc(study.get('title', name))}: baseline test pass@1 against the gain of one round, one point per "
                    "model, dataset and condition, with 95\\% CIs; shaded: the baseline band. Where more than three "
                    "conditions share a baseline (one model on one dataset), only the highest and lowest gain are "
                    "labelled; every point is in the study's points.csv.")
    return text


def _domains(name: str, study: dict, studies: dict) -> str:
    r = _quoter(name)
    sources = study["from"] if isinstance(study["from"], list) else [study["from"]]
    listed = ", ".join(f"{_source_title(studies, s)} (Section~\\ref{{sec:{s}}})" for s in sources)
    return (f"The gain of one round per domain, from {listed}. {r('overlap_statement')}\n\n"
            f"\\input{{../tables/{name}.tex}}\n")


def _cost(name: str, study: dict, studies: dict) -> str:
    return (
        "Compute per study, from the benchmark file Snakemake writes for every generation, training and "
        "pretraining job. These are measurements of this build, not results: they differ from run to run, and "
        "they are kept with the benchmark files (the table below is the only part of this report that a rebuild "
        f"does not reproduce byte for byte).\n\n\\input{{../benchmarks/{name}/table.tex}}\n"
    )


def _hierarchy(name: str, study: dict, studies: dict, methods: dict | None = None) -> str:
    r = _quoter(name)
    sources = study["from"] if isinstance(study["from"], list) else [study["from"]]
    listed = ", ".join(f"{_source_title(studies, s)} (Section~\\ref{{sec:{s}}})" for s in sources)
    shown = [m for s in sources for m in (studies[s].get("methods") or [studies[s].get("method")]) if m]
    items = "".join(f"\\item \\textbf{{{esc(methods[m]['label'])}}}: {esc(methods[m]['text'])}.\n"
                    for m in dict.fromkeys(shown) if methods and m in methods)
    what = f"\\begin{{itemize}}\n{items}\\end{{itemize}}\n" if items else ""
    return (f"The methods of {listed}, largest gain first (a method repeated over rounds: one row per round).\n"
            f"{what}The largest gain is {r('best_method')}'s ({r('best_gain')}\\,pp), the smallest "
            f"{r('worst_method')}'s ({r('worst_gain')}\\,pp); {r('n_positive')} of {r('n_rows')} rows have a positive "
            f"mean gain and {r('n_ci_zero')} a 95\\% CI that includes zero.\n\n\\input{{../tables/{name}.tex}}\n")


def _mucode(name: str, study: dict, figures: list[str]) -> str:
    """The µCode section: what ran, the quoted numbers, the four tables and the turn-limit figure."""
    r = _quoter(name)
    ev = study.get("eval", {})
    t = ev.get("report_turns", 3)
    v = study.get("verifier", {})
    loss = "Bradley--Terry on (correct, incorrect) pairs" if v.get("loss", "bt") == "bt" else "binary cross-entropy"
    from pidistill.report.mucode import LABELS

    methods = ", ".join(LABELS.get(m, esc(m)) for m in study["methods"] if m != "mucode")
    text = (
        f"Each of {study['iterations']} iterations samples {study['rollouts']} episodes of up to {study['turns']} turns "
        f"per training problem of \\texttt{{{esc(study['dataset'])}}} from the newest $\\mu$Code generator (the base "
        "model first); a turn's code runs on the public and the private tests, and a failed turn gets the public "
        "tests' verdict as the next user turn. A learned verifier (the generator with a one-output score head, "
        f"{loss}) is trained on the rollouts of all iterations so far; every history prefix is relabeled with the "
        "problem's best code by $100\\times$oracle $+$ verifier score, and the next generator is fine-tuned from the "
        f"base model. The baselines ({methods}) share these rollouts. At test time each turn draws "
        f"{ev.get('candidates', 5)} candidates and the selector picks one; its public-test feedback starts the next "
        "turn; a problem counts as solved at turn $t$ if the pick passed the public tests at some turn $\\le t$ and "
        "passes the private tests.\n\n"
        f"On \\texttt{{{r('dataset')}}}, BoN@{t} goes from {r('base_bon')}\\% (base) to {r('mucode_bon')}\\% "
        f"($\\mu$Code, iteration {r('iterations')}; {r('gain_bon')}\\,pp), and greedy Pass@{t} from {r('base_pass')}\\% "
        f"to {r('mucode_pass')}\\%. The highest BoN@{t} of the last iteration, {r('best_bon')}\\%, is reached by "
        f"{r('best_method')}.\n\n\\input{{../tables/{name}.tex}}\n"
    )
    text += _figure(figures[0], f"fig:{name}-turns",
                    f"{esc(study.get('title', name))}: BoN@$t$ by turn limit $t$ (the rollouts had {study['turns']} "
                    "turns, the dotted line); error bars: standard error over the test problems.")
    return text


DERIVED = {"amortized": _amortized, "levels": _levels, "domains": _domains, "cost": _cost}


def trace_target(name: str, study: dict, numbers: dict) -> str:
    """What to give ``pidistill trace`` for one number of a study: its first quoted key, or for the
    cost study (which quotes none) a cell of its CSV."""
    if study["kind"] == "cost":
        return f"benchmarks/{name}/cost.csv:total:compute"
    keys = sorted(k for k in numbers if k.startswith(f"{name}/"))
    for suffix in ("/internalised", "/best_lr_gain", "/gain", "/best_gain", "/mucode_bon"):  # a result, not a count
        if any(k.endswith(suffix) for k in keys):
            return next(k for k in keys if k.endswith(suffix))
    return keys[0] if keys else f"studies/{name}/summary.csv"


def trace_appendix(studies: dict, enabled: list[str], numbers: dict) -> str:
    out = ["\\section{Tracing a number to the raw data}\\label{sec:trace}\n",
           "Every quoted number is a key of a study's \\texttt{numbers.json}, and every table cell a cell of a study's "
           "CSV. \\texttt{pidistill trace KEY} (run in the directory Snakemake ran in, with the same "
           "\\texttt{--configfile} or \\texttt{--profile}) prints the value, the file it was read from and, from "
           "Snakemake's own metadata, every job that produced an ancestor (rule, params, hashes of its code and input "
           "files) down to the model's and the datasets' provenance records, and whether each link is up to date. "
           "Any key of the paper works, as does \\texttt{FILE:ROW:COLUMN} for a CSV cell; one per study:\n\n",
           "\\begin{itemize}\n"]
    for name in enabled:
        out.append(f"\\item {esc(studies[name].get('title', name))}: "
                   f"\\texttt{{pidistill trace {esc(trace_target(name, studies[name], numbers))}}}\n")
    out.append("\\end{itemize}\n")
    return "".join(out)


def studies_tex(studies: dict, enabled: list[str], figures: dict[str, list[str]],
                provenance: str = "", numbers: dict | None = None, methods: dict | None = None) -> str:
    out = ["% Generated by pidistill (rule write_paper_sections).\n"]
    for name in enabled:
        study = studies[name]
        out.append(f"\\section{{{esc(study.get('title', name))}}}\\label{{sec:{name}}}\n")
        if study["kind"] == "conditions":
            out.append(_conditions(name, study, figures[name], methods))
        elif study["kind"] == "rounds":
            out.append(_rounds(name, study, figures[name]))
        elif study["kind"] == "scale":
            out.append(_scale(name, study, studies, figures[name]))
        elif study["kind"] == "hierarchy":
            out.append(_hierarchy(name, study, studies, methods))
        elif study["kind"] == "mucode":
            out.append(_mucode(name, study, figures[name]))
        else:
            out.append(DERIVED[study["kind"]](name, study, studies))
        out.append("\\clearpage\n")
    off = [n for n in sorted(studies) if n not in enabled]
    if off:
        out.append("\\section{Studies declared but not run}\n\\begin{itemize}\n")
        for n in off:
            note = studies[n].get("note", "switched off in this configuration")
            out.append(f"\\item \\textbf{{{esc(studies[n].get('title', n))}}}: {esc(note)}\n")
        out.append("\\end{itemize}\n")
    out.append(provenance)
    out.append(trace_appendix(studies, enabled, numbers or {}))
    return "".join(out)
