"""The ``numclip`` command.

``numclip example`` walks through the course page's worked example with the
page's printed value beside numclip's at every step; ``numclip train`` trains
the tiny CLIP and reports zero-shot accuracy; ``numclip zeroshot`` evaluates
a saved checkpoint with chosen prompt templates; ``numclip probe`` asks a checkpoint
the questions CLIP gets wrong (numclip.probes); ``numclip classify`` runs a real
open_clip checkpoint on your images (docs/pretrained.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

from numclip import worked_example as we


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

    train = sub.add_parser("train", help="train the tiny CLIP on synthetic shapes")
    # None means "not given": a resumed run takes the checkpoint's value instead
    train.add_argument("--epochs", type=_positive_int,
                       help="total epochs to train up to (default 10; with --resume, the "
                            "checkpoint's)")
    train.add_argument("--batch-size", type=_positive_int, help="pairs per step (default 256)")
    train.add_argument("--embed-dim", type=_positive_int, help="embedding width (default 64)")
    train.add_argument("--lr", type=_positive_float,
                       help="AdamW step size (default 3e-3 for linear encoders, 1e-3 for the "
                            "transformer)")
    train.add_argument("--seed", type=_non_negative_int,
                       help="seed for data, weights and shuffles (default 0)")
    train.add_argument("--loss", choices=["clip", "siglip"],
                       help="CLIP's softmax loss (default) or SigLIP's sigmoid loss")
    train.add_argument("--encoder", choices=["linear", "transformer"],
                       help="linear maps (default) or a small ViT and text Transformer")
    train.add_argument("--data", choices=["shapes", "scenes"],
                       help="one kind of object per image (default) or two-object scenes "
                            "with relations (numclip.scenes)")
    train.add_argument("--hard-negatives", action="store_true", default=None,
                       help="NegCLIP: each caption's perturbation is an extra negative text "
                            "(needs --data scenes)")
    train.add_argument("--temperature", type=_positive_float, metavar="TAU",
                       help="hold the temperature fixed at TAU (at least 0.01) instead of "
                            "learning it")
    train.add_argument("--out", metavar="CKPT",
                       help="save a checkpoint (.npz) after each epoch, atomically (with "
                            "--resume, the default is the resumed file)")
    train.add_argument("--resume", metavar="CKPT",
                       help="continue a saved run up to --epochs and keep saving it into CKPT "
                            "(or --out). A run that already has --epochs epochs is reported "
                            "as it is (exit 0); asking for fewer epochs than it has is an error")
    train.add_argument("--overwrite", action="store_true",
                       help="let --out replace an existing checkpoint of another run (without "
                            "it, an existing --out file is an error: it may hold hours of work)")
    train.add_argument("--plots", metavar="DIR", help="write the figures (PNG) into DIR")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--distributed", action="store_true",
                       help="share each batch among the ranks of mpiexec (needs numclip[mpi])")
    train.add_argument("--json", action="store_true",
                       help="end with the metrics as one line of JSON")

    zeroshot = sub.add_parser("zeroshot", help="evaluate a checkpoint by zero-shot prompts")
    zeroshot.add_argument("checkpoint", metavar="CKPT")
    zeroshot.add_argument("--template", action="append", metavar="T",
                          help="prompt template with {} for the class name; repeat to ensemble "
                               "(default: numclip.report.default_prompts, every count)")
    zeroshot.add_argument("--json", action="store_true", help="print the metrics as JSON")

    probe = sub.add_parser("probe", help="ARO-style probes of a checkpoint: word order, "
                                         "binding, relations, counting (numclip.probes)")
    probe.add_argument("checkpoint", metavar="CKPT")
    probe.add_argument("--suite", nargs="+", choices=["relation", "attribution", "order",
                                                      "counting"],
                       default=["relation", "attribution", "order", "counting"],
                       help="which probes (default: all four)")
    probe.add_argument("--n", type=_positive_int, default=1000,
                       help="images per probe (default 1000)")
    probe.add_argument("--seed", type=_non_negative_int, default=0,
                       help="seed of the probe images and shuffles (default 0)")
    probe.add_argument("--json", action="store_true",
                       help="print one JSON object: suite -> accuracy, chance, items, ties")

    classify = sub.add_parser("classify", help="zero-shot classify images with an open_clip "
                                               "checkpoint (needs numclip[pretrained])")
    classify.add_argument("checkpoint", metavar="CKPT", help=".safetensors or .npz state dict")
    classify.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    classify.add_argument("--config", required=True,
                          help="open_clip model config: a name such as ViT-B-32, or a .json file")
    classify.add_argument("--labels", nargs="+", required=True, metavar="LABEL",
                          help="the class names to choose among")
    classify.add_argument("--template", default="a photo of a {}.",
                          help="prompt with {} for the label (default: 'a photo of a {}.')")
    classify.add_argument("--merges", metavar="FILE",
                          help="bpe_simple_vocab_16e6.txt.gz (default: an installed open_clip's)")
    classify.add_argument("--json", action="store_true", help="print the probabilities as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; every mistake ends in one ``numclip: error:`` line on stderr.

    Returns:
        0 on success, 1 for an error while running, 2 for a bad command line
            (argparse exits with 2 itself), 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("a command is required: example, train, zeroshot, probe or classify")
    command = {"example": _cmd_example, "train": _cmd_train, "zeroshot": _cmd_zeroshot,
               "probe": _cmd_probe, "classify": _cmd_classify}
    with warnings.catch_warnings():  # restores the caller's warning display afterwards
        warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
        try:
            return command[args.command](args)
        except KeyboardInterrupt:
            print("numclip: interrupted (the last checkpoint written is intact)", file=sys.stderr)
            return 130
        except (ValueError, TypeError, OSError, ImportError) as err:  # CheckpointError too
            _say("error", err)
            return 1
        except MemoryError as err:  # NumPy's says how much it could not allocate
            _say("error", f"out of memory ({err or 'no details'}); ask for smaller sizes")
            return 1


def _say(kind: str, message) -> None:
    """One line on stderr: ``numclip: error: ...``, ``numclip: warning: ...``."""
    print(f"numclip: {kind}: {' '.join(str(message).splitlines())}", file=sys.stderr)


def _show_warning(default, message, category, filename, lineno, file=None, line=None):
    """A warning meant for the user (a UserWarning) as one line, without a source line."""
    if issubclass(category, UserWarning):
        _say("warning", message)
    else:  # NumPy's RuntimeWarnings and the like keep where they come from
        default(message, category, filename, lineno, file, line)


def _int_at_least(low: int, kind: str):
    """An argparse type: an integer >= ``low``, or a one-line error that says ``kind``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "a non-negative integer")


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
        print(we.walkthrough(result))
    return 0


