"""The modality gap of the tiny CLIP, measured as Liang et al. (NeurIPS 2022) measure it.

"Mind the Gap" claims: (1) random nonlinear encoders already put their inputs in a
narrow cone, linear ones show little of it (the cone effect); (2) contrastive training
keeps the two modalities apart, and at tau = 1/100 the trained gap sits near a minimum
of the loss, so that closing it raises the loss, while at higher tau closing it lowers
the loss.  This script prints, as markdown tables for benchmarks/README.md:

1. at initialisation (random weights), per encoder: the cone of the inputs (pixels,
   bag-of-words captions; a random linear map keeps their cosines on average, so its
   output cone is about its input's), the image and text cones, and the gap distance;
2. after training with the temperature learned (as CLIP) or held fixed at each tau:
   the trained tau, zero-shot top-1 on seen compositions (singular prompts), the gap
   distance, the cones, and where along the gap the loss is lowest (lam = 0: the trained
   gap, 1: closed);
3. the loss curve of each trained model at its own temperature, as L(lam) - L(0)
   (positive: shifting that far raises the loss);
4. the paper's own protocol (Figure 3, plot_optimization_exp.ipynb in their code): the
   model trained with a learned temperature, its curve read at tau = 1/100 ... 1.

Each cell is the mean +- standard deviation over the seeds (argmin: one per seed).  The
gap and cones are measured on `--pairs` image-caption pairs of seen compositions drawn
apart from the training set; the loss is scored in batches of `--loss-batch` (the
training batch by default), with the gap measured over all pairs (numclip.gap).

The full measurement (every encoder, 3 seeds, 10 epochs; the transformer runs take
most of the time):

    python benchmarks/modality_gap.py --seeds 0 1 2 --epochs 10 \
        --encoders linear transformer

A quick check (seconds): python benchmarks/modality_gap.py --encoders linear --epochs 2 --seeds 0
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from numclip.data import make_dataset
from numclip.gap import gap_shift_losses, modality_gap
from numclip.report import evaluate
from numclip.train import TrainConfig, blas_threads, make_splits, new_state, train
from numclip.zeroshot import PROMPT_TEMPLATES

LAMS = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
READ_AT = [1 / 100, 1 / 50, 1 / 30, 1 / 20, 1 / 10, 1.0]  # the paper's logit scales 100 ... 1


def main():
    args = parse_args()
    rows = {"init": {}, "trained": {}, "paper": {}}
    for seed in args.seeds:
        splits = make_splits(TrainConfig(seed=seed))  # the same for every encoder and tau
        pairs = make_dataset(args.pairs, seed=seed + 1, compositions="seen")  # seen test seed
        for encoder in args.encoders:
            init = new_state(TrainConfig(seed=seed, encoder=encoder), splits["train"])
            rows["init"].setdefault(encoder, []).append(at_init(init, pairs))
            for tau in args.temperatures:
                start = time.perf_counter()
                config = TrainConfig(seed=seed, encoder=encoder, epochs=args.epochs,
                                     temperature=tau)
                with blas_threads(config):  # as `numclip train` runs it
                    state = train(config, quiet=True, splits=splits)
                    rows["trained"].setdefault((encoder, tau), []).append(
                        after_training(state, splits, pairs, args.loss_batch))
                    if tau is None:
                        rows["paper"].setdefault(encoder, []).append(
                            paper_protocol(state, pairs, args.loss_batch))
                print(f"seed {seed}, {encoder}, tau {tau or 'learned'}: "
                      f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print_tables(rows, args)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--encoders", nargs="+", default=["linear", "transformer"],
                        choices=["linear", "transformer"])
    parser.add_argument("--temperatures", nargs="+", default=["learned", "0.01", "0.07", "1"],
                        help="'learned' (as CLIP) or a tau held fixed during training")
    parser.add_argument("--pairs", type=int, default=512,
                        help="image-caption pairs the gap, cones and losses are measured on")
    parser.add_argument("--loss-batch", type=int, default=TrainConfig().batch_size,
                        help="batch the loss is scored in; must divide --pairs")
    args = parser.parse_args()
    args.temperatures = [None if t == "learned" else float(t) for t in args.temperatures]
    if args.pairs % args.loss_batch:
        parser.error(f"--loss-batch ({args.loss_batch}) must divide --pairs ({args.pairs})")
    return args


def embed(state, pairs):
    """Unit image and text embeddings of the pairs, float32."""
    model = state.model
    return (model.encode_images(pairs.pixels()),
            model.encode_texts(model.text_inputs(state.vocab, pairs.captions)))


def cone(x) -> float:
    """The mean cosine of two distinct rows of ``x``."""
    return float(modality_gap(x, x).image_cone)


def at_init(state, pairs) -> dict:
    g = modality_gap(*embed(state, pairs))
    return {"pixels": cone(pairs.pixels()),
            "words": cone(state.vocab.features(pairs.captions).astype(np.float32)),
            "image": float(g.image_cone), "text": float(g.text_cone),
            "gap": float(g.distance)}


def curve(image, text, logit_scale, loss_batch) -> np.ndarray:
    """L(lam) - L(0) over LAMS, and L(0)."""
    losses = np.asarray(gap_shift_losses(image, text, logit_scale, LAMS, batch_size=loss_batch),
                        dtype=np.float64)
    return losses - losses[LAMS.index(0.0)], losses[LAMS.index(0.0)]


def after_training(state, splits, pairs, loss_batch) -> dict:
    image, text = embed(state, pairs)
    g = modality_gap(image, text)
    logit_scale = float(state.model.params["logit_scale"])
    rise, at_zero = curve(image, text, logit_scale, loss_batch)
    # the singular prompts (PROMPT_TEMPLATES), as the table in benchmarks/README.md was
    # measured before the default prompts named every count
    zero_shot = evaluate(state, splits, PROMPT_TEMPLATES, top_k=(1,))["seen"][1]
    return {"tau": math.exp(-logit_scale), "zero_shot": zero_shot,
            "gap": float(g.distance), "image": float(g.image_cone), "text": float(g.text_cone),
            "argmin": LAMS[int(np.argmin(rise))], "loss": at_zero, "closed": rise[LAMS.index(1.0)],
            "curve": rise}


def paper_protocol(state, pairs, loss_batch) -> dict:
    """The learned-tau model's curve read at each tau of READ_AT (its embeddings fixed)."""
    image, text = embed(state, pairs)
    out = {}
    for tau in READ_AT:
        rise, _ = curve(image, text, math.log(1 / tau), loss_batch)
        out[tau] = {"argmin": LAMS[int(np.argmin(rise))], "closed": rise[LAMS.index(1.0)]}
    return out


