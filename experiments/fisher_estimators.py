"""EWC with four diagonal-Fisher estimators: accuracy against lambda, and the estimators themselves.

Elastic weight consolidation (Kirkpatrick et al. 2017) weighs its quadratic penalty by a
diagonal Fisher information. Implementations estimate it in four ways
(:func:`lossatlas.continual.fisher_diag`): the exact expectation over the model's predictive
distribution, one sampled label per example (an unbiased estimate of the exact Fisher,
Kirkpatrick et al.'s choice), the true labels (the "empirical Fisher", which Kunstner, Balles
& Hennig 2019 show is a different matrix, not an approximation of the Fisher), and squared
gradients of minibatch means (Avalanche's ``EWCPlugin``; its scale is about 1/batch of the
empirical one). van de Ven (2025, "On the computation of the Fisher information in continual
learning") compared such variants and found that they change EWC's results.

Here, on split digits (5 tasks of 2 classes) in the domain-IL scenario, where EWC matters at
this scale (in forgetting_scenarios' runs EWC lifts split-digits domain-IL from ~75% to ~85%;
``--set protocol=permuted`` runs permuted digits instead):

1. EWC with each estimator over a log grid of lambda (lambda = 0 is fine-tuning): estimator,
   lambda and seed are three vmap axes of one compiled program (the estimators are a stack of
   strategies, ``cl.stack_strategies``, :func:`ewc_any_fisher`); final average test accuracy
   against lambda; the best lambda per estimator is chosen on a validation set held out from
   the training examples.
2. At the end of task 1 (the parameters every lambda shares: the penalty is zero during the
   first task) the four estimators are computed on the same examples and compared with the
   exact Fisher: relative L2 difference, Pearson correlation of the diagonals and the ratio
   of traces; the sampled estimator averaged over m independent draws
   (``compare_reps * max(m)`` draws per seed cut into disjoint groups) has mean squared error
   ``E||F_1 - F||^2 / m``, which :func:`_fisher_compare.sampled_error_theory` predicts from the
   model's class probabilities and per-class gradients (with the sampling sd of the measured
   value). The comparison's functions live in ``_fisher_compare``.

Command:    lossatlas run fisher_estimators [--quick]
Checks:     the m-draw sampled estimator is unbiased with the predicted variance: measured / predicted
            mean squared error within 1 +- 4 predicted sd at every m, that band narrower than +-0.4
            (a bias would show as a floor at large m); the empirical Fisher is
            biased: farther from the exact one than the m-draw sampled average on every seed
            (Kunstner et al. 2019); the batch estimator has the scale theory predicts from the
            mean gradient g and the per-example covariance S: b tr(F_batch) / tr(F_emp) within a
            factor 1.5 of (b |g|^2 + c tr S) / (|g|^2 + tr S) on every seed (~1, i.e. 1/b of
            the empirical Fisher, only at a stationary point); EWC at its best lambda beats lambda = 0 for every
            estimator (paired over seeds, by more than 2 standard errors). Report-only, the original
            checks these replaced (kept as first written; neither threshold band had a source):
            the mean relative error of the m-draw average has log-log slope in (-0.7, -0.3) and is
            below 0.15 at the largest m (passes quick, FAILS the full run: 0.340 at m = 64); the seed
            mean of b tr(F_batch) / tr(F_emp) lies in (0.5, 2) (passes quick seed 0 and the full run,
            failed quick --set seed=1 with 2.15). Quick and full agree on every gating check.
Runtime:    quick (split digits, 3 tasks, 128 training examples, 10 epochs, 6 lambdas, 3 seeds),
            2026-11-30, 2 shared CPU cores under load: 29 s (35 s wall with start-up; JAX's
            compilation cache warm); ~40-50 s on the same cores earlier (of which ~15 s the
            estimator comparison); 70 s wall (23 s user) in a second 2026-11-30 run under heavier
            load. Full (5 tasks, all examples, 20 epochs, 9 lambdas, 5 seeds): 187 s wall on 2
            shared CPU cores under load, 2026-11-30 (227 s before the engine refactor).
Result:     quick, 2026-11-30 (seed 0), domain-IL accuracy at the best lambda vs 82.79% at
            lambda = 0: exact 88.42 (lambda 1e3), sampled 87.01 (1e3), empirical 88.73 (1e4), batch
            85.92 (1e5), each > 2 SE above fine-tuning; relative difference to the exact diagonal:
            sampled (1 draw) 1.346, empirical 0.839, batch 0.993; tr F / tr F_exact 1.36 / 0.19 /
            0.00727. The m-draw average's measured / predicted mean squared error 0.988 +- 0.013,
            0.985 +- 0.027, 0.981 +- 0.070 at m = 1, 8, 64 (relative error 0.874 -> 0.112, slope
            -0.49); empirical 0.839 vs the 64-draw average 0.112 on every seed; b tr F_batch / tr
            F_emp 1.30 / 1.21 / 1.18 vs predicted 1.15 / 1.08 / 1.06. All gating checks pass; both
            report-only original checks pass (slope -0.49, 0.112 at m = 64; batch seed mean 1.23).
            Full run, 2026-11-30 (seed 0, 187 s): exact / sampled / empirical / batch 88.56 / 87.49 /
            85.30 / 86.48 (lambda 1e3 / 1e3 / 1e3 / 1e5) vs 75.10 at lambda = 0; relative difference
            2.81 / 0.975 / 0.999; traces 2.27 / 0.0267 / 0.00098; measured / predicted MSE 0.992 +-
            0.021, 0.977 +- 0.023, 0.970 +- 0.032, 1.045 +- 0.054 at m = 1, 4, 16, 64 (PASS); b tr
            F_batch / tr F_emp 1.08-1.21 vs predicted 0.98-1.05 (PASS). All gating checks pass; the
            original unbiasedness check FAILS (relative error 1.886 -> 0.340, slope -0.42, 0.340 >
            0.15), the original batch check passes (1.14).
"""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import continual as cl
from lossatlas import plotting
from . import _config_checks as cfgcheck
from ._fisher_compare import compare_estimators
from . import _stream_sweeps as ss
from lossatlas.results import stat

