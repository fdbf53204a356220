"""batch_noise's three sub-studies: (a) the noise scale through training, (b) SGD steps to a
target loss per batch size and learning rate, (c) escaping a shallow minimum of a 1-D landscape.
Each returns the arrays ``batch_noise.run`` stores; the analysis is in ``batch_noise``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import data as data_lib
from lossatlas import losses, models
from lossatlas.grads import noise_scale
from lossatlas.train import Checkpoints, TrainConfig, make_train


def _mnist(cfg):
    ds = data_lib.load("mnist1d")
    x, y = jnp.asarray(ds.x_train[:cfg.num_train]), jnp.asarray(ds.y_train[:cfg.num_train])
    model = models.get_model("mlp", widths=(cfg.width,), num_outputs=10)

    def loss_fn(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    return model, loss_fn, x, y


def _sgd(p, g, lr):
    return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g)


def noise_through_training(cfg, key):
    """SGD through ``lossatlas.train.make_train`` (shuffled epochs of ``noise_batch_size``), with the
    parameters kept every ``ckpt_every`` steps by the engine's checkpoint hook; the noise scale
    is measured at each checkpoint over the whole training subset."""
    _, loss_fn, x, y = _mnist(cfg)
    ds = data_lib.load("mnist1d").subset(num_train=cfg.num_train)
    spe = cfg.num_train // cfg.noise_batch_size
    tcfg = TrainConfig(model="mlp", model_cfg={"widths": (cfg.width,)}, optimizer="sgd",
                       learning_rate=cfg.noise_learning_rate, batch_size=cfg.noise_batch_size,
                       epochs=-(-cfg.noise_steps // spe), eval_train=False)
    _, hist = make_train(tcfg, ds, checkpoints=Checkpoints(steps=tuple(range(0, cfg.noise_steps + 1, cfg.ckpt_every))))(key)
    ckpts = jax.device_get(hist["checkpoints"]["params"])
    num = cfg.noise_steps // cfg.ckpt_every + 1
    out = {k: [] for k in ("b_simple", "snr", "grad_norm_sq", "trace_sigma", "loss")}
    full_loss = jax.jit(lambda p: loss_fn(p, (x, y)))
    for i in range(num):  # one compiled noise_scale program, called per checkpoint
        p = jax.tree_util.tree_map(lambda c: c[i], ckpts)
        ns = noise_scale(loss_fn, p, (x, y), chunk_size=250)
        for k in ("b_simple", "snr", "grad_norm_sq", "trace_sigma"):
            out[k].append(float(ns[k]))
        out["loss"].append(float(full_loss(p)))
    out = {k: np.asarray(v) for k, v in out.items()}
    out["step"] = np.arange(num) * cfg.ckpt_every
    return out


def steps_to_target(cfg, key):
    """[batch size, lr, seed] SGD steps to reach the target full training loss (NaN: never).

    The full loss is evaluated every ``eval_every`` steps; the crossing step is interpolated
    linearly in log loss between the last evaluation above the target and the first below it,
    so the count is not quantised at multiples of ``eval_every``.
    """
    model, loss_fn, x, y = _mnist(cfg)
    n = x.shape[0]
    full_loss = lambda p: loss_fn(p, (x, y))  # noqa: E731
    seed_keys = jax.random.split(key, cfg.seeds)
    out = np.full((len(cfg.batch_sizes), len(cfg.learning_rates), cfg.seeds), np.nan)
    log_t = float(np.log(cfg.target_loss))
    for bi, b in enumerate(cfg.batch_sizes):
        def one(k, lr, b=b):
            k_init, k_data = jax.random.split(k)
            p0 = model.init(k_init, x[:1])["params"]
            l0 = full_loss(p0)

            def step(p, t):
                if b == n:  # exact full-batch gradient descent
                    batch = (x, y)
                else:
                    idx = jax.random.randint(jax.random.fold_in(k_data, t), (b,), 0, n)
                    batch = (x[idx], y[idx])
                return _sgd(p, jax.grad(loss_fn)(p, batch), lr), None

            def cond(c):
                _, t, l, _ = c
                return (l > cfg.target_loss) & (t < cfg.max_steps) & (l < 3 * l0)  # NaN/blow-up stops too

            def body(c):
                p, t, l, _ = c
                p, _ = jax.lax.scan(step, p, t + jnp.arange(cfg.eval_every))
                return p, t + cfg.eval_every, full_loss(p), l

            _, t, l, l_prev = jax.lax.while_loop(cond, body, (p0, jnp.asarray(0), l0, l0))
            frac = (jnp.log(l_prev) - log_t) / jnp.maximum(jnp.log(l_prev) - jnp.log(l), 1e-12)
            t_cross = t - cfg.eval_every + cfg.eval_every * jnp.clip(frac, 0.0, 1.0)
            return jnp.where(l <= cfg.target_loss, t_cross, jnp.nan)

        prog = jax.jit(jax.vmap(one, (0, None)))
        for li, lr in enumerate(cfg.learning_rates):  # separate loops: each lr stops as soon as its seeds are done
            out[bi, li] = np.asarray(prog(seed_keys, jnp.float32(lr)))
    return out


def _landscape(cfg):
    def l0(x):
        return (-cfg.shallow_depth * jnp.exp(-x ** 2 / (2 * cfg.shallow_width ** 2))
                - cfg.deep_depth * jnp.exp(-(x - cfg.deep_center) ** 2 / (2 * cfg.deep_width ** 2))
                + cfg.wall * (x - 1.0) ** 2)
    return l0


def escape(cfg, key):
    l0 = _landscape(cfg)
    n = cfg.escape_examples
    k_xi, k_run, k_start = jax.random.split(key, 3)
    xi = jax.random.normal(k_xi, (n,))
    xi = (xi - xi.mean()) / xi.std() * cfg.tilt_std  # mean exactly 0: the full-batch loss is L0
    grad0 = jax.vmap(jax.grad(l0))

    # the narrow minimum (full-batch GD from 0) and the barrier (first maximum to its right)
    x0 = jax.jit(lambda: jax.lax.fori_loop(0, 5000, lambda _, x: x - cfg.escape_learning_rate * grad0(x), jnp.zeros(1)))()
    x0 = float(x0[0])
    grid = np.linspace(x0, cfg.deep_center, 20001)
    lg = np.asarray(l0(jnp.asarray(grid)))
    j = int(np.argmax(np.diff(lg) < 0))  # first downhill step after the climb
    barrier = float(grid[j])

    # random starts in the shallow basin, off its fixed point (clipped to stay left of the barrier)
    starts = jnp.clip(x0 + cfg.start_std * jax.random.normal(k_start, (cfg.escape_runs,)), None,
                      x0 + 0.9 * (barrier - x0))

    def sim(b, k):
        def step(x, t):
            g = grad0(x)
            if b < n:  # minibatch gradient: L0'(x) + mean of the tilts of B examples (with replacement)
                idx = jax.random.randint(jax.random.fold_in(k, t), (x.shape[0], b), 0, n)
                g = g + xi[idx].mean(axis=1)
            return x - cfg.escape_learning_rate * g, None

        x, _ = jax.lax.scan(step, starts, jnp.arange(cfg.escape_steps))
        return x

    sim = jax.jit(sim, static_argnums=0)
    finals = np.stack([np.asarray(sim(b, jax.random.fold_in(k_run, i)))
                       for i, b in enumerate(cfg.escape_batch_sizes)])
    xs = np.linspace(-2.0, cfg.deep_center + 2.5 * cfg.deep_width, 800)
    return {"final_x": finals, "escaped": (finals > barrier).mean(axis=1), "x0": np.asarray(x0),
            "start_x": np.asarray(starts),
            "barrier": np.asarray(barrier), "barrier_height": np.asarray(lg[j] - lg[0]),
            "curve_x": xs, "curve_L": np.asarray(l0(jnp.asarray(xs)))}
