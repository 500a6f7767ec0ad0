"""The probes of issue 12 over seeds: word order, binding and relations (ARO-style), with and
without NegCLIP's hard negatives, and counting; printed as markdown tables.

1. On scenes (``numclip.scenes``, ``TrainConfig(data="scenes")``, every other setting the
   default): a bag of words (linear encoders) and the transformer encoders, each trained
   with CLIP's loss and with NegCLIP's (``hard_negatives=True``). For each run: the
   ordinary zero-shot accuracy (which two colours and two shapes, 280 classes, on seen and
   held-out compositions: ``numclip.report.scene_zero_shot``) and the relation,
   attribution and order probes (``numclip.probes``, 1,000 items each on seed + 3, ties
   counted as failures and reported).
2. Counting on the shapes data (``numclip.data``, 1 to 3 objects, the default run): the
   counting probe for the linear and the transformer encoders.

    python benchmarks/what_clip_gets_wrong.py --seeds 0 1 2          # about 20 minutes
    python benchmarks/what_clip_gets_wrong.py --seeds 0 --encoders linear   # seconds
    python benchmarks/what_clip_gets_wrong.py --seeds 0 --separation 4 30   # NegCLIP's margin

Progress (with each run's wall time) goes to stderr; stdout is the tables only (for
benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from numclip.probes import run_probes
from numclip.report import final_metrics
from numclip.train import TrainConfig, make_splits, train

PROBES = ("relation", "attribution", "order")
NAMES = {"linear": "bag of words", "transformer": "transformer"}


def scene_run(encoder: str, hard_negatives: bool, seed: int) -> dict:
    config = TrainConfig(data="scenes", encoder=encoder, hard_negatives=hard_negatives,
                         seed=seed)
    start = time.perf_counter()
    splits = make_splits(config)
    state = train(config, quiet=True, splits=splits)
    seconds = time.perf_counter() - start
    metrics = final_metrics(state, splits)
    print(f"scenes, {encoder}, hard negatives {hard_negatives}, seed {seed}: {seconds:.1f} s",
          file=sys.stderr)
    return metrics | {"seconds": seconds}


def counting_run(encoder: str, seed: int) -> dict:
    config = TrainConfig(encoder=encoder, seed=seed)
    state = train(config, quiet=True)
    result = run_probes(state.model, state.vocab, ("counting",), n=1000, seed=seed + 3)
    print(f"shapes, {encoder}, seed {seed}: counting {result['counting'].accuracy:.3f}",
          file=sys.stderr)
    return {"accuracy": result["counting"].accuracy, "ties": result["counting"].ties}


def separation(epochs: int, seed: int, hard_negatives: bool) -> str:
    """Why NegCLIP may not help: after ``epochs`` of the transformer on scenes (CLIP's loss,
    or NegCLIP's), how often a training image's own caption outscores its own hard
    negative, and how alike the two captions' embeddings are."""
    import numpy as np

    config = TrainConfig(data="scenes", encoder="transformer", hard_negatives=hard_negatives,
                         epochs=epochs, seed=seed)
    splits = make_splits(config)
    state = train(config, quiet=True, splits=splits)
    model, pairs, n = state.model, splits["train"], 2000
    images = model.encode_images(pairs.pixels()[:n])
    captions = model.encode_texts(model.text_inputs(state.vocab, pairs.captions[:n]))
    negatives = model.encode_texts(model.text_inputs(state.vocab, pairs.negatives[:n]))
    wins = np.mean(np.sum(images * captions, 1) > np.sum(images * negatives, 1))
    alike = np.mean(np.sum(captions * negatives, 1))
    probes = run_probes(model, state.vocab, PROBES, n=1000, seed=seed + 3)
    loss = "NegCLIP" if hard_negatives else "CLIP"
    return (f"transformer + {loss}, {epochs} epochs, seed {seed}: on {n} training pairs "
            f"the caption beats its own negative for {wins:.3f} of the images; mean cosine "
            f"of caption and negative {alike:.4f}; probes "
            + ", ".join(f"{p} {r.accuracy:.3f}" for p, r in probes.items()))


def spread(values) -> str:
    """``mean ± sd (min-max)`` of the seeds' values, or the one value."""
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return (f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} "
            f"({min(values):.3f}-{max(values):.3f})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--encoders", nargs="+", choices=list(NAMES), default=list(NAMES))
    parser.add_argument("--skip-counting", action="store_true")
    parser.add_argument("--separation", type=int, nargs="+", metavar="EPOCHS",
                        help="only this: how far CLIP and NegCLIP separate captions from "
                             "their negatives after each number of epochs (first seed)")
    args = parser.parse_args(argv)
    if args.separation:
        for epochs in args.separation:
            for hard in (False, True):
                print(separation(epochs, args.seeds[0], hard))
        return

    runs = {(e, h): [scene_run(e, h, s) for s in args.seeds]
            for e in args.encoders for h in (False, True)}
    print(f"Scenes, {len(args.seeds)} seed(s) ({', '.join(map(str, args.seeds))}): mean ± sd "
          "(min-max); probes of 1,000 items, ties count as failures (chance: relation and "
          "attribution 0.5, order 0.2); zero-shot among 280 classes (chance 0.004)\n")
    print("| text encoder | loss | zero-shot, seen | zero-shot, held-out | relation | "
          "attribution | order | ties (rel/attr/order, per seed) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (encoder, hard), ms in runs.items():
        ties = "; ".join("/".join(str(m[f"probe_{p}_ties"]) for p in PROBES) for m in ms)
        print(f"| {NAMES[encoder]} | {'NegCLIP' if hard else 'CLIP'} | "
              f"{spread(m['zero_shot_seen'] for m in ms)} | "
              f"{spread(m['zero_shot_heldout'] for m in ms)} | "
              + " | ".join(spread(m[f"probe_{p}"] for m in ms) for p in PROBES)
              + f" | {ties} |")
    if args.skip_counting:
        return
    counts = {e: [counting_run(e, s) for s in args.seeds] for e in args.encoders}
    print(f"\nCounting on the shapes data (the default run), {len(args.seeds)} seed(s): the "
          "counting probe, 1,000 items, chance 1/3\n")
    print("| encoders | counting probe | ties (per seed) |")
    print("| --- | --- | --- |")
    for encoder, rs in counts.items():
        print(f"| {encoder} | {spread(r['accuracy'] for r in rs)} | "
              f"{'; '.join(str(r['ties']) for r in rs)} |")


if __name__ == "__main__":
    main()
