"""The course page's worked example: three image-text pairs at temperature 0.07.

``compute()`` rebuilds every intermediate the page prints (and the ones it
only mentions) with numclip's own functions, in float64.  ``PAGE`` holds the
numbers exactly as the page prints them, ``compare_with_page`` checks each
one to its printed precision, and ``errata`` explains every disagreement,
with the corrected values computed, not typed.

The page is the course page on CLIP that numclip accompanies (a MkDocs page of
the course, not part of this repository), section "Numerical Simulation of
CLIP's Contrastive Loss"; ``docs/worked-example.md`` redoes it number by number.
"""

from __future__ import annotations

import math

import numpy as np

from numclip.backend import as_bool, as_float_array, as_number, temperature_to_logit_scale
from numclip.losses import clip_loss
from numclip.normalize import l2_normalize
from numclip.similarity import logit_matrix
from numclip.softmax import log_softmax, logsumexp, softmax

__all__ = ["IMAGE_EMBEDS", "TEXT_EMBEDS", "TAU", "LABELS", "PAGE",
           "compute", "compare_with_page", "errata", "to_json", "walkthrough"]

LABELS = ("cat", "dog", "bird")
IMAGE_EMBEDS = np.array([[1.0, 0.0, 0.0],
                         [0.0, 1.0, 0.0],
                         [0.0, 0.0, 1.0]])
TEXT_EMBEDS = np.array([[0.9, 0.1, 0.0],
                        [0.1, 0.8, 0.1],
                        [0.0, 0.3, 0.7]])
TAU = 0.07

# Every number the page prints, as printed.  Its loss terms are written
# "L_{I_i -> T_i} = log(p_ii) ≈ ...", hence the minus signs.
PAGE = {
    "logits_per_image": (("12.857", "1.4286", "0"),
                         ("1.4286", "11.4286", "4.2857"),
                         ("0", "1.4286", "10")),
    "row_sum_exp": ("383523", "91987", "22031"),
    "softmax_image_to_text": (("0.9999", "0", "0"),
                              ("0", "0.9992", "0.0008"),
                              ("0", "0.0002", "0.9998")),
    "pair_loss_image_to_text": ("-0.0000", "-0.0004", "-0.0001"),
    "loss_image_to_text": "0.00016",
}


def compute(normalized: bool = False) -> dict:
    """Every intermediate of the example, as float64 NumPy arrays and floats.

    Args:
        normalized: L2-normalize the embeddings first (what CLIP does and
            what the page assumes has happened); ``False`` reproduces the page.

    Raises:
        TypeError: ``normalized`` is not a bool.
    """
    if not isinstance(normalized, bool | np.bool_):
        raise TypeError(f"normalized must be True or False, got {normalized!r}")
    image, text = IMAGE_EMBEDS, TEXT_EMBEDS
    if normalized:
        image, _ = l2_normalize(image)
        text, _ = l2_normalize(text)
    logit_scale = temperature_to_logit_scale(TAU)
    logits_per_image, _ = logit_matrix(image, text, logit_scale)  # (3, 3)
    logits_per_text = logits_per_image.T  # (3, 3)
    pair_i = -np.diagonal(log_softmax(logits_per_image, axis=1))  # -log p_ii, image -> text
    pair_t = -np.diagonal(log_softmax(logits_per_text, axis=1))  # text -> image
    loss, grads = clip_loss(image, text, logit_scale, normalize=False)
    return {
        "normalized": normalized,
        "tau": TAU,
        "logit_scale": logit_scale,
        "image_embeds": image,
        "text_embeds": text,
        "image_norms": np.linalg.norm(IMAGE_EMBEDS, axis=1),  # of the page's raw vectors,
        "text_norms": np.linalg.norm(TEXT_EMBEDS, axis=1),  # also in the normalized variant
        "logits_per_image": logits_per_image,
        "row_sum_exp": np.exp(logsumexp(logits_per_image, axis=1)),
        "softmax_image_to_text": softmax(logits_per_image, axis=1),
        "pair_loss_image_to_text": pair_i,
        "loss_image_to_text": float(np.mean(pair_i)),
        "logits_per_text": logits_per_text,
        "row_sum_exp_text": np.exp(logsumexp(logits_per_text, axis=1)),
        "softmax_text_to_image": softmax(logits_per_text, axis=1),
        "pair_loss_text_to_image": pair_t,
        "loss_text_to_image": float(np.mean(pair_t)),
        "loss": float(loss),
        "grads": grads,
    }


