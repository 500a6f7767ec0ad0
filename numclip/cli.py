"""The ``numclip`` command.

``numclip example`` walks through the course page's worked example with the
page's printed value beside numclip's at every step; ``numclip train`` trains
the tiny CLIP and reports zero-shot accuracy; ``numclip zeroshot`` evaluates
a saved checkpoint with chosen prompt templates.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from numclip import worked_example as we

OK, BAD = "ok", "XX"  # ASCII marks: they survive any terminal encoding


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not a usage block."""

    def error(self, message):
        self.exit(2, f"numclip: error: {message} (see 'numclip --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="numclip", description="CLIP from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    example = sub.add_parser("example", help="walk through the course page's worked example")
    example.add_argument("--normalized", action="store_true",
                         help="L2-normalize the embeddings first, as CLIP does")
    example.add_argument("--json", action="store_true",
                         help="print every intermediate and the errata as JSON")

    train = sub.add_parser("train", help="train the tiny linear CLIP on synthetic shapes")
    # None means "not given": a resumed run takes the checkpoint's value instead
    train.add_argument("--epochs", type=_positive_int, help="total epochs (default 10)")
    train.add_argument("--batch-size", type=_positive_int, help="pairs per step (default 256)")
    train.add_argument("--embed-dim", type=_positive_int, help="embedding width (default 64)")
    train.add_argument("--lr", type=_positive_float, help="AdamW step size (default 3e-3)")
    train.add_argument("--seed", type=int, help="seed for data, weights and shuffles (default 0)")
    train.add_argument("--loss", choices=["clip", "siglip"],
                       help="CLIP's softmax loss (default) or SigLIP's sigmoid loss")
    train.add_argument("--out", metavar="CKPT", help="save a checkpoint (.npz) after each epoch")
    train.add_argument("--resume", metavar="CKPT", help="continue a saved run up to --epochs")
    train.add_argument("--plots", metavar="DIR", help="write the figures (PNG) into DIR")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--distributed", action="store_true",
                       help="share each batch among the ranks of mpiexec (needs numclip[mpi])")
    train.add_argument("--json", action="store_true",
                       help="end with the metrics as one line of JSON")

    zeroshot = sub.add_parser("zeroshot", help="evaluate a checkpoint by zero-shot prompts")
    zeroshot.add_argument("checkpoint", metavar="CKPT")
    zeroshot.add_argument("--template", action="append", metavar="T",
                          help="prompt template with {} for the class name; repeat to ensemble")
    zeroshot.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    command = {"example": _cmd_example, "train": _cmd_train, "zeroshot": _cmd_zeroshot}
    try:
        return command[args.command](args)
    except KeyboardInterrupt:
        print("numclip: interrupted (the last checkpoint written is intact)", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as err:  # CheckpointError is a ValueError
        print(f"numclip: error: {err}", file=sys.stderr)
        return 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _cmd_example(args) -> int:
    result = we.compute(normalized=args.normalized)
    if args.json:
        print(json.dumps(we.to_json(result), indent=2))
    else:
        print(walkthrough(result))
    return 0


def _cmd_train(args) -> int:
    if not args.distributed:
        return _train(args, None)
    from numclip import distributed

    comm = distributed.world()  # ImportError with an install hint without mpi4py
    with distributed.abort_on_error(comm):  # one failing rank ends them all
        return _train(args, comm)


def _train(args, comm) -> int:
    from numclip import train as tr  # imported here: `numclip example` stays fast
    from numclip.report import final_metrics, write_plots

    given = {"epochs": args.epochs, "batch_size": args.batch_size,
             "embed_dim": args.embed_dim, "lr": args.lr, "seed": args.seed, "loss": args.loss}
    given = {k: v for k, v in given.items() if v is not None}
    if args.resume:
        saved = tr.load_checkpoint(args.resume).config
        config = tr.TrainConfig(**(dataclasses.asdict(saved) | given))
    else:
        config = tr.TrainConfig(**given)
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    splits = tr.make_splits(config)
    state = tr.train(config, resume=args.resume, out=args.out, quiet=args.quiet, splits=splits,
                     comm=comm)
    if comm is not None and comm.Get_rank() != 0:
        return 0  # every rank holds the same model; rank 0 reports it
    metrics = final_metrics(state, splits)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    if args.plots:
        initial = tr.new_state(config, splits["train"]).model
        metrics["plots"] = [str(p) for p in write_plots(state, splits, args.plots, initial)]
    _report(metrics, args.json)
    return 0


def _cmd_zeroshot(args) -> int:
    from numclip import train as tr
    from numclip.report import final_metrics

    state = tr.load_checkpoint(args.checkpoint)
    splits = tr.make_splits(state.config)
    metrics = final_metrics(state, splits, templates=args.template)
    _report(metrics, args.json)
    return 0


def _report(metrics: dict, as_json: bool) -> None:
    """Metrics as an aligned table, or as one line of JSON (the last line of stdout)."""
    if as_json:
        print(json.dumps(metrics))
        return
    for key, value in metrics.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        print(f"{key:<28} {value}")


def _fmt(v: float) -> str:
    return f"{v:.8g}"  # enough digits to see both the rounding and the truncation


def walkthrough(result: dict) -> str:
    """The step-by-step text of ``numclip example``."""
    with np.printoptions(precision=4, suppress=True):  # local: never change the caller's
        return _walkthrough(result)


def _walkthrough(result: dict) -> str:
    lines = []
    say = lines.append
    normalized = result["normalized"]
    say("The course page's worked example, recomputed by numclip (float64)")
    say("=" * 66)
    if normalized:
        say("Variant: embeddings L2-normalized first, as CLIP does. The 'raw' column")
        say("is numclip's value for the page's unnormalized vectors, for comparison.")
    else:
        say(f"Each printed number of the page beside numclip's: '{OK}' agrees to the")
        say(f"page's printed precision, '{BAD}' does not (the [E#] erratum below explains).")
    raw = we.compute(normalized=False) if normalized else None
    rows = {} if normalized else {(r["key"], r["index"]): r for r in we.compare_with_page(result)}
    notes = {} if normalized else {w: e["id"] for e in we.errata(result) for w in e["where"]}

    def table(key, label):
        values = np.asarray(result[key])
        for index in np.ndindex(values.shape):
            name = f"{label}[{','.join(str(i + 1) for i in index)}]" if index else label
            row = rows.get((key, index))
            if raw is not None:
                raw_value = _fmt(np.asarray(raw[key])[index])
                say(f"    {name:<14} {raw_value:>14}  {_fmt(values[index]):>14}")
            elif row is None:
                say(f"    {name:<14} {'':>14}  {_fmt(values[index]):>14}")
            else:
                mark = OK if row["agrees"] else f"{BAD} [{notes.get((key, index), '?')}]"
                say(f"    {name:<14} {row['printed']:>14}  {_fmt(values[index]):>14}  {mark}")

    say("")
    say("Setup: 3 pairs (cat, dog, bird), tau = 0.07, logit_scale = log(1/tau) = "
        f"{result['logit_scale']:.6f}")
    say(f"    I = {result['image_embeds'].tolist()}")
    say(f"    T = {np.round(result['text_embeds'], 4).tolist()}")
    say("")
    say("1. Normalize. The page assumes unit length; the norms are")
    say(f"    |I_i| = {result['image_norms']}   |T_i| = {result['text_norms']}")
    if not normalized:
        say(f"    {BAD} [E1] the text embeddings are not unit length")
    say("")
    say("2. Logits S = exp(logit_scale) * I @ T.T, shape (3, 3)")
    say(f"    {'':<14} {'raw' if normalized else 'page':>14}  {'numclip':>14}")
    table("logits_per_image", "S")
    say("")
    say("3. Softmax over each row (image -> text)")
    say("    sum_j exp(S_ij)")
    table("row_sum_exp", "sum")
    say("    p(T_j | I_i)")
    table("softmax_image_to_text", "p")
    say("")
    say("4. Loss terms -log p(T_i | I_i) and their mean L(I->T)")
    table("pair_loss_image_to_text", "L_i")
    table("loss_image_to_text", "L(I->T)")
    say("")
    say("5. What the page only mentions: text -> image uses S.T")
    say("    p(I_j | T_i)")
    table("softmax_text_to_image", "p")
    table("pair_loss_text_to_image", "L_i")
    table("loss_text_to_image", "L(T->I)")
    say("")
    say("6. Symmetric CLIP loss L = (L(I->T) + L(T->I)) / 2")
    table("loss", "L")
    if not normalized:
        say("")
        say("Errata for the course page")
        say("-" * 26)
        for e in we.errata(result):
            say(f"[{e['id']}] {e['claim']}: page {e['page_value']}; correct {e['correct_value']}.")
            say(f"     {e['explanation']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
