
import inspect

import numpy as np
import pytest
import scipy.special
from conftest import assert_on_backend, assert_refused, public_callables, put

from numclip import model as model_module
from numclip import to_numpy
from numclip.gradcheck import check_gradients
from numclip.model import INIT_LOGIT_SCALE, TinyCLIP, as_batch


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_end_to_end_gradients_match_finite_differences_float64(loss):
    model = TinyCLIP.create(num_pixels=7, vocab_size=5, embed_dim=3, seed=1, dtype=np.float64,
                            loss=loss)
    rng = np.random.default_rng(2)
    pixels, tokens = rng.random((6, 7)), rng.random((6, 5))
    _, grads = model.loss_and_grads(pixels, tokens)
    errors = check_gradients(lambda: model.loss_and_grads(pixels, tokens)[0], model.params, grads)
    assert max(errors.values()) < 1e-7, errors


def test_hard_negative_gradients_match_finite_differences_float64():
    """NegCLIP through the linear model: the captions and their negatives share the text
    tower, so text_proj's gradient sums both; checked end to end in float64."""
    model = TinyCLIP.create(num_pixels=7, vocab_size=5, embed_dim=3, seed=1, dtype=np.float64)
    rng = np.random.default_rng(3)
    pixels, tokens, negatives = rng.random((6, 7)), rng.random((6, 5)), rng.random((4, 5))
    loss, grads = model.loss_and_grads(pixels, tokens, negatives)
    errors = check_gradients(lambda: model.loss_and_grads(pixels, tokens, negatives)[0],
                             model.params, grads)
    assert max(errors.values()) < 1e-7, errors
    assert float(loss) > float(model.loss_and_grads(pixels, tokens)[0])  # more to reject


def test_hard_negatives_that_equal_their_captions_tie_in_a_bag_of_words():
    """A bag-of-words caption and its word-swapped negative have equal features: the
    negative's column of the image->text logits equals the caption's."""
    from numclip.losses import negclip_loss

    model = TinyCLIP.create(num_pixels=7, vocab_size=5, embed_dim=3, seed=1, dtype=np.float64)
    rng = np.random.default_rng(4)
    pixels, tokens = rng.random((3, 7)), rng.random((3, 5))
    loss, _ = model.loss_and_grads(pixels, tokens, tokens.copy())
    images, texts = pixels @ model.params["image_proj"], tokens @ model.params["text_proj"]
    want, _ = negclip_loss(images, texts, texts, model.params["logit_scale"])
    # float64, the same products as the model's: only the loss's own rounding can differ
    assert float(loss) == pytest.approx(float(want), rel=1e-12)


def test_siglip_model_starts_where_open_clip_starts():
    model = TinyCLIP.create(10, 4, 8, loss="siglip")
    assert float(model.params["logit_scale"]) == pytest.approx(np.log(10.0), rel=1e-6)
    assert float(model.params["logit_bias"]) == -10.0
    with pytest.raises(ValueError, match="loss must be one of"):
        TinyCLIP.create(10, 4, 8, loss="triplet")


def test_initial_state():
    model = TinyCLIP.create(10, 4, 8, seed=0)
    assert model.params["image_proj"].shape == (10, 8)
    assert model.params["text_proj"].shape == (4, 8)
    assert float(model.params["logit_scale"]) == pytest.approx(INIT_LOGIT_SCALE, rel=1e-6)
    assert all(p.dtype == np.float32 for p in model.params.values())
    same = TinyCLIP.create(10, 4, 8, seed=0)
    assert all(np.array_equal(model.params[k], same.params[k]) for k in model.params)


def test_embeddings_have_unit_length():
    model = TinyCLIP.create(6, 3, 4, seed=0)
    rng = np.random.default_rng(0)
    images = model.encode_images(rng.random((5, 6), dtype=np.float32))
    texts = model.encode_texts(rng.random((5, 3), dtype=np.float32))
    # |norm(y) - 1| <= (D/2 + 2)u for computing y = x / |x| and (D/2 + 1)u for measuring
    # |y| here in float32: (D + 3)u = 7u = 4.2e-7 < 1e-6 for D = 4, u = 2^-24
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-6)