def stat(values, digits=3) -> str:
    """mean +- sd over the seeds (the value alone for one seed)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def per_seed(values) -> str:
    return " / ".join(f"{v:g}" for v in values)


def table(header, lines):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")
    print()


def tau_name(tau) -> str:
    return "learned" if tau is None else f"{tau:g}"


def print_tables(rows, args):
    seeds = ", ".join(map(str, args.seeds))
    print(f"Seeds {seeds}; {args.epochs} epochs; {args.pairs} pairs of seen compositions; "
          f"loss in batches of {args.loss_batch}; lam = 1 closes the gap.\n")
    print("**At initialisation** (random weights): mean cosine of two distinct rows.\n")
    table(["encoder", "pixels' cone", "captions' cone (bag of words)", "image cone",
           "text cone", "gap distance"],
          [[e, *(stat([r[k] for r in rs]) for k in ("pixels", "words", "image", "text", "gap"))]
           for e, rs in rows["init"].items()])
    print("**After training**, the loss read at the model's own temperature.\n")
    table(["encoder", "tau (training)", "tau (end)", "zero-shot seen (singular prompts)",
           "gap distance", "image cone", "text cone", "argmin lam (per seed)", "L(0)",
           "L(1) - L(0)"],
          [[e, tau_name(t), stat([r["tau"] for r in rs], 4), stat([r["zero_shot"] for r in rs]),
            *(stat([r[k] for r in rs]) for k in ("gap", "image", "text")),
            per_seed([r["argmin"] for r in rs]), stat([r["loss"] for r in rs]),
            stat([r["closed"] for r in rs])] for (e, t), rs in rows["trained"].items()])
    print("**The loss along the gap**, L(lam) - L(0), mean over the seeds.\n")
    table(["encoder", "tau (training)", *(f"{lam:g}" for lam in LAMS)],
          [[e, tau_name(t), *(f"{v:+.3f}" for v in np.mean([r["curve"] for r in rs], axis=0))]
           for (e, t), rs in rows["trained"].items()])
    if rows["paper"]:
        print("**The paper's protocol**: the learned-tau model, its loss read at each tau.\n")
        table(["encoder", "read at tau", "argmin lam (per seed)", "L(1) - L(0)"],
              [[e, f"1/{round(1 / tau)}" if tau < 1 else "1",
                per_seed([r[tau]["argmin"] for r in rs]), stat([r[tau]["closed"] for r in rs])]
               for e, rs in rows["paper"].items() for tau in READ_AT])


if __name__ == "__main__":
    main()