from . import kit

FIGURE = "van de Ven 2025; Kunstner, Balles & Hennig 2019 (Fisher estimators for EWC; no single figure)"
TABLE_TITLE = "EWC by Fisher estimator: best lambda (validation) and accuracy; estimators vs the exact Fisher"

ESTIMATORS = cl.FISHER_METHODS  # ("exact", "sampled", "empirical", "batch")


@dataclasses.dataclass(frozen=True)
class Config:
    """Stream, EWC lambda grid and estimator comparison."""
    dataset: str = "digits"
    protocol: str = "split"
    scenario: str = "domain"
    num_tasks: int = 5            # split: at most 5 (2 classes per task)
    num_train: int = 0            # training examples per task (0 = all)
    num_test: int = 0             # test / validation examples per task (0 = all)
    val_fraction: float = 0.2
    widths: tuple = (100, 100)
    learning_rate: float = 1e-3   # Adam
    batch_size: int = 32
    epochs: int = 20
    estimators: tuple = ESTIMATORS
    lams: tuple = (0.0, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7)
    fisher_examples: int = 200
    compare_draws: tuple = (1, 4, 16, 64)
    compare_reps: int = 64        # reps * max(compare_draws) independent sampled draws per seed
    seeds: int = 5
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in ("digits", "mnist1d"):
            raise ValueError(f"Config.dataset must be 'digits' or 'mnist1d', got {self.dataset!r}")
        if self.protocol not in ("split", "permuted"):
            raise ValueError(f"Config.protocol must be 'split' or 'permuted', got {self.protocol!r}")
        if self.protocol == "split" and isinstance(self.num_tasks, int) and self.num_tasks > 5:
            raise ValueError(f"Config.num_tasks must be <= 5 for split (2 classes per task), got {self.num_tasks}")
        if self.scenario not in cl.SCENARIOS:
            raise ValueError(f"Config.scenario must be one of {cl.SCENARIOS}, got {self.scenario!r}")
        if not (isinstance(self.estimators, tuple) and self.estimators and set(self.estimators) <= set(ESTIMATORS)
                and "exact" in self.estimators and len(set(self.estimators)) == len(self.estimators)):
            raise ValueError(f"Config.estimators must be a tuple of distinct {ESTIMATORS} including 'exact', "
                             f"got {self.estimators!r}")
        lams = self.lams
        if not (isinstance(lams, tuple) and len(lams) >= 2 and lams[0] == 0
                and all(isinstance(v, (int, float)) and 0 < v < float("inf") for v in lams[1:])
                and list(lams) == sorted(set(lams))):
            raise ValueError(f"Config.lams must be an increasing tuple starting at 0 (fine-tuning) followed by "
                             f"finite values > 0, got {lams!r}")
        draws = self.compare_draws
        if not (isinstance(draws, tuple) and len(draws) >= 2 and all(isinstance(m, int) and m >= 1 for m in draws)
                and list(draws) == sorted(set(draws)) and all(draws[-1] % m == 0 for m in draws)):
            raise ValueError(f"Config.compare_draws must be an increasing tuple of >= 2 positive integers that divide "
                             f"the largest, got {draws!r}")
        cfgcheck.require_ints(self, {"num_tasks": 2, "num_train": 0, "num_test": 0, "batch_size": 1, "epochs": 1,
                                   "fisher_examples": 1, "seeds": 1, "compare_reps": 1})
        cfgcheck.require_fraction(self, "val_fraction")
        cfgcheck.require_widths(self)
        if not self.learning_rate > 0:
            raise ValueError(f"Config.learning_rate must be > 0, got {self.learning_rate!r}")