def decimals(printed: str) -> int:
    """Number of decimals a printed number shows (``"0.00016"`` -> 5)."""
    return len(printed.split(".")[1]) if "." in printed else 0


def agrees(printed: str, value: float) -> bool:
    """Whether ``value`` rounds to the printed number at the printed precision, sign included.

    ``"-0.0000"`` claims a negative number too small to show: a positive value
    does not agree with it, although both round to zero.
    """
    negative = printed.startswith("-")
    if (negative and value > 0) or (not negative and value < 0):
        return False
    return round(value, decimals(printed)) == float(printed)


def compare_with_page(result: dict | None = None) -> list[dict]:
    """One row per number printed on the page: where, printed, computed, agrees.

    ``result`` is what ``compute()`` returns (computed when ``None``); otherwise a
    ``TypeError`` or ``ValueError`` says what is missing.
    """
    if result is not None:
        _check_result(result)
    result = compute() if result is None else result
    rows = []
    for key, printed in PAGE.items():
        printed = np.asarray(printed)
        values = np.broadcast_to(result[key], printed.shape)
        for index in np.ndindex(printed.shape):
            rows.append({"key": key, "index": index, "printed": str(printed[index]),
                         "value": float(values[index]),
                         "agrees": agrees(str(printed[index]), float(values[index]))})
    return rows


def errata(result: dict | None = None) -> list[dict]:
    """What the page gets wrong or leaves misleading, with computed corrections.

    Each entry has ``id``, ``claim``, ``page_value``, ``correct_value``,
    ``explanation`` and ``where``: the ``(PAGE key, index)`` of each printed number it
    concerns.  Those are the numbers that disagree with numclip, and for E4 the zeros that
    agree to the printed precision but are misleading.  An erratum about a claim with no
    printed number (E1: unit length, E7: a fixed temperature) has ``where == []``.
    ``result`` is what ``compute()`` returns (computed when ``None``).
    """
    if result is not None:
        _check_result(result)
    r = compute() if result is None else result
    p = r["softmax_image_to_text"]
    sums = r["row_sum_exp"]
    pii = np.diagonal(p)
    log10_terms = np.log10(pii)
    # the probabilities the page prints as "0": right to 4 decimals, but not zero
    zeros = [i for i in np.ndindex(p.shape) if PAGE["softmax_image_to_text"][i[0]][i[1]] == "0"]
    small = np.array([p[i] for i in zeros])
    return [
        {"id": "E1", "claim": "the embeddings are already unit length",
         "page_value": "norm 1 for every embedding",
         "correct_value": "text norms " + ", ".join(f"{v:.4f}" for v in r["text_norms"])
                          + " (the image embeddings are unit length)",
         "explanation": "T1, T2 and T3 are shorter than 1, so the page's logits are scaled dot "
                        "products, not cosine similarities. Its numbers follow from the raw "
                        "vectors; 'numclip example --normalized' shows the example after real "
                        "L2 normalization.",
         "where": []},
        {"id": "E2", "claim": "row sums of exponentials",
         "page_value": "383523 and 22031",
         "correct_value": f"{sums[0]:.0f} ({sums[0]:.3f}) and {sums[2]:.0f} ({sums[2]:.3f})",
         "explanation": "The page cut the decimals off instead of rounding; 91987 "
                        f"({sums[1]:.3f}) happens to be right either way.",
         "where": [("row_sum_exp", (0,)), ("row_sum_exp", (2,))]},
        {"id": "E3", "claim": "softmax p(T1 given I1)",
         "page_value": "0.9999",
         "correct_value": f"{p[0, 0]:.4f} ({p[0, 0]:.7f})",
         "explanation": "Truncated to four decimals rather than rounded.",
         "where": [("softmax_image_to_text", (0, 0))]},
        {"id": "E4", "claim": "off-diagonal probabilities of 0",
         "page_value": "0",
         "correct_value": f"between {small.min():.2e} and {small.max():.2e}",
         "explanation": "Softmax is never exactly 0. The entries are right to the page's "
                        "precision, but they are what the loss pushes down during training.",
         "where": [("softmax_image_to_text", i) for i in zeros]},
        {"id": "E5", "claim": "L(I_i -> T_i) = log(p_ii), negative",
         "page_value": "-0.0000, -0.0004, -0.0001",
         "correct_value": ", ".join(f"{v:.4f}" for v in r["pair_loss_image_to_text"]),
         "explanation": "Each loss term is -log p_ii, which is >= 0; the page dropped the minus "
                        "sign of its own formula, and took log base 10: log10(p_ii) = "
                        + ", ".join(f"{v:.4f}" for v in log10_terms) + " reproduces its "
                        "numbers. Cross-entropy (and CLIP) use the natural log.",
         "where": [("pair_loss_image_to_text", (0,)), ("pair_loss_image_to_text", (1,)),
                   ("pair_loss_image_to_text", (2,))]},
        {"id": "E6", "claim": "L(I -> T) ≈ 0.00016",
         "page_value": "0.00016",
         "correct_value": f"{r['loss_image_to_text']:.5f} ({r['loss_image_to_text']:.6g})",
         "explanation": f"The mean of -log10 p_ii is {-np.mean(log10_terms):.5f}, the page's "
                        f"value; with the natural log it is ln(10) ≈ {math.log(10):.3f} times "
                        "larger.",
         "where": [("loss_image_to_text", ())]},
        {"id": "E7", "claim": "the temperature is a hyperparameter",
         "page_value": "tau = 0.07, fixed",
         "correct_value": "tau is learned, as logit_scale = log(1/tau)",
         "explanation": "CLIP starts from tau = 0.07 and learns logit_scale by gradient descent, "
                        "clipping exp(logit_scale) at 100 (CLIP paper, section 2.5).",
         "where": []},
    ]


