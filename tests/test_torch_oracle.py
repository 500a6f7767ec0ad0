"""PyTorch autograd on open_clip's ClipLoss formula as an independent oracle.

Skipped where torch is not installed; numclip never depends on it.
"""

import math

import numpy as np
import pytest

from numclip import clip_loss, l2_normalize, log_softmax, logsumexp, softmax

torch = pytest.importorskip("torch")
F = torch.nn.functional


def open_clip_loss(image_features, text_features, logit_scale):
    """open_clip's ClipLoss.forward (single process), with CLIP's normalization and exp(scale)."""
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    scale = logit_scale.exp()
    logits_per_image = scale * image_features @ text_features.T
    logits_per_text = scale * text_features @ image_features.T
    labels = torch.arange(logits_per_image.shape[0])
    return (F.cross_entropy(logits_per_image, labels)
            + F.cross_entropy(logits_per_text, labels)) / 2


@pytest.mark.parametrize("n, d", [(8, 5), (3, 16)])
def test_loss_and_gradients_match_torch_autograd(n, d):
    rng = np.random.default_rng(n * d)
    img, txt = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    s = math.log(1 / 0.07)
    timg = torch.tensor(img, requires_grad=True)
    ttxt = torch.tensor(txt, requires_grad=True)
    ts = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    expected = open_clip_loss(timg, ttxt, ts)
    expected.backward()
    loss, grads = clip_loss(img, txt, s)
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grads["image_embeds"], timg.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["text_embeds"], ttxt.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert grads["logit_scale"] == pytest.approx(ts.grad.item(), rel=1e-10)


def test_softmax_family_and_normalize_match_torch():
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4, 6)) * 50
    tz = torch.tensor(z)
    np.testing.assert_allclose(softmax(z), torch.softmax(tz, dim=1).numpy(), rtol=1e-12)
    # log p = z - lse(z) cancels near 0: its error is absolute, a few ulps of max|z| (~100)
    np.testing.assert_allclose(log_softmax(z), torch.log_softmax(tz, dim=1).numpy(), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(logsumexp(z), torch.logsumexp(tz, dim=1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(l2_normalize(z)[0], F.normalize(tz, dim=-1).numpy(), rtol=1e-12)