QUICK = {"num_tasks": 3, "num_train": 128, "epochs": 10, "lams": (0.0, 1e2, 1e3, 1e4, 1e5, 1e6),
         "fisher_examples": 128, "compare_draws": (1, 8, 64), "compare_reps": 64, "seeds": 3}


def ewc_any_fisher(estimators=ESTIMATORS, *, fisher_examples: int | None = None, fisher_batch: int | None = None,
                   chunk_size: int = 8) -> cl.Strategy:
    """EWC (Kirkpatrick et al. 2017) with each Fisher estimator, stacked (``cl.stack_strategies``).

    Member ``i`` is ``cl.ewc(fisher=estimators[i])``, so the estimator is a vmap axis of one
    compiled program (every member's consolidation is computed and one is selected).

    Args:
      estimators: Fisher estimators (``cl.FISHER_METHODS``), one member each.
      fisher_examples, fisher_batch, chunk_size: as for :func:`lossatlas.continual.ewc` (a small
        chunk keeps the exact estimator's per-example Jacobians small when many runs are vmapped).
    """
    return cl.stack_strategies({m: cl.ewc(fisher=m, fisher_examples=fisher_examples, fisher_batch=fisher_batch,
                                          chunk_size=chunk_size) for m in estimators})


def _stream_config(cfg):
    return cl.StreamConfig(model="mlp", model_cfg={"widths": cfg.widths}, optimizer="adam",
                           learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, epochs=cfg.epochs)


def run(cfg: Config, key) -> dict:
    """EWC with every estimator (one compiled program: estimator x lambda x seed) and the comparison.

    Returns:
      ``{"sweeps": {estimator: {"R" [L, S, T, T], "val_acc" [L, S], "init_acc", "lams",
      "chosen"}}, "compare": {... [S] per seed}, "meta": {...}}``.
    """
    ds = kit.load(cfg.dataset)
    k_stream, k_run, k_cmp = jax.random.split(key, 3)
    streams, vals = ss.make_streams(cfg.protocol, ds, (cfg.scenario,), k_stream, num_tasks=cfg.num_tasks,
                                    val_fraction=cfg.val_fraction, num_train=cfg.num_train or None,
                                    num_test=cfg.num_test or None, num_val=cfg.num_test or None)
    scfg = _stream_config(cfg)
    st = streams[0]
    n_fisher = min(cfg.fisher_examples, st.num_train)
    ests = cfg.estimators
    t0 = time.perf_counter()
    r = ss.sweep([st], [vals[0]], ewc_any_fisher(ests, fisher_examples=n_fisher), scfg, k_run,
                 cfg.seeds, cfg.lams, first_task_params=True)                      # [1, M, L, S]
    sweep_seconds = time.perf_counter() - t0
    # the penalty is zero during the first task: every estimator and lambda share these parameters
    params0 = jax.tree_util.tree_map(lambda p: p[0, 0, 0], r.pop("params0"))  # [S, ...]
    sweeps = {}
    for d, est in enumerate(ests):
        sweeps[est] = {k: r[k][0, d] for k in ("R", "init_acc", "val_acc")}
        sweeps[est]["lams"] = r["lams"]
        sweeps[est]["chosen"] = ss.select(sweeps[est]["val_acc"], r["lams"])

    apply = cl.model_apply(st, scfg)
    x = jnp.asarray(st.x_train[0, :n_fisher])
    y = jnp.asarray(st.y_train[0, :n_fisher])
    mask = jnp.asarray(st.masks[0, 0])
    b = min(cfg.batch_size, n_fisher)
    t0 = time.perf_counter()
    # seeds one after another (lax.map): the theory holds an [N*K, N*K] Gram matrix per seed
    cmp = jax.jit(lambda ps, ks: jax.lax.map(lambda pk: compare_estimators(
        apply, pk[0], x, y, mask, pk[1], b, cfg.compare_draws, cfg.compare_reps), (ps, ks)))(
        params0, jax.random.split(k_cmp, cfg.seeds))
    cmp = jax.tree_util.tree_map(np.asarray, jax.device_get(cmp))
    train_acc = np.asarray(jax.vmap(lambda p: jnp.mean(jnp.argmax(cl.masked(apply(p, x), mask), -1) == y))(params0))
    return {"sweeps": sweeps, "compare": {**cmp, "train_acc_task1": train_acc},
            "meta": {"num_tasks": st.num_tasks, "num_train": st.num_train, "num_test": st.num_test,
                     "num_val": vals[0].num_test, "fisher_examples": n_fisher, "batch": b,
                     "sweep_seconds": sweep_seconds, "compare_seconds": time.perf_counter() - t0,
                     "num_params": int(sum(np.prod(v.shape[1:]) for v in jax.tree_util.tree_leaves(params0)))}}