def _cmd_train(args) -> int:
    if not args.distributed:
        return _train(args, None)
    from numclip import distributed

    comm = distributed.world()  # ImportError with an install hint without mpi4py
    with distributed.abort_on_error(comm):  # one failing rank ends them all
        return _train(args, comm)


def _config(make, fields: dict, given: dict):
    """``make(**fields)``, a TrainConfig; a mistake it finds is refused naming the flags it
    came from: ``--batch-size 500: batch_size (500) must not exceed train_size (10000)``
    (the message names the field, and train_size has no flag)."""
    try:
        return make(**fields)
    except (TypeError, ValueError) as err:
        flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
                 for k, v in given.items() if re.search(rf"\b{k}\b", str(err))]
        if not flags:
            raise
        raise (TypeError if isinstance(err, TypeError) else ValueError)(
            f"{', '.join(flags)}: {err}") from None


def _train(args, comm) -> int:
    from numclip import train as tr  # imported here: `numclip example` stays fast

    given = {"epochs": args.epochs, "batch_size": args.batch_size,
             "embed_dim": args.embed_dim, "lr": args.lr, "seed": args.seed, "loss": args.loss,
             "encoder": args.encoder, "data": args.data, "hard_negatives": args.hard_negatives,
             "temperature": args.temperature}
    given = {k: v for k, v in given.items() if v is not None}
    saved = None if args.resume is None else tr.load_checkpoint(args.resume)
    if saved is not None:
        _check_same_run(args.resume, saved, given)
    fields = given if saved is None else dataclasses.asdict(saved.config) | given
    config = _config(tr.TrainConfig, fields, given)
    out = args.resume if args.out is None else args.out  # a resumed run keeps saving into itself
    if out is not None:
        tr.check_output_path(out)  # before the data is made, not after the first epoch
        _check_not_overwriting(args)
    plots = _plots_folder(args.plots)
    if saved is not None and config.epochs <= saved.epoch:
        done = f"{args.resume} has already trained {saved.epoch} epoch" + "s" * (saved.epoch > 1)
        more = f"ask for more with --epochs N, N > {saved.epoch}"
        if config.epochs < saved.epoch:
            raise ValueError(f"{done}; {more}")
        if comm is None or comm.Get_rank() == 0:
            _say("note", f"{done}: nothing left to train; {more}")
    with tr.blas_threads(config):  # data, training, evaluation: small products (numclip.threads)
        return _run(args, config, out, plots, comm)


def _run(args, config, out, plots, comm) -> int:
    """Make the data, train, report (and draw) a run whose settings are all checked."""
    from numclip import train as tr
    from numclip.report import final_metrics

    if plots is not None:  # matplotlib only for a run that draws, and before it trains
        from numclip.plot import write_plots
    start = time.perf_counter()
    splits = tr.make_splits(config)
    state = tr.train(config, resume=args.resume, out=out, quiet=args.quiet, splits=splits,
                     comm=comm)
    if comm is not None and comm.Get_rank() != 0:
        return 0  # every rank holds the same model; rank 0 reports it
    metrics = final_metrics(state, splits)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    _warn_if_nothing_learned(config, metrics["scale"])
    if plots is not None:
        initial = tr.new_state(config, splits["train"]).model
        metrics["plots"] = [str(p) for p in write_plots(state, splits, plots, initial)]
    _report(metrics, args.json)
    return 0