def to_json(result: dict) -> dict:
    """``result`` with arrays as lists and the errata attached, ready for ``json.dumps``."""
    _check_result(result)
    out = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
           for k, v in result.items() if k != "grads"}
    out["grads"] = {k: np.asarray(v).tolist() for k, v in result["grads"].items()}
    out["errata"] = [{k: v for k, v in e.items() if k != "where"} for e in errata()]
    return out


OK, BAD = "ok", "XX"  # ASCII marks: they survive any terminal encoding


def walkthrough(result: dict) -> str:
    """The step-by-step text that ``numclip example`` prints.

    Args:
        result: what ``compute()`` returns.  For the page's raw example each printed
            number stands beside numclip's, marked ``ok`` (agrees to the printed
            precision) or ``XX`` (does not), followed by ``[E#]`` where an erratum
            concerns it; every erratum listed at the end is marked at least once above
            it.  For ``compute(normalized=True)`` a ``raw`` column gives numclip's value
            for the page's unnormalized vectors instead, and the norms are shown before
            and after normalization.

    Returns:
        The text, lines joined by ``"\\n"``, without a trailing newline.

    Raises:
        TypeError: ``result`` is not a dict.
        ValueError: ``result`` lacks keys that ``compute()`` returns.
    """
    _check_result(result)
    with np.printoptions(precision=4, suppress=True):  # local: never change the caller's
        return "\n".join(_walkthrough_lines(result))


def _check_result(result) -> None:
    """Raise unless ``result`` is shaped like what ``compute()`` returns, value by value.

    Each value must be what ``compute()`` puts there: a bool, a finite real number, a
    finite float array of the same shape, or a dict of those under the same keys (the
    values themselves may differ: a student's own numbers are welcome).
    """
    if not isinstance(result, dict):
        raise TypeError("result must be the dict that compute() returns, "
                        f"got {type(result).__name__}")
    reference = compute()  # a 3x3 example: cheap to recompute
    missing = sorted(set(reference) - set(result))
    if missing:
        raise ValueError(f"result must be the dict that compute() returns; it lacks {missing}")
    for key, ref in reference.items():
        _check_like(result[key], ref, f"result[{key!r}]")


