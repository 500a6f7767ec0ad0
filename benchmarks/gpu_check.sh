#!/usr/bin/env bash
# The GPU checks of the scaling issue, as one script: the test suite with CuPy in the
# backend fixture, then the loss benchmarks.  Writes logs into $OUT when it is set.
set -uo pipefail
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
date -u
python3 -m pytest -q -p no:cacheprovider -x --ignore=tests/test_distributed.py tests 2>&1 | tee "$out/pytest_cupy.log" | tail -5
python3 benchmarks/clip_loss_floor.py --backend cupy --n 32768 --d 512 --block-size 8192 --reference --repeats 5 2>/dev/null | tee "$out/bench_32k.log"
python3 benchmarks/clip_loss_floor.py --backend cupy --n 262144 --d 512 --block-size 16384 --skip-dense --repeats 1 2>/dev/null | tee "$out/bench_262k.log"
