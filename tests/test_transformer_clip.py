"""The transformer TinyCLIP: gradients, inputs, and the one training loop it shares.

The layers and encoders are checked on their own in test_nn.py and test_encoders.py;
here the whole model: its loss gradient for every parameter, its text inputs, and that
train(), checkpoints with exact resume, the distributed path and zero-shot treat it
as they treat the linear model.
"""

import numpy as np
import pytest

from numclip import distributed as dist
from numclip.model import TRANSFORMER, TinyCLIP
from numclip.text import Vocabulary
from numclip.train import TrainConfig, load_checkpoint, train
from numclip.zeroshot import class_embeddings, zero_shot_scores

CAPTIONS = ["a red circle", "two blue squares", "a green triangle", "one red square",
            "three blue circles"]
VOCAB = Vocabulary.build(CAPTIONS)
SIDE = 8  # 8 x 8 images: 4 patches of 4 x 4, plus the class token


def model(dtype=np.float64, loss="clip", seed=0):
    m = TinyCLIP.create(3 * SIDE * SIDE, len(VOCAB), 6, seed=seed, dtype=dtype, loss=loss,
                        encoder="transformer")
    rng = np.random.default_rng(seed + 1)
    for v in m.params.values():  # off open_clip's init, so no gradient is zero by symmetry
        v += 0.05 * rng.standard_normal(v.shape).astype(v.dtype)
    return m


def batch(m, n=5, seed=2):
    pixels = np.random.default_rng(seed).random((n, 3 * SIDE * SIDE)).astype(
        m.params["visual.proj"].dtype)
    return pixels, m.text_inputs(VOCAB, CAPTIONS[:n])


@pytest.mark.parametrize("loss", ["clip", "siglip"])
def test_every_parameter_gradient_matches_centred_finite_differences(loss):
    """Three seeded entries of every parameter, each by a centred difference in float64
    with h = 1e-6: truncation O(h^2) ~ 1e-12 and rounding ~ u |L| / h ~ 1e-9 for a loss
    of order 1, so 1e-7 bounds the difference with room. (One random direction per
    parameter is not enough here: the loss is invariant to scaling an encoder's output,
    and for visual.proj a random direction's slope came out 3e-7 of the gradient's norm.)"""
    m = model(loss=loss)
    pixels, ids = batch(m)
    _, grads = m.loss_and_grads(pixels, ids)
    rng = np.random.default_rng(11)
    h, worst = 1e-6, {}
    for key, value in m.params.items():
        flat = value.reshape(-1)  # a view: perturbing it perturbs the model
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            saved = flat[i]
            flat[i] = saved + h
            up = float(m.loss_and_grads(pixels, ids)[0])
            flat[i] = saved - h
            down = float(m.loss_and_grads(pixels, ids)[0])
            flat[i] = saved
            error = abs((up - down) / (2 * h) - np.reshape(grads[key], -1)[i])
            worst[key] = max(worst.get(key, 0.0), error)
    assert max(worst.values()) < 1e-7, {k: e for k, e in worst.items() if e >= 1e-7}


def test_hard_negative_gradients_match_centred_finite_differences():
    """NegCLIP through the transformer: captions and negatives go through the text tower
    as one batch, and every parameter's gradient still matches (same bound as above)."""
    m = model()
    pixels, ids = batch(m, n=4)
    negatives = m.text_inputs(VOCAB, ["red a circle", "blue two squares", "a triangle green"])
    _, grads = m.loss_and_grads(pixels, ids, negatives)
    rng = np.random.default_rng(12)
    h, worst = 1e-6, {}
    for key, value in m.params.items():
        flat = value.reshape(-1)
        for i in rng.choice(flat.size, size=min(2, flat.size), replace=False):
            saved = flat[i]
            flat[i] = saved + h
            up = float(m.loss_and_grads(pixels, ids, negatives)[0])
            flat[i] = saved - h
            down = float(m.loss_and_grads(pixels, ids, negatives)[0])
            flat[i] = saved
            worst[key] = max(worst.get(key, 0.0),
                             abs((up - down) / (2 * h) - np.reshape(grads[key], -1)[i]))
    assert max(worst.values()) < 1e-7, {k: e for k, e in worst.items() if e >= 1e-7}