def clip_error_bounds(pixels, tokens, params, u):
    r"""First-order worst-case bounds on the rounding error of ``loss_and_grads`` (CLIP loss).

    For inputs exactly representable in the working precision with unit
    roundoff ``u``, each step's error is what it inherits, propagated by its
    own derivative, plus ``n u`` times the size of its terms for a sum of
    ``n`` (Higham, *Accuracy and Stability*, 3.5), with a few ``u`` to spare
    for the exp, log, sqrt and the division of each step:

    - ``e = X W``: ``|de| <= P u |X||W|``; then ``e/|e|`` moves by at most ``|de| / |e|``,
      so the conditioning ``|X||W| / |XW|`` of the data enters here, row by row;
    - ``C = ê f̂^T`` (unit rows) errs by ``eps_ê + eps_f̂ + D u``, ``Z = e^s C`` by ``e^s`` times it;
    - ``log softmax`` errs by ``|dZ_ij| + max_k |dZ_ik|`` plus its own roundings, with
      ``5 e^s u`` for shifting, exponentiating and taking the log of logits up to ``e^s``;
    - ``G = (R + K - 2I) / 2N`` inherits ``R dlog R + K dlog K``; ``dê = e^s G f̂`` sums N terms;
      ``de = (I - êê^T) dê / |e|`` and ``dW = X^T de`` propagate it, componentwise.

    Second-order terms are smaller by another factor of the bound (< 1e-3 here).
    Returns ``(loss_bound, {key: bound})`` with the bounds shaped like the gradients.
    """
    x, y = np.asarray(pixels, np.float64), np.asarray(tokens, np.float64)
    a, b = (np.asarray(params[k], np.float64) for k in ("image_proj", "text_proj"))
    tau, n, d = float(np.exp(params["logit_scale"])), x.shape[0], a.shape[1]

    def unit(x, w):  # rows of x @ w normalized, their norms, and each row's error bound
        e = x @ w
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        cond = np.linalg.norm(np.abs(x) @ np.abs(w), axis=1, keepdims=True) / norm
        return e / norm, norm, x.shape[1] * u * cond + (d + 4) * u  # (N, D), (N, 1), (N, 1)

    eh, ne, eps_e = unit(x, a)
    fh, nf, eps_f = unit(y, b)
    z = tau * eh @ fh.T  # (N, N) logits
    dz = tau * (eps_e + eps_f.T + (d + 2) * u)  # (N, N)
    dlog_r = dz + dz.max(axis=1, keepdims=True) + (5 * tau + n + 4) * u  # log softmax, rows
    dlog_k = dz + dz.max(axis=0, keepdims=True) + (5 * tau + n + 4) * u  # and columns
    r, k = scipy.special.softmax(z, axis=1), scipy.special.softmax(z, axis=0)
    loss = (np.mean(scipy.special.logsumexp(z, axis=1) - np.diag(z))
            + np.mean(scipy.special.logsumexp(z, axis=0) - np.diag(z))) / 2
    loss_bound = (np.mean(np.diag(dlog_r)) + np.mean(np.diag(dlog_k))) / 2 + (n + 2) * u * loss
    g = (r + k - 2 * np.eye(n)) / (2 * n)  # (N, N) dL/dZ
    dg = (r * dlog_r + k * dlog_k) / (2 * n) + 2 * u * np.abs(g)

    def back(g, dg, eh, norm, eps_e, fh, eps_f, x):  # bound on dW = X^T (I - êê^T) dê / |e|
        deh = tau * g @ fh  # (N, D)
        ddeh = tau * (dg @ np.abs(fh) + np.abs(g) @ (eps_f + n * u * np.abs(fh)))
        dot = np.sum(eh * deh, axis=1, keepdims=True)  # (N, 1)
        ddot = np.sum(ddeh * np.abs(eh) + eps_e * np.abs(deh) + d * u * np.abs(eh * deh),
                      axis=1, keepdims=True)
        de = (deh - eh * dot) / norm
        dde = (ddeh + np.abs(eh) * ddot + eps_e * np.abs(dot)
               + 2 * u * (np.abs(deh) + np.abs(eh * dot))) / norm + eps_e * np.abs(de)
        return np.abs(x).T @ dde + n * u * np.abs(x).T @ np.abs(de), deh, ddeh

    bound_a, deh, ddeh = back(g, dg, eh, ne, eps_e, fh, eps_f, x)
    bound_b, _, _ = back(g.T, dg.T, fh, nf, eps_f, eh, eps_e, y)
    bound_s = np.sum(np.abs(eh) * ddeh + eps_e * np.abs(deh) + n * d * u * np.abs(eh * deh))
    return loss_bound, {"image_proj": bound_a, "text_proj": bound_b, "logit_scale": bound_s}


UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}


def test_runs_on_every_backend(xp, dtype_name):
    model = TinyCLIP.create(6, 4, 3, seed=0, dtype=getattr(np, dtype_name), xp=xp)
    rng = np.random.default_rng(3)
    pixels = rng.random((5, 6)).astype(dtype_name)  # the inputs the model sees, exactly
    tokens = rng.random((5, 4)).astype(dtype_name)
    loss, grads = model.loss_and_grads(put(xp, pixels, dtype_name), put(xp, tokens, dtype_name))
    # the reference: the same weights and inputs in float64, so only the arithmetic differs
    host = TinyCLIP({k: np.asarray(to_numpy(v), np.float64) for k, v in model.params.items()})
    ref_loss, ref_grads = host.loss_and_grads(pixels.astype(np.float64),
                                              tokens.astype(np.float64))
    # each side is within its own bound of the exact result, so they differ by at most the sum
    loss_bound, bound = clip_error_bounds(pixels, tokens, host.params, UNIT_ROUNDOFF[dtype_name])
    loss_bound64, bound64 = clip_error_bounds(pixels, tokens, host.params, UNIT_ROUNDOFF["float64"])
    for k, g in grads.items():
        assert_on_backend(g, model.params[k])
        error = np.abs(to_numpy(g) - ref_grads[k])
        assert np.all(error <= bound[k] + bound64[k]), (k, np.max(error / bound[k]))
    assert abs(float(loss) - float(ref_loss)) <= loss_bound + loss_bound64


def test_the_error_bounds_are_tight_enough_to_catch_a_float32_step():
    """The float64 bound lies far below float32's rounding: the float64 twin is a sharp check."""
    model = TinyCLIP.create(6, 4, 3, seed=0, dtype=np.float64)
    rng = np.random.default_rng(3)
    pixels, tokens = rng.random((5, 6)), rng.random((5, 4))
    _, grads = model.loss_and_grads(pixels, tokens)
    _, bounds = clip_error_bounds(pixels, tokens, model.params, UNIT_ROUNDOFF["float64"])
    for k, g in grads.items():
        assert np.max(2 * bounds[k]) < 1e-11 * np.max(np.abs(g)), k  # about 1e-12 of |g|
        rounded = np.asarray(g, np.float32).astype(np.float64)  # one float32 rounding
        assert np.any(np.abs(rounded - g) > 2 * bounds[k]), k


# ------------------------------------------------------------ bad input, one table

MODEL = TinyCLIP.create(6, 4, 3)
SIGLIP = TinyCLIP.create(6, 4, 3, loss="siglip")
PIXELS, TOKENS = np.ones((2, 6), np.float32), np.ones((2, 4), np.float32)


def params(**changes):
    """The CLIP model's parameters with some replaced (None removes the key)."""
    out = dict(MODEL.params) | changes
    return {k: v for k, v in out.items() if v is not None}


def strict_model():
    """MODEL on array-api-strict (the row is skipped where it is not installed)."""
    return MODEL.to(pytest.importorskip("array_api_strict"))


