"""numclip's encoders against torch on the same weights and the same threads, in one run.

1. ViT-B/32 image encoder inference: ``numclip.nn.encoders.VisionTransformer`` (called as
   ``numclip.pretrained.OpenCLIP.encode_image`` calls it, ``check_weights=False``: the
   weights were checked when they were loaded; ``keep_cache=False``: no backward) with
   open_clip's ViT-B-32 architecture (random float32 weights, drawn as open_clip
   initialises them), a batch of 8 images at 224 px, against open_clip's
   ``CLIP(...).visual`` holding the same numbers, under ``torch.inference_mode()``;
   once with exact GELU (ViT-B-32) and once with QuickGELU (ViT-B-32-quickgelu).
   Target: numclip within 1.25x of torch.
2. The tiny transformer CLIP's training step: ``TinyCLIP.loss_and_grads`` (forward and
   backward of the symmetric CLIP loss) on one batch of the training data, at
   ``TrainConfig()``'s batch size and embedding width and ``numclip.model.TRANSFORMER``'s
   sizes, against torch autograd on an ``open_clip.CLIP`` of the same architecture
   loaded with the same parameters (``ClipLoss``'s formula, then ``.backward()``).
   Target: within 1.5x.
3. Peak memory of every variant, each in a fresh process: the peak resident set
   (``ru_maxrss``) after setup and after two calls, and for numclip the peak that one
   call allocates, by tracemalloc (NumPy reports its allocations to it; torch does not).

Before anything is timed, each pair is checked to compute the same function: the
outputs (and for the step the loss and every gradient) must agree to float32 rounding.
NumPy's BLAS (threadpoolctl) and torch (``torch.set_num_threads``) get the same number
of threads, ``--threads``, every core by default. Each timed function runs once to
warm up and then ``--repeats`` more times, numclip and torch taking turns within each
round so that a slow spell of a shared machine slows both; a pause before every call
lets the worker threads the other library left spinning (OpenBLAS's, OpenMP's) go to
sleep, so neither is timed against the other's idle threads. Printed: best and median
milliseconds, best over best, and the median over rounds of each round's ratio (the one
to quote on a machine whose speed drifts).

    python benchmarks/encoders.py                          # everything, every core
    python benchmarks/encoders.py --threads 1 --repeats 10
    python benchmarks/encoders.py --skip-vit --profile     # where numclip's step spends time
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import numclip
from numclip.data import make_dataset
from numclip.model import TRANSFORMER, TinyCLIP
from numclip.pretrained import encoders_from_config
from numclip.text import Vocabulary
from numclip.train import IMAGE_SIZE, TrainConfig

VIT_CONFIGS = {"ViT-B-32": "GELU", "ViT-B-32-quickgelu": "QuickGELU"}  # one per activation
VIT_BATCH = 8
# Far above float32 rounding (about 1e-6 here) and far below the O(1) error of a weight
# read from the wrong key: a check that both sides compute one function, not a precision
# test (tests/test_encoders.py and tests/test_pretrained.py hold those, with derived bounds).
SAME_FUNCTION = 1e-4


# ---------------------------------------------------------------------------- setup


def set_threads(threads: int) -> None:
    """Every thread pool in the process (NumPy's BLAS, torch's OpenMP) to ``threads``."""
    threadpool_limits(limits=threads)  # kept for the whole process, never restored
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def import_torch():
    """(torch, open_clip), or None and the reason printed (they are optional here)."""
    try:
        import open_clip
        import torch
    except Exception as err:  # ImportError, or torchvision failing beside a CPU-only torch
        print(f"torch comparison skipped: torch and open_clip do not import here "
              f"({type(err).__name__}: {err}); install torch and open_clip_torch to compare")
        return None
    return torch, open_clip


def vit_weights(seed: int = 0) -> dict:
    """The ViT-B/32 image tower's random weights, float32 NumPy, under open_clip's keys."""
    vision = encoders_from_config("ViT-B-32")[0]
    params = vision.init_params(np.random.default_rng(seed))  # float64, as open_clip inits
    return {k: params.pop(k).astype(np.float32) for k in list(params)}


def vit_images(seed: int = 1) -> np.ndarray:
    """``(8, 3, 224, 224)`` float32, standard normal: what CLIP's normalisation gives."""
    return np.random.default_rng(seed).standard_normal((VIT_BATCH, 3, 224, 224),
                                                       dtype=np.float32)