def _acc(r):
    return cl.average_accuracy(r["R"])  # [L, S]


def _draw_slope(res, cfg):
    """Log-log slope of the mean relative error against m (theory -1/2), and the errors [len(draws)]."""
    e = res["compare"]["sampled_rel_err"].mean(0)
    return float(np.polyfit(np.log(cfg.compare_draws), np.log(e), 1)[0]), e


#: the measured-to-predicted ratio must lie within this many predicted standard deviations of 1 ...
RATIO_SIGMAS = 4.0
#: ... and that band must be narrower than this (else the draws cannot resolve the claim)
RATIO_RESOLUTION = 0.4


def mse_ratio(res, cfg):
    """Measured / predicted mean squared error of the m-draw sampled average, pooled over seeds.

    Returns ``(ratio [M], sigma [M], mse_slope)``: ``ratio_m = sum_s mse_sm / sum_s pred_sm`` (1 for an
    unbiased estimator with the predicted variance, at every m), ``sigma_m`` its predicted sampling sd
    (from the theory's variance of one group's error and the number of independent groups), and the
    log-log slope of the measured mean squared error against m (theory -1).
    """
    c = res["compare"]
    draws = np.asarray(cfg.compare_draws)
    groups = cfg.compare_reps * draws[-1] // draws                      # independent m-draw averages per seed
    pred = c["sampled_mse_pred"].astype(np.float64)                      # [S, M]
    ratio = c["sampled_mse"].sum(0) / pred.sum(0)
    sigma = np.sqrt((c["sampled_mse_var_pred"] / groups).sum(0)) / pred.sum(0)
    slope = float(np.polyfit(np.log(draws), np.log(c["sampled_mse"].mean(0)), 1)[0])
    return ratio, sigma, slope


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    c = res["compare"]
    for est in cfg.estimators:
        r = res["sweeps"][est]
        acc = _acc(r)
        i = r["chosen"]
        a, z = acc[i], acc[0]
        tr = c["trace_ratio"][est].mean()
        rows.append({
            "estimator": est, "best lambda (val)": float(r['lams'][i]),
            "acc at best (%)": stat(a, scale=100, digits=2, ddof=1),
            "acc lambda=0 (%)": round(float(100 * z.mean()), 2),
            "lambda x tr(F)/tr(F_exact)": float(f"{r['lams'][i] * tr:.3g}"),
            "rel. diff to exact": round(float(c['rel_err'][est].mean()), 3),
            "corr with exact": round(float(c['corr'][est].mean()), 3),
            "tr(F)/tr(F_exact)": float(f"{tr:.3g}"),
        })
    slope, e = _draw_slope(res, cfg)
    rows.append({"estimator": "sampled, mean of m draws", "best lambda (val)": "-", "acc at best (%)": "-",
                 "acc lambda=0 (%)": "-", "lambda x tr(F)/tr(F_exact)": "-",
                 "rel. diff to exact": ", ".join(f"m={m}: {v:.3f}" for m, v in zip(cfg.compare_draws, e)),
                 "corr with exact": f"slope {slope:.2f} (theory -0.5)",
                 "tr(F)/tr(F_exact)": "MSE / predicted: " + ", ".join(f"{r:.2f}" for r in mse_ratio(res, cfg)[0])})
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    c = res["compare"]
    out = []
    slope, e = _draw_slope(res, cfg)
    ratio, sigma, mse_slope = mse_ratio(res, cfg)
    band = RATIO_SIGMAS * sigma
    tve = float(c["theory_vs_exact"].max())
    dev = float(np.max(np.abs(ratio - 1) / sigma))
    n_draws = cfg.compare_reps * cfg.compare_draws[-1]
    out.append({"name": "sampled Fisher is unbiased: the mean of m draws has the predicted error E||F_m - F||^2 = "
                        "E||F_1 - F||^2 / m",
                "value": dev,
                "passed": bool(np.all(np.abs(ratio - 1) <= band) and np.all(band <= RATIO_RESOLUTION) and tve < 1e-3),
                "paper": "theory: independent unbiased draws, E||F_m - F||^2 = E||F_1 - F||^2 / m (no floor)",
                "detail": "measured / predicted mean squared error of the m-draw average (pooled over "
                          f"{cfg.seeds} seeds, {n_draws} independent draws per seed cut into disjoint groups; "
                          "prediction from the model's class probabilities and per-class gradients): "
                          + ", ".join(f"m={m}: {r:.3f} +- {s_:.3f}" for m, r, s_ in zip(cfg.compare_draws, ratio, sigma))
                          + f" (each within 1 +- {RATIO_SIGMAS:g} predicted sd, that band narrower than "
                          f"+-{RATIO_RESOLUTION:g}; worst |ratio - 1| = {dev:.2f} sd); MSE log-slope in m "
                          f"{mse_slope:.2f} (theory -1); relative error "
                          + ", ".join(f"m={m}: {v:.3f}" for m, v in zip(cfg.compare_draws, e))
                          + f"; the theory's Fisher vs the library's exact one {tve:.1e} (< 1e-3)"})
    emp, one, many = c["rel_err"]["empirical"], c["rel_err"]["sampled"], c["sampled_rel_err"][:, -1]
    out.append({"name": "the empirical Fisher is a biased estimate of the Fisher (Kunstner et al. 2019)",
                "value": float(emp.mean()), "passed": bool(np.all(emp > many)),
                "detail": f"relative difference to the exact diagonal: empirical {emp.mean():.3f} (deterministic: "
                          f"averaging cannot remove it) vs the unbiased sampled estimator averaged over "
                          f"m={cfg.compare_draws[-1]} draws {many.mean():.3f} (empirical larger on every seed); "
                          f"trace ratio empirical/exact {c['trace_ratio']['empirical'].mean():.3g}, correlation "
                          f"{c['corr']['empirical'].mean():.3f}, task-1 train accuracy "
                          f"{100 * c['train_acc_task1'].mean():.1f}%. A single sampled draw is noisier still "
                          f"({one.mean():.3f}): its error is variance, the empirical Fisher's is bias"})
    # The check above replaced this one after the full run (README) failed it (slope -0.63, 0.19 at m = 64);
    # kept as first written, report-only: slope of the mean relative error in (-0.7, -0.3) around the theory's
    # -1/2 (the band's width and the 0.15 bar had no stated source) and below 0.15 at the largest m.
    e_ok = bool(-0.7 < slope < -0.3 and e[-1] < 0.15)
    out.append({"name": "original check: sampled Fisher is unbiased: the mean of m draws converges to the exact Fisher",
                "value": slope, "passed": e_ok, "gating": False,
                "claim": "original check (replaced by the measured / predicted MSE check above after the full run "
                         "failed it): the relative error of the m-draw sampled average falls as m^-1/2 to below 0.15",
                "paper": "theory: relative error ~ m^-1/2 for independent unbiased draws",
                "tolerance": "log-log slope in (-0.7, -0.3) and relative error < 0.15 at the largest m",
                "detail": "relative L2 difference to the exact diagonal, mean over seeds (and over disjoint groups of "
                          "draws; the first version followed one nested path of draws per seed): "
                          + ", ".join(f"m={m}: {v:.3f}" for m, v in zip(cfg.compare_draws, e))
                          + f"; log-log slope {slope:.2f} (in (-0.7, -0.3)? {-0.7 < slope < -0.3}), at "
                          f"m={cfg.compare_draws[-1]} {e[-1]:.3f} (< 0.15? {bool(e[-1] < 0.15)}). Report-only: the "
                          "band (-0.7, -0.3) and the 0.15 bar came from no source (only the -1/2 does: theory); "
                          "single draws are heavy-tailed on a model near 100% training accuracy, so the mean "
                          "relative error bends away from m^-1/2 at small m"
                          + ("" if e_ok else " -- FAILS here")})
    b = res["meta"]["batch"]
    ratio, pred = np.asarray(c["batch_ratio"]), np.asarray(c["batch_ratio_pred"])
    rel = ratio / pred
    seeds = lambda v: "/".join(f"{x:.3g}" for x in np.atleast_1d(np.asarray(v, float)))  # noqa: E731
    out.append({"name": "the batch estimator has the scale theory predicts (about 1/b of the empirical Fisher)",
                "value": float(np.max(np.abs(np.log(rel)))), "passed": bool(np.all((rel > 1 / 1.5) & (rel < 1.5))),
                "detail": f"b * tr(F_batch) / tr(F_empirical) with b = {b}, per seed: measured {seeds(ratio)} vs "
                          f"predicted (b |g|^2 + c tr S) / (|g|^2 + tr S) = {seeds(pred)} (each within a factor "
                          f"1.5); the squared mean gradient is {seeds(c['mean_grad_share'])} of tr F_emp, so the "
                          f"ratio is ~1 only at a stationary point. Replaces the preset band (0.5, 2) on the seed "
                          f"mean, which failed on --set seed=1 (2.15)"})
    # The check above replaced this one after a quick run with --set seed=1 failed it (2.15); kept as first
    # written, report-only: the seed mean of b tr(F_batch) / tr(F_emp) in (0.5, 2) (a factor 2 around the
    # stationary-point value 1; the factor had no stated source).
    orig = float(ratio.mean())
    out.append({"name": "original check: the batch estimator is about 1/b of the empirical Fisher", "value": orig,
                "passed": bool(0.5 < orig < 2), "gating": False,
                "claim": "original check (replaced by the per-seed prediction above after --set seed=1 failed it): "
                         "b tr(F_batch) / tr(F_emp) is about 1, averaged over seeds",
                "paper": "theory: 1 at a stationary point (mean gradient 0); above 1 by the squared mean gradient",
                "tolerance": "seed mean in (0.5, 2)",
                "detail": f"b * tr(F_batch) / tr(F_empirical) with b = {b}: seed mean {orig:.3g} (per seed "
                          f"{seeds(ratio)}; in (0.5, 2)? {0.5 < orig < 2}). Report-only: a preset band with no "
                          f"source for the factor 2, that ignores the squared mean gradient "
                          f"({seeds(c['mean_grad_share'])} of tr F_emp here)"})
    for est in cfg.estimators:
        r = res["sweeps"][est]
        acc = _acc(r)
        i = r["chosen"]
        diff = acc[i] - acc[0]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        out.append({"name": f"EWC ({est} Fisher) at its best lambda beats lambda = 0", "value": float(diff.mean()),
                    "passed": bool(diff.mean() > 2 * se and diff.mean() > 0),
                    "detail": f"lambda {r['lams'][i]:g} (chosen on validation): {100 * acc[i].mean():.2f}% vs fine-tuning "
                              f"{100 * acc[0].mean():.2f}%, paired diff {100 * diff.mean():+.2f} pts > 2 SE "
                              f"({100 * 2 * se:.2f})"})
    return out


