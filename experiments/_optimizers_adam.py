"""optimizers, study 4: Adam's effective step on a synthetic loss with known gradient scales and noise."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import plotting

from ._optimizers_quadratic import finish


def run(cfg, key):
    scales = np.asarray(cfg.adam_scales, np.float32)
    sigmas = np.asarray(cfg.adam_sigmas, np.float32)
    s = jnp.asarray(np.repeat(scales, len(sigmas)))  # [P]: every (scale, sigma) pair
    sig = jnp.asarray(np.tile(sigmas, len(scales)))
    tx = optax.adam(cfg.adam_learning_rate)
    theta = jnp.zeros_like(s)

    def step(carry, k):
        th, st = carry
        g = s * (1.0 + sig * jax.random.normal(k, s.shape))  # gradient of sum_i g_i theta_i
        u, st = tx.update(g, st, th)
        return (optax.apply_updates(th, u), st), (g, u)

    keys = jax.random.split(key, cfg.adam_steps)
    (_, st), (g, u) = jax.jit(lambda th, ks: jax.lax.scan(step, (th, tx.init(th)), ks))(theta, keys)
    g, u = np.asarray(g)[cfg.adam_burn_in:], np.asarray(u)[cfg.adam_burn_in:]
    g_rms = np.sqrt((g ** 2).mean(0))  # the gradient history Adam's sqrt(v) tracks
    step_rel = np.abs(u).mean(0) / cfg.adam_learning_rate  # |update| / lr
    per_unit = np.abs(u).mean(0) / np.abs(g).mean(0) / cfg.adam_learning_rate  # |update| / |g| / lr
    sqrt_v = np.asarray(jnp.sqrt(st[0].nu))
    shape = (len(scales), len(sigmas))
    return {"scales": scales, "sigmas": sigmas, "g_rms": g_rms.reshape(shape), "step_rel": step_rel.reshape(shape),
            "per_unit": per_unit.reshape(shape), "sqrt_v": sqrt_v.reshape(shape),
            "g_mean_abs": np.abs(g).mean(0).reshape(shape)}


def figure(res: dict, cfg):
    """|update|/lr and the step per unit gradient against the gradient scale (``res["adam"]``)."""
    a = res["adam"]
    fig, axes = plotting.figure(ncols=2, width=3.6, height=3.0)
    markers = "osD^v"
    for j, sg in enumerate(a["sigmas"]):
        axes[0, 0].plot(a["g_rms"][:, j], a["step_rel"][:, j], markers[j % 5] + "-", color=f"C{j}", ms=5,
                        label=f"noise sigma={sg:g}")
        axes[0, 1].plot(a["g_rms"][:, j], a["per_unit"][:, j], markers[j % 5], color=f"C{j}", ms=5)
    gr = np.sort(a["g_rms"].ravel())
    axes[0, 0].plot(gr, gr, "k:", lw=0.8, label="(a) SGD: |update| / lr = |g|")
    axes[0, 0].set(xscale="log", yscale="log", xlabel="gradient RMS of the parameter (~ sqrt(v))",
                   ylabel="Adam |update| / lr", title="update size is ~lr at any scale")
    axes[0, 1].plot(gr, 1.0 / gr, "k--", lw=0.8, label="(b) 1 / sqrt(v)")
    axes[0, 1].set(xscale="log", yscale="log", xlabel="gradient RMS of the parameter (~ sqrt(v))",
                   ylabel="|update| / |g| / lr (step per unit gradient)", title="large gradients get smaller steps")
    return finish(fig, axes, ncol=3)
