"""PyTorch autograd on open_clip's ClipLoss formula as an independent oracle.

Skipped where torch is not installed; numclip never depends on it.
"""

import math

import numpy as np
import pytest
from conftest import FN, U, assert_within, clip_error_bounds

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
    # two float64 computations of one loss: each within half the derived bound of
    # conftest.clip_error_bounds (5-1000x tighter than the 1e-12 / 1e-10 this replaced)
    bounds = clip_error_bounds(img, txt, s, "float64")
    assert_within(loss, expected.item(), bounds["loss"], "loss")
    for key, tensor in [("image_embeds", timg), ("text_embeds", ttxt), ("logit_scale", ts)]:
        assert_within(grads[key], tensor.grad.numpy(), bounds[key], key)


def test_softmax_family_and_normalize_match_torch():
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4, 6)) * 50
    tz = torch.tensor(z)
    # the budgets of test_softmax.py and test_normalize.py for |z| <= m, n = 6 columns,
    # twice (torch rounds too): softmax (4 m + n + FN + 1) u relatively, lse
    # (4 m + n + 2 FN + 2) u and log_softmax (7 m + 2 n + 2 FN + 2) u absolutely (log p =
    # z - lse(z) cancels near 0), unit rows (D/2 + 3) u
    u, m, n = U["float64"], np.max(np.abs(z)), z.shape[1]
    p = torch.softmax(tz, dim=1).numpy()
    assert_within(softmax(z), p, 2 * (4 * m + n + FN + 1) * u * p, "softmax")
    assert_within(log_softmax(z), torch.log_softmax(tz, dim=1).numpy(),
                  2 * (7 * m + 2 * n + 2 * FN + 2) * u, "log_softmax")
    assert_within(logsumexp(z), torch.logsumexp(tz, dim=1).numpy(),
                  2 * (4 * m + n + 2 * FN + 2) * u, "logsumexp")
    assert_within(l2_normalize(z)[0], F.normalize(tz, dim=-1).numpy(), 2 * (n / 2 + 3) * u,
                  "l2_normalize")
