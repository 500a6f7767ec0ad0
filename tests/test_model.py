import numpy as np
import pytest
from conftest import RTOL, assert_on_backend, put

from numclip import to_numpy
from numclip.gradcheck import check_gradients
from numclip.model import INIT_LOGIT_SCALE, TinyCLIP


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_end_to_end_gradients_match_finite_differences_float64(loss):
    model = TinyCLIP.create(num_pixels=7, vocab_size=5, embed_dim=3, seed=1, dtype=np.float64,
                            loss=loss)
    rng = np.random.default_rng(2)
    pixels, tokens = rng.random((6, 7)), rng.random((6, 5))
    _, grads = model.loss_and_grads(pixels, tokens)
    errors = check_gradients(lambda: model.loss_and_grads(pixels, tokens)[0], model.params, grads)
    assert max(errors.values()) < 1e-7, errors


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
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-6)


def test_runs_on_every_backend(xp, dtype_name):
    host = TinyCLIP.create(6, 4, 3, seed=0, dtype=np.float64)
    model = TinyCLIP.create(6, 4, 3, seed=0, dtype=getattr(np, dtype_name), xp=xp)
    rng = np.random.default_rng(3)
    pixels, tokens = rng.random((5, 6)), rng.random((5, 4))
    loss, grads = model.loss_and_grads(put(xp, pixels, dtype_name), put(xp, tokens, dtype_name))
    ref_loss, ref_grads = host.loss_and_grads(pixels, tokens)
    for k, g in grads.items():
        assert_on_backend(g, model.params[k])
        np.testing.assert_allclose(to_numpy(g), ref_grads[k], rtol=100 * RTOL[dtype_name],
                                   atol=100 * RTOL[dtype_name])
    assert float(loss) == pytest.approx(float(ref_loss), rel=10 * RTOL[dtype_name])


@pytest.mark.parametrize("pixels, tokens, error, match", [
    (np.ones((4, 5), np.float32), np.ones((4, 4), np.float32), ValueError, "pixels must have 6"),
    (np.ones((4, 6), np.float32), np.ones((4, 3), np.float32), ValueError, "token_features must"),
    (np.ones((4, 6), np.float64), np.ones((4, 4), np.float32), TypeError, "pixels has dtype"),
    (np.ones((4, 6), np.float32), np.ones((3, 4), np.float32), ValueError, "same number of pairs"),
    (np.full((4, 6), np.nan, np.float32), np.ones((4, 4), np.float32), ValueError,
     "pixels contains"),
])
def test_bad_batches_are_named(pixels, tokens, error, match):
    with pytest.raises(error, match=match):
        TinyCLIP.create(6, 4, 3).loss_and_grads(pixels, tokens)


@pytest.mark.parametrize("kwargs", [dict(num_pixels=0, vocab_size=3), dict(num_pixels=3,
                                    vocab_size=3, embed_dim=0), dict(num_pixels=2.5, vocab_size=3)])
def test_bad_sizes(kwargs):
    with pytest.raises(ValueError, match="must be a positive int"):
        TinyCLIP.create(**kwargs)
