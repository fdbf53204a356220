"""Accuracy and speed of TrainConfig.precision on a small MNIST-1D sweep: float32 vs bf16.

MLP 40-100-100-10, Adam 1e-2, batch 100, 30 epochs, 8 seeds (same key, so the same inits and
data order); prints the final test accuracy of every seed and the steady-state sweep time.

Usage: python benchmarks/precision_accuracy.py
"""
import time, json
from lossatlas.devices import use_all_cpu_cores
use_all_cpu_cores()
import jax, numpy as np
from lossatlas import data
from lossatlas.train import TrainConfig, sweep
ds = data.load("mnist1d")
out = {}
for prec in ("float32", "bf16"):
    cfg = TrainConfig(model="mlp", model_cfg={"widths": (100, 100)}, optimizer="adam", learning_rate=1e-2,
                      batch_size=100, epochs=30, eval_train=False, precision=prec)
    t0 = time.perf_counter(); _, h = sweep(cfg, ds, seeds=8, key=jax.random.PRNGKey(0)); jax.block_until_ready(h); first = time.perf_counter() - t0
    t0 = time.perf_counter(); _, h = sweep(cfg, ds, seeds=8, key=jax.random.PRNGKey(0)); jax.block_until_ready(h); sec = time.perf_counter() - t0
    acc = np.asarray(h["test_acc"])[:, -1]; loss = np.asarray(h["test_loss"])[:, -1]
    out[prec] = {"acc_mean": float(acc.mean()), "acc_std": float(acc.std(ddof=1)), "loss_mean": float(loss.mean()), "seconds": sec, "first_s": first, "acc": acc.tolist()}
    print(prec, out[prec], flush=True)
print(json.dumps(out))
import os; print(os.getloadavg())
