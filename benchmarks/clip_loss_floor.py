"""Time clip_loss (forward + backward) against the three-matrix-product floor.

Any exact forward+backward of the symmetric loss needs three N x N x d matrix
products: the logits S = I T^T, then dI = G T and dT = G^T I.  This script
times those three products, numclip's clip_loss (dense, and blockwise with
--block-size), and torch autograd on open_clip's ClipLoss formula where torch
is installed, all in one run, and prints each as a ratio to the floor (best
over best, and the median over rounds of paired ratios), with the peak memory
each one allocated.

    python benchmarks/clip_loss_floor.py --n 8192 --d 512 --repeats 10       # NumPy, CPU
    python benchmarks/clip_loss_floor.py --n 32768 --block-size 8192 --skip-dense
    python benchmarks/clip_loss_floor.py --backend cupy --n 32768 --block-size 8192
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc

import numpy as np
from tqdm import tqdm

import numclip
import numclip.losses


class Backend:
    """The array library, how to wait for it, and how to measure its peak memory."""

    def __init__(self, name):
        if name == "cupy":
            import cupy

            self.xp, self.pool = cupy, cupy.get_default_memory_pool()
            self.device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        else:
            self.xp, self.pool, self.device = np, None, "CPU"

    def sync(self):
        if self.pool is not None:
            self.xp.cuda.Device().synchronize()

    def peak_bytes(self, fn):
        """Bytes allocated at the peak of one call of ``fn`` (beyond what was held before)."""
        if self.pool is not None:
            self.pool.free_all_blocks()
            before = self.pool.total_bytes()
            fn()
            self.sync()
            return self.pool.total_bytes() - before  # the pool keeps every block it needed
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak


def timed_rounds(fns, sync, repeats):
    """Wall times of each of ``fns`` in ``repeats`` rounds, after one warm-up round.

    The functions take turns within each round, so a slow spell on a shared
    machine slows all of them, not only the one that happened to be running.
    Returns one list of times per function, one time per round.
    """
    times = [[] for _ in fns]
    with tqdm(total=(repeats + 1) * len(fns), unit="call", file=sys.stderr) as progress:
        for round_ in range(repeats + 1):
            for k, (name, fn) in enumerate(fns):
                progress.set_postfix_str(name)
                start = time.perf_counter()
                fn()
                sync()
                if round_:  # round 0 warms up
                    times[k].append(time.perf_counter() - start)
                progress.update()
    return times


def floor_fn(xp, img, txt, block_size):
    """The three products, on the whole matrix or panel by panel (never more at once).

    Each product writes into memory allocated once per call, as the loss does
    with its panel buffer, so neither pays for fresh pages panel after panel.
    """
    n, d = img.shape
    step = min(block_size or n, n)

    def run():
        s = xp.empty((step, n), dtype=img.dtype)  # (B, N) the logits of one panel
        di, dt = xp.empty((step, d), dtype=img.dtype), xp.empty((n, d), dtype=img.dtype)
        for a in range(0, n, step):
            b = min(a + step, n)
            panel = xp.matmul(img[a:b], txt.T, out=s[:b - a])  # the logits
            xp.matmul(panel, txt, out=di[:b - a])  # stands in for dI = G T
            xp.matmul(panel.T, img[a:b], out=dt)  # stands in for dT = G^T I
    return run


def torch_fn(host_img, host_txt, s, on_gpu):
    import torch
    import torch.nn.functional as F

    dev = "cuda" if on_gpu else "cpu"
    timg = torch.tensor(host_img, device=dev, requires_grad=True)
    ttxt = torch.tensor(host_txt, device=dev, requires_grad=True)
    tscale = torch.tensor(s, device=dev, requires_grad=True)
    labels = torch.arange(len(host_img), device=dev)

    def run():
        i, t = F.normalize(timg, dim=-1), F.normalize(ttxt, dim=-1)
        logits = tscale.exp() * i @ t.T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        loss.backward()

    def sync():
        if on_gpu:
            torch.cuda.synchronize()
    return run, sync, torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=None,
                        help="also time the blockwise loss with this many rows per panel")
    parser.add_argument("--skip-dense", action="store_true",
                        help="no dense loss and no torch (for N whose N x N matrix won't fit)")
    parser.add_argument("--reference", action="store_true",
                        help="also time clip_loss_reference, the step-by-step composition")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    be = Backend(args.backend)
    rng = np.random.default_rng(0)
    host_img = rng.standard_normal((args.n, args.d), dtype=np.float32)
    host_txt = rng.standard_normal((args.n, args.d), dtype=np.float32)
    img, txt = be.xp.asarray(host_img), be.xp.asarray(host_txt)
    unit_img, unit_txt = numclip.l2_normalize(img)[0], numclip.l2_normalize(txt)[0]
    s = math.log(1 / 0.07)

    floor_block = args.block_size if args.skip_dense else None
    runs = [("three matrix products (floor)", floor_fn(be.xp, unit_img, unit_txt, floor_block))]
    if not args.skip_dense:
        runs.append(("numclip.clip_loss (dense)", lambda: numclip.clip_loss(img, txt, s)))
    if args.reference:
        runs.append(("numclip.clip_loss_reference (composed)",
                     lambda: numclip.losses.clip_loss_reference(img, txt, s)))
    if args.block_size:
        runs.append((f"numclip.clip_loss (block_size={args.block_size})",
                     lambda: numclip.clip_loss(img, txt, s, block_size=args.block_size)))
    torch_run = None
    if not args.skip_dense:
        try:
            torch_call, torch_sync, torch = torch_fn(host_img, host_txt, s,
                                                     args.backend == "cupy")
            torch_run = len(runs)
            runs.append(("torch autograd (open_clip formula)",
                         lambda: (torch_call(), torch_sync())))
        except ImportError:
            pass
    times = timed_rounds(runs, be.sync, args.repeats)
    rows = []  # (name, seconds, peak bytes or None)
    for k, (name, fn) in enumerate(runs):
        peak = None
        if k == torch_run:
            if args.backend == "cupy":
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                fn()
                peak = torch.cuda.max_memory_allocated() - base
        elif k > 0:
            peak = be.peak_bytes(fn)
        rows.append((name, times[k], peak))
    if not args.skip_dense and torch_run is None:
        rows.append(("torch autograd (open_clip formula)", None, None))

    print(f"N = {args.n}, d = {args.d}, float32, {args.backend} on {be.device}, "
          f"{args.repeats} rounds")
    print(f"  {'':<40} {'best':>10}     {'best/best':>9}  {'median of rounds':>16}")
    floor_times = rows[0][1]
    for name, seconds, peak in rows:
        if seconds is None:
            print(f"  {name:<40} not installed")
            continue
        # each round's time over the floor's in the same round: robust to slow spells
        paired = statistics.median(t / f for t, f in zip(seconds, floor_times, strict=True))
        memory = "" if peak is None else f"  peak {peak / 2**30:6.2f} GiB"
        print(f"  {name:<40} {min(seconds) * 1e3:10.1f} ms  {min(seconds) / min(floor_times):6.2f}x"
              f"  {paired:13.2f}x floor{memory}")


if __name__ == "__main__":
    main()