F32 = np.float32
# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("TinyCLIP.create", lambda: TinyCLIP.create(True, 3), TypeError,
     ["num_pixels must be an int", "bool"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(2.5, 3), TypeError, ["num_pixels", "float"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create("6", 3), TypeError, ["num_pixels", "str"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(0, 3), ValueError,
     ["num_pixels must be at least 1, got 0"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, -1), ValueError, ["vocab_size", "-1"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, 0), ValueError, ["embed_dim", "got 0"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, None), TypeError, ["embed_dim"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, seed="a"), TypeError,
     ["seed must be a non-negative int", "str"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, seed=-1), ValueError, ["seed", "-1"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, seed=1.5), TypeError, ["seed"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, seed=None), TypeError, ["seed"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=np.int64), TypeError,
     ["dtype must be float32 or float64", "int64"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=np.complex64), TypeError,
     ["dtype must be float32 or float64", "complex64"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=bool), TypeError, ["dtype", "bool"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=np.float16), TypeError,
     ["dtype must be float32 or float64", "float16"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=None), TypeError, ["dtype", "None"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype="nonsense"), TypeError,
     ["dtype must be float32 or float64", "nonsense"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype="a"), TypeError,
     ["dtype must be float32 or float64", "'a'"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, xp="numpy"), TypeError,
     ["xp must be an array library", "str"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, loss="hinge"), ValueError,
     ["loss must be one of ('clip', 'siglip')", "'hinge'"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, loss=None), ValueError, ["loss", "None"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(10**9, 10**9, 10**9), ValueError,
     ["embed_dim", "do not fit in memory"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(768, 50, 10**9), ValueError,
     ["embed_dim", "do not fit in memory"]),
    ("TinyCLIP", lambda: TinyCLIP(MODEL.params, loss="hinge"), ValueError,
     ["loss must be one of", "'hinge'"]),
    ("TinyCLIP", lambda: TinyCLIP(MODEL.params, loss="siglip"), ValueError,
     ["missing ['logit_bias']"]),
    ("TinyCLIP", lambda: TinyCLIP(SIGLIP.params), ValueError, ["unexpected ['logit_bias']"]),
    ("TinyCLIP", lambda: TinyCLIP(None), TypeError, ["params must be a dict", "NoneType"]),
    ("TinyCLIP", lambda: TinyCLIP(params(logit_scale=None)), ValueError,
     ["missing ['logit_scale']"]),
    ("TinyCLIP", lambda: TinyCLIP(params(image_proj=np.ones((6, 3)).tolist())), TypeError,
     ["params['image_proj'] must be an array", "list"]),
    ("TinyCLIP", lambda: TinyCLIP(params(image_proj=np.ones((6, 3), np.int64))), TypeError,
     ["params['image_proj']", "real floating"]),
    ("TinyCLIP", lambda: TinyCLIP(params(text_proj=np.ones((4, 3), bool))), TypeError,
     ["params['text_proj']", "real floating"]),
    ("TinyCLIP", lambda: TinyCLIP(params(text_proj=np.ones((4, 3), np.complex64))), TypeError,
     ["params['text_proj']", "real floating"]),
    ("TinyCLIP", lambda: TinyCLIP(params(image_proj=np.ones(6, F32))), ValueError,
     ["params['image_proj'] must have shape (P, D)", "(6,)"]),
    ("TinyCLIP", lambda: TinyCLIP(params(image_proj=np.ones((0, 3), F32))), ValueError,
     ["params['image_proj'] must be non-empty"]),
    ("TinyCLIP", lambda: TinyCLIP(params(text_proj=np.ones((4, 5), F32))), ValueError,
     ["the same D", "(6, 3)", "(4, 5)"]),
    ("TinyCLIP", lambda: TinyCLIP(params(logit_scale=np.ones(1, F32))), ValueError,
     ["params['logit_scale']", "shape ()"]),
    ("TinyCLIP", lambda: TinyCLIP(params(logit_scale=2.0)), TypeError,
     ["params['logit_scale'] must be an array", "float"]),
    ("TinyCLIP", lambda: TinyCLIP(params(logit_scale=np.asarray(np.nan, F32))), ValueError,
     ["params['logit_scale'] contains NaN"]),
    ("TinyCLIP", lambda: TinyCLIP(params(logit_scale=np.asarray(1000, F32))), ValueError,
     ["params['logit_scale']", "overflow"]),
    ("TinyCLIP", lambda: TinyCLIP(params(image_proj=np.full((6, 3), np.inf, F32))), ValueError,
     ["params['image_proj'] contains NaN or infinite"]),
    ("TinyCLIP", lambda: TinyCLIP(params(text_proj=np.ones((4, 3)))), TypeError,
     ["params must all be float32 or all float64", "float64"]),
    ("TinyCLIP", lambda: TinyCLIP({k: v.astype(np.float16) for k, v in MODEL.params.items()}),
     TypeError, ["params", "float32"]),
    ("TinyCLIP.encode_images", lambda: MODEL.encode_images(np.ones((2, 5), F32)), ValueError,
     ["pixels must have 6 columns", "got 5"]),
    ("TinyCLIP.encode_images", lambda: MODEL.encode_images(np.ones((2, 6))), TypeError,
     ["pixels has dtype float64 but the model is float32"]),
    ("TinyCLIP.encode_images", lambda: MODEL.encode_images(np.ones(6, F32)), ValueError,
     ["pixels must be 2-D"]),
    ("TinyCLIP.encode_images", lambda: MODEL.encode_images(None), TypeError,
     ["pixels must be an array"]),
    ("TinyCLIP.encode_images", lambda: MODEL.encode_images(np.full((2, 6), np.nan, F32)),
     ValueError, ["pixels contains NaN"]),
    ("TinyCLIP.encode_images", lambda: strict_model().encode_images(PIXELS), TypeError,
     ["pixels must be in the model's array library"]),
    ("TinyCLIP.encode_texts", lambda: MODEL.encode_texts(np.ones((2, 3), F32)), ValueError,
     ["token_features must have 4 columns"]),
    ("TinyCLIP.encode_texts", lambda: MODEL.encode_texts(np.ones((2, 4), np.int64)), TypeError,
     ["token_features must have a real floating dtype"]),
    ("TinyCLIP.encode_texts", lambda: MODEL.encode_texts(np.ones((0, 4), F32)), ValueError,
     ["token_features must be non-empty"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(np.ones((2, 5), F32), TOKENS),
     ValueError, ["pixels must have 6 columns"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, np.ones((2, 3), F32)),
     ValueError, ["token_features must have 4 columns"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(np.ones((2, 6)), TOKENS), TypeError,
     ["pixels has dtype float64"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, np.ones((3, 4), F32)),
     ValueError, ["same number of pairs"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS * np.nan, TOKENS),
     ValueError, ["pixels contains NaN"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, "tokens"), TypeError,
     ["token_features must be an array"]),
    ("TinyCLIP.to", lambda: MODEL.to("cupy"), TypeError, ["xp must be an array library"]),
    ("TinyCLIP.to", lambda: MODEL.to(None), TypeError, ["xp must be an array library"]),
    # the pairs were counted only inside the loss, which spoke of image_embeds and text_embeds
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, np.ones((3, 4), F32)),
     ValueError, ["pixels and token_features must hold the same number of pairs B", "2 and 3"]),
    ("as_batch", lambda: as_batch(MODEL.params, np.ones((3, 6), F32), TOKENS), ValueError,
     ["pixels and token_features must hold the same number of pairs B", "3 and 2"]),
    ("as_batch", lambda: as_batch(MODEL.params, PIXELS, [[1e39, 0.0, 0.0, 0.0]] * 2), ValueError,
     ["token_features holds numbers beyond the range of the model's dtype float32"]),
    ("as_batch", lambda: as_batch(None, PIXELS, TOKENS), TypeError,
     ["params must be a TinyCLIP's parameters", "NoneType"]),
    ("as_batch", lambda: as_batch(MODEL.params, PIXELS, None), TypeError,
     ["token_features must be an array"]),
    ("TinyCLIP", lambda: TinyCLIP(params(logit_scale=strict_model().params["logit_scale"])),
     TypeError, ["params['image_proj'] (numpy)", "params['logit_scale'] (array_api_strict)"]),
    ("TinyCLIP.encode_texts", lambda: strict_model().encode_texts(TOKENS), TypeError,
     ["token_features (numpy) and the model (array_api_strict) cannot be mixed"]),
    # sizes beyond any array axis: OverflowError while writing the memory message before
    *[("TinyCLIP.create", lambda kw=kw: TinyCLIP.create(**{"num_pixels": 6, "vocab_size": 4,
                                                          **kw}), ValueError,
       [f"{next(iter(kw))}, a 401-digit number, is more than any array can hold"])
      for kw in ({"num_pixels": 10**400}, {"vocab_size": 10**400}, {"embed_dim": 10**400})],
    # a dtype given as a value: np.dtype(np.float64(1.0)) is float64, so it passed
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=np.float64(1.0)), TypeError,
     ["dtype must be float32 or float64, got a value"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, dtype=np.ones(2, F32)), TypeError,
     ["dtype must be float32 or float64, got a value"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(3, 3, encoder="cnn"), ValueError,
     ["encoder must be one of ('linear', 'transformer')", "'cnn'"]),
    ("TinyCLIP.create", lambda: TinyCLIP.create(10, 3, encoder="transformer"), ValueError,
     ["num_pixels must be 3 S^2", "got 10"]),
    ("TinyCLIP", lambda: TinyCLIP(MODEL.params, encoder="transformer"), ValueError,
     ["encoder='transformer' must have 'visual.positional_embedding'"]),
    ("TinyCLIP.param_shapes", lambda: TinyCLIP.param_shapes(6, 4, 3, encoder=None), ValueError,
     ["encoder must be one of"]),
    ("TinyCLIP.param_shapes", lambda: TinyCLIP.param_shapes(6, 4.0, 3), TypeError,
     ["vocab_size must be an int"]),
    ("TinyCLIP.param_shapes", lambda: TinyCLIP.param_shapes(6, 4, 3, loss="hinge"), ValueError,
     ["loss must be one of"]),
    ("TinyCLIP.text_inputs", lambda: MODEL.text_inputs(["a"], ["a"]), TypeError,
     ["vocab must be a numclip.text.Vocabulary", "list"]),
    ("TinyCLIP.text_inputs", lambda: MODEL.text_inputs(_vocab(5), ["a b"]), ValueError,
     ["vocab has 5 words but the model knows 4"]),
    ("TinyCLIP.text_inputs", lambda: MODEL.text_inputs(_vocab(4), "a b"), TypeError,
     ["texts must be a list of str, got a single str"]),
    ("TinyCLIP.embed", lambda: MODEL.embed(PIXELS, TOKENS[:1]), ValueError,
     ["same number of pairs B"]),
    ("TinyCLIP.embed", lambda: MODEL.embed(PIXELS, None), TypeError,
     ["token_features must be an array"]),
    ("TinyCLIP.embed_backward", lambda: MODEL.embed_backward(PIXELS, PIXELS, None), TypeError,
     ["cache must be the cache that embed returned"]),
    ("TinyCLIP.embed_backward", lambda: MODEL.embed_backward(
        np.ones((2, 2), F32), np.ones((2, 3), F32), MODEL.embed(PIXELS, TOKENS)[2]), ValueError,
     ["dimage_embeds must have 3 columns"]),
    ("TinyCLIP.embed_backward", lambda: MODEL.embed_backward(
        np.ones((3, 3), F32), np.ones((3, 3), F32), MODEL.embed(PIXELS, TOKENS)[2]), ValueError,
     ["dimage_embeds must have 2 rows, one per image of the batch embed saw, got 3"]),
    ("TinyCLIP.embed_backward", lambda: MODEL.embed_backward(
        np.ones((2, 3), F32), np.ones((3, 3), F32), MODEL.embed(PIXELS, TOKENS)[2]), ValueError,
     ["dtext_embeds must have 2 rows, one per text of the batch embed saw, got 3"]),
    ("TinyCLIP.embed", lambda: MODEL.embed(PIXELS, TOKENS, paired=1), TypeError,
     ["paired must be True or False"]),
    ("TinyCLIP.embed", lambda: MODEL.embed(PIXELS, TOKENS[:1]), ValueError,
     ["same number of pairs B"]),
    ("as_batch", lambda: as_batch(MODEL.params, PIXELS, TOKENS, paired="no"), TypeError,
     ["paired must be True or False"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, TOKENS, TOKENS[:, :3]),
     ValueError, ["negatives must have 4 columns"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, TOKENS, [1.0, 2.0]),
     ValueError, ["negatives"]),
    ("TinyCLIP.loss_and_grads", lambda: MODEL.loss_and_grads(PIXELS, TOKENS[:1], TOKENS),
     ValueError, ["same number of pairs B"]),
    ("TinyCLIP.loss_and_grads", lambda: TinyCLIP.create(6, 4, 3, loss="siglip").loss_and_grads(
        PIXELS, TOKENS, TOKENS), ValueError, ["negatives need loss='clip'", "'siglip'"]),
]


def _vocab(words):
    from numclip.text import Vocabulary

    return Vocabulary.build([" ".join(f"w{i}" for i in range(words - 1))])


@pytest.mark.filterwarnings("error")  # no RuntimeWarning from NaN arithmetic on the way
@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    assert public_callables(model_module) - {row[0] for row in BAD_INPUT} == set()


# ------------------------------------------------------------ valid unusual input

def test_inputs_typed_as_lists_take_the_models_dtype():
    """A list of numbers has no dtype anyone chose: it is taken in the model's."""
    want = MODEL.loss_and_grads(PIXELS, TOKENS)
    got = MODEL.loss_and_grads(PIXELS.tolist(), TOKENS.tolist())
    assert got[0] == want[0] and got[0].dtype == np.float32
    assert all(np.array_equal(got[1][k], want[1][k]) for k in want[1])
    np.testing.assert_array_equal(MODEL.encode_images(PIXELS.tolist()),
                                  MODEL.encode_images(PIXELS))
    np.testing.assert_array_equal(MODEL.encode_texts(tuple(map(tuple, TOKENS))),
                                  MODEL.encode_texts(TOKENS))


def test_numpy_integer_sizes_and_dtype_spellings_give_the_same_weights():
    ref = TinyCLIP.create(6, 4, 3, seed=5, dtype=np.float64)
    for same in (TinyCLIP.create(np.int64(6), np.int32(4), np.uint8(3), seed=np.int64(5),
                                 dtype="float64"),
                 TinyCLIP.create(6, 4, 3, seed=5, dtype=np.dtype("f8")),
                 TinyCLIP.create(6, 4, 3, seed=5, dtype=float)):
        assert all(np.array_equal(same.params[k], ref.params[k]) for k in ref.params)
        assert all(v.dtype == np.float64 for v in same.params.values())


def test_fortran_order_and_strided_inputs_give_the_same_answer():
    rng = np.random.default_rng(0)
    pixels, tokens = rng.random((4, 12), dtype=np.float32), rng.random((4, 4), dtype=np.float32)
    loss, grads = MODEL.loss_and_grads(pixels[:, ::2], np.asfortranarray(tokens))
    ref_loss, ref_grads = MODEL.loss_and_grads(np.ascontiguousarray(pixels[:, ::2]), tokens)
    assert float(loss) == float(ref_loss)
    for k in grads:
        np.testing.assert_array_equal(grads[k], ref_grads[k])
    np.testing.assert_array_equal(MODEL.encode_images(np.asfortranarray(pixels[:, ::2])),
                                  MODEL.encode_images(np.ascontiguousarray(pixels[:, ::2])))


def test_a_model_rebuilt_from_its_params_and_scalar_params_is_accepted():
    trained = dict(MODEL.params, logit_scale=np.float32(3.0))  # a NumPy scalar, as a step leaves
    model = TinyCLIP(trained)
    assert model.embed_dim == 3 and model.to(np).params.keys() == MODEL.params.keys()
    assert TinyCLIP(dict(SIGLIP.params), "siglip").loss == "siglip"


def test_the_caption_argument_has_the_name_its_errors_give_it():
    """Every method that takes the captions' features calls them token_features, the name
    as_batch's and _as_ids' messages use (embed once called them texts)."""
    for method in (TinyCLIP.embed, TinyCLIP.encode_texts, TinyCLIP.loss_and_grads):
        assert "token_features" in inspect.signature(method).parameters, method.__name__
