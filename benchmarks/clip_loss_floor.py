"""Time clip_loss (forward + backward) against the three-matrix-product floor.

Any exact forward+backward of the symmetric loss needs three N x N x d matrix
products: the logits S = I T^T, then dI = G T and dT = G^T I.  This script
times those three products, numclip's clip_loss, and (where torch is
installed) torch autograd on open_clip's ClipLoss formula, all in one run, and
prints each as a ratio to the floor.

    python benchmarks/clip_loss_floor.py --n 8192 --d 512            # NumPy, CPU
    python benchmarks/clip_loss_floor.py --backend cupy --n 32768    # CuPy, GPU
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import numclip


def timed(fn, sync, repeats):
    """Best wall time of ``repeats`` calls after one warm-up call."""
    fn()
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    if args.backend == "cupy":
        import cupy as xp

        def sync():
            xp.cuda.Device().synchronize()
        device = xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    else:
        xp, device = np, "CPU"

        def sync():
            pass

    rng = np.random.default_rng(0)
    host_img = rng.standard_normal((args.n, args.d), dtype=np.float32)
    host_txt = rng.standard_normal((args.n, args.d), dtype=np.float32)
    img, txt = xp.asarray(host_img), xp.asarray(host_txt)
    img, _ = numclip.l2_normalize(img)
    txt, _ = numclip.l2_normalize(txt)
    s = math.log(1 / 0.07)

    def floor():
        logits = img @ txt.T  # (N, N)
        _ = logits @ txt  # stands in for G @ T
        _ = logits.T @ img  # stands in for G.T @ I

    rows = [("three matrix products (floor)", timed(floor, sync, args.repeats))]
    rows.append(("numclip.clip_loss", timed(lambda: numclip.clip_loss(img, txt, s), sync,
                                             args.repeats)))
    try:
        import torch
        import torch.nn.functional as F

        dev = "cuda" if args.backend == "cupy" else "cpu"
        timg = torch.tensor(host_img, device=dev, requires_grad=True)
        ttxt = torch.tensor(host_txt, device=dev, requires_grad=True)
        tscale = torch.tensor(s, device=dev, requires_grad=True)
        labels = torch.arange(args.n, device=dev)

        def torch_step():
            i, t = F.normalize(timg, dim=-1), F.normalize(ttxt, dim=-1)
            logits = tscale.exp() * i @ t.T
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            loss.backward()

        def torch_sync():
            if dev == "cuda":
                torch.cuda.synchronize()
        rows.append(("torch autograd (open_clip formula)", timed(torch_step, torch_sync,
                                                               args.repeats)))
    except ImportError:
        rows.append(("torch autograd (open_clip formula)", None))

    print(f"N = {args.n}, d = {args.d}, float32, backend {args.backend} on {device}")
    floor_time = rows[0][1]
    for name, seconds in rows:
        if seconds is None:
            print(f"  {name:<36} not installed")
        else:
            print(f"  {name:<36} {seconds * 1e3:9.1f} ms  {seconds / floor_time:5.2f}x floor")


if __name__ == "__main__":
    main()
