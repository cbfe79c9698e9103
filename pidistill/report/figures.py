"""Matplotlib figures, one function per figure kind; each saved as PDF (paper) and PNG (viewing)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pidistill.io import atomic_path  # noqa: E402

STYLE = {"figure.dpi": 150, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
         "svg.hashsalt": "pidistill", "pdf.compression": 6}


def _save(fig, pdf_path: str | Path, png_path: str | Path) -> None:
    with atomic_path(pdf_path) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": "pidistill"},
                    bbox_inches="tight")
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": "pidistill"}, bbox_inches="tight")
    plt.close(fig)


def plot_condition_gains(summary: pd.DataFrame, runs: pd.DataFrame, title: str, pdf_path, png_path) -> None:
    """Bar per condition: mean gain over seeds (pp) with std error bars and each seed as a dot."""
    with plt.rc_context(STYLE):
        many = len(summary) > 4  # long label lists are slanted so they do not run into each other
        fig, ax = plt.subplots(figsize=(max(4.8, 0.55 * len(summary) + 1.5), 2.8))
        x = range(len(summary))
        n = int(summary["n_seeds"].max())
        if n > 1:
            err = summary["gain_pp_std"].fillna(0.0)
        else:  # one seed: no spread over seeds; the error bar is the paired bootstrap's 95% CI
            err = [(summary["gain_pp_mean"] - summary["gain_pp_ci_low"]).fillna(0.0),
                   (summary["gain_pp_ci_high"] - summary["gain_pp_mean"]).fillna(0.0)]
        ax.bar(x, summary["gain_pp_mean"], yerr=err, capsize=4, color="#7aa6c2", edgecolor="#2f5d7c", width=0.6)
        for i, method in enumerate(summary["method"]):
            seeds = runs[runs["method"] == method]
            ax.scatter([i] * len(seeds), seeds["gain_pp"], color="#1b1b1b", s=10, zorder=3)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(list(x), summary["label"], rotation=35 if many else 0, ha="right" if many else "center")
        ax.set_ylabel("gain in pass@1 (pp)")
        what = f"mean $\\pm$ std over {n} seeds; dots: seeds" if n > 1 else "one seed; error bars: paired bootstrap 95% CI"
        ax.set_title(f"{title} ({what})", fontsize=8)
        _save(fig, pdf_path, png_path)


def plot_gain_curve(summary: pd.DataFrame, runs: pd.DataFrame, values: dict, xlabel: str, title: str, pdf_path,
                    png_path) -> None:
    """Gain against a setting of the methods (e.g. K retries): mean over seeds with its 95% CI (over
    seeds, or the paired bootstrap for one seed), each seed a dot."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.0, 2.8))
        df = summary.assign(x=[values[m] for m in summary["method"]]).sort_values("x")
        ci = [(df["gain_pp_mean"] - df["gain_pp_ci_low"]).fillna(0.0), (df["gain_pp_ci_high"] - df["gain_pp_mean"]).fillna(0.0)]
        ax.errorbar(df["x"], df["gain_pp_mean"], yerr=ci, marker="o", color="#2f5d7c", capsize=4, lw=1.2)
        for method, x in values.items():
            seeds = runs[runs["method"] == method]
            ax.scatter([x] * len(seeds), seeds["gain_pp"], color="#1b1b1b", s=10, zorder=3)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(sorted(set(values.values())))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gain in pass@1 (pp)")
        n = int(summary["n_seeds"].max())
        ax.set_title(f"{title} (mean of {n} seed{'s' if n > 1 else ''}, 95% CI; dots: seeds)", fontsize=8)
        _save(fig, pdf_path, png_path)


def plot_training_curves(curves: pd.DataFrame, labels: dict, title: str, pdf_path, png_path) -> None:
    """Training loss by step for each condition (first seed), from the trainer's log history."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.8, 2.8))
        if curves.empty:
            ax.text(0.5, 0.5, "no adapter was trained (no correct retries)", ha="center", va="center", transform=ax.transAxes)
        else:
            seed = curves["seed"].min()
            for method, sub in curves[curves["seed"] == seed].groupby("method", sort=True):
                ax.plot(sub["step"], sub["loss"], label=labels.get(method, method), lw=1.2)
            ax.legend(frameon=False, fontsize=7)
            ax.set_title(f"{title}: SFT loss on correct retries (seed {seed})", fontsize=8)
        ax.set_xlabel("training step")
        ax.set_ylabel("completion loss")
        _save(fig, pdf_path, png_path)


def plot_rounds(rounds: pd.DataFrame, stop_below: float | None, title: str, pdf_path, png_path) -> None:
    """Accuracy by round, and the retry success rate on the remaining frontier with the stop line."""
    with plt.rc_context(STYLE):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(6.4, 2.6))
        for seed, sub in rounds.groupby("seed", sort=True):
            ax1.plot(sub["round"], 100 * sub["pass@1"], marker="o", label=f"seed {seed}")
            later = sub[sub["round"] > 0]
            ax2.plot(later["round"], 100 * later["retry_success_rate"], marker="s", label=f"seed {seed}")
        ax1.set_xlabel("round (0 = base)")
        ax1.set_ylabel("test pass@1 (%)")
        ax1.set_xticks(sorted(rounds["round"].unique()))
        ax2.set_xlabel("round")
        ax2.set_ylabel("retry success on frontier (%)")
        ax2.set_xticks(sorted(rounds[rounds["round"] > 0]["round"].unique()))
        if stop_below is not None:
            ax2.axhline(100 * stop_below, color="#b03a2e", ls="--", lw=1, label=f"stop below {100 * stop_below:.0f}%")
        ax2.legend(frameon=False, fontsize=7)
        ax2.set_ylim(bottom=0)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        _save(fig, pdf_path, png_path)


def _label_points(fig, ax, labelled: list[tuple[float, float, str]]) -> None:
    """Label each point to its right; a label that would overprint one already placed moves up until
    it does not, with a thin line back to its point."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    for x, y, text in sorted(labelled, key=lambda t: (t[1], t[0], t[2])):
        dy = 0.0
        ann = ax.annotate(text, (x, y), xytext=(5, dy), textcoords="offset points", fontsize=6, color="0.25",
                          va="center")
        for _ in range(100):
            box = ann.get_window_extent(renderer).expanded(1.0, 1.15)
            if not any(box.overlaps(other) for other in placed):
                break
            dy += 3.0
            ann.set_position((5, dy))
        placed.append(ann.get_window_extent(renderer))
        if dy > 4:
            ax.annotate("", (x, y), xytext=(5, dy), textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.4, "shrinkA": 0, "shrinkB": 2})


