"""Full-batch gradient descent runs at the edge of stability: lambda_max rises to 2/eta and hovers there.

Cohen, Kaur, Li, Kolter & Talwalkar 2021 ("Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability", ICLR; Fig. 1) train fully connected tanh networks with
full-batch gradient descent and MSE loss on a 5k subset of CIFAR-10 and track the sharpness
lambda_max (the top eigenvalue of the training-loss Hessian) through training. For every
step size eta they see the same two phases: *progressive sharpening*, lambda_max rising
steadily from well below the stability threshold 2/eta (the largest sharpness at which GD on
a quadratic does not diverge), then, once it reaches 2/eta, the *edge of stability*:
lambda_max stops rising and hovers at (just above) 2/eta, while the training loss keeps
falling over long time scales, non-monotonically (it rises on some steps).

Here a tanh MLP (``widths``) is trained with full-batch GD (``optimizer="sgd"``,
``batch_size`` = the training-set size) and MSE on one-hot targets (a regression copy of
``dataset``: inputs centred on the training mean, targets one-hot; ``lossatlas.data.Dataset``)
for ``steps`` steps. Everything uses the library's public API only:

* ``lossatlas.train.sweep`` with ``grid={"learning_rate": learning_rates}`` and ``seeds``:
  every (eta, seed) pair is one member of one compiled, vmapped program;
* ``lossatlas.train.probes.lambda_max`` (warm-started power iteration, ``probe_iters``
  Hessian-vector products per call, on the probe's batch = the whole training set) attached
  as a probe every ``probe_every`` steps: the sharpness trajectory comes back in the history;
* ``return_init=True`` gives the initial states; their lambda_max is the same probe run for
  ``init_iters`` iterations, and the final states' lambda_max is re-measured by Lanczos
  (``lossatlas.curvature.top_eigenvalues``) to show the probe tracked the true top eigenvalue.

Phases per (eta, seed): the crossing step is the first probe with lambda_max >= 2/eta; the
*stable phase* is every step before the first probe with lambda_max >= 0.9 x 2/eta (less one
probe interval); the *EoS phase* is every step from the crossing on, and its *later part* is
its second half.

Command:    lossatlas run edge_of_stability [--quick]
Runtime:    quick (500 digits, MLP 64-64 tanh, 3 etas x 2 seeds, 1500 steps, lambda_max every
            10 steps): 45 s wall on 2 CPU cores shared with other jobs (its test file: 38 s).
            Full (all 1437 digits, 4 etas x 3 seeds, 4000 steps): 175 s on the same 2 shared CPU
            cores (not timed on a GPU; none was available).
Checks:     thresholds set from Cohen et al. and GD theory before the runs:
            (1) progressive sharpening: for every (eta, seed), lambda_max at init <= 0.75 x 2/eta
            and it later reaches >= 0.9 x 2/eta (a rise of >= 1.2x by itself; Cohen et al.
            Fig. 1: sharpness starts well below 2/eta and rises to it);
            (2) edge of stability: for every (eta, seed) the median lambda_max over the later
            half of the EoS phase lies in [0.8, 1.2] x 2/eta (Cohen et al.: it "hovers just
            above 2/eta"), and the EoS phase lasts >= 20% of the run;
            (3) the loss is non-monotone at EoS: >= 2% of the EoS phase's steps raise the loss,
            while <= 1% of the stable phase's do (GD with lambda_max < 2/eta is a descent
            method); (4) the loss keeps falling: the final loss (median of the last 5% of
            steps) is <= 0.8 x the loss at the crossing;
            (5) the probe tracks lambda_max: the last probe (after the final step) is within 5%
            of a 30-step Lanczos estimate at the final parameters, for every member.
Measured:   quick, 2 CPU cores, per seed (eta = 1.2 / 1.35 / 1.5, 2/eta = 1.67 / 1.48 / 1.33):
            lambda_max at init 0.48-0.52 / 0.54-0.59 / 0.60-0.65 x 2/eta; first crossing at step
            660-870 / 490-640 / 380-480; overshoot peak 1.09-1.15 x 2/eta; median over the later
            EoS phase 1.001-1.016 x 2/eta (just above it, as Cohen et al. report); loss-raising
            steps 0% before the crossing, 22-32% after; final loss 0.40-0.62 x the loss at the
            crossing (0.012-0.018 -> ~0.007); last probe within 0.2-0.7% of Lanczos. All checks pass.
            full, 2 CPU cores (eta = 1 / 1.2 / 1.35 / 1.5, 3 seeds): lambda_max at init 0.40-0.65 x
            2/eta; first crossing at step 1120-1970 / 650-1010 / 490-770 / 390-510; peak 1.03-1.19
            x 2/eta; later-EoS median 1.001-1.011 x 2/eta; loss-raising steps 0% before, 24-43%
            after; final loss 0.22-0.66 x the loss at the crossing (-> ~0.005); probe within 0.9%
            of Lanczos. All checks pass.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import curvature, plotting, validate
from lossatlas import data as data_lib
from lossatlas import train
from lossatlas.train import TrainConfig, sweep

from . import _config_checks as cfgcheck
from . import kit

FIGURE = "Cohen et al. 2021, Fig. 1"
TABLE_TITLE = "Edge of stability: full-batch GD, sharpness vs 2/eta (Cohen et al. 2021, Fig. 1)"

DATASETS = ("digits",)    # the eta grids are set against digits' initial sharpness (0.78-0.90 here)
START_MAX = 0.75          # check 1: lambda_max at init <= START_MAX x 2/eta ("well below")
REACH = 0.9               # check 1: lambda_max later reaches >= REACH x 2/eta
BAND = (0.8, 1.2)         # check 2: median later-EoS lambda_max within BAND x 2/eta
MIN_EOS_FRAC = 0.2        # check 2: the EoS phase lasts >= this fraction of the run
EOS_UP_MIN = 0.02         # check 3: fraction of loss increases in the EoS phase
STABLE_UP_MAX = 0.01      # check 3: fraction of loss increases in the stable phase
FINAL_VS_CROSS = 0.8      # check 4: final loss <= this x loss at the crossing
PROBE_TOL = 0.05          # check 5: |probe - Lanczos| / Lanczos at the final parameters
LANCZOS_ITERS = 30


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    num_train: int = 0                       # 0: the whole training set
    widths: tuple = (64, 64)
    activation: str = "tanh"
    learning_rates: tuple = (1.0, 1.2, 1.35, 1.5)
    steps: int = 4000                        # full-batch GD steps (= epochs)
    probe_every: int = 10
    probe_iters: int = 10                    # warm-started power iterations per probe
    init_iters: int = 200                    # power iterations for lambda_max at init
    seeds: int = 3
    seed: int = 0

    def __post_init__(self):
        validate.one_of("Config", "dataset", self.dataset, DATASETS)
        cfgcheck.require_ints(self, {"num_train": 0})   # 0: all
        cfgcheck.require_widths(self)
        if len(self.learning_rates) < 1 or min(self.learning_rates) <= 0 \
                or list(self.learning_rates) != sorted(set(self.learning_rates)):
            raise ValueError(f"Config.learning_rates must be increasing positive values, got {self.learning_rates!r}")
        if self.probe_every < 1 or self.steps % self.probe_every or self.steps < 10 * self.probe_every:
            raise ValueError(f"Config.probe_every must divide steps and leave >= 10 probes, "
                             f"got probe_every={self.probe_every}, steps={self.steps}")
        if self.probe_iters < 1 or self.init_iters < 1:
            raise ValueError("Config.probe_iters and Config.init_iters must be >= 1")


QUICK = {"num_train": 500, "learning_rates": (1.2, 1.35, 1.5), "steps": 1500, "seeds": 2}


def regression_dataset(cfg: Config) -> data_lib.Dataset:
    """``dataset`` as MSE regression onto one-hot targets, inputs centred on the training mean."""
    ds = kit.dataset(cfg)
    mu = ds.x_train.mean(0, keepdims=True)
    eye = np.eye(ds.num_classes, dtype=np.float32)
    return data_lib.Dataset(name=f"{ds.name}_onehot", x_train=(ds.x_train - mu).astype(np.float32),
                            y_train=eye[ds.y_train], x_test=(ds.x_test - mu).astype(np.float32),
                            y_test=eye[ds.y_test], num_classes=0, task="regression")


def train_config(cfg: Config, num_train: int) -> TrainConfig:
    return TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.widths), "activation": cfg.activation},
                       loss="mse", optimizer="sgd", learning_rate=cfg.learning_rates[0], batch_size=num_train,
                       epochs=cfg.steps, eval_train=False)


def run(cfg: Config, key) -> dict:
    ds = regression_dataset(cfg)
    tcfg = train_config(cfg, ds.num_train)
    fns = train.model_fns(tcfg, ds)
    k_train, k_init, k_lanczos = jax.random.split(key, 3)
    state, hist, state0 = sweep(tcfg, ds, key=k_train, seeds=cfg.seeds,
                                grid={"learning_rate": list(cfg.learning_rates)},
                                probes={"lambda_max": train.probes.lambda_max(fns.loss, num_iters=cfg.probe_iters)},
                                probe_every=cfg.probe_every, return_init=True)
    batch = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    lead = (len(cfg.learning_rates), cfg.seeds)
    flat = lambda t: jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:]), t)  # noqa: E731
    keys = jax.random.split(k_init, int(np.prod(lead)))

    # lambda_max at init: the same power iteration as the probe, run for init_iters steps
    init_probe = train.probes.lambda_max(fns.loss, num_iters=cfg.init_iters)

    def lam_init(params, model_state, k):
        return init_probe.update(init_probe.init(params, k), params, model_state, batch, k)[0]

    def lam_lanczos(params, model_state, k):
        return curvature.top_eigenvalues(lambda p, b: fns.loss(p, model_state, b), params, 1, k,
                                         num_iters=LANCZOS_ITERS, data=batch)[0]

    lam0 = jax.jit(jax.vmap(lam_init))(flat(state0.params), flat(state0.model_state), keys)
    lam_end = jax.jit(jax.vmap(lam_lanczos))(flat(state.params), flat(state.model_state),
                                             jax.random.split(k_lanczos, int(np.prod(lead))))
    return {"learning_rates": np.asarray(cfg.learning_rates, float),
            "loss": np.asarray(hist["loss"]),                               # [E, S, steps]: L(theta_t) before step t
            "lambda_max": np.asarray(hist["probes"]["lambda_max"]),         # [E, S, P]: after steps (j+1)*probe_every
            "probe_steps": np.arange(1, cfg.steps // cfg.probe_every + 1) * cfg.probe_every,
            "lambda_init": np.asarray(lam0).reshape(lead),
            "lambda_final_lanczos": np.asarray(lam_end).reshape(lead),
            "test_loss": np.asarray(hist["test_loss"][..., -1]),
            "diverged": np.asarray(hist["diverged_at"]) >= 0,
            "num_train": np.asarray(ds.num_train)}


# ---------------------------------------------------------------- analysis
def phases(res: dict, cfg: Config) -> dict:
    """Per (eta, seed) phase boundaries and statistics, arrays shaped [E, S] (NaN where undefined)."""
    etas, lam, loss, ps = res["learning_rates"], res["lambda_max"], res["loss"], res["probe_steps"]
    E, S, T = loss.shape
    out = {k: np.full((E, S), np.nan) for k in ("cross_step", "stable_end", "peak", "later_median", "eos_frac",
                                                "eos_up", "stable_up", "loss_cross", "loss_final")}
    for i, eta in enumerate(etas):
        thr = 2.0 / eta
        for s in range(S):
            lm, ls = lam[i, s], loss[i, s]
            out["peak"][i, s] = _nan(np.max, lm) / thr
            near = np.flatnonzero(lm >= REACH * thr)
            out["stable_end"][i, s] = stable_end = (ps[near[0]] - cfg.probe_every) if near.size else T
            up = np.diff(ls) > 0                       # up[t]: L(theta_{t+1}) > L(theta_t)
            out["stable_up"][i, s] = up[: max(int(stable_end) - 1, 1)].mean()
            above = np.flatnonzero(lm >= thr)
            out["loss_final"][i, s] = np.median(ls[-max(T // 20, 1):])
            if not above.size:
                continue
            c = int(ps[above[0]])
            out["cross_step"][i, s] = c
            out["eos_frac"][i, s] = (T - c) / T
            later = ps >= c + (T - c) / 2
            out["later_median"][i, s] = np.median(lm[later]) / thr if later.any() else np.nan
            out["eos_up"][i, s] = up[c:].mean() if c < T - 1 else np.nan
            out["loss_cross"][i, s] = ls[min(c, T - 1)]
    out["start"] = res["lambda_init"] * etas[:, None] / 2.0
    out["probe_err"] = np.abs(lam[..., -1] - res["lambda_final_lanczos"]) / np.abs(res["lambda_final_lanczos"])
    return out


def table(res: dict, cfg: Config) -> list[dict]:
    ph = phases(res, cfg)
    rows = []
    for i, eta in enumerate(res["learning_rates"]):
        f = lambda k, fmt="{:.3g}": " ".join(fmt.format(v) for v in ph[k][i])  # noqa: E731
        rows.append({"eta": f"{eta:g}", "2/eta": f"{2 / eta:.3g}",
                     "lambda_init / (2/eta)": f("start", "{:.2f}"),
                     "first crossing (step)": f("cross_step", "{:.0f}"),
                     "peak / (2/eta)": f("peak", "{:.2f}"),
                     "later-EoS median / (2/eta)": f("later_median", "{:.3f}"),
                     "loss-up steps: stable / EoS": " ".join(f"{a:.3f}/{b:.3f}" for a, b in
                                                            zip(ph["stable_up"][i], ph["eos_up"][i])),
                     "loss at crossing -> final": " ".join(f"{a:.4f}->{b:.4f}" for a, b in
                                                          zip(ph["loss_cross"][i], ph["loss_final"][i])),
                     "probe vs Lanczos (rel.)": f("probe_err", "{:.1e}")})
    return rows


def _nan(fn, a) -> float:
    """``fn`` (a numpy reduction) over the finite entries of ``a``; NaN when there are none."""
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(fn(a)) if a.size else float("nan")


def _where(mask, etas):
    """Names of the failing (eta, seed) members."""
    bad = [f"eta={etas[i]:g}/seed {s}" for i, s in zip(*np.nonzero(~mask))]
    return "all members" if not bad else "failing: " + ", ".join(bad)


def checks(res: dict, cfg: Config) -> list[dict]:
    ph, etas = phases(res, cfg), res["learning_rates"]
    nan_false = lambda a, f: np.where(np.isnan(a), False, f(np.nan_to_num(a)))  # noqa: E731
    alive = ~res["diverged"]
    sharpen = alive & (ph["start"] <= START_MAX) & (ph["peak"] >= REACH)
    eos_len = nan_false(ph["eos_frac"], lambda a: a >= MIN_EOS_FRAC)
    band = nan_false(ph["later_median"], lambda a: (a >= BAND[0]) & (a <= BAND[1])) & eos_len & alive
    nonmono = nan_false(ph["eos_up"], lambda a: a >= EOS_UP_MIN) & (ph["stable_up"] <= STABLE_UP_MAX) & alive
    falls = nan_false(ph["loss_final"] / ph["loss_cross"], lambda a: a <= FINAL_VS_CROSS) & alive
    tracked = nan_false(ph["probe_err"], lambda a: a <= PROBE_TOL)
    ph["ratio"] = ph["loss_final"] / ph["loss_cross"]
    rng = lambda k: f"[{_nan(np.min, ph[k]):.3g}, {_nan(np.max, ph[k]):.3g}]"  # noqa: E731
    n = sharpen.size
    return [
        {"name": "progressive sharpening up to 2/eta", "value": float(sharpen.mean()), "passed": bool(sharpen.all()),
         "paper": "Cohen et al. Fig. 1: lambda_max rises from well below 2/eta until it reaches 2/eta",
         "detail": f"{int(sharpen.sum())}/{n} (eta, seed) members start at lambda_max <= {START_MAX} x 2/eta "
                   f"(range {rng('start')}) and reach >= {REACH} x 2/eta (peak range {rng('peak')} x 2/eta); "
                   f"{_where(sharpen, etas)}"},
        {"name": "lambda_max hovers at 2/eta in the EoS phase", "value": _nan(np.median, ph["later_median"]),
         "passed": bool(band.all()),
         "paper": "Cohen et al.: after reaching 2/eta the sharpness hovers just above 2/eta",
         "detail": f"median lambda_max / (2/eta) over the later half of the EoS phase, per member, in "
                   f"{rng('later_median')} (need within [{BAND[0]}, {BAND[1]}] for all {n}); EoS phase lasts "
                   f"{rng('eos_frac')} of the run (need >= {MIN_EOS_FRAC}); crossing steps {rng('cross_step')}; "
                   f"{_where(band, etas)}"},
        {"name": "loss non-monotone at EoS, monotone before", "value": _nan(np.min, ph["eos_up"]),
         "passed": bool(nonmono.all()),
         "paper": "Cohen et al. Fig. 1: at EoS the train loss decreases non-monotonically",
         "detail": f"fraction of steps that raise the loss: EoS phase {rng('eos_up')} (need >= {EOS_UP_MIN}), "
                   f"stable phase {rng('stable_up')} (need <= {STABLE_UP_MAX}); {_where(nonmono, etas)}"},
        {"name": "loss keeps falling through the EoS phase", "value": _nan(np.max, ph["ratio"]),
         "passed": bool(falls.all()),
         "paper": "Cohen et al. Fig. 1: the loss keeps decreasing over long time scales at EoS",
         "detail": f"final loss (median of the last 5% of steps) / loss at the crossing in "
                   f"{rng('ratio')} (need <= {FINAL_VS_CROSS}); "
                   f"{_where(falls, etas)}"},
        {"name": "the lambda_max probe tracks the top Hessian eigenvalue", "value": _nan(np.max, ph["probe_err"]),
         "passed": bool(tracked.all()),
         "detail": f"|last probe - {LANCZOS_ITERS}-step Lanczos| / Lanczos at the final parameters: max "
                   f"{_nan(np.max, ph['probe_err']):.2e} over {n} members (need <= {PROBE_TOL})"},
    ]


def plot(res: dict, cfg: Config) -> dict:
    from matplotlib.lines import Line2D

    etas, lam, loss, ps = res["learning_rates"], res["lambda_max"], res["loss"], res["probe_steps"]
    fig, axes = plotting.figure(nrows=2, width=7.5, height=2.9, sharex=True)
    ax_loss, ax_lam = axes[0, 0], axes[1, 0]
    steps = np.arange(loss.shape[-1])
    for i, eta in enumerate(etas):
        color = f"C{i}"
        for s in range(loss.shape[1]):
            kw = dict(color=color, lw=1.0 if s == 0 else 0.6, alpha=1.0 if s == 0 else 0.45)
            ax_loss.plot(steps, loss[i, s], **kw)
            ax_lam.plot(np.concatenate([[0], ps]), np.concatenate([[res["lambda_init"][i, s]], lam[i, s]]), **kw)
        ax_lam.axhline(2 / eta, color=color, ls="--", lw=1.0)
    ax_loss.set(ylabel="train loss (MSE)")
    plotting.log_axis(ax_loss, "y")
    ax_lam.set(xlabel="step (full-batch GD)", ylabel="sharpness lambda_max",
               ylim=(0, 1.35 * 2 / etas.min()))
    handles = [Line2D([], [], color=f"C{i}", lw=1.4) for i in range(len(etas))]
    labels = [f"eta = {eta:g} (2/eta = {2 / eta:.3g})" for eta in etas]
    handles += [Line2D([], [], color="0.3", ls="--", lw=1.0), Line2D([], [], color="0.3", lw=1.0),
                Line2D([], [], color="0.3", lw=0.6, alpha=0.45)]
    labels += ["2/eta (GD's stability threshold)", "seed 0", "other seeds"]
    plotting.figure_legend(fig, handles, labels, where="right", fontsize=8)
    plotting.panel_letters(axes)
    fig.suptitle(f"Edge of stability: full-batch GD, MLP {tuple(cfg.widths)} {cfg.activation}, MSE, "
                 f"{int(res['num_train'])} {cfg.dataset} examples", fontsize=9)
    fig.tight_layout()
    return {"edge_of_stability": fig}
