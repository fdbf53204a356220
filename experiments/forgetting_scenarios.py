"""Three scenarios for continual learning: every strategy on split and permuted digits, task/domain/class-IL.

van de Ven & Tolias (2019, "Three scenarios for continual learning", arXiv:1904.07734; first
version of the comparison: "Generative replay with feedback connections as a general strategy
for continual learning", arXiv:1809.10635) ran one sequence of tasks under three scenarios:
task-incremental (the task id is given: a multi-head output), domain-incremental (no task id,
shared output units) and class-incremental (no task id, one head over every class seen so
far). Their finding: the scenarios differ sharply in difficulty, and the regularisation
methods (EWC, online EWC, SI) that work in task-IL fail in class-IL, where only replay keeps
the old classes.

Here, with :mod:`lossatlas.continual`:

* protocols: split digits (sklearn 8x8 digits, 5 tasks of 2 classes, class order drawn from
  the key) and permuted digits (``permuted_tasks`` tasks, task 0 unpermuted, 10 classes each);
* every scenario of a protocol is one array of output masks, so the three scenarios are a
  vmap axis of one compiled program per strategy (the domain-IL head is padded with units
  that are masked out everywhere; see ``experiments/_stream_sweeps.py``), seeds and the
  strategy's lambda grid are two more vmap axes;
* strategies: naive fine-tuning (the lambda = 0 member of the quadratic-penalty program: the
  penalty is zero, so it is plain fine-tuning), joint training on all data so far (upper
  bound), L2 to the previous solution, EWC (Fisher sampled from the model's predictive
  distribution, Kirkpatrick et al.'s unbiased estimator, on ``fisher_examples`` examples; the
  exact one needs a per-example Jacobian per vmapped run), online EWC, SI, experience replay
  (reservoir memory), A-GEM (per-task memory) and LwF;
* L2, EWC, online EWC and SI differ only in how they set the weights and anchor of the same
  quadratic penalty, so they are one program with the method as another vmap axis
  (:func:`quadratic_family`, a ``cl.stack_strategies`` stack), searched over one shared log
  grid (``quadratic_lams``);
* lambda is chosen per protocol, scenario and strategy as the grid point (lambda > 0) with the
  best mean-over-seeds final average accuracy on a validation set held out from the training
  examples (``val_fraction``); the test accuracy at that lambda is reported (mean +- sd over
  seeds). The paper chose its hyperparameters by a grid search too.

The setups differ from the paper's (MNIST 28x28, 2x400 / 2x1000-unit MLPs, 2000 / 5000 Adam
iterations per task, 10 permuted tasks, no exact replay or A-GEM in the 2018/2019 tables), so
only the qualitative pattern is comparable. The published numbers quoted beside ours are the
ones verified in arXiv:1809.10635 Tables 3 (split MNIST) and 4 (permuted MNIST), mean +- SEM
over 20 seeds; the later arXiv:1904.07734 tables were not available to check and are not
quoted.

Command:    lossatlas run forgetting_scenarios [--quick]
Checks:     each a one-sided 95% bound on per-seed paired differences (same keys), at the lambda
            chosen on validation: class-IL (paper): EWC, online EWC, SI and L2 recover less than a
            third of the naive-to-joint gap (upper bound) while replay recovers more than half (lower
            bound), a gap fraction used only where joint - naive exceeds 3 standard errors; the
            scenarios order by difficulty for naive fine-tuning (task > domain > class, lower bounds
            > 0); naive class-IL ends near 1/T; joint is the best strategy in class-IL up to seed
            noise. Task-IL, our finding and not the paper's (its split gap fractions: EWC 0.02, SI
            0.97): EWC and SI above fine-tuning (lower bound > 0), gating only where the task-IL
            naive-to-joint gap exceeds 3 standard errors; in quick split digits it does not (3.4 +- 1.3
            points over 3 seeds before the engine refactor, 3.0 +- 1.1 on 2026-11-30), so there the
            two records are report-only and shown as not resolved (the run prints them as
            "[FAIL, report-only]" even where their lower bound is above 0).
Runtime:    quick (split digits only, 7 strategies, 10 epochs per task, 3 seeds, lambda grid 0.1 /
            100 / 1000), 2026-11-30, 2 shared CPU cores under load: 51 s (57 s wall with start-up;
            JAX's compilation cache warm); ~80 s on the same cores earlier. Full (split and
            permuted, 9 strategies, 5 seeds, 8 lambdas): 584 s on 2 CPU cores under load (README;
            measured before the 2026-11-30 engine refactor, which moved the continual program onto
            the training engine).
Result:     quick, 2026-11-30 (seed 0), split digits, accuracy (%) task / domain / class-IL: naive
            95.2 / 79.3 / 19.8, joint 98.3 / 94.7 / 92.6, EWC 98.1 / 85.1 / 22.5, SI 98.5 / 85.1 /
            24.1, replay 98.0 / 93.3 / 80.5 (paper, split MNIST: naive 85.2 / 57.3 / 19.9, joint
            99.6 / 98.4 / 97.9). Class-IL gap recovered (upper bounds < 1/3): EWC 0.04 (<= 0.10),
            online EWC 0.06 (0.16), SI 0.06 (0.17), L2 0.03 (0.08); replay 0.83 (lower bound 0.78 >
            0.5); naive task-IL minus domain-IL +15.9 points, domain-IL minus class-IL +59.5; naive
            class-IL 19.8% vs 1/T = 20%; joint beats replay. All gating checks pass; the task-IL
            records (EWC +2.86 +- 0.86, lower bound +0.35; SI +3.24 +- 0.78, lower bound +0.96) are
            report-only FAIL, not resolved (joint - naive 3.0 +- 1.1 < 3 SE). Full run (README;
            before the refactor), class-IL naive / joint / EWC / SI / replay: split 19.8 / 94.8 /
            20.9 / 21.7 / 86.9, permuted 18.1 / 87.1 / 19.0 / 20.1 / 78.2.
"""
from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from lossatlas import continual as cl
from . import _config_checks as cfgcheck
from . import _stream_sweeps as ss
from ._scenarios_stats import (CONFIDENCE, GAP_SE, PAPER, SCENARIOS,
                                                      gap_fraction, paired_bound, paper_gap,
                                                      seed_gap_fraction, summary)