def _check_like(value, ref, where: str) -> None:
    """Raise unless ``value`` is of ``ref``'s kind (and shape, for an array), and finite."""
    if isinstance(ref, bool):
        as_bool(value, where)
    elif isinstance(ref, float):
        if not math.isfinite(as_number(value, where)):
            raise ValueError(f"{where} must be finite, got {value}")
    elif isinstance(ref, dict):
        if not isinstance(value, dict):
            raise TypeError(f"{where} must be a dict with the keys {sorted(ref)}, "
                            f"got {type(value).__name__}")
        if set(value) != set(ref):
            raise ValueError(f"{where} must have the keys {sorted(ref)}, "
                             f"got {sorted(map(str, value))}")
        for k in ref:
            _check_like(value[k], ref[k], f"{where}[{k!r}]")
    else:  # an array: the numbers the page prints are read out of it by position
        value = as_float_array(value, where)
        if tuple(value.shape) != ref.shape:
            raise ValueError(f"{where} must have shape {ref.shape}, got {tuple(value.shape)}")


def _fmt(v: float) -> str:
    return f"{v:.8g}"  # enough digits to see both the rounding and the truncation


def _walkthrough_lines(result: dict) -> list[str]:
    lines = []
    say = lines.append
    normalized = bool(result["normalized"])
    raw = compute(normalized=False) if normalized else None
    rows = {} if normalized else {(r["key"], r["index"]): r for r in compare_with_page(result)}
    notes = {} if normalized else {w: e["id"] for e in errata(result) for w in e["where"]}

    def row(name, value, raw_value=None, key=None, index=()):
        page = rows.get((key, index))
        if raw is not None:
            say(f"    {name:<14} {_fmt(raw_value):>14}  {_fmt(value):>14}")
        elif page is None:
            say(f"    {name:<14} {'':>14}  {_fmt(value):>14}")
        else:
            note = notes.get((key, index), None if page["agrees"] else "?")
            mark = (OK if page["agrees"] else BAD) + (f" [{note}]" if note else "")
            say(f"    {name:<14} {page['printed']:>14}  {_fmt(value):>14}  {mark}")

    def table(key, label):
        values = np.asarray(result[key])
        raw_values = None if raw is None else np.asarray(raw[key])
        for index in np.ndindex(values.shape):
            name = f"{label}[{','.join(str(i + 1) for i in index)}]" if index else label
            row(name, values[index], None if raw is None else raw_values[index], key, index)

    def header():
        say(f"    {'':<14} {'raw' if normalized else 'page':>14}  {'numclip':>14}")

    say("The course page's worked example, recomputed by numclip (float64)")
    say("=" * 66)
    if normalized:
        say("Variant: embeddings L2-normalized first, as CLIP does. The 'raw' column")
        say("is numclip's value for the page's unnormalized vectors, for comparison.")
    else:
        say(f"Each printed number of the page beside numclip's: '{OK}' agrees to the")
        say(f"page's printed precision, '{BAD}' does not; [E#] names the erratum below")
        say("that concerns it.")
    say("")
    say("Setup: 3 pairs (cat, dog, bird), tau = 0.07, logit_scale = log(1/tau) = "
        f"{result['logit_scale']:.6f}")
    say(f"    I = {result['image_embeds'].tolist()}")
    say(f"    T = {np.round(result['text_embeds'], 4).tolist()}")
    if not normalized:
        say(f"    {BAD} [E7] the page calls tau a fixed hyperparameter; CLIP learns it")
    say("")
    if normalized:
        say("1. Normalize: divide each row by its length. Its norm before ('raw') and after:")
        header()
        for name, embeds, raw_norms in (("I", "image_embeds", "image_norms"),
                                        ("T", "text_embeds", "text_norms")):
            after = np.linalg.norm(result[embeds], axis=1)
            for i, (before, now) in enumerate(zip(result[raw_norms], after, strict=True)):
                row(f"|{name}_{i + 1}|", now, before)
    else:
        say("1. Normalize. The page assumes unit length; the norms are")
        say(f"    |I_i| = {result['image_norms']}   |T_i| = {result['text_norms']}")
        say(f"    {BAD} [E1] the text embeddings are not unit length")
    say("")
    say("2. Logits S = exp(logit_scale) * I @ T.T, shape (3, 3)")
    header()
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
        for e in errata(result):
            say(f"[{e['id']}] {e['claim']}: page {e['page_value']}; correct {e['correct_value']}.")
            say(f"     {e['explanation']}")
    return lines