def _warn_if_nothing_learned(config, scale) -> None:
    """A step size so large that the run collapses is no error, but say so.

    AdamW's steps are bounded by lr, so a huge lr never gives NaN: it drives the
    learned scale exp(logit_scale) to 0, every logit with it, and the softmax to a
    uniform guess. A run that learns starts the scale at 1/0.07 (CLIP) or 10
    (SigLIP) and raises it.
    """
    if scale < 0.01:
        _say("warning", f"the learned scale exp(logit_scale) ended at {scale:.2g}: every logit "
                        "is about 0 and the model scores all captions alike, so the run "
                        f"learned nothing; try a smaller --lr (it is {config.lr:g})")


def _check_not_overwriting(args) -> None:
    """--out may replace the run it resumes, or anything with --overwrite; nothing else."""
    out = Path(args.out) if args.out is not None else None
    if out is None or not out.exists() or args.overwrite:
        return
    if args.resume is not None and out.resolve() == Path(args.resume).resolve():
        return
    raise FileExistsError(f"--out {args.out} already exists; continue that run with --resume "
                          f"{args.out}, write elsewhere, or replace it with --overwrite")


def _check_same_run(path: str, saved, given: dict) -> None:
    """A flag that differs from the resumed run's setting would make it another run."""
    differ = [f"--{k.replace('_', '-')} {v} (it has {getattr(saved.config, k)})"
              for k, v in given.items() if k != "epochs" and getattr(saved.config, k) != v]
    if differ:
        raise ValueError(f"--resume {path} continues a run with other settings than "
                         f"{', '.join(differ)}; drop these flags, or start a new run without "
                         "--resume")


def _plots_folder(text: str | None) -> Path | None:
    """The folder for --plots, created now so that a bad one fails before training."""
    if text is None:
        return None
    if not text:
        raise ValueError("--plots needs a folder name, got ''")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--plots {text} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the --plots folder {text} ({err.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"--plots {text} is not a writable folder")
    return folder


def _cmd_zeroshot(args) -> int:
    from numclip import train as tr
    from numclip.report import checkpoint_metrics, zero_shot_metrics
    from numclip.zeroshot import prompts

    if args.template is not None:
        prompts(["class name"], args.template)  # a bad template fails before any work
    state = tr.load_checkpoint(args.checkpoint)
    with tr.blas_threads(state.config):
        splits = tr.make_splits(state.config)
        metrics = zero_shot_metrics(state, splits, templates=args.template)
    # the rest the templates cannot change: it is the checkpoint's, and says so
    metrics["checkpoint"] = {"path": args.checkpoint} | checkpoint_metrics(state)
    _report(metrics, args.json)
    return 0


def _cmd_probe(args) -> int:
    from numclip import probes
    from numclip import train as tr

    if len(set(args.suite)) != len(args.suite):
        raise ValueError(f"--suite names a probe twice: {' '.join(args.suite)}")
    state = tr.load_checkpoint(args.checkpoint)
    with tr.blas_threads(state.config):
        results = probes.run_probes(state.model, state.vocab, args.suite, n=args.n,
                                    seed=args.seed)
    if args.json:
        print(json.dumps(probes.to_json(results)))
    else:
        print(probes.format_table(results))
    return 0


def _cmd_classify(args) -> int:
    import numpy as np

    from numclip import pretrained
    from numclip.zeroshot import check_template

    check_template(args.template)  # a bad template fails before the weights are read
    config = args.config
    if config.endswith(".json"):
        config = _read_json(config, "--config")
    model = pretrained.load_open_clip(args.checkpoint, config)
    images = np.stack([pretrained.preprocess(_open_image(path), model.vision.image_size)
                       for path in args.images]).astype(model.dtype)  # (B, 3, S, S)
    probs = pretrained.zero_shot_classify(model, images, args.labels, template=args.template,
                                          merges=args.merges)
    result = [{"image": path, "probabilities": dict(zip(args.labels, map(float, row),
                                                          strict=True))}
              for path, row in zip(args.images, probs, strict=True)]  # a path may repeat
    if args.json:
        print(json.dumps(result))
        return 0
    for entry in result:
        print(entry["image"])
        for label, p in sorted(entry["probabilities"].items(), key=lambda item: -item[1]):
            print(f"  {label:<26} {p:.4f}")
    return 0


def _read_json(path: str, flag: str):
    try:
        return json.loads(Path(path).read_text())
    except OSError as err:
        raise OSError(f"{flag} {path} cannot be read ({err.strerror})") from None
    except ValueError as err:
        raise ValueError(f"{flag} {path} is not valid JSON ({err})") from None


def _open_image(path: str):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise FileNotFoundError(f"no image at {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not an image Pillow can read ({err})") from None
    return image


def _report(metrics: dict, as_json: bool, indent: str = "") -> None:
    """Metrics as an aligned table, or as one line of JSON (the last line of stdout).

    A nested dict (``zeroshot``'s ``checkpoint``) is a section of the table, and
    a nested object in the JSON.
    """
    if as_json:
        print(json.dumps(metrics))
        return
    for key, value in metrics.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _report(value, False, indent + "  ")
            continue
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        print(f"{indent + key:<28} {value}")


if __name__ == "__main__":
    sys.exit(main())