from ._scenarios_stats import gap_ok as _gap_ok
from lossatlas.results import stat

from . import kit

FIGURE = "van de Ven & Tolias 2019 (arXiv:1809.10635), Tables 3-4"
TABLE_TITLE = ("Average accuracy after the last task by scenario and strategy, lambda chosen on validation "
               "(van de Ven & Tolias 2019)")

PROTOCOLS = ("split", "permuted")
ALL_STRATEGIES = ("naive", "joint", "l2", "ewc", "online_ewc", "si", "replay", "agem", "lwf")
REGULARISERS = ("ewc", "online_ewc", "si", "l2")
LAMBDA_STRATEGIES = ("l2", "ewc", "online_ewc", "si", "lwf")
LABELS = {"naive": "None (fine-tune)", "joint": "Joint (upper bound)", "l2": "L2", "ewc": "EWC",
          "online_ewc": "Online EWC", "si": "SI", "replay": "Replay", "agem": "A-GEM", "lwf": "LwF"}


def _check_tuple(name, value, allowed=None, positive=False, unique=True):
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"Config.{name} must be a non-empty tuple, got {value!r}")
    if allowed is not None and not set(value) <= set(allowed):
        raise ValueError(f"Config.{name} must be a tuple of {allowed}, got {value!r}")
    if positive and not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")
                            for v in value):
        raise ValueError(f"Config.{name} must hold finite numbers > 0, got {value!r}")
    if unique and len(set(value)) != len(value):
        raise ValueError(f"Config.{name} has repeated entries: {value!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Protocols, strategies, lambda grids and training of the scenario comparison."""
    dataset: str = "digits"
    protocols: tuple = PROTOCOLS
    strategies: tuple = ALL_STRATEGIES
    permuted_tasks: int = 5
    val_fraction: float = 0.2
    split_train: int = 0          # training examples per task, 0 = all
    permuted_train: int = 500
    num_test: int = 0             # test (and validation) examples per task, 0 = all
    widths: tuple = (100, 100)
    learning_rate: float = 1e-3   # Adam, as the paper
    batch_size: int = 32
    split_epochs: int = 20
    permuted_epochs: int = 10
    quadratic_lams: tuple = (1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5)   # L2, EWC, online EWC, SI
    lwf_lams: tuple = (0.3, 1.0, 3.0)
    fisher_examples: int = 200
    fisher_chunk: int = 8         # per-example gradients held at once per run (memory only)
    online_gamma: float = 1.0
    si_xi: float = 0.1
    memory: int = 100
    lwf_temperature: float = 2.0
    seeds: int = 5
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in ("digits", "mnist1d"):
            raise ValueError(f"Config.dataset must be 'digits' or 'mnist1d', got {self.dataset!r}")
        _check_tuple("protocols", self.protocols, PROTOCOLS)
        _check_tuple("strategies", self.strategies, ALL_STRATEGIES)
        if not {"naive", "joint"} <= set(self.strategies):
            raise ValueError("Config.strategies must include 'naive' and 'joint' (the bounds every other "
                             "strategy is measured between)")
        for name in ("quadratic_lams", "lwf_lams"):
            _check_tuple(name, getattr(self, name), positive=True)
        cfgcheck.require_ints(self, {"permuted_tasks": 2, "split_train": 0, "permuted_train": 0, "num_test": 0,
                                   "batch_size": 1, "split_epochs": 1, "permuted_epochs": 1, "fisher_examples": 1,
                                   "fisher_chunk": 1, "memory": 5, "seeds": 1})
        cfgcheck.require_fraction(self, "val_fraction")
        cfgcheck.require_widths(self)
        for name in ("learning_rate", "si_xi", "lwf_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Config.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.online_gamma <= 1:
            raise ValueError(f"Config.online_gamma must be in [0, 1], got {self.online_gamma!r}")


QUICK = {"protocols": ("split",), "strategies": ("naive", "joint", "l2", "ewc", "online_ewc", "si", "replay"),
         "split_epochs": 10, "seeds": 3, "quadratic_lams": (0.1, 1e2, 1e3), "fisher_examples": 64}

QUADRATIC = ("l2", "ewc", "online_ewc", "si")


def quadratic_family(cfg: Config, names=QUADRATIC) -> cl.Strategy:
    """L2, EWC, online EWC and SI as one stack (``cl.stack_strategies``): the method is a vmap axis.

    The four share the library's loss ``L + (lam/2) sum w (theta - theta*)^2`` and differ in
    how they set ``w`` and ``theta*``; stacked, one compiled program trains all of them
    (member ``i`` is the library strategy ``names[i]`` run alone).
    """
    return cl.stack_strategies({n: _strategy(n, cfg)[0] for n in names})


def _strategy(name: str, cfg: Config) -> tuple[cl.Strategy, tuple]:
    """The strategy object and its lambda grid (lambda-free strategies get (0,))."""
    if name == "naive":
        return cl.naive(), (0.0,)
    if name == "joint":
        return cl.joint(), (0.0,)
    if name == "l2":
        return cl.l2(), cfg.quadratic_lams
    if name == "ewc":
        return cl.ewc(fisher="sampled", fisher_examples=cfg.fisher_examples,
                      chunk_size=cfg.fisher_chunk), cfg.quadratic_lams
    if name == "online_ewc":
        return cl.ewc(fisher="sampled", online=True, gamma=cfg.online_gamma, fisher_examples=cfg.fisher_examples,
                      chunk_size=cfg.fisher_chunk), cfg.quadratic_lams
    if name == "si":
        return cl.si(xi=cfg.si_xi), cfg.quadratic_lams
    if name == "replay":
        return cl.replay(cfg.memory), (0.0,)
    if name == "agem":
        return cl.agem(cfg.memory, ref_batch=min(64, cfg.memory)), (0.0,)
    return cl.lwf(temperature=cfg.lwf_temperature), cfg.lwf_lams


def _stream_config(cfg: Config, protocol: str) -> cl.StreamConfig:
    return cl.StreamConfig(model="mlp", model_cfg={"widths": cfg.widths}, optimizer="adam",
                           learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                           epochs=cfg.split_epochs if protocol == "split" else cfg.permuted_epochs)


def run(cfg: Config, key) -> dict:
    """Every protocol x strategy: one compiled program over scenarios x lambdas x seeds.

    Returns:
      ``{protocol: {strategy: {"R" [3, L, S, T, T], "init_acc" [3, L, S, T], "val_acc"
      [3, L, S], "lams" [L], "chosen" [3] (lambda index per scenario), "seconds"}}}``; L2, EWC,
      online EWC and SI share one program (:func:`quadratic_family`) and naive fine-tuning is
      its lambda = 0 member (``naive_from_quadratic`` = 1).
    """
    ds = kit.load(cfg.dataset)
    out = {}
    for pi, protocol in enumerate(cfg.protocols):
        k_stream, k_run = jax.random.split(jax.random.fold_in(key, pi))
        n_train = cfg.split_train if protocol == "split" else cfg.permuted_train
        num_tasks = ds.num_classes // 2 if protocol == "split" else cfg.permuted_tasks
        streams, vals = ss.make_streams(protocol, ds, SCENARIOS, k_stream, num_tasks=num_tasks,
                                        val_fraction=cfg.val_fraction, num_train=n_train or None,
                                        num_test=cfg.num_test or None, num_val=cfg.num_test or None)
        scfg = _stream_config(cfg, protocol)
        res = {}
        quad = [n for n in QUADRATIC if n in cfg.strategies]
        if quad:  # one program: scenario (streams) x quadratic method (stack) x lambda x seed
            lams = ((0.0,) if "naive" in cfg.strategies else ()) + tuple(cfg.quadratic_lams)
            t0 = time.perf_counter()
            r = ss.sweep(streams, vals, quadratic_family(cfg, quad), scfg, k_run, cfg.seeds, lams)  # [D, M, L, S]
            seconds = time.perf_counter() - t0
            keep = r["lams"] > 0
            for m, n in enumerate(quad):
                res[n] = {k: r[k][:, m][:, keep] for k in ("R", "init_acc", "val_acc")}
                res[n].update(lams=r["lams"][keep], seconds=seconds)
            if "naive" in cfg.strategies:  # lambda = 0: the penalty is zero, every method is fine-tuning
                res["naive"] = {k: r[k][:, 0, :1] for k in ("R", "init_acc", "val_acc")}
                res["naive"].update(lams=r["lams"][:1], seconds=0.0)
        for name in cfg.strategies:
            if name in res:
                continue
            strat, lams = _strategy(name, cfg)
            t0 = time.perf_counter()
            r = ss.sweep(streams, vals, strat, scfg, k_run, cfg.seeds, lams)  # same key: paired seeds
            r["seconds"] = time.perf_counter() - t0
            res[name] = r
        for name, r in res.items():
            r["chosen"] = np.asarray([ss.select(r["val_acc"][d], r["lams"]) for d in range(len(SCENARIOS))])
        res["meta"] = {"num_tasks": streams[0].num_tasks, "num_train": streams[0].num_train,
                       "num_test": streams[0].num_test, "num_val": vals[0].num_test,
                       "naive_from_quadratic": int("naive" in cfg.strategies and bool(quad))}
        out[protocol] = res
    return out


def table(res: dict, cfg: Config) -> list[dict]:
    summ = summary(res, cfg)
    rows = []
    for protocol in cfg.protocols:
        s = summ[protocol]
        for d, scen in enumerate(SCENARIOS):
            for name in cfg.strategies:
                a, b = s[name]["acc"][d], s[name]["bwt"][d]
                paper = PAPER[protocol].get(name)
                lam = s[name]["lam"][d]
                rows.append({
                    "protocol": f"{protocol} {cfg.dataset}", "scenario": f"{scen}-IL", "strategy": LABELS[name],
                    "lambda": float(lam) if name in LAMBDA_STRATEGIES else "-",
                    "acc (%)": stat(a, scale=100, digits=2, ddof=1),
                    "BWT (%)": round(float(100 * b.mean()), 2),
                    "gap recovered": round(float(gap_fraction(s, name)[d]), 2),
                    "paper MNIST (%)": float(paper[d]) if paper else "-",
                })
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    """The paper's per-scenario pattern, each as a one-sided 95% bound on per-seed paired differences.

    Every strategy is compared with fine-tuning / joint on the same seeds (same keys), at its lambda
    chosen on validation (named in the detail); a fraction of the naive-to-joint gap is used only
    where that gap exceeds ``GAP_SE`` standard errors (class-IL), and task-IL is compared in points.
    """
    summ = summary(res, cfg)
    out = []
    ci = SCENARIOS.index("class")
    ti = SCENARIOS.index("task")
    conf = f"{100 * CONFIDENCE:g}%"
    for protocol in cfg.protocols:
        s = summ[protocol]
        t = res[protocol]["meta"]["num_tasks"]
        regs = [n for n in REGULARISERS if n in cfg.strategies]
        gap_ok, gap_txt = _gap_ok(s, ci)
        if regs:
            b = {n: paired_bound(seed_gap_fraction(s, n, ci), "upper") for n in regs}
            worst = max(v[2] for v in b.values())
            out.append({"name": f"{protocol}: class-IL regularisers stay near fine-tuning", "value": worst,
                        "passed": bool(gap_ok and worst < 1 / 3),
                        "paper": "class-IL: EWC, online EWC and SI fail (recover ~0 of the gap; "
                                 + ", ".join(f"{LABELS[n]} {paper_gap(protocol, n)[ci]:.2f}" for n in regs
                                             if n in PAPER[protocol]) + ")",
                        "detail": f"per-seed fraction of the naive-to-joint class-IL gap recovered, mean and one-sided "
                                  f"{conf} upper bound (< 1/3 each): "
                                  + ", ".join(f"{LABELS[n]} (lambda {s[n]['lam'][ci]:g}) {v[0]:.2f} <= {v[2]:.2f}"
                                              for n, v in b.items())
                                  + f"; naive {100 * s['naive']['acc'][ci].mean():.1f}%, joint "
                                    f"{100 * s['joint']['acc'][ci].mean():.1f}% ({gap_txt}, > {GAP_SE:g} SE)"})
        if "replay" in cfg.strategies:
            m, se, lo = paired_bound(seed_gap_fraction(s, "replay", ci), "lower")
            out.append({"name": f"{protocol}: replay keeps the old classes in class-IL", "value": lo,
                        "passed": bool(gap_ok and lo > 0.5),
                        "paper": "class-IL: replay is needed (recovers most of the gap)",
                        "detail": f"replay (memory {cfg.memory}) recovers {m:.2f} of the naive-to-joint class-IL gap "
                                  f"per seed, one-sided {conf} lower bound {lo:.2f} (> 0.5): "
                                  f"{100 * s['replay']['acc'][ci].mean():.1f}% vs naive "
                                  f"{100 * s['naive']['acc'][ci].mean():.1f}% ({gap_txt})"})
        t_ok, t_txt = _gap_ok(s, ti)
        for n in ("ewc", "si"):
            if n in cfg.strategies:
                a, z = s[n]["acc"][ti], s["naive"]["acc"][ti]
                m, se, lo = paired_bound(a - z, "lower")
                frac = ""
                if t_ok:
                    fm, fse, flo = paired_bound(seed_gap_fraction(s, n, ti), "lower")
                    frac = f"; fraction of the gap recovered {fm:.2f}, {conf} lower bound {flo:.2f}"
                # gating only where the task-IL naive-to-joint room exceeds GAP_SE standard errors: inside a gap
                # that seed noise covers, no method can be resolved from fine-tuning; then the record is shown
                # (failed, "not resolved") but decides nothing
                out.append({"name": f"{protocol}: {LABELS[n]} above fine-tuning in task-IL (our finding)", "value": lo,
                            "passed": bool(t_ok and lo > 0), "gating": t_ok,
                            "paper": f"not the paper's claim: its MNIST gap fraction is {paper_gap(protocol, n)[ti]:.2f}",
                            "detail": f"{LABELS[n]} (lambda {s[n]['lam'][ti]:g}, chosen on validation) minus naive in "
                                      f"task-IL, paired over {cfg.seeds} seeds: {100 * m:+.2f} +- {100 * se:.2f} pts (SE), "
                                      f"one-sided {conf} lower bound {100 * lo:+.2f} (> 0); {100 * a.mean():.2f}% vs naive "
                                      f"{100 * z.mean():.2f}%, joint {100 * s['joint']['acc'][ti].mean():.2f}% ({t_txt}"
                                      + (")" + frac if t_ok else f": under {GAP_SE:g} SE, so not resolved at "
                                                                 f"{cfg.seeds} seeds: report-only)")})
        acc_n = s["naive"]["acc"].mean(-1)
        steps = [paired_bound(s["naive"]["acc"][d] - s["naive"]["acc"][d + 1], "lower") for d in (0, 1)]
        out.append({"name": f"{protocol}: scenarios order by difficulty (naive task > domain > class)",
                    "value": min(v[2] for v in steps),
                    "passed": bool(min(v[2] for v in steps) > 0),
                    "paper": "naive task / domain / class-IL: " + " / ".join(f"{a:.1f}%" for a in PAPER[protocol]["naive"]),
                    "detail": "naive final accuracy task/domain/class-IL: "
                              + " / ".join(f"{100 * a:.1f}%" for a in acc_n)
                              + f"; paired differences task - domain {100 * steps[0][0]:+.1f}, domain - class "
                                f"{100 * steps[1][0]:+.1f} pts, one-sided {conf} lower bounds "
                                f"{100 * steps[0][2]:+.1f} / {100 * steps[1][2]:+.1f} (> 0)"})
        a = float(s["naive"]["acc"][ci].mean())
        out.append({"name": f"{protocol}: naive class-IL forgets every earlier task", "value": a,
                    "passed": bool(abs(a - 1 / t) < 0.05),
                    "detail": f"naive class-IL average accuracy {100 * a:.1f}% vs 1/T = {100 / t:.1f}% "
                              f"(only the last task's classes are predicted; paper {PAPER[protocol]['naive'][2]:.1f}%)"})
        means = {n: s[n]["acc"][ci] for n in cfg.strategies}
        best_other = max((n for n in cfg.strategies if n != "joint"), key=lambda n: means[n].mean())
        sd = float(np.sqrt(means["joint"].var(ddof=1) + means[best_other].var(ddof=1))) if cfg.seeds > 1 else 0.0
        margin = means["joint"].mean() - means[best_other].mean()
        out.append({"name": f"{protocol}: joint training is the upper bound in class-IL", "value": float(margin),
                    "passed": bool(margin > -2 * sd - 1e-9),
                    "detail": f"joint {100 * means['joint'].mean():.1f}% vs best other ({LABELS[best_other]}) "
                              f"{100 * means[best_other].mean():.1f}% (joint >= other - 2 sd, sd {100 * sd:.1f} pts)"})
    return out


def plot(res: dict, cfg: Config) -> dict:
    """Final average accuracy per scenario and strategy (the paper's marks beside ours), and
    validation accuracy against lambda (see ``_scenarios_plot``)."""
    from ._scenarios_plot import figures  # the figure code imports this module's names
    return figures(res, cfg)
