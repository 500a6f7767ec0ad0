"""Speed and quality of `numclip train` with its defaults, over several seeds.

Prints, per encoder, loss and seed: wall time of the whole run (data, training,
evaluation), zero-shot top-1 on seen and on held-out compositions (40-way) with
the default prompts (every count) and with PROMPT_TEMPLATES alone (in the singular),
zero-shot counting (3-way),
the linear probe; then how held-out accuracy moves with the number of epochs
(from the run's own per-epoch history, with a longer run).

    python benchmarks/train_tiny_clip.py [--seeds 0 1 2] [--long-epochs 30]
    python benchmarks/train_tiny_clip.py --encoders linear transformer --losses clip \
        --long-epochs 0
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from numclip.report import final_metrics
from numclip.train import TrainConfig, blas_threads, make_splits, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--long-epochs", type=int, default=30)
    parser.add_argument("--losses", nargs="+", default=["clip", "siglip"],
                        help="train with each of these losses, to compare them")
    parser.add_argument("--encoders", nargs="+", default=["linear"],
                        help="train with each of these encoders, to compare them")
    args = parser.parse_args()

    print(f"defaults: {TrainConfig()}")
    print(f"{'encoder':>11} {'loss':>6} {'seed':>4} {'seconds':>8} {'seen':>6} {'heldout':>7} "
          f"{'seen*':>6} {'heldout*':>8} {'count':>6} {'probe':>6}   (* singular prompts)")
    runs = [(e, loss, seed) for e in args.encoders for loss in args.losses for seed in args.seeds]
    for encoder, loss, seed in runs:
        start = time.perf_counter()
        config = TrainConfig(seed=seed, loss=loss, encoder=encoder)
        with blas_threads(config):  # as `numclip train` runs it
            splits = make_splits(config)
            state = train(config, quiet=True, splits=splits)
            m = final_metrics(state, splits)
        seconds = time.perf_counter() - start
        print(f"{encoder:>11} {loss:>6} {seed:>4} {seconds:>8.2f} {m['zero_shot_seen']:>6.3f} "
              f"{m['zero_shot_heldout']:>7.3f} {m['zero_shot_seen_singular']:>6.3f} "
              f"{m['zero_shot_heldout_singular']:>8.3f} {m['zero_shot_counting']:>6.3f} "
              f"{m['linear_probe']:>6.3f}", flush=True)

    if args.long_epochs < 1:
        return
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