def _scale_labels(rows: list[dict], most: int = 3) -> list[tuple[float, float, str]]:
    """Labels of the scale figure: the methods of one (dataset, model) share its baseline, so they
    stack in one column; a column of more than ``most`` points labels only its largest and smallest
    gain (saying of how many), so the labels stay inside the axes. Every point is in the CSV."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    out = []
    for members in groups.values():
        members = sorted(members, key=lambda r: (r["gain_pp_mean"], r["label"]))
        n = len(members)
        if n <= most:
            chosen = [(r, r["label"]) for r in members]
        else:
            chosen = [(members[-1], f"{members[-1]['label']} (highest of {n})"),
                      (members[0], f"{members[0]['label']} (lowest of {n})")]
        out += [(100 * r["base_pass@1_mean"], r["gain_pp_mean"], text) for r, text in chosen]
    return out


def plot_scale(points: pd.DataFrame, band: tuple[float, float], title: str, pdf_path, png_path) -> None:
    """The inverted U: baseline pass@1 against gain, one point per (model, dataset, method), 95% CI bars,
    the baseline band shaded."""
    markers = "osD^vP*X"
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 3.4))
        ax.axvspan(100 * band[0], 100 * band[1], color="#e8f0d8", zorder=0,
                   label=f"band {100 * band[0]:.0f}-{100 * band[1]:.0f}%")
        ax.axhline(0, color="0.3", lw=0.8)
        datasets = sorted(points["dataset"].unique())
        models = sorted(points["model"].unique())
        colors = plt.get_cmap("tab10")
        rows = points.to_dict("records")
        for r in rows:
            x, y = 100 * r["base_pass@1_mean"], r["gain_pp_mean"]
            lo, hi = r["gain_pp_ci_low"], r["gain_pp_ci_high"]
            yerr = None if pd.isna(lo) or pd.isna(hi) else [[max(0.0, y - lo)], [max(0.0, hi - y)]]
            ax.errorbar([x], [y], yerr=yerr, fmt=markers[models.index(r["model"]) % len(markers)],
                        color=colors(datasets.index(r["dataset"]) % 10), ms=5, capsize=2, lw=0.8, zorder=3)
        ax.set_xlim(0, 100)
        _label_points(fig, ax, _scale_labels(rows))
        handles = [plt.Line2D([], [], ls="", marker="s", color=colors(i % 10), label=d) for i, d in enumerate(datasets)]
        handles += [plt.Line2D([], [], ls="", marker=markers[i % len(markers)], color="0.4", label=m)
                    for i, m in enumerate(models)]
        handles.append(plt.Rectangle((0, 0), 1, 1, color="#e8f0d8", label=f"baseline {100 * band[0]:.0f}-{100 * band[1]:.0f}%"))
        ax.legend(handles=handles, frameon=False, fontsize=6, loc="best")
        ax.set_xlabel("baseline test pass@1 (%)")
        ax.set_ylabel("gain in pass@1 (pp)")
        ax.set_title(f"{title} (bars: 95% CI)", fontsize=8)
        _save(fig, pdf_path, png_path)


def plot_mucode_turns(curves: pd.DataFrame, study: dict, labels: dict[str, str], pdf_path, png_path) -> None:
    """BoN@t by turn limit t, a line per policy (the base and each method's last generator, in the order
    and with the names of ``labels``), a panel per evaluation dataset; the dotted line is the turn
    limit the rollouts were trained with."""
    with plt.rc_context(STYLE):
        datasets = list(study["eval_datasets"])
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.4), squeeze=False)
        order = list(labels)
        for ax, ds in zip(axes[0], datasets):
            part = curves[curves["dataset"] == ds]
            shown = sorted(set(part["method"]), key=lambda x: order.index(x) if x in order else len(order))
            for k, method in enumerate(shown):
                line = part[part["method"] == method].sort_values("turn")
                shift = 0.05 * (k - (len(shown) - 1) / 2)  # equal rates would hide each other's lines
                ax.errorbar(line["turn"] + shift, 100 * line["rate"], yerr=100 * line["se"], marker="o", ms=3, capsize=2,
                            label=labels.get(method, method), linestyle="--" if method == "base" else "-")
            ax.axvline(study["turns"], color="grey", linestyle=":", linewidth=1)
            ax.set_xlabel("turn limit t")
            ax.set_ylabel("BoN@t (%)")
            ax.set_title(ds)
            ax.set_xticks(sorted(set(part["turn"])))
        axes[0][-1].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{study.get('title', study['name'])}: BoN by turn limit", fontsize=9)
        fig.tight_layout()
        _save(fig, pdf_path, png_path)