def _short(v: float) -> str:
    """A lambda as a short tick label: 0, 1, 10, 100, 1e3, 1e4, ..."""
    if v == 0 or v < 1000:
        return f"{v:g}"
    k = np.log10(v)
    return f"1e{k:.0f}" if np.isclose(k, round(k)) else f"{v:.2g}"


def plot(res: dict, cfg: Config) -> dict:
    from matplotlib.lines import Line2D

    fig, axes = plotting.figure(ncols=3, width=3.6, height=3.3)
    c = res["compare"]
    meta = res["meta"]
    colors = {est: f"C{j}" for j, est in enumerate(cfg.estimators)}
    ax = axes[0, 0]
    lams = np.asarray(cfg.lams, float)
    pos = lams > 0
    x0 = lams[pos][0] / 10  # where lambda = 0 is drawn on the log axis
    xs = np.where(pos, lams, x0)
    for est in cfg.estimators:
        r = res["sweeps"][est]
        acc = 100 * _acc(r)
        plotting.mean_band(ax, xs, acc.T, color=colors[est], marker="o", ms=3)
        i = r["chosen"]
        ax.plot(xs[i], acc[i].mean(), "*", color=colors[est], ms=10)
    ax.set_xscale("log")
    ax.set_xticks(xs, ["0"] + [_short(v) for v in lams[pos]])
    ax.minorticks_off()
    ax.set(xlabel="EWC lambda (0 = fine-tuning)", ylabel="final avg test accuracy (%)")
    ax.set_title(f"{cfg.protocol} {cfg.dataset}, {cfg.scenario}-IL, {meta['num_tasks']} tasks", fontsize=9)

    ax = axes[0, 1]
    ax.sharey(axes[0, 0])
    for est in cfg.estimators:
        r = res["sweeps"][est]
        tr = c["trace_ratio"][est].mean()
        plotting.mean_band(ax, lams[pos] * tr, 100 * _acc(r)[pos].T, color=colors[est], marker="o", ms=3)
    ax.set(xlabel="effective lambda = lambda tr(F_est) / tr(F_exact)", ylabel="final avg test accuracy (%)")
    ax.set_title("against the effective strength", fontsize=9)
    plotting.log_axis(ax, "x")

    ax = axes[0, 2]
    draws = np.asarray(cfg.compare_draws)
    e = c["sampled_rel_err"]
    plotting.mean_band(ax, draws, e, label="sampled, mean of m draws", color=colors.get("sampled", "C1"), marker="o",
                       ms=3, band=False)
    ax.fill_between(draws, e.min(0), e.max(0), color=colors.get("sampled", "C1"), alpha=0.2, lw=0)  # seed range
    ax.plot(draws, e.mean(0)[0] * (draws / draws[0]) ** -0.5, "k--", lw=0.8, label="m^-1/2")
    ax.plot(draws, np.sqrt(c["sampled_mse_pred"].mean(0)), "k:", lw=1.0, label="predicted rms (theory)")
    for est in cfg.estimators:
        if est in ("empirical", "batch"):
            ax.axhline(c["rel_err"][est].mean(), color=colors[est], ls=":",
                       label=f"{est} (corr {c['corr'][est].mean():.2f})")
    ax.set(xlabel="m (sampled draws averaged)", ylabel="||F - F_exact|| / ||F_exact||")
    ax.set_title(f"vs exact Fisher, task 1 ({meta['fisher_examples']} ex.)", fontsize=9)
    plotting.log_axis(ax, "x")
    plotting.log_axis(ax, "y")
    plotting.legend_outside(ax, "below", ncol=2, fontsize=7, bbox_to_anchor=(0.5, -0.25))

    handles = [Line2D([], [], color=colors[est], marker="o", ms=3) for est in cfg.estimators]
    labels = [f"{est} (tr ratio x{c['trace_ratio'][est].mean():.2g})" for est in cfg.estimators]
    labels[-1] += f", b = {meta['batch']}" if cfg.estimators[-1] == "batch" else ""
    handles.append(Line2D([], [], color="0.3", marker="*", ms=9, ls="none"))
    labels.append("(a): best lambda on validation")
    plotting.figure_legend(fig, handles, labels, where="right", title=f"Fisher estimator\n(mean +- sd, {cfg.seeds} seeds)",
                           fontsize=8, title_fontsize=8)
    plotting.panel_letters(axes)
    failed = [ch["name"] for ch in checks(res, cfg) if not ch["passed"] and ch.get("gating", True)]
    fig.suptitle("EWC with four diagonal-Fisher estimators"
                 + ("\nNOT reproduced: " + "; ".join(failed) if failed else ""), fontsize=9)
    fig.tight_layout()
    return {"fisher_estimators": fig}