def numclip_vit(vision, params: dict, images):
    """numclip's ViT forward as ``OpenCLIP.encode_image`` calls it: the weights were checked
    when they were loaded, and inference keeps no caches for a backward pass."""
    return lambda: vision.forward(params, images, check_weights=False, keep_cache=False)


def torch_visual(name: str, params: dict, torch, open_clip):
    """open_clip's ``CLIP(**config).visual`` for config ``name``, holding ``params``' memory.

    The model is built on the meta device (nothing drawn, nothing allocated), then the
    vision tower is given numclip's arrays themselves (``assign=True``), so torch and
    numclip read the very same numbers and the process holds them once.
    """
    with torch.device("meta"):
        model = open_clip.CLIP(**open_clip.get_model_config(name))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()
                if k.startswith("visual.")}
    got = {k: tuple(v.shape) for k, v in params.items()}
    if expected != got:
        sys.exit(f"numclip's ViT-B-32 keys or shapes differ from open_clip's {name}: "
                 f"{sorted(set(expected.items()) ^ set(got.items()))[:3]}")
    model.visual.load_state_dict({k.removeprefix("visual."): torch.from_numpy(v)
                                  for k, v in params.items()}, strict=True, assign=True)
    return model.visual.eval()


def step_batch():
    """The transformer TinyCLIP (seeded as ``numclip train`` seeds it) and one batch of
    the training data at ``TrainConfig()``'s sizes: ``model, pixels (B, P), ids (B, L)``."""
    config = TrainConfig(encoder="transformer")
    data = make_dataset(config.batch_size, seed=config.seed, compositions="seen",
                        image_size=IMAGE_SIZE)
    vocab = Vocabulary.build(data.captions)
    model = TinyCLIP.create(data.pixels().shape[1], len(vocab), config.embed_dim,
                            seed=config.seed, encoder="transformer")
    return model, data.pixels(), model.text_inputs(vocab, data.captions)


def tiny_config(model: TinyCLIP) -> dict:
    """open_clip's config of the transformer ``model``'s architecture, read from its
    parameters' shapes (and the heads and activation from ``numclip.model.TRANSFORMER``),
    so that it follows the library when the sizes change."""
    p, t = model.params, TRANSFORMER

    def blocks(prefix):  # how many residual blocks a tower's keys hold
        return len({k[len(prefix):].split(".")[0] for k in p if k.startswith(prefix)})
    width, patch = p["visual.conv1.weight"].shape[0], p["visual.conv1.weight"].shape[-1]
    grid = math.isqrt(p["visual.positional_embedding"].shape[0] - 1)
    text_width = p["token_embedding.weight"].shape[1]
    vision_cfg = {"image_size": grid * patch, "patch_size": patch, "width": width,
                  "layers": blocks("visual.transformer.resblocks."),
                  "head_width": width // t.get("vision_heads", t["heads"]),
                  "mlp_ratio": p["visual.transformer.resblocks.0.mlp.c_fc.bias"].shape[0] // width}
    text_cfg = {"context_length": p["positional_embedding"].shape[0],
                "vocab_size": p["token_embedding.weight"].shape[0], "width": text_width,
                "heads": t.get("text_heads", t["heads"]),
                "layers": blocks("transformer.resblocks."),
                "mlp_ratio": p["transformer.resblocks.0.mlp.c_fc.bias"].shape[0] // text_width}
    return {"embed_dim": model.embed_dim, "vision_cfg": vision_cfg, "text_cfg": text_cfg,
            "quick_gelu": t["activation"] == "quick_gelu"}


def torch_clip(model: TinyCLIP, torch, open_clip):
    """``open_clip.CLIP`` with the architecture of the transformer ``model`` and a copy of
    its parameters (a wrong head count, which no shape shows, fails the agreement check)."""
    clip = open_clip.CLIP(**tiny_config(model))
    # strict: every key present on both sides and every shape equal
    clip.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in model.params.items()},
                         strict=True)
    return clip


