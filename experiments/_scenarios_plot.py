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
    from matplotlib.lines import Line2D

    summ = summary(res, cfg)
    figs = {}
    names = list(cfg.strategies)
    passed = {c["name"]: c["passed"] for c in checks(res, cfg)}
    fig, axes = plotting.figure(ncols=len(cfg.protocols), width=6.0, height=3.4, sharey=True)
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
                ax.plot(x, paper, "k_", ms=7, mew=1.6, label="paper (MNIST; a different setup)" if name == "naive" else None)
        t = res[protocol]["meta"]["num_tasks"]
        ax.axhline(100 / t, color="gray", ls=":", lw=0.8, label="chance (1 / tasks)" if protocol == cfg.protocols[0] else None)
        ax.set_xticks(np.arange(len(SCENARIOS)), [f"{sc}-IL" for sc in SCENARIOS])
        miss = [k.split(": ", 1)[1].replace(" (our finding)", "") for k, v in passed.items()
                if k.startswith(protocol) and not v]
        note = ("NOT reproduced: " + ";\n".join(miss)) if miss else "class-IL: regularisers ~ naive, replay far above"
        ax.set(ylim=(0, 105), ylabel="final average accuracy (%)" if protocol == cfg.protocols[0] else None)
        ax.set_title(f"{protocol} {cfg.dataset}, {t} tasks\n{note}", fontsize=8.5)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    plotting.figure_legend(fig, handles, labels, where="right", fontsize=8,
                           title=f"mean +- sd, {cfg.seeds} seeds", title_fontsize=8)
    plotting.panel_letters(axes)
    fig.suptitle("Three scenarios for continual learning; black ticks: " + PAPER_SOURCE, fontsize=9)
    fig.tight_layout()
    figs["forgetting_scenarios"] = fig

    lam_names = [n for n in names if n in LAMBDA_STRATEGIES]
    if lam_names:
        fig, axes = plotting.figure(ncols=len(lam_names), nrows=len(cfg.protocols), width=2.6, height=2.3,
                                    sharey=True)
        for pi, protocol in enumerate(cfg.protocols):
            for j, name in enumerate(lam_names):
                ax = axes[pi, j]
                r = res[protocol][name]
                for d, scen in enumerate(SCENARIOS):
                    plotting.mean_band(ax, r["lams"], 100 * r["val_acc"][d].T, color=f"C{d}", marker="o", ms=3)
                    ax.plot(r["lams"][r["chosen"][d]], 100 * r["val_acc"][d, r["chosen"][d]].mean(), "*",
                            color=f"C{d}", ms=9)
                plotting.log_xticks(ax, r["lams"])
                ax.set(xlabel="lambda", ylabel="validation accuracy (%)" if j == 0 else None)
                ax.set_title(f"{protocol}: {LABELS[name]}", fontsize=9)
        handles = [Line2D([], [], color=f"C{d}", marker="o", ms=3) for d in range(len(SCENARIOS))]
        handles.append(Line2D([], [], color="0.3", marker="*", ms=9, ls="none"))
        plotting.figure_legend(fig, handles, [f"{sc}-IL" for sc in SCENARIOS] + ["chosen (best mean over seeds)"],
                               where="right", fontsize=8)
        plotting.panel_letters(axes)
        fig.suptitle("Lambda chosen on held-out training examples", fontsize=9)
        fig.tight_layout()
        figs["forgetting_scenarios_lambda"] = fig
    return figs
