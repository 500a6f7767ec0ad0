"""Speed and quality of `numclip train` with its defaults, over several seeds.

Prints, per seed: wall time of the whole run (data, training, evaluation),
zero-shot top-1 on seen and on held-out compositions (40-way), the linear
probe and chance; then how held-out accuracy moves with the number of epochs
(from the run's own per-epoch history, with a longer run).

    python benchmarks/train_tiny_clip.py [--seeds 0 1 2] [--long-epochs 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from numclip.report import final_metrics
from numclip.train import TrainConfig, make_splits, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--long-epochs", type=int, default=30)
    parser.add_argument("--losses", nargs="+", default=["clip", "siglip"],
                        help="train with each of these losses, to compare them")
    args = parser.parse_args()

    print(f"defaults: {TrainConfig()}")
    print(f"{'loss':>6} {'seed':>4} {'seconds':>8} {'seen':>7} {'heldout':>8} {'probe':>7} "
          f"{'chance':>7} {'heldout/chance':>15}")
    for loss, seed in [(loss, seed) for loss in args.losses for seed in args.seeds]:
        start = time.perf_counter()
        config = TrainConfig(seed=seed, loss=loss)
        splits = make_splits(config)
        state = train(config, quiet=True, splits=splits)
        m = final_metrics(state, splits)
        seconds = time.perf_counter() - start
        print(f"{loss:>6} {seed:>4} {seconds:>8.2f} {m['zero_shot_seen']:>7.3f} "
              f"{m['zero_shot_heldout']:>8.3f} {m['linear_probe']:>7.3f} {m['chance']:>7.3f} "
              f"{m['zero_shot_heldout'] / m['chance']:>14.1f}x")

    config = dataclasses.replace(TrainConfig(), epochs=args.long_epochs)
    h = train(config, quiet=True).history
    print(f"\nzero-shot top-1 by epoch (seed 0, {args.long_epochs} epochs):")
    print(f"{'epoch':>5} {'seen':>7} {'heldout':>8} {'scale':>7}")
    for e in sorted({1, 2, 3, 5, 7, 10, 15, 20, 25, args.long_epochs}):
        if e <= args.long_epochs:
            print(f"{e:>5} {h['zero_shot_seen'][e - 1]:>7.3f} "
                  f"{h['zero_shot_heldout'][e - 1]:>8.3f} {h['scale'][e - 1]:>7.1f}")


if __name__ == "__main__":
    main()