def test_a_wrong_gradient_fails_that_check():
    m = model()
    pixels, ids = batch(m)
    _, grads = m.loss_and_grads(pixels, ids)
    flat = m.params["visual.ln_post.weight"].reshape(-1)
    saved, h = flat[0], 1e-6
    flat[0] = saved + h
    up = float(m.loss_and_grads(pixels, ids)[0])
    flat[0] = saved - h
    down = float(m.loss_and_grads(pixels, ids)[0])
    flat[0] = saved
    wrong = grads["visual.ln_post.weight"][0] * 1.001  # a 0.1% slip
    assert abs((up - down) / (2 * h) - wrong) > 1e-7


def test_text_inputs_are_start_words_end_then_padding():
    m = model()
    ids = m.text_inputs(VOCAB, ["a red circle", " ".join(["red"] * 30)])
    v = len(VOCAB)
    assert ids.shape == (2, TRANSFORMER["context_length"]) and ids.dtype == np.int64
    assert list(ids[0, :5]) == [v, VOCAB.index("a"), VOCAB.index("red"), VOCAB.index("circle"),
                                v + 1]
    assert not ids[0, 5:].any()  # zero padding after <end>
    assert ids[1, -1] == v + 1  # truncated, keeping <end> last
    assert (np.argmax(ids, axis=1) == [4, TRANSFORMER["context_length"] - 1]).all()


def test_the_distributed_step_on_one_rank_is_the_models_own():
    m = model()
    pixels, ids = batch(m, n=4)
    want_loss, want = m.loss_and_grads(pixels, ids)
    got_loss, got = dist.distributed_loss_and_grads(m, pixels, ids, dist.SingleProcessComm())
    assert got.keys() == want.keys()
    # float64, the same operations but for the loss's own (fused vs local) summation order
    np.testing.assert_allclose(float(got_loss), float(want_loss), rtol=1e-13)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-14, err_msg=key)


SMALL = dict(encoder="transformer", batch_size=16, train_size=48, eval_size=24, embed_dim=8)


def test_a_resumed_transformer_run_takes_exactly_the_steps_of_an_uninterrupted_one(tmp_path):
    straight = train(TrainConfig(epochs=2, **SMALL), quiet=True)
    path = tmp_path / "run.npz"
    train(TrainConfig(epochs=1, **SMALL), out=path, quiet=True)
    resumed = train(TrainConfig(epochs=2, **SMALL), resume=path, out=path, quiet=True)
    assert resumed.history == straight.history
    for key, value in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[key], value, err_msg=key)
    reloaded = load_checkpoint(path)
    assert reloaded.model.encoder == "transformer" and reloaded.epoch == 2


def test_a_checkpoint_of_another_encoder_is_refused(tmp_path):
    path = tmp_path / "linear.npz"
    train(TrainConfig(epochs=1, **(SMALL | {"encoder": "linear"})), out=path, quiet=True)
    from numclip.train import CheckpointError

    with pytest.raises(CheckpointError, match="encoder: checkpoint 'linear', asked "
                                              "'transformer'"):
        train(TrainConfig(epochs=2, **SMALL), resume=path, quiet=True)


def test_zero_shot_works_through_the_models_text_inputs():
    m = model(dtype=np.float32)
    embeds = class_embeddings(m, VOCAB, ["red circle", "blue square"], ["a {}"])
    scores = zero_shot_scores(m, batch(m, n=3)[0], embeds)
    assert embeds.shape == (2, 6) and scores.shape == (3, 2) and scores.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeds, axis=1), 1, rtol=1e-6)


def test_float32_in_float32_out():
    m = model(dtype=np.float32)
    pixels, ids = batch(m)
    loss, grads = m.loss_and_grads(pixels, ids)
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    assert m.encode_images(pixels).dtype == np.float32


@pytest.mark.parametrize("texts, error, words", [
    (np.zeros((2, TRANSFORMER["context_length"]), np.int64), ValueError, ["<end> token"]),
    (np.ones((2, 3), np.float32), TypeError, ["integer token ids"]),
    (np.full((2, 4), 10**6), ValueError, ["ids in [0,"]),
    (np.ones((2, TRANSFORMER["context_length"] + 1), np.int64), ValueError,
     ["more than the model's context_length"]),
])
def test_bad_text_ids_are_refused(texts, error, words):
    m = model()
    with pytest.raises(error) as info:
        m.loss_and_grads(batch(m, n=2)[0], texts)
    assert all(w in str(info.value) for w in words), str(info.value)