def torch_step_fn(clip, pixels, ids, torch):
    """One training step in torch: open_clip's ``ClipLoss`` formula, then ``.backward()``."""
    import torch.nn.functional as F

    side = math.isqrt(pixels.shape[1] // 3)
    # numclip's pixels are flattened (S, S, 3) images; the ViT reads (B, 3, S, S)
    images = torch.from_numpy(pixels).reshape(-1, side, side, 3).permute(0, 3, 1, 2)
    tokens, labels = torch.from_numpy(ids), torch.arange(len(ids))

    def step():
        clip.zero_grad(set_to_none=True)
        image = F.normalize(clip.encode_image(images), dim=-1)  # (B, D)
        text = F.normalize(clip.encode_text(tokens), dim=-1)  # (B, D)
        logits = clip.logit_scale.exp() * image @ text.T  # (B, B)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        loss.backward()
        return loss.detach()
    return step


def vit_floor_fn(vision, params: dict, batch: int):
    """The matrix products of one ViT forward pass in NumPy's BLAS, and nothing else.

    conv1 as one product, per block the four products of the weights (queries, keys and
    values; the attention's output; the MLP's two) and the attention's two batched ones,
    then the projection, on random inputs of the shapes they take. The last block is read
    at the class token only (``residual_block``'s ``rows``), so its products are those
    numclip computes there: every token's keys and values, the rest for one token per
    image. The least time a NumPy forward pass can take on this BLAS, which torch's own
    BLAS need not match.
    """
    rng = np.random.default_rng(2)
    p, d, n = vision.prefix, vision.width, vision.num_tokens
    h, hd = vision.heads, vision.width // vision.heads
    patches = rng.standard_normal((batch * (n - 1), 3 * vision.patch_size**2), dtype=np.float32)
    conv = params[f"{p}conv1.weight"].reshape(d, -1)  # (D, 3 p p)
    tokens = rng.standard_normal((batch * n, d), dtype=np.float32)  # (B N, D)
    hidden = rng.standard_normal((batch * n, vision.mlp_ratio * d), dtype=np.float32)
    q = rng.standard_normal((batch, h, n, hd), dtype=np.float32)  # (B, H, N, hd)
    scores = rng.standard_normal((batch, h, n, n), dtype=np.float32)  # (B, H, N, N)
    blocks = [f"{p}transformer.resblocks.{i}." for i in range(vision.layers)]

    def block(b, m):  # one block whose queries and outputs are m tokens per image
        w_in = params[b + "attn.in_proj_weight"]
        if m == n:
            tokens @ w_in.T  # (B N, 3D): queries, keys and values
        else:
            tokens @ w_in[d:].T  # (B N, 2D): every token's keys and values
            tokens[:batch * m] @ w_in[:d].T  # (B m, D): the queries
        q[:, :, :m] @ q.transpose(0, 1, 3, 2)  # (B, H, m, N): the scores
        scores[:, :, :m] @ q  # (B, H, m, hd): the weighted values
        tokens[:batch * m] @ params[b + "attn.out_proj.weight"].T  # (B m, D)
        tokens[:batch * m] @ params[b + "mlp.c_fc.weight"].T  # (B m, 4D)
        hidden[:batch * m] @ params[b + "mlp.c_proj.weight"].T  # (B m, D)

    def run():
        patches @ conv.T  # (B (N-1), D)
        for b in blocks[:-1]:
            block(b, n)
        block(blocks[-1], 1)
        tokens[:batch] @ params[f"{p}proj"]  # (B, output_dim)
    return run


# ------------------------------------------------------------------------ checking


def relative_error(a, b) -> float:
    """max |a - b| over max |b|: the error on the scale of the reference ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check_same(what: str, errors: dict) -> None:
    """Print the largest relative errors; stop if any says the two compute different things."""
    worst = sorted(errors.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {e:.1e}" for k, e in worst[:3])
    print(f"  {what}: numclip against torch, largest relative errors: {shown}")
    if worst[0][1] > SAME_FUNCTION:
        sys.exit(f"{what}: numclip and torch disagree ({worst[0][0]}: {worst[0][1]:.2e} > "
                 f"{SAME_FUNCTION:g}); they do not compute the same function, nothing to time")


# -------------------------------------------------------------------------- timing


def timed_rounds(fns: list, repeats: int, pause: float) -> list:
    """Wall times of each of ``fns`` in ``repeats`` rounds, after one warm-up round.

    The functions take turns within each round; ``pause`` seconds before each call let
    the previous call's worker threads stop spinning. Returns one list per function.
    """
    times = [[] for _ in fns]
    for round_ in range(repeats + 1):
        for k, fn in enumerate(fns):
            time.sleep(pause)
            start = time.perf_counter()
            fn()
            if round_:  # round 0 warms up
                times[k].append(time.perf_counter() - start)
    return times


def ratio(a: list, b: list) -> str:
    """Best over best, and the median over rounds of each round's a / b."""
    paired = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return f"best over best {min(a) / min(b):.2f}x, median of paired rounds {paired:.2f}x"


def report_times(timed: dict, target: float) -> None:
    """``timed``: name -> times, numclip's first, then torch's and a floor where present."""
    for name, seconds in timed.items():
        print(f"    {name:<28} best {min(seconds) * 1e3:9.1f} ms   median "
              f"{statistics.median(seconds) * 1e3:9.1f} ms")
    ours = next(iter(timed.values()))
    for name, seconds in list(timed.items())[1:]:
        goal = f" (target: within {target}x)" if name == "torch" else ""
        print(f"    numclip / {name}: {ratio(ours, seconds)}{goal}")


# -------------------------------------------------------------------- measurements


def measure_vit(repeats: int, pause: float, torch_libs) -> None:
    print(f"\n1. ViT-B/32 image encoder, inference, batch {VIT_BATCH} x 3 x 224 x 224, float32")
    params, images = vit_weights(), vit_images()
    for name, activation in VIT_CONFIGS.items():
        vision = encoders_from_config(name)[0]
        fns = {"numclip": numclip_vit(vision, params, images)}
        print(f"  {name} ({activation}):")
        if torch_libs is not None:
            torch, open_clip = torch_libs
            visual, timages = torch_visual(name, params, torch, open_clip), torch.from_numpy(
                images)

            def run_torch(visual=visual, timages=timages, torch=torch):
                with torch.inference_mode():
                    return visual(timages)
            ours = fns["numclip"]()[0]
            if ours.dtype != np.float32:
                sys.exit(f"{name}: numclip returned {ours.dtype} for float32 weights and images")
            check_same(name, {"image features": relative_error(ours, run_torch().numpy())})
            fns["torch"] = run_torch
        fns["NumPy's products (floor)"] = vit_floor_fn(vision, params, VIT_BATCH)
        times = timed_rounds(list(fns.values()), repeats, pause)
        report_times(dict(zip(fns, times, strict=True)), 1.25)


def measure_step(repeats: int, pause: float, torch_libs) -> None:
    model, pixels, ids = step_batch()
    config = tiny_config(model)

    def blocks(n):
        return f"{n} block{'s' * (n != 1)}"
    v, t = config["vision_cfg"], config["text_cfg"]
    print(f"\n2. Tiny transformer CLIP, training step (forward + backward of the CLIP loss), "
          f"float32, batch {len(ids)}, embed_dim {model.embed_dim}, {TRANSFORMER['activation']}:"
          f"\n   images {v['image_size']} px, patch {v['patch_size']}, width {v['width']}, "
          f"{blocks(v['layers'])} of {v['width'] // v['head_width']} heads; texts of "
          f"{ids.shape[1]} tokens ({model.vocab_size} + 2 ids), width {t['width']}, "
          f"{blocks(t['layers'])} of {t['heads']} heads")
    fns = {"numclip": lambda: model.loss_and_grads(pixels, ids)}
    if torch_libs is not None:
        torch, open_clip = torch_libs
        clip = torch_clip(model, torch, open_clip)
        run_torch = torch_step_fn(clip, pixels, ids, torch)
        loss, grads = fns["numclip"]()
        tloss = run_torch()
        errors = {"loss": relative_error(loss, tloss.numpy())}
        errors |= {f"d {k}": relative_error(grads[k], p.grad.numpy())
                   for k, p in clip.named_parameters()}
        check_same(f"training step (loss {float(loss):.4f}, {len(grads)} gradients)", errors)
        fns["torch"] = run_torch
    times = timed_rounds(list(fns.values()), repeats, pause)
    report_times(dict(zip(fns, times, strict=True)), 1.5)


# -------------------------------------------------------------------------- memory

VARIANTS = {  # name: (what, library)
    "vit-gelu-numclip": ("ViT-B-32 inference", "numclip"),
    "vit-gelu-torch": ("ViT-B-32 inference", "torch"),
    "vit-quickgelu-numclip": ("ViT-B-32-quickgelu inference", "numclip"),
    "vit-quickgelu-torch": ("ViT-B-32-quickgelu inference", "torch"),
    "step-numclip": ("tiny CLIP training step", "numclip"),
    "step-torch": ("tiny CLIP training step", "torch"),
}


def peak_rss() -> int:
    """This process's peak resident set so far, in bytes.

    Linux's ``VmHWM``, which starts afresh with the new program at exec; ``ru_maxrss``
    does not (Linux carries it over from the parent at fork, so every child would
    report at least the parent's size), and serves only where there is no /proc.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child_fn(variant: str, workdir: Path):
    """The function a memory-measuring child calls: built as the timing builds it, with
    the ViT's weights read from ``workdir`` as float32 (drawing them would pass through
    float64 and leave a peak larger than any call's)."""
    library = VARIANTS[variant][1]
    torch_libs = import_torch() if library == "torch" else None
    if variant.startswith("vit-"):
        name = "ViT-B-32-quickgelu" if "quickgelu" in variant else "ViT-B-32"
        keys = json.loads((workdir / "keys.json").read_text())
        params = {k: np.load(workdir / f"{i}.npy") for i, k in enumerate(keys)}
        images = np.load(workdir / "images.npy")
        if torch_libs is None:
            vision = encoders_from_config(name)[0]
            return numclip_vit(vision, params, images)
        torch = torch_libs[0]
        visual, timages = torch_visual(name, params, *torch_libs), torch.from_numpy(images)

        def run():
            with torch.inference_mode():
                return visual(timages)
        return run
    model, pixels, ids = step_batch()
    if torch_libs is None:
        return lambda: model.loss_and_grads(pixels, ids)
    return torch_step_fn(torch_clip(model, *torch_libs), pixels, ids, torch_libs[0])


def child(variant: str, workdir: Path, threads: int) -> None:
    """Measure one variant's memory in this (fresh) process; print one JSON line."""
    fn = child_fn(variant, workdir)
    set_threads(threads)
    setup = peak_rss()
    fn()  # the first call makes what later calls reuse (torch's and BLAS's buffers)
    fn()
    out = {"setup": setup, "peak": peak_rss(), "traced": None}
    if VARIANTS[variant][1] == "numclip":
        tracemalloc.start()
        fn()
        out["traced"] = tracemalloc.get_traced_memory()[1]  # allocated during the call
        tracemalloc.stop()
    print(json.dumps(out))


def measure_memory(threads: int, torch_libs) -> None:
    print("\n3. Peak memory, each variant in a fresh process (two calls, then one traced)")
    variants = [v for v in VARIANTS if torch_libs is not None or v.endswith("numclip")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        params = vit_weights()
        (workdir / "keys.json").write_text(json.dumps(list(params)))
        for i, value in enumerate(params.values()):
            np.save(workdir / f"{i}.npy", value)
        np.save(workdir / "images.npy", vit_images())
        del params
        print(f"  {'variant':<38} {'process peak':>12} {'after setup':>12} "
              f"{'the calls add':>13} {'one call (tracemalloc)':>23}")
        for variant in variants:
            done = subprocess.run([sys.executable, __file__, "--child", variant, "--workdir",
                                   tmp, "--threads", str(threads)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"memory child {variant} failed:\n{done.stderr}")
            m = json.loads(done.stdout.strip().splitlines()[-1])
            what, library = VARIANTS[variant]
            traced = "" if m["traced"] is None else f"{m['traced'] / 2**20:.1f} MiB"
            print(f"  {what + ', ' + library:<38} {m['peak'] / 2**20:8.0f} MiB "
                  f"{m['setup'] / 2**20:8.0f} MiB {(m['peak'] - m['setup']) / 2**20:9.1f} MiB "
                  f"{traced:>23}")


# ------------------------------------------------------------------------- profile


def profile(label: str, fn, calls: int, top: int = 15) -> None:
    """cProfile ``calls`` calls of ``fn``; print where the time goes, own and cumulative.

    NumPy's operators and ufuncs (``@``, ``*``, ``isfinite``) are not calls to the
    profiler, so their time is the own time of the Python function that runs them.
    """
    fn()  # warm up
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, ...)
    total = sum(s[2] for s in stats.values())
    print(f"\n  profile of {label}, {calls} calls, {total / calls * 1e3:.1f} ms per call "
          f"(with the profiler's overhead)")
    for title, col in (("own time", 2), ("cumulative time, numclip's functions", 3)):
        rows = sorted(((s[col], s[1], key) for key, s in stats.items()
                       if col == 2 or "numclip" in key[0]), reverse=True)[:top]
        print(f"    by {title}:")
        for seconds, ncalls, (file, line, name) in rows:
            where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
            print(f"      {seconds / total:6.1%} {seconds / calls * 1e3:8.2f} ms "
                  f"{ncalls // calls:6d}x  {name}  ({where})")


def run_profiles(skip_vit: bool, skip_step: bool) -> None:
    print("\n4. Profiles of numclip (cProfile)")
    if not skip_vit:
        params, images = vit_weights(), vit_images()
        for name in VIT_CONFIGS:
            vision = encoders_from_config(name)[0]
            profile(f"{name} inference", numclip_vit(vision, params, images), 2)
        del params
    if not skip_step:
        model, pixels, ids = step_batch()
        profile("the training step", lambda: model.loss_and_grads(pixels, ids), 5)


# -------------------------------------------------------------------------- main


def describe_machine(threads: int, torch_libs) -> None:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    avx512 = ", AVX-512" if " avx512f" in cpuinfo else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {model}{avx512}, {cores} cores, load average {os.getloadavg()[0]:.2f} "
          "(a busy machine slows both sides, unevenly: quote figures from a quiet one)")
    versions = f"numclip {numclip.__version__}, numpy {np.__version__}" if hasattr(
        numclip, "__version__") else f"numpy {np.__version__}"
    if torch_libs is not None:
        torch, open_clip = torch_libs
        versions += f", torch {torch.__version__}, open_clip {open_clip.__version__}"
    print(f"python {platform.python_version()}, {versions}")
    for pool in threadpool_info():
        about = " ".join(str(pool[k]) for k in ("version", "architecture") if pool.get(k))
        where = Path(pool["filepath"]).parent
        print(f"thread pool: {pool['internal_api']} {about} ({where.parent.name}/{where.name}),"
              f" {pool['num_threads']} threads")
    if torch_libs is not None:
        print(f"torch: {torch_libs[0].get_num_threads()} threads")
    print(f"threads for both libraries: {threads}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and for torch (default: every core)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after a warm-up")
    parser.add_argument("--pause", type=float, default=0.2,
                        help="seconds before each timed call, for idle threads to sleep")
    parser.add_argument("--skip-vit", action="store_true")
    parser.add_argument("--skip-step", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also cProfile numclip's calls")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count() or 1)
    if threads < 1 or args.repeats < 1 or args.pause < 0:
        parser.error("--threads and --repeats must be positive, --pause non-negative")
    if args.child:
        child(args.child, args.workdir, threads)
        return
    torch_libs = import_torch()
    set_threads(threads)
    describe_machine(threads, torch_libs)
    if not args.skip_vit:
        measure_vit(args.repeats, args.pause, torch_libs)
    if not args.skip_step:
        measure_step(args.repeats, args.pause, torch_libs)
    if not args.skip_memory:
        measure_memory(threads, torch_libs)
    if args.profile:
        run_profiles(args.skip_vit, args.skip_step)


if __name__ == "__main__":
    main()
