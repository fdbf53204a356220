"""Figures of forgetting_scenarios: final average accuracy per scenario and strategy beside the
paper's marks (van de Ven & Tolias 2019), and validation accuracy against lambda.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np

from lossatlas import plotting
from ._scenarios_stats import PAPER, PAPER_SOURCE, SCENARIOS
from lossatlas_experiments.forgetting_scenarios import LABELS, LAMBDA_STRATEGIES, checks, summary


def figures(res: dict, cfg) -> dict:
    """The two figures of forgetting_scenarios (its ``plot``)."""
    summ = summary(res, cfg)
    figs = {}
    names = list(cfg.strategies)
    fig, axes = plotting.figure(ncols=len(cfg.protocols), width=6.0, height=3.4)
    for ax, protocol in zip(axes[0], cfg.protocols):
        s = summ[protocol]
        w = 0.8 / len(names)
        for i, name in enumerate(names):
            x = np.arange(len(SCENARIOS)) + (i - (len(names) - 1) / 2) * w
            acc = 100 * s[name]["acc"]
            ax.bar(x, acc.mean(-1), w, yerr=acc.std(-1, ddof=1) if acc.shape[-1] > 1 else None,
                   color=f"C{i}", label=LABELS[name], capsize=1.5, error_kw={"lw": 0.7})
            paper = PAPER[protocol].get(name)
            if paper:
                ax.plot(x, paper, "k_", ms=7, mew=1.6, label="paper (MNIST)" if name == "naive" else None)
        t = res[protocol]["meta"]["num_tasks"]
        ax.axhline(100 / t, color="gray", ls=":", lw=0.8)
        ax.set_xticks(np.arange(len(SCENARIOS)), [f"{sc}-IL" for sc in SCENARIOS])
        passed = {c["name"]: c["passed"] for c in checks(res, cfg)}
        miss = [k.split(": ", 1)[1] for k, v in passed.items() if k.startswith(protocol) and not v]
        note = ("NOT reproduced: " + "; ".join(miss)) if miss else "class-IL: regularisers ~ naive, replay far above"
        ax.set(ylim=(0, 105), ylabel=f"final average accuracy (%), mean +- sd, {cfg.seeds} seeds",
               title=f"{protocol} {cfg.dataset}, {t} tasks\n{note}")
        ax.title.set_fontsize(8.5)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=5, loc="lower center", bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Three scenarios for continual learning (van de Ven & Tolias 2019); black ticks: "
                 + PAPER_SOURCE + ", a different setup", fontsize=9)
    fig.tight_layout()
    figs["forgetting_scenarios"] = fig

    lam_names = [n for n in names if n in LAMBDA_STRATEGIES]
    if lam_names:
        fig, axes = plotting.figure(ncols=len(lam_names), nrows=len(cfg.protocols), width=2.6, height=2.3)
        for pi, protocol in enumerate(cfg.protocols):
            for j, name in enumerate(lam_names):
                ax = axes[pi, j]
                r = res[protocol][name]
                for d, scen in enumerate(SCENARIOS):
                    plotting.mean_band(ax, r["lams"], 100 * r["val_acc"][d].T, label=f"{scen}-IL", color=f"C{d}",
                                       marker="o", ms=3)
                    ax.plot(r["lams"][r["chosen"][d]], 100 * r["val_acc"][d, r["chosen"][d]].mean(), "*",
                            color=f"C{d}", ms=9)
                plotting.log_xticks(ax, r["lams"])
                ax.tick_params(axis="x", labelrotation=45)
                ax.set(title=f"{protocol}: {LABELS[name]}", xlabel="lambda", ylabel="validation accuracy (%)")
                if j == 0 and pi == 0:
                    ax.legend(fontsize=6.5)
        fig.suptitle("Lambda chosen on held-out training examples (star: best mean over seeds)", fontsize=9)
        fig.tight_layout()
        figs["forgetting_scenarios_lambda"] = fig
    return figs
