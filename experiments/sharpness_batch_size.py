"""Small- vs large-batch training: sharpness of the minimum and the generalisation gap.

Keskar, Mudigere, Nocedal, Smelyanskiy & Tang 2017 ("On Large-Batch Training for Deep
Learning: Generalization Gap and Sharp Minima") train the same network with a small batch
(SB) and a large batch (LB, ~10% of the data) for the same number of epochs (Adam) and find
that LB solutions are sharper (larger epsilon-sharpness, their Metric 2.1, and larger top
Hessian eigenvalue) and generalise worse; the 1-D interpolation
``L((1 - alpha) theta_SB + alpha theta_LB)`` for alpha in [-1, 2] (their Fig. 3) is flat
around the SB solution and steep around the LB one.

Here an MLP (``widths``, ReLU) is trained on ``dataset`` with Adam at batch sizes
``small_batch`` and ``large_batch`` for ``epochs`` epochs each, seeds vmapped
(``lossatlas.train.sweep``; SB and LB share the seed keys, so the same initialisation). One
compiled, vmapped analysis program then measures, for every solution over the whole
training set: ``lambda_max`` (``curvature.top_eigenvalues``, Lanczos) and Keskar's
epsilon-sharpness for every ``epsilons`` (``curvature.sharpness``, projected sign ascent in
the box ``|delta_i| <= eps (|theta_i| + 1)``), the loss along filter-normalised random
directions (``landscape.line``, Li et al. 2018) and, per seed, the train and test loss along
the SB -> LB line (``landscape.interpolate``, ``extent`` [-1, 2]).

At the same number of epochs SB takes ``large_batch / small_batch`` times more steps and
reaches a far lower training loss; near zero loss the cross-entropy Hessian shrinks with
the loss, so part of the sharpness ratio is that loss difference. The SB runs are therefore
also analysed at matched training loss (re-run with per-epoch checkpoints, the same runs,
and taken where they first reach the LB runs' final training loss) (the scale caveat of
Dinh et al. 2017 applies as well: sharpness is not invariant to reparametrisation).

Command:    lossatlas run sharpness_batch_size [--quick]
Checks:     at equal epochs (not Keskar's matched-loss comparison: SB ends at a far lower training
            loss) LB has the larger lambda_max and the larger epsilon-sharpness (means over seeds,
            each epsilon); at matched training loss (each SB seed taken at the end of the first
            epoch whose training loss is at or below the highest final LB training loss, as
            Keskar et al. compare minima at similar training loss) LB still has the larger
            mean lambda_max; lambda_max of curvature.sharpness (20 Lanczos steps) matches
            top_eigenvalues run to ``num_iters`` steps (1%). Report-only (``gating: False``), both
            NOT reproduced: (i) at matched training loss LB has the larger epsilon-sharpness
            (Keskar et al.'s own Metric 2.1 in their own comparison; ratio of seed means > 1 and the 95% CI
            of the paired per-seed ratio above 1, each epsilon): the ratio reverses (below 1), so
            at matched loss only lambda_max says LB is sharper; (ii) LB generalises worse (paired
            over seeds: the 95% CIs of SB - LB test accuracy and of LB - SB test loss both above
            0): the full run shows 0.2 points, within seed noise.
Runtime:    quick (digits, MLP 64-64, 60 epochs, 2 seeds, one epsilon), 2026-11-30, 2 shared CPU
            cores under load: 8 s (13 s wall with start-up; JAX's compilation cache warm). Full (150
            epochs, 4 seeds, two epsilons), 2026-11-30: 101 s wall on 2 shared CPU cores under load
            (80 s before the engine refactor).
Result:     quick, 2026-11-30 (seed 0), SB (B = 16) vs LB (B = 256) at equal epochs: lambda_max
            0.629 vs 8.28 (ratio 13.2), epsilon-sharpness (1e-3) 0.288 vs 1.55 (min ratio 5.39),
            train loss 0.0009 vs 0.0666; at matched training loss (SB at epoch 10 of 60, both seeds)
            lambda_max 6.53 vs 8.28 (ratio 1.27 > 1), while the epsilon-sharpness (1e-3) is 1.79 vs
            1.55: report-only check FAIL, not reproduced, ratio LB / SB 0.866 (paired per-seed ratios
            0.806, 0.938; geometric mean 0.869, 95% CI 0.33 .. 2.27); sharpness() vs top_eigenvalues
            within 9.4e-7.
            Generalisation gap (report-only): FAIL, not reproduced: test accuracy SB - LB +0.0028
            (95% CI -0.0325 .. +0.0381), test loss LB - SB +0.0140 (CI -0.0135 .. +0.0416); test
            accuracy 0.971 vs 0.968. At matched training loss (SB's history at epoch 10; the figure's
            panels (e), (f), no check): test accuracy 0.964 vs 0.968, SB - LB -0.004 (95% CI -0.022 ..
            +0.013), test loss LB - SB -0.002 (CI -0.045 .. +0.041). All gating checks pass. Full run,
            2026-11-30 (seed 0): at equal epochs lambda_max 0.0103 vs 4.03 (ratio 392), epsilon-sharpness (1e-3 / 5e-4) 0.0071 /
            0.00095 vs 0.995 / 0.267 (min ratio 141), train loss 9e-6 vs 0.013; at matched training
            loss (SB at epochs 25-28 of 150) lambda_max 3.03 vs 4.03 (ratio 1.33, PASS) but
            epsilon-sharpness 1.11 / 0.381 vs 0.995 / 0.267: report-only FAIL, not reproduced, ratio
            0.895 / 0.701 (paired per-seed 95% CIs 0.60 .. 1.37 and 0.38 .. 1.31); test accuracy
            0.9715 vs 0.9694, SB - LB +0.0021 (CI -0.0045 .. +0.0087), test loss LB - SB -0.062 (CI
            -0.102 .. -0.021: the large batch has the lower test loss): report-only FAIL. All gating
            checks pass.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import curvature, landscape, losses, plotting
from lossatlas.results import stat
from lossatlas.continual import metrics as cl_metrics
from lossatlas.train import TrainConfig, model_fns, sweep

from . import kit

from ._landscape import train_checkpoints

FIGURE = "Keskar et al. 2017, Fig. 3 and Table 3"
TABLE_TITLE = "Small vs large batch: sharpness and generalisation gap (Keskar et al. 2017)"

DATASETS = ("mnist1d", "digits")
RUNS = ("SB", "LB")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    num_train: int = 0               # 0: the whole training set
    widths: tuple = (64, 64)
    optimizer: str = "adam"          # as Keskar et al.; or "sgd" / "momentum"
    learning_rate: float = 1e-3
    small_batch: int = 16
    large_batch: int = 256           # 18% of digits' 1437 training examples (Keskar et al.: ~10%)
    epochs: int = 150
    epsilons: tuple = (1e-3, 5e-4)   # Keskar et al.'s box sizes
    ascent_steps: int = 20
    num_iters: int = 60              # Lanczos steps for the reference lambda_max
    interp_points: int = 31          # alpha in [-1, 2]
    slice_points: int = 21           # random filter-normalised 1-D slices, alpha in [-1, 1]
    num_directions: int = 2
    chunk_size: int = 0              # examples per chunk of the exact dataset means (0: all at once)
    seeds: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Config.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.num_train < 0:
            raise ValueError(f"Config.num_train must be >= 0 (0: all), got {self.num_train!r}")
        if len(self.widths) < 1 or min(self.widths) < 1:
            raise ValueError(f"Config.widths must be positive hidden widths, got {self.widths!r}")
        if self.optimizer not in ("adam", "sgd", "momentum"):
            raise ValueError(f"Config.optimizer must be 'adam', 'sgd' or 'momentum', got {self.optimizer!r}")
        if not 1 <= self.small_batch < self.large_batch:
            raise ValueError(f"Config.small_batch must be >= 1 and < large_batch, got {self.small_batch}, {self.large_batch}")
        if len(self.epsilons) < 1 or min(self.epsilons) <= 0:
            raise ValueError(f"Config.epsilons must be positive box sizes, got {self.epsilons!r}")
        if self.interp_points < 3 or self.slice_points < 3 or self.num_directions < 1:
            raise ValueError("Config.interp_points and slice_points must be >= 3, num_directions >= 1")
        if self.ascent_steps < 1 or self.num_iters < 20 or self.chunk_size < 0:
            raise ValueError("Config.ascent_steps must be >= 1, num_iters >= 20 and chunk_size >= 0 (0: all at once)")


QUICK = {"epochs": 60, "seeds": 2, "epsilons": (1e-3,), "interp_points": 13, "slice_points": 11,
         "num_directions": 1}


def _dataset(cfg):
    ds = kit.dataset(cfg)
    if cfg.large_batch > ds.num_train:
        raise ValueError(f"Config.large_batch={cfg.large_batch} is larger than the training set ({ds.num_train})")
    return ds


def _analysis(cfg, apply, train, test):
    """jit(vmap(one)) over a flat axis of solutions; one(params, key, other) -> dict."""
    def loss_fn(p, batch):
        return losses.cross_entropy(apply(p, {}, batch[0]), batch[1])

    alphas = jnp.linspace(-1.0, 1.0, cfg.slice_points)
    chunk = cfg.chunk_size or None

    def one(params, key):
        keys = jax.random.split(key, 2 + len(cfg.epsilons))
        out = {"lambda_ref": curvature.top_eigenvalues(loss_fn, params, 1, keys[0], num_iters=cfg.num_iters,
                                                       data=train, chunk_size=chunk)[0]}
        sharp = [curvature.sharpness(loss_fn, params, k, epsilon=e, num_steps=cfg.ascent_steps, data=train,
                                     chunk_size=chunk) for e, k in zip(cfg.epsilons, keys[2:])]
        out["lambda_max"] = sharp[0]["lambda_max"]
        out["eps_sharpness"] = jnp.stack([s["epsilon_sharpness"] for s in sharp])
        out["train_loss"] = sharp[0]["loss"]

        def slice_(k):
            d = landscape.random_direction(k, params)
            return jnp.stack([landscape.line(loss_fn, params, d, alphas, data=dd, chunk_size=chunk)
                              for dd in (train, test)])
        out["slices"] = jax.lax.map(slice_, jax.random.split(keys[1], cfg.num_directions))   # [D, 2, A]
        return out

    def interp(p_sb, p_lb):
        return jnp.stack([landscape.interpolate(loss_fn, p_sb, p_lb, cfg.interp_points, data=dd, chunk_size=chunk,
                                                extent=(-1.0, 2.0)).losses for dd in (train, test)])   # [2, A]

    return jax.jit(jax.vmap(one)), jax.jit(jax.vmap(interp)), alphas


def run(cfg: Config, key) -> dict:
    ds = _dataset(cfg)
    k_train, k_an = jax.random.split(key)
    states, hists = [], []
    for b in (cfg.small_batch, cfg.large_batch):
        tcfg = TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.widths)}, optimizer=cfg.optimizer,
                           learning_rate=cfg.learning_rate, batch_size=b, epochs=cfg.epochs)
        state, hist = sweep(tcfg, ds, seeds=cfg.seeds, key=k_train)          # same keys: same initialisations
        states.append(state.params)
        hists.append(hist)
    apply = model_fns(tcfg, ds).apply
    train = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    test = (jnp.asarray(ds.x_test), jnp.asarray(ds.y_test))
    one, interp, alphas = _analysis(cfg, apply, train, test)
    matched, sb_epoch, target = _matched_sb(cfg, ds, k_train, hists)
    # [SB seeds..., LB seeds..., SB at matched training loss...]
    both = jax.tree_util.tree_map(lambda a, b, c: np.concatenate([a, b, c]), *states, matched)
    an = jax.tree_util.tree_map(np.asarray, one(both, jax.random.split(k_an, 3 * cfg.seeds)))
    res = {"target_loss": np.asarray(target), "SB_matched_epoch": sb_epoch}
    for i, r in enumerate(RUNS + ("SB_matched",)):
        sl = slice(i * cfg.seeds, (i + 1) * cfg.seeds)
        if r == "SB_matched":
            res[r] = {k: v[sl] for k, v in an.items()}
            continue
        h = hists[i]
        res[r] = {k: v[sl] for k, v in an.items()}
        res[r].update({f"hist_{k}": np.asarray(h[k]) for k in ("train_loss", "test_loss", "train_acc", "test_acc")})
        res[r]["steps"] = np.asarray(len(h["loss"][0]))
    res["interp"] = np.asarray(interp(*states))              # [S, 2 (train, test), A]
    res["interp_alpha"] = np.linspace(-1.0, 2.0, cfg.interp_points)
    res["slice_alpha"] = np.asarray(alphas)
    return res


def _matched_sb(cfg, ds, key, hists):
    """The SB solutions at the LB runs' training loss (Keskar et al. compare minima at similar
    training loss): the target is the highest final LB training loss over seeds; each SB seed is
    taken at the end of the first epoch whose training loss is at or below it (the last epoch if
    none is). Re-runs SB to that epoch with per-epoch checkpoints (the same runs as the sweep's:
    same keys, init, shuffles and steps). Returns ``(params [S, ...], epoch [S], target)``."""
    target = float(np.max(np.asarray(hists[1]["train_loss"])[:, -1]))
    sb = np.asarray(hists[0]["train_loss"])                                  # [S, E]
    reached = sb <= target
    epoch = np.where(reached.any(1), reached.argmax(1) + 1, sb.shape[1])     # 1-based epoch
    last = int(epoch.max())
    tcfg = TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.widths)}, optimizer=cfg.optimizer,
                       learning_rate=cfg.learning_rate, batch_size=cfg.small_batch, epochs=last)
    ckpts, _ = train_checkpoints(tcfg, ds, key, cfg.seeds, last, init_eval=False)
    params = jax.device_get(jax.tree_util.tree_map(lambda x: x[np.arange(cfg.seeds), epoch], ckpts))
    return params, epoch, target


def _rounded(values, digits):
    """Plain Python floats rounded to ``digits`` decimals (float32 values print with noise digits)."""
    return [round(float(v), digits) for v in np.ravel(values)]


def _final(res, r, k):
    return res[r][f"hist_{k}"][:, -1]


def _gap(res, r):
    return _final(res, r, "test_loss") - _final(res, r, "train_loss")


def _generalisation_gap(res):
    """Paired (SB and LB share each seed's keys) mean and 95% CI half-width of SB - LB test
    accuracy and of LB - SB test loss, and whether both CIs lie above 0 (needs >= 2 seeds)."""
    acc = _final(res, "SB", "test_acc") - _final(res, "LB", "test_acc")
    tl = _final(res, "LB", "test_loss") - _final(res, "SB", "test_loss")
    d_acc, d_tl = ((float(m), float(h)) for m, h in (cl_metrics.mean_ci(v, axis=0) for v in (acc, tl)))
    ok = len(acc) > 1 and d_acc[0] - d_acc[1] > 0 and d_tl[0] - d_tl[1] > 0
    return d_acc, d_tl, bool(ok)


def _matched_eps_ratio(res):
    """LB / SB-at-matched-loss epsilon-sharpness, per epsilon: the ratio of the seed means, the
    paired per-seed ratio's geometric mean and 95% CI (Student t on the log ratio over seeds; SB and
    LB share each seed's initialisation), and whether every epsilon has both the ratio of means and
    the CI's lower end above 1 (needs >= 2 seeds)."""
    lb, sbm = res["LB"]["eps_sharpness"], res["SB_matched"]["eps_sharpness"]     # [S, E]
    means = lb.mean(0) / sbm.mean(0)
    m, h = cl_metrics.mean_ci(np.log(lb / sbm), axis=0)
    geo, lo, hi = np.exp(m), np.exp(m - h), np.exp(m + h)
    ok = lb.shape[0] > 1 and bool(np.all(means > 1) and np.all(lo > 1))
    return means, (geo, lo, hi), ok


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    for r, b in zip(RUNS, (cfg.small_batch, cfg.large_batch)):
        x = res[r]
        row = {"run": f"{r} (B={b}, {int(x['steps'])} steps)",
               "train loss": round(float(_final(res, r, "train_loss").mean()), 4),
               "test loss": round(float(_final(res, r, "test_loss").mean()), 3),
               "gap (test - train loss)": stat(_gap(res, r), digits=3),
               "train / test acc": f"{_final(res, r, 'train_acc').mean():.3f} / {_final(res, r, 'test_acc').mean():.3f}",
               "lambda_max": stat(x["lambda_max"], digits=3, significant=True)}
        for j, e in enumerate(cfg.epsilons):
            row[f"eps-sharpness ({e:g})"] = stat(x["eps_sharpness"][:, j], digits=3, significant=True)
        rows.append(row)
    if "SB_matched" in res:
        x = res["SB_matched"]
        e = np.asarray(res["SB_matched_epoch"]) - 1               # SB's history at the matched epoch
        hist = {k: res["SB"][f"hist_{k}"][np.arange(len(e)), e] for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
        row = {"run": f"SB at matched train loss (epochs {np.asarray(res['SB_matched_epoch']).tolist()})",
               "train loss": round(float(x["train_loss"].mean()), 4),
               "test loss": round(float(hist["test_loss"].mean()), 3),
               "gap (test - train loss)": stat(hist["test_loss"] - hist["train_loss"], digits=3),
               "train / test acc": f"{hist['train_acc'].mean():.3f} / {hist['test_acc'].mean():.3f}",
               "lambda_max": stat(x["lambda_max"], digits=3, significant=True)}
        for j, e in enumerate(cfg.epsilons):
            row[f"eps-sharpness ({e:g})"] = stat(x["eps_sharpness"][:, j], digits=3, significant=True)
        rows.append(row)
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    sb, lb = res["SB"], res["LB"]
    lam = lb["lambda_max"].mean() / sb["lambda_max"].mean()
    eps = lb["eps_sharpness"].mean(0) / sb["eps_sharpness"].mean(0)
    gap_sb, gap_lb = _gap(res, "SB").mean(), _gap(res, "LB").mean()
    acc_sb, acc_lb = _final(res, "SB", "test_acc"), _final(res, "LB", "test_acc")
    tl_sb, tl_lb = _final(res, "SB", "test_loss"), _final(res, "LB", "test_loss")
    (d_acc, h_acc), (d_tl, h_tl), gap_ok = _generalisation_gap(res)
    sbm = res["SB_matched"]
    lam_m = lb["lambda_max"].mean() / sbm["lambda_max"].mean()
    eps_m, (eps_geo, eps_lo, eps_hi), eps_m_ok = _matched_eps_ratio(res)
    lam_all = np.concatenate([sb["lambda_max"], lb["lambda_max"]])
    ref_all = np.concatenate([sb["lambda_ref"], lb["lambda_ref"]])
    rel = float(np.max(np.abs(lam_all - ref_all) / ref_all))
    loss_note = (f"train loss LB {lb['train_loss'].mean():.2e} vs SB {sb['train_loss'].mean():.2e}: at equal epochs the "
                 f"two minima are compared at very different training losses")
    matched_where = (f"SB taken at the end of the first epoch whose training loss is <= the highest final LB training "
                     f"loss {float(res['target_loss']):.3g} (epochs {np.asarray(res['SB_matched_epoch']).tolist()} of "
                     f"{cfg.epochs}); train loss (analysis) SB {_rounded(sbm['train_loss'], 4)} vs LB "
                     f"{_rounded(lb['train_loss'], 4)}")
    return [
        # Thresholds: ratio > 1, the direction of the paper's claim (Keskar et al. 2017, Section 2.1: sharp minima
        # have large positive Hessian eigenvalues; Table 3: epsilon-sharpness of LB > SB).
        {"name": "at equal epochs the large batch converges to a sharper minimum (lambda_max)", "value": float(lam),
         "passed": bool(lam > 1), "tolerance": "> 1",
         "claim": "LB has the larger lambda_max than SB at equal epochs (not Keskar's matched-loss comparison: the "
                  "two runs end at very different training losses)",
         "detail": f"lambda_max LB {lb['lambda_max'].mean():.3g} vs SB {sb['lambda_max'].mean():.3g} (ratio {lam:.3g} > 1; "
                   f"per seed LB {_rounded(lb['lambda_max'], 3)}, SB {_rounded(sb['lambda_max'], 3)}); "
                   f"{loss_note} (the cross-entropy Hessian shrinks with the loss, so part of the ratio is SB's lower "
                   f"loss; the matched-loss checks below are Keskar's comparison)"},
        {"name": "at equal epochs the large batch has the larger epsilon-sharpness", "value": float(eps.min()),
         "passed": bool(eps.min() > 1), "tolerance": "> 1",
         "claim": "LB has the larger epsilon-sharpness (Keskar et al. Metric 2.1) than SB at equal epochs (not "
                  "Keskar's matched-loss comparison: the two runs end at very different training losses)",
         "detail": ", ".join(f"eps={e:g}: LB {lb['eps_sharpness'][:, j].mean():.3g} vs SB {sb['eps_sharpness'][:, j].mean():.3g}"
                             for j, e in enumerate(cfg.epsilons)) + f" (min ratio {eps.min():.3g} > 1); {loss_note}"},
        {"name": "at matched training loss the large batch is still sharper (lambda_max)", "value": float(lam_m),
         "passed": bool(lam_m > 1), "paper": "LB minima sharper at similar training loss (Keskar et al. 2017)",
         "tolerance": "> 1",
         "detail": f"{matched_where}; lambda_max LB {lb['lambda_max'].mean():.3g} vs SB "
                   f"{sbm['lambda_max'].mean():.3g} (ratio {lam_m:.3g} > 1; per seed SB "
                   f"{_rounded(sbm['lambda_max'], 3)}); epsilon-sharpness at matched loss: see its own check"},
        # Keskar et al.'s own sharpness measure (their Metric 2.1) in their own comparison (minima at similar
        # training loss). Threshold from the paper: LB / SB > 1, here required of the ratio of seed means and of
        # the lower end of the 95% CI (Student t over seeds) of the paired per-seed ratio (SB and LB share each
        # seed's initialisation). Report-only because our runs do not reproduce it (quick: ratio 0.87 at
        # eps=1e-3; see the README); it is stated as failed where it fails.
        {"name": "at matched training loss the large batch is still sharper (epsilon-sharpness, Keskar et al. Metric 2.1)",
         "value": float(eps_m.min()), "passed": bool(eps_m_ok), "gating": False,
         "paper": "LB epsilon-sharpness larger than SB at similar training loss (Keskar et al. 2017, Metric 2.1, Table 3)",
         "tolerance": "> 1 (ratio of seed means, and the 95% CI of the paired per-seed ratio above 1, every epsilon)",
         "claim": "at matched training loss LB has the larger epsilon-sharpness; report-only: NOT reproduced by our "
                  "runs (the ratio reverses, below 1), so the sharper-LB finding here rests on lambda_max and on the "
                  "equal-epoch comparison",
         "detail": f"{matched_where}; " + "; ".join(
             f"eps={e:g}: LB {lb['eps_sharpness'][:, j].mean():.3g} vs SB {sbm['eps_sharpness'][:, j].mean():.3g} "
             f"(ratio of means {eps_m[j]:.3g}; paired per-seed ratio, geometric mean {eps_geo[j]:.3g}, 95% CI "
             f"{eps_lo[j]:.3g} .. {eps_hi[j]:.3g}, per seed "
             f"{_rounded(lb['eps_sharpness'][:, j] / sbm['eps_sharpness'][:, j], 3)})"
             for j, e in enumerate(cfg.epsilons))
             + ("; holds" if eps_m_ok else "; NOT reproduced: at matched training loss the epsilon-sharpness of the "
                                            "LB minimum is not larger than the SB one")},
        {"name": "large batch generalises worse (Keskar's generalisation gap)", "value": float(d_acc),
         "passed": bool(gap_ok), "gating": False, "paper": "LB test accuracy lower at similar training accuracy (Keskar et al. 2017)",
         "detail": f"paired over {cfg.seeds} seeds (SB and LB share each seed's initialisation): test accuracy SB - LB "
                   f"{d_acc:+.4f} (95% CI {d_acc - h_acc:+.4f} .. {d_acc + h_acc:+.4f}), test loss LB - SB {d_tl:+.4f} "
                   f"(95% CI {d_tl - h_tl:+.4f} .. {d_tl + h_tl:+.4f}); holds only if both CIs lie above 0. Test accuracy "
                   f"LB {acc_lb.mean():.4f} vs SB {acc_sb.mean():.4f}; train accuracy LB "
                   f"{_final(res, 'LB', 'train_acc').mean():.4f}, SB {_final(res, 'SB', 'train_acc').mean():.4f}; test - "
                   f"train loss LB {gap_lb:.3f}, SB {gap_sb:.3f}. Report-only: the full run does not reproduce it (0.2 "
                   f"points), and SB and LB end at very different training losses here, not at matched loss as in "
                   f"Keskar et al."
                   + ("" if gap_ok else " -- NOT reproduced at this scale")},
        {"name": "sharpness()'s lambda_max matches top_eigenvalues", "value": rel, "passed": bool(rel < 0.01),
         "detail": f"max relative difference {rel:.2e} (< 1%) between sharpness() (20 Lanczos steps) and top_eigenvalues "
                   f"({cfg.num_iters} steps) over all {2 * cfg.seeds} solutions"},
    ]


def _seed_lines(ax, x, ys, color, label, ls="-"):
    """Geometric mean over seeds (log axes) plus every seed as a thin line (a +-sd band breaks on log axes)."""
    ys = np.asarray(ys, float).reshape(-1, len(x))
    for y in ys:
        ax.plot(x, y, color=color, ls=ls, lw=0.6, alpha=0.3)
    ax.plot(x, np.exp(np.log(np.maximum(ys, 1e-30)).mean(0)), color=color, ls=ls, label=label)


def _matched_generalisation(res):
    """Test accuracy and test loss of SB at matched training loss (its history at the matched epoch)
    and of LB at its end, per seed, with the paired SB - LB mean and 95% CI half-width of each."""
    s = np.arange(res["SB"]["hist_test_acc"].shape[0])
    e = np.asarray(res["SB_matched_epoch"]) - 1                              # 1-based epoch -> index
    out = {}
    for k in ("test_acc", "test_loss", "train_loss"):
        sb, lb = res["SB"][f"hist_{k}"][s, e], _final(res, "LB", k)
        out[k] = (sb, lb, *(float(v) for v in cl_metrics.mean_ci(sb - lb, axis=0)))
    return out


def plot(res: dict, cfg: Config) -> dict:
    fig, axes = plotting.figure(ncols=3, nrows=2, width=3.6, height=2.9)
    colors = {"SB": "C0", "LB": "C3", "SB_matched": "C9"}
    names = {"SB": f"SB (B={cfg.small_batch}), equal epochs", "LB": f"LB (B={cfg.large_batch})",
             "SB_matched": "SB at LB's train loss (matched)"}
    matched = "SB_matched" in res
    runs = RUNS + (("SB_matched",) if matched else ())
    ax = axes[0, 0]
    a = res["interp_alpha"]
    _seed_lines(ax, a, res["interp"][:, 0], "0.2", "train loss")
    _seed_lines(ax, a, res["interp"][:, 1], "0.2", "test loss", ls="--")
    for v, r in ((0, "SB"), (1, "LB")):
        ax.axvline(v, color=colors[r], lw=1.0, ls=":")
    ax.set(xlabel="alpha  (0: SB solution, 1: LB solution)", ylabel="cross-entropy")
    ax.set_title("SB -> LB line", fontsize=9)
    plotting.log_axis(ax, "y")
    ax = axes[0, 1]
    sa = res["slice_alpha"]
    for r in runs:
        sl = res[r]["slices"]                       # [S, D, 2, A]
        _seed_lines(ax, sa, sl[:, :, 0], colors[r], "_")
        _seed_lines(ax, sa, sl[:, :, 1], colors[r], "_", ls="--")
    ax.set(xlabel="alpha (filter-normalised random direction)", ylabel="cross-entropy")
    ax.set_title("random 1-D slices", fontsize=9)
    plotting.log_axis(ax, "y")
    ax = axes[0, 2]
    x = np.arange(1 + len(cfg.epsilons))
    w = 0.8 / len(runs)
    for i, r in enumerate(runs):
        vals = [res[r]["lambda_max"]] + [res[r]["eps_sharpness"][:, j] for j in range(len(cfg.epsilons))]
        ax.bar(x + (i - (len(runs) - 1) / 2) * w, [v.mean() for v in vals], w, yerr=[v.std() for v in vals],
               color=colors[r], edgecolor=colors[r])
    ax.set_xticks(x, ["lambda_max"] + [f"eps-sharp.\n{e:g}" for e in cfg.epsilons])
    ax.set(ylabel="mean +- sd over seeds")
    ax.set_title("sharpness", fontsize=9)
    plotting.log_axis(ax, "y")
    if matched:
        sb, lb = res["SB_matched"], res["LB"]
        lam_m = lb["lambda_max"].mean() / sb["lambda_max"].mean()
        eps_m, _, eps_ok = _matched_eps_ratio(res)
        lines = [f"matched loss, LB / SB: lambda_max {lam_m:.2f} ({'> 1' if lam_m > 1 else 'NOT > 1'})",
                 "eps-sharp. " + ", ".join(f"{v:.2f}" for v in eps_m)
                 + (" (> 1)" if eps_ok else " (NOT > 1: not reproduced)")]
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * (hi / lo) ** 0.45)       # room for the two lines above the bars
        ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, ha="left", va="top", fontsize=7.5)
    ax = axes[1, 0]
    for r in RUNS:
        ep = np.arange(1, res[r]["hist_test_loss"].shape[1] + 1)
        _seed_lines(ax, ep, res[r]["hist_train_loss"], colors[r], "_")
        _seed_lines(ax, ep, res[r]["hist_test_loss"], colors[r], "_", ls="--")
    if matched:
        ax.axhline(float(res["target_loss"]), color="0.5", lw=0.8, ls=":")
        for e in np.unique(np.asarray(res["SB_matched_epoch"])):
            ax.axvline(e, color=colors["SB_matched"], lw=1.0, ls=":")
    ax.set(xlabel="epoch", ylabel="cross-entropy")
    ax.set_title("training", fontsize=9)
    plotting.log_axis(ax, "y")
    target = float(res["target_loss"]) if matched else None
    for ax, k, label in ((axes[1, 1], "test_acc", "test accuracy"), (axes[1, 2], "test_loss", "test loss")):
        shown = []
        for r in RUNS:
            xs = np.exp(np.log(res[r]["hist_train_loss"]).mean(0))
            ys = res[r][f"hist_{k}"].mean(0)
            keep = xs <= 20 * target if matched else np.ones_like(xs, bool)       # the late epochs, around the match
            ax.plot(xs[keep], ys[keep], color=colors[r], lw=1.0)
            shown.append(ys[keep])
        if matched:
            gen = _matched_generalisation(res)
            sb, lb, d, h = gen[k]
            ax.scatter(gen["train_loss"][0], sb, color=colors["SB_matched"], marker="o", s=18, zorder=4,
                       edgecolor="k", lw=0.4)
            ax.scatter(gen["train_loss"][1], lb, facecolor="none", edgecolor=colors["LB"], marker="s", s=60, zorder=3,
                       lw=1.2)
            ax.axvline(target, color="0.5", lw=0.8, ls=":")
            diff, sign = ("SB - LB", 1) if k == "test_acc" else ("LB - SB", -1)
            ax.set_title(f"{label} at matched train loss\n{diff} {sign * d:+.3f} (95% CI {sign * d - h:+.3f} .. "
                         f"{sign * d + h:+.3f})", fontsize=9)
            ys = np.concatenate(shown + [sb, lb])
            pad = 0.08 * (ys.max() - ys.min())
            ax.set_ylim(ys.min() - pad, ys.max() + pad)
        ax.set(xlabel="training loss (mean over seeds)", ylabel=label)
        plotting.log_axis(ax, "x")
        ax.invert_xaxis()
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=colors[r], lw=6) for r in runs]
    labels = [names[r] for r in runs]
    handles += [Line2D([], [], color="0.2", ls="-"), Line2D([], [], color="0.2", ls="--"),
                Line2D([], [], color="0.5", ls=":")]
    labels += ["train (thick: geometric mean, thin: seeds)", "test", "LB's final train loss"]
    plotting.panel_letters(axes)
    fig.suptitle(f"Small vs large batch: MLP {tuple(cfg.widths)} on {cfg.dataset}, {cfg.optimizer}, {cfg.epochs} "
                 f"epochs, {cfg.seeds} seeds", fontsize=10)
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.17)           # a row for the legend, above the runner's failed-check stamp
    plotting.figure_legend(fig, handles, labels, where="below", ncol=3, loc="lower center", bbox_to_anchor=(0.5, 0.0))
    return {"sharpness_batch_size": fig}
