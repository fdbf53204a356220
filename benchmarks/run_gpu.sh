#!/usr/bin/env bash
# One-shot GPU check: throughput benchmark, run_all.py --mode gpu, the full MNIST-1D table, and the engine tests on the GPU.
# Usage: OUT=/some/dir bash benchmarks/run_gpu.sh   (expects jax with CUDA; installs wheels from .whl/ if present)
set -uo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/tmp/install.log 2>&1 || { echo "editable install failed"; tail -5 /tmp/install.log; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
echo "== throughput"
timeout ${BENCH_TIMEOUT:-240} python3 benchmarks/train_throughput.py --seeds 16 256 4096 --epochs 20 \
  --out "$OUT/train_throughput_gpu.json" 2>&1 | tee "$OUT/bench.log"
echo "== every benchmark against its peer (GPU sizes and targets)"
# (about 5 minutes expected, unmeasured; JSON and table are rewritten after every section, so a
#  timeout keeps the finished ones; RUN_ALL_SECTIONS="training curvature" runs a subset)
timeout ${SUITE_TIMEOUT:-420} python3 benchmarks/run_all.py --mode gpu --out "$OUT/run_all" \
  --sections ${RUN_ALL_SECTIONS:-training curvature landscape continual saddles} 2>&1 | tail -40 | tee "$OUT/run_all.log"
echo "== full MNIST-1D table"
timeout ${TABLE_TIMEOUT:-200} python3 -m lossatlas_experiments run mnist1d_benchmark --out /tmp/gpu_runs 2>&1 | tail -25 | tee "$OUT/table.log"
for f in /tmp/gpu_runs/mnist1d_benchmark/*/{mnist1d_benchmark.png,arrays.npz}; do [ -f "$f" ] && cp "$f" "$OUT/"; done
echo "== engine tests on GPU"
timeout ${TEST_TIMEOUT:-120} python3 -m pytest -q -x -p no:cacheprovider tests/test_train.py 2>&1 | tail -15 | tee "$OUT/tests.log"
