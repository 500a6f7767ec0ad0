"""BLAS threads: `numclip train` with numclip's choice against every fixed thread count.

numclip limits OpenBLAS to one thread around the tiny CLIP's training loop
(numclip.threads), because its products are too small to split. This script
checks that choice on the machine it runs on, in one run:

1. where two threads start to beat one: the time of one float32 product of
   m*k*n multiply-adds with 1 thread and with every core, for growing sizes;
2. `numclip train` (defaults) in a fresh process per run, with numclip's
   choice ("numclip") and with the limit switched off and OPENBLAS_NUM_THREADS
   set to 1, 2, ... ("k threads"), taking turns within each round, once on a
   quiet machine and once beside a synthetic load (one busy process per core).

It prints wall and CPU seconds per setting (median over rounds) and the median
over rounds of numclip's wall time over the best fixed setting's in the same
round: the target is at most 1.1.

    python benchmarks/blas_threads.py [--rounds 3] [--skip-crossover] [--skip-load]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

TRAIN = ("import sys, numclip.threads as t\n"
         "if sys.argv[1] == 'off': t.SMALL_PRODUCT = 0  # never limit: OpenBLAS's own count\n"
         "from numclip.cli import main\n"
         "sys.exit(main(['train', '--quiet', '--json']))\n")


def crossover(cores: int) -> None:
    print(f"\n1. One float32 product (m, k) @ (k, n), 1 thread against {cores}")
    print(f"{'m x k x n':>22} {'multiply-adds':>14} {'1 thread':>10} {f'{cores} threads':>11} "
          f"{'ratio':>6}")
    rng = np.random.default_rng(0)
    for m, k, n in [(256, 768, 64), (256, 64, 256), (512, 768, 128), (1024, 768, 128),
                    (1024, 1024, 256), (2048, 1024, 512), (4096, 2048, 512)]:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        times = {}
        for threads in (1, cores):
            with threadpool_limits(threads, user_api="blas"):
                a @ b  # warm up
                repeats = max(3, int(2e8 / (m * k * n)))
                best = float("inf")
                for _ in range(5):
                    start = time.perf_counter()
                    for _ in range(repeats):
                        a @ b
                    best = min(best, (time.perf_counter() - start) / repeats)
                times[threads] = best
        print(f"{f'{m} x {k} x {n}':>22} {m * k * n:>14,} {times[1] * 1e3:>8.3f}ms "
              f"{times[cores] * 1e3:>9.3f}ms {times[cores] / times[1]:>6.2f}")


def run_train(setting: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `numclip train` in a fresh process."""
    env = dict(os.environ)
    env.pop("OPENBLAS_NUM_THREADS", None)
    if setting == "numclip":
        mode = "on"
    else:
        mode = "off"
        env["OPENBLAS_NUM_THREADS"] = setting.split()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", TRAIN, mode], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"numclip train failed ({setting}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def compare(settings: list[str], rounds: int, load: int) -> None:
    stop = multiprocessing.Event()
    busy = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
    for p in busy:
        p.start()
    try:
        walls = {s: [] for s in settings}
        cpus = {s: [] for s in settings}
        for _ in range(rounds):
            for s in settings:  # turns within a round: a slow spell slows all of them
                wall, cpu = run_train(s)
                walls[s].append(wall)
                cpus[s].append(cpu)
    finally:
        stop.set()
        for p in busy:
            p.join()
    print(f"{'setting':>12} {'wall (median)':>14} {'CPU (median)':>13}")
    for s in settings:
        wall, cpu = statistics.median(walls[s]), statistics.median(cpus[s])
        print(f"{s:>12} {wall:>12.2f} s {cpu:>11.2f} s")
    fixed = [s for s in settings if s != "numclip"]
    paired = [walls["numclip"][r] / min(walls[s][r] for s in fixed) for r in range(rounds)]
    print(f"numclip / best fixed setting, median of paired rounds: "
          f"{statistics.median(paired):.2f}  (rounds: {', '.join(f'{p:.2f}' for p in paired)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-crossover", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"{cores} cores; BLAS: " + "; ".join(
        f"{i['internal_api']} {i['version']} ({i['architecture']}), {i['num_threads']} threads"
        for i in blas))
    if not args.skip_crossover:
        crossover(cores)
    settings = ["numclip"] + [f"{k} thread{'s' if k > 1 else ''}" for k in range(1, cores + 1)]
    print(f"\n2. numclip train (defaults), {args.rounds} rounds, quiet machine")
    compare(settings, args.rounds, load=0)
    if not args.skip_load:
        print(f"\n3. the same beside {cores} busy processes (one per core)")
        compare(settings, args.rounds, load=cores)


if __name__ == "__main__":
    main()
