"""Saddles along a real training run: the Hessian's negative spectral mass and the gradient's
share in the negative- and positive-curvature eigenspaces, over time, for SGD and momentum.

Dauphin et al. 2014 ("Identifying and attacking the saddle point problem in high-dimensional
non-convex optimization") argue that the critical points a network meets at high error are
saddles, and that training slows near them. Sagun et al. 2017 ("Empirical analysis of the
Hessian of over-parametrized neural networks") and Ghorbani, Krishnan & Xiao 2019 ("An
investigation into neural net optimization via Hessian eigenvalue density") measure the
Hessian's spectrum during training: a bulk near zero, a few large outliers, and a small
negative part that shrinks as training goes on (the Hessian becomes nearly, not exactly, PSD).
Gur-Ari, Roberts & Dyer 2018 ("Gradient descent happens in a tiny subspace") find the gradient
lies mostly in the span of the top-k (positive) eigenvectors, k = number of classes.

Setup (public API only). A ReLU MLP (``widths``) on MNIST-1D (``lossatlas.data.load("mnist1d")``,
built in), cross-entropy, minibatch ``batch_size``, ``optimizer="momentum"`` with the momentum
coefficient as a vmap axis (``sweep(grid={"momentum": momentums})``: 0 is plain SGD, 0.9 heavy
ball; same ``learning_rate``), ``seeds`` vmapped seeds, one compiled program.
``train.Checkpoints(steps=checkpoint_steps)`` keeps the parameters at log-spaced steps. At every
checkpoint, vmapped over (optimizer, seed) and ``lax.map``-ped over checkpoints, on a fixed
subset of the first ``curvature_examples`` training examples (for speed; the Hessian, gradient
and loss there are exact means over that subset):

* the index = negative spectral mass ``#{lambda < -tol} / P`` by SLQ
  (``lossatlas.saddles.index(method="slq")``, ``num_probes`` Rademacher probes x ``num_steps``
  Lanczos steps, with its standard error over probes), counting eigenvalues below
  -``index_rel_tol`` x max|Ritz value| (see below), and again at the library's rounding-level
  default (same probes);
* ``lossatlas.curvature.eigenspace_overlap``: one ``eig_iters``-step Lanczos run (random start)
  gives the k most negative and the k most positive Ritz pairs (k = ``k``) and the fraction of
  |g|^2 in each span (g the exact subset gradient), with the chance level k/P and each Ritz
  pair's residual ||H v - theta v||;
* ``lossatlas.curvature.spectral_density`` at the first and last checkpoint, on a grid in units
  of that point's lambda_max, Gaussian width ``density_sigma`` x lambda_max.

SLQ resolution near zero, and the tol. SLQ's negative mass is the quadrature weight of Ritz
nodes below -tol; a node near zero stands for a cluster of eigenvalues that may straddle zero,
so with most of the spectrum in a bulk at zero the estimate at the library's rounding-level
default tol (1000 eps max|lambda|, ~1.2e-4 lambda_max) is dominated by that discretisation error,
not by the probe sampling its stderr measures. A prototype (before any check was coded) compared
SLQ with the exact count on the quick net: at tol = 1.2e-4 and 1e-3 x max|lambda| SLQ said 0.54
where the exact index was 0.33 / 0.31; at 1e-2 and 3e-2 it agreed within 0.05. So the index
here is the mass below -``index_rel_tol`` x max|lambda| (``rel_tol=0.01``, added to
``saddles.index`` for this): the negative part that SLQ resolves, in units of the spectral
scale. The rounding-level SLQ index is reported beside it, and the *exact* spectrum (dense
Hessian from P Hessian-vector products, ``lossatlas.linalg.eigh``) at the first and last
checkpoint of seed 0 of each optimizer gives the exact index at both tols and the exact
overlaps, to state the resolution on this very net.

Command:    lossatlas run saddles_in_training [--quick]
Runtime:    2026-11-30, 2 CPU cores shared with other jobs (load 5-7). Quick (1000 examples, MLP
            16-16, P = 1098, lr 0.1 so that SGD leaves the early phase in 1000 steps, 6 seeds, 6
            checkpoints, Hessian on 256 examples, 8 x 40 SLQ, 48 Lanczos steps): 36 s wall with
            JAX's compilation cache warm (25 s of CPU; 52 s cold; 45 s at a higher load); its
            test file: 42-62 s. Full (4000
            examples, MLP 24-24, P = 1834, lr 0.05, 4000 steps, 4 seeds, 8 checkpoints, Hessian
            on 512 examples, 16 x 64 SLQ, 96 Lanczos steps, 4 dense 1834 x 1834 Hessians):
            203-257 s wall (137-202 s of CPU; two runs, same numbers). Not timed on a GPU. The
            first quick config (lr 0.05, 3 seeds, 300 steps) failed (b) and (c): SGD had not left
            the early phase and 3-seed t-intervals were wide; quick was lengthened (not the
            thresholds).
Checks:     thresholds set from the papers before the first run:
            (a) Sagun et al. 2017 / Ghorbani et al. 2019: the negative mass shrinks: for each
                optimizer, the paired difference index(end) - index(init) over seeds has its
                95% Student-t CI entirely below 0;
            (b) it does not vanish (Sagun: small negative eigenvalues remain; the end point is
                not a strict minimum at SLQ resolution): for each optimizer, the seed mean of
                index(end) has its 95% CI lower bound > 0, and the dense (exact) index at the end
                point of seed 0 is > 0 too (the cross-check against SLQ's resolution);
            (c) Gur-Ari et al. 2018: the gradient lies in the top eigenspace, not the negative
                one: per (optimizer, seed) r = mean bottom-k overlap / mean top-k overlap over
                the later half of the checkpoints; for each optimizer the 95% CI upper bound of
                the seed mean of r is < 0.1 (an order of magnitude; the paper gives no number for
                the negative space); overlaps / chance k/P are reported. Changed after the quick
                prototype: the first draft averaged over every checkpoint after init; early on
                (steps 10-30) the gradient has a large share in the negative directions, so r
                over all checkpoints is 0.07-0.25 and fails. Gur-Ari's claim is about the phase
                after a short initial period, hence the later half; the first draft is kept as a
                report-only "(c, original)" record (it fails in both runs).
            Report-only: the top-k overlap is large late in training (Gur-Ari et al.: ~0.9; we
            ask >= 0.5 for the median over the later half of the checkpoints); index vs loss
            along the run (Dauphin et al.: higher loss, higher index; Spearman rho > 0); SLQ vs
            exact index and Lanczos vs exact overlaps at the dense points (within 0.05).
Measured:   full (2026-11-30; SGD / momentum 0.9; mean +- 95% CI over 4 seeds): index 0.178 +-
            0.103 / 0.181 +- 0.108 at init -> 0.0041 +- 0.0038 / 0.0228 +- 0.0096 at step 4000
            (train loss 2.37 -> 0.98 / 0.63); paired change -0.174 +- 0.100 / -0.159 +- 0.101:
            (a) passes. Exact index at the end (seed 0) 0.0022 / 0.0245, SLQ 0.0029 / 0.0194: (b)
            passes, narrowly for SGD (CI lower bound 0.0003). Gradient share late in training:
            top-10 0.52 / 0.56 (95x / 103x chance k/P = 0.0055), bottom-10 0.0041 / 0.0027 (0.75x /
            0.49x chance), r = 0.0079 +- 0.0020 / 0.0046 +- 0.0025: (c) passes; but at steps
            10-30 the bottom-10 share peaks at 0.17-0.26 (32-47x chance): early on the gradient
            does point along negative curvature, then leaves it ((c, original) fails: 0.155 +-
            0.113 / 0.073 +- 0.066). Top-10 share 0.52-0.56, short of Gur-Ari's ~0.9 (passes the
            report-only 0.5). Spearman rho(loss, index) 0.67-0.98 per member. Resolution: at init
            SLQ (rel_tol 0.01) 0.154 vs exact 0.188; at the rounding-level tol SLQ 0.26-0.51 vs exact
            0.25-0.38 (and SLQ's stderr there is ~0.005: the bias is not in it). Lanczos overlaps
            match the exact ones to <= 0.002.
            quick (6 seeds): index 0.183 +- 0.031 / 0.191 +- 0.024 -> 0.0079 +- 0.0072 / 0.0271 +-
            0.0120 (paired -0.175 +- 0.028 / -0.163 +- 0.034); exact at the end 0.0146 / 0.0364;
            r = 0.027 +- 0.011 / 0.0067 +- 0.0027; gating checks pass; report-only "SLQ vs exact"
            fails (init: SLQ 0.172 vs exact 0.226, off by 0.054 > 0.05), "(c, original)" fails.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jax.flatten_util import ravel_pytree

from lossatlas import curvature, linalg, saddles, train, validate
from lossatlas.train import Checkpoints, TrainConfig, sweep

from . import _config_checks as cfgcheck
from . import _saddles_training_stats as stats
from . import kit
from ._saddles_training_plot import plot  # noqa: F401  (the runner looks it up here)

FIGURE = "Sagun et al. 2017; Ghorbani et al. 2019; Gur-Ari et al. 2018 (Hessian along training; no single figure)"
TABLE_TITLE = ("Saddles in training: negative spectral mass and gradient overlap with the negative / top "
               "eigenspaces (Dauphin 2014; Sagun 2017; Ghorbani 2019; Gur-Ari 2018)")

DATASETS = ("mnist1d",)
DENSE_CHUNK = 64          # examples per chunk for the dense Hessian (memory: P tangents per chunk)


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "mnist1d"
    num_train: int = 0                        # 0: all 4000 training examples
    widths: tuple = (24, 24)
    activation: str = "relu"
    learning_rate: float = 0.05
    momentums: tuple = (0.0, 0.9)             # optimizer axis: 0 = SGD, > 0 = heavy-ball momentum
    batch_size: int = 100
    epochs: int = 100
    checkpoint_steps: tuple = (0, 10, 30, 100, 300, 1000, 2000, 4000)
    curvature_examples: int = 512             # the Hessian / gradient / loss subset (first examples)
    num_steps: int = 64                       # SLQ Lanczos steps per probe
    num_probes: int = 16                      # SLQ probes
    index_rel_tol: float = 0.01               # index counts eigenvalues < -index_rel_tol x max|lambda|
    eig_iters: int = 96                       # Lanczos steps for the top / bottom eigenpairs
    k: int = 10                               # eigenspace dimension (Gur-Ari: number of classes)
    density_sigma: float = 0.01               # density broadening, fraction of lambda_max
    dense_check: bool = True                  # exact index at init / end for seed 0 of each optimizer
    seeds: int = 4
    seed: int = 0

    def __post_init__(self):
        where = "Config"
        validate.one_of(where, "dataset", self.dataset, DATASETS)
        cfgcheck.require_ints(self, {"num_train": 0, "batch_size": 1, "epochs": 1, "curvature_examples": 2,
                                     "num_steps": 2, "num_probes": 2, "eig_iters": 2, "k": 1, "seeds": 3})
        cfgcheck.require_widths(self)
        validate.one_of(where, "activation", self.activation, ("relu", "tanh", "gelu"))
        validate.normalize(self, "learning_rate", validate.number, 0, lo_open=True)
        validate.normalize(self, "density_sigma", validate.number, 0, 1, lo_open=True, hi_open=True)
        validate.normalize(self, "index_rel_tol", validate.number, 0, 1, hi_open=True)
        validate.normalize(self, "dense_check", validate.boolean)
        moms = self.momentums
        if not isinstance(moms, (tuple, list)) or len(moms) < 2 or any(
                isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1 for m in moms) \
                or len(set(moms)) != len(moms):
            validate.fail(where, "momentums", moms, "a tuple of >= 2 distinct values in [0, 1) (0: SGD)")
        object.__setattr__(self, "momentums", tuple(float(m) for m in moms))
        n = self.num_train or 4000
        if self.batch_size > n:
            validate.fail(where, "batch_size", self.batch_size, f"<= num_train ({n})")
        if self.curvature_examples > n:
            validate.fail(where, "curvature_examples", self.curvature_examples, f"<= num_train ({n})")
        if 2 * self.k > self.eig_iters:
            validate.fail(where, "eig_iters", self.eig_iters, f">= 2 k = {2 * self.k} (top and bottom k Ritz pairs)")
        total = self.epochs * (n // self.batch_size)
        steps = validate.int_tuple(where, "checkpoint_steps", self.checkpoint_steps, lo=0)
        if len(steps) < 3 or steps[0] != 0 or steps[-1] != total or list(steps) != sorted(set(steps)):
            validate.fail(where, "checkpoint_steps", steps,
                          f">= 3 strictly increasing steps from 0 to the run's last step ({total} = epochs x "
                          f"num_train // batch_size)")
        object.__setattr__(self, "checkpoint_steps", steps)


# quick: a smaller net and data, lr 0.1 so that SGD gets past the early phase in 1000 steps, 6 seeds
QUICK = {"num_train": 1000, "widths": (16, 16), "learning_rate": 0.1, "epochs": 100,
         "checkpoint_steps": (0, 10, 30, 100, 300, 1000), "curvature_examples": 256, "num_steps": 40,
         "num_probes": 8, "eig_iters": 48, "seeds": 6}


def optimizer_names(cfg: Config) -> list[str]:
    return ["SGD" if m == 0 else f"momentum {m:g}" for m in cfg.momentums]


def train_config(cfg: Config) -> TrainConfig:
    return TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.widths), "activation": cfg.activation},
                       loss="cross_entropy", optimizer="momentum", momentum=cfg.momentums[0],
                       learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, epochs=cfg.epochs,
                       eval_train=False)


def _analysis(cfg: Config, fns, data):
    """Per-member curvature measurements: (params, model_state, key) -> dict of arrays."""
    def one(params, model_state, key):
        loss_fn = lambda p, b: fns.loss(p, model_state, b)  # noqa: E731
        k_slq, k_eig = jax.random.split(key)
        slq = dict(data=data, num_steps=cfg.num_steps, num_probes=cfg.num_probes)
        idx = saddles.index(loss_fn, params, k_slq, "slq", rel_tol=cfg.index_rel_tol, **slq)
        rounding = saddles.index(loss_fn, params, k_slq, "slq", **slq)      # same probes, default tol
        ov = curvature.eigenspace_overlap(loss_fn, params, cfg.k, k_eig, num_iters=cfg.eig_iters, data=data)
        value, grad = jax.value_and_grad(lambda p: loss_fn(p, data))(params)
        gnorm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grad)))
        return {"index": idx.index, "index_stderr": idx.stderr,
                "index_rounding": rounding.index, "index_rounding_stderr": rounding.stderr,
                "loss": value, "grad_norm": gnorm,
                "top_overlap": ov.top_overlap, "bottom_overlap": ov.bottom_overlap,
                "top_values": ov.top_values, "bottom_values": ov.bottom_values,
                "top_residuals": ov.top_residuals, "bottom_residuals": ov.bottom_residuals, "chance": ov.chance}
    return one


def _dense(cfg: Config, fns, data, params, model_state) -> dict:
    """The exact spectrum (dense Hessian from P Hessian-vector products, ``linalg.eigh``): the
    index at ``index_rel_tol`` and at the rounding-level default, and the exact overlaps of the
    gradient with the top-k / bottom-k eigenvectors."""
    loss_fn = lambda p, b: fns.loss(p, model_state, b)  # noqa: E731
    matvec, flat, _ = curvature.flat_operator(loss_fn, params, data, DENSE_CHUNK)
    hess = jax.vmap(matvec)(jnp.eye(flat.size, dtype=flat.dtype))
    lam, vecs = linalg.eigh(0.5 * (hess + hess.T))
    g = ravel_pytree(jax.grad(lambda p: loss_fn(p, data))(params))[0]
    scale = jnp.max(jnp.abs(lam))
    frac = lambda v: jnp.sum(jnp.square(v.T @ g)) / jnp.sum(jnp.square(g))  # noqa: E731
    return {"index": jnp.mean(lam < -cfg.index_rel_tol * scale),
            "index_rounding": jnp.mean(lam < -1000 * jnp.finfo(lam.dtype).eps * scale),
            "top_overlap": frac(vecs[:, -cfg.k:]), "bottom_overlap": frac(vecs[:, :cfg.k]),
            "lambda_min": lam[0], "lambda_max": lam[-1]}


def run(cfg: Config, key) -> dict:
    ds = kit.dataset(cfg)
    tcfg = train_config(cfg)
    fns = train.model_fns(tcfg, ds)
    k_train, k_curv, k_dens = jax.random.split(key, 3)
    state, hist = sweep(tcfg, ds, key=k_train, seeds=cfg.seeds, grid={"momentum": list(cfg.momentums)},
                        checkpoints=Checkpoints(steps=cfg.checkpoint_steps))
    G, S, K = len(cfg.momentums), cfg.seeds, len(cfg.checkpoint_steps)
    data = (jnp.asarray(ds.x_train[:cfg.curvature_examples]), jnp.asarray(ds.y_train[:cfg.curvature_examples]))
    ck = hist["checkpoints"]
    # [G, S, K, ...] -> [K, G*S, ...]: lax.map over checkpoints, vmap over (optimizer, seed)
    to_kgs = lambda a: jnp.moveaxis(a.reshape((G * S,) + a.shape[2:]), 1, 0)  # noqa: E731
    params, mstate = jax.tree_util.tree_map(to_kgs, ck["params"]), jax.tree_util.tree_map(to_kgs, ck["model_state"])
    keys = jax.random.split(k_curv, K * G * S).reshape(K, G * S, -1)
    one = jax.vmap(_analysis(cfg, fns, data))
    out = jax.jit(lambda p, m, k: jax.lax.map(lambda a: one(*a), (p, m, k)))(params, mstate, keys)
    out = {n: np.asarray(jnp.moveaxis(v, 0, 1)).reshape((G, S, K) + v.shape[2:]) for n, v in out.items()}

    # spectral density at the first and last checkpoint, x in units of that point's lambda_max
    u = np.linspace(-1.1, 1.1, 2201)

    def density(p, m, k, lam):
        _, d = curvature.spectral_density(lambda q, b: fns.loss(q, m, b), p, k, cfg.num_steps, cfg.num_probes,
                                          grid=lam * jnp.asarray(u, jnp.float32), sigma=cfg.density_sigma * lam,
                                          data=data)
        return d * lam                                                     # density per unit of x / lambda_max

    ends = jnp.asarray([0, K - 1])
    pick = lambda a: a[ends].reshape((2 * G * S,) + a.shape[2:])  # noqa: E731
    lam = jnp.asarray(out["top_values"][:, :, [0, K - 1], 0]).transpose(2, 0, 1).reshape(-1)
    dens = jax.jit(jax.vmap(density))(jax.tree_util.tree_map(pick, params), jax.tree_util.tree_map(pick, mstate),
                                      jax.random.split(k_dens, 2 * G * S), lam)
    res = {**out, "density": np.asarray(dens).reshape(2, G, S, -1), "density_x": u,
           "momentums": np.asarray(cfg.momentums), "checkpoint_steps": np.asarray(cfg.checkpoint_steps),
           "train_loss_steps": np.asarray(hist["loss"]),
           "num_params": np.asarray(sum(int(np.prod(x.shape[2:])) for x in jax.tree_util.tree_leaves(params))),
           "diverged": np.asarray(hist["diverged_at"]) >= 0}
    if cfg.dense_check:   # exact spectrum, seed 0 of each optimizer, first and last checkpoint: [2, G]
        sel = lambda a: a[ends][:, ::S].reshape((2 * G,) + a.shape[2:])  # noqa: E731
        dense = jax.jit(lambda p, m: jax.lax.map(lambda a: _dense(cfg, fns, data, *a), (p, m)))(
            jax.tree_util.tree_map(sel, params), jax.tree_util.tree_map(sel, mstate))
        res.update({f"dense_{n}": np.asarray(v).reshape(2, G) for n, v in dense.items()})
    return res


table = stats.table
checks = stats.checks
