r"""The modality gap: where image and text embeddings sit on the sphere.

Liang et al., NeurIPS 2022, "Mind the Gap: Understanding the Modality Gap in Multi-modal
Contrastive Representation Learning" (code: github.com/Weixin-Liang/Modality-Gap) found
that CLIP's image embeddings and its text embeddings occupy two separate narrow cones of
the unit sphere.  They measure it with

- the **gap vector** :math:`\Delta = \bar x - \bar y`, the difference of the mean unit
  image embedding and the mean unit text embedding, and its norm, the *gap distance*
  (0.82 for OpenAI's ViT-B/32 on MSCOCO);
- the **cone** of each modality: the mean cosine similarity over all pairs of distinct
  embeddings (1: every embedding points one way; about 0: spread over the sphere);
- the **shifting experiment**: move both modalities towards each other along
  :math:`\Delta`, re-normalize, and read the contrastive loss.  At CLIP's
  :math:`\tau = 1/100` they found the loss at its minimum near the trained gap, so that
  closing the gap raises it; at larger :math:`\tau` closing it lowers the loss.

Every function here L2-normalizes the rows of its inputs first, as the paper does: the
gap is a property of directions.  ``benchmarks/modality_gap.py`` measures all three on
the tiny CLIP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from numclip.backend import (
    array_namespace,
    array_namespace_of,
    as_bool,
    as_embedding_pair,
    as_float_array,
    as_log_scale,
    as_numpy,
    as_real_scalar,
    as_tile_size,
    to_numpy,
)
from numclip.losses import clip_loss
from numclip.normalize import l2_normalize

__all__ = ["ModalityGap", "modality_gap", "shift_embeddings", "gap_shift_losses"]


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class ModalityGap:
    """What :func:`modality_gap` measures; arrays of the embeddings' library and dtype.

    Construction checks the fields' kinds: ``vector`` a 1-D float array (a list becomes
    a float64 NumPy array), the others 0-d arrays of its library and dtype, all finite;
    a ``TypeError`` or ``ValueError`` names the field.
    """

    vector: Any  # (D,) Delta = mean unit image row - mean unit text row
    distance: Any  # () ||Delta||_2, the paper's "gap distance"
    image_cone: Any  # () mean cosine similarity of two distinct image embeddings
    text_cone: Any  # () mean cosine similarity of two distinct text embeddings

    def __post_init__(self):
        vector = as_float_array(self.vector, "vector")
        if vector.ndim != 1:
            raise ValueError(f"vector must be 1-D with shape (D,), got shape "
                             f"{tuple(vector.shape)}")
        object.__setattr__(self, "vector", vector)
        for name in ("distance", "image_cone", "text_cone"):
            value = getattr(self, name)
            if not array_api_compat.is_array_api_obj(value):
                raise TypeError(f"{name} must be a 0-d array of vector's library and dtype, "
                                f"got {type(value).__name__}")
            value = as_float_array(value, name)
            if value.ndim != 0:
                raise ValueError(f"{name} must be a 0-d array, got shape {tuple(value.shape)}")
            array_namespace_of({"vector": vector, name: value})
            if value.dtype != vector.dtype:
                raise TypeError(f"{name} must have vector's dtype {vector.dtype}, "
                                f"got {value.dtype}")


def modality_gap(image_embeds, text_embeds) -> ModalityGap:
    r"""The gap between two modalities and the cone of each (Liang et al., 2022).

    Rows are L2-normalized first (:math:`x_i \leftarrow x_i / \lVert x_i \rVert`), then

    .. math:: \Delta = \frac1N \sum_i x_i - \frac1M \sum_j y_j, \qquad
              \text{distance} = \lVert \Delta \rVert_2, \qquad
              \text{cone}(x) = \frac{1}{N(N-1)} \sum_{i \ne j} x_i^\top x_j .

    The cone needs no ``(N, N)`` matrix.  With :math:`s = \sum_i x_i = N \bar x`,

    .. math:: \lVert s \rVert^2 = \sum_{i,j} x_i^\top x_j
              = \sum_i \lVert x_i \rVert^2 + \sum_{i \ne j} x_i^\top x_j
              = N + \sum_{i \ne j} x_i^\top x_j ,

    because every row has unit norm, so

    .. math:: \text{cone}(x) = \frac{\lVert s \rVert^2 - N}{N(N-1)}
              = \frac{N \lVert \bar x \rVert^2 - 1}{N - 1} ,

    one mean and one dot product.  It lies in :math:`[-1/(N-1), 1]`: the pairs
    :math:`i \ne j` leave out the N self-similarities of 1, as the paper's own code does.

    Args:
        image_embeds: ``(N, D)`` image embeddings, ``N >= 2``; any non-zero lengths.
        text_embeds: ``(M, D)`` text embeddings, ``M >= 2``; ``M`` need not be ``N``
            (the rows need not be pairs): one dtype and array library with the images.

    Returns:
        :class:`ModalityGap`: ``vector`` ``(D,)``, ``distance``, ``image_cone`` and
            ``text_cone`` (0-d), all in the embeddings' library and dtype.

    Raises:
        TypeError, ValueError: as :func:`numclip.backend.as_embedding_pair` (with
            ``paired=False``); fewer than 2 rows in either; a row of norm below 1e-12
            (the floor of :func:`numclip.normalize.l2_normalize`), which has no direction.
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds, paired=False)
    for name, x in (("image_embeds", image_embeds), ("text_embeds", text_embeds)):
        if x.shape[0] < 2:
            raise ValueError(f"{name} must have at least 2 rows: a cone is the mean cosine of "
                             f"pairs of distinct rows, got shape {tuple(x.shape)}")
    xp = array_namespace(image_embeds)
    _, _, image_mean, text_mean = _unit_rows_and_means(image_embeds, text_embeds)
    vector = image_mean - text_mean  # (D,)
    return ModalityGap(vector=vector, distance=xp.sqrt(xp.vecdot(vector, vector)),
                       image_cone=_cone(image_mean, image_embeds.shape[0], xp),
                       text_cone=_cone(text_mean, text_embeds.shape[0], xp))


def _cone(mean, n, xp):
    """Mean cosine of the ``n (n - 1)`` pairs of distinct unit rows whose mean is ``mean``."""
    return (n * xp.vecdot(mean, mean) - 1) / (n - 1)  # () the closed form above


def _unit_rows_and_means(image_embeds, text_embeds):
    """Both modalities' unit rows, ``(N, D)`` and ``(M, D)``, and their means, ``(D,)``."""
    xp = array_namespace(image_embeds)
    image_unit = _unit_rows(image_embeds, "image_embeds")  # (N, D)
    text_unit = _unit_rows(text_embeds, "text_embeds")  # (M, D)
    return image_unit, text_unit, xp.mean(image_unit, axis=0), xp.mean(text_unit, axis=0)


def _unit_rows(x, name):
    """``x``'s rows scaled to unit length; a row too short to have a direction is refused."""
    y, (_, norm, eps) = l2_normalize(x)
    short = to_numpy(norm)[:, 0] < eps  # l2_normalize would give x / eps: not a unit row
    if short.any():
        i = int(np.argmax(short))
        raise ValueError(f"{name} row {i} has norm {float(to_numpy(norm)[i, 0]):.3g}, below "
                         f"{eps:g}: it has no direction to compare; drop it or fix its encoder")
    return y


def shift_embeddings(image_embeds, text_embeds, lam, *, renormalize: bool = True):
    r"""Move both modalities along the gap vector: Liang et al.'s shifting experiment.

    With unit rows :math:`x_i`, :math:`y_j` and :math:`\Delta` as in :func:`modality_gap`,

    .. math:: x_i' = x_i - \tfrac{\lambda}{2}\,\Delta, \qquad
              y_j' = y_j + \tfrac{\lambda}{2}\,\Delta ,

    then each row is L2-normalized again (``renormalize=True``).  Before that, the means
    are :math:`\bar x' - \bar y' = (1 - \lambda)\,\Delta`: ``lam = 0`` changes nothing,
    ``lam = 1`` makes the means equal, ``lam < 0`` widens the gap.  Re-normalizing moves
    the means a little, so the gap after it is small but not exactly zero at ``lam = 1``.

    The paper's code steps along the *unit* gap vector, :math:`\pm\tfrac{\delta}{2}
    \Delta / \lVert\Delta\rVert`; its :math:`\delta` is :math:`\lambda \lVert \Delta
    \rVert` here.  Measuring :math:`\lambda` in gaps makes 1 mean "closed" for every model.

    Args:
        image_embeds: ``(N, D)`` image embeddings; any non-zero lengths.
        text_embeds: ``(M, D)`` text embeddings, one dtype and library with the images.
        lam: :math:`\lambda`, a finite real number (a Python number or a 0-d float array;
            it does not change the embeddings' dtype).  For ``|lam| <= 1`` every shifted
            row keeps a norm of at least ``1 - |lam|``, since ``||Delta|| <= 2``.
        renormalize: L2-normalize the shifted rows (the experiment); ``False`` returns
            them as shifted, to see the means meet.

    Returns:
        ``(image_shifted, text_shifted)``, shapes, dtype and library of the inputs.

    Raises:
        TypeError, ValueError: as :func:`numclip.backend.as_embedding_pair` (with
            ``paired=False``) and :func:`numclip.backend.as_real_scalar` for ``lam``;
            a row of norm below 1e-12; a ``lam`` so large that a shifted row overflows,
            or that moves a row so near the origin that rounding decides its direction.
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds, paired=False)
    lam = float(as_real_scalar(lam, "lam"))  # a Python float cannot promote float32
    renormalize = as_bool(renormalize, "renormalize")
    image_unit, text_unit, delta = _units_and_gap(image_embeds, text_embeds)
    return _shift(image_unit, text_unit, delta, lam, "lam", renormalize)


def _units_and_gap(image_embeds, text_embeds):
    """Unit image rows, unit text rows and the gap vector between their means."""
    image_unit, text_unit, image_mean, text_mean = _unit_rows_and_means(image_embeds,
                                                                        text_embeds)
    return image_unit, text_unit, image_mean - text_mean


def _shift(image_unit, text_unit, delta, lam, what, renormalize=True):
    """:func:`shift_embeddings` on unit rows and their gap; ``what`` names ``lam`` in errors."""
    xp = array_namespace(image_unit)
    with np.errstate(over="ignore"):  # an overflow is refused below, naming lam
        step = (lam / 2) * delta  # (D,)
        shifted = {"image_embeds": image_unit - step, "text_embeds": text_unit + step}
    # rounding leaves each entry off by about eps (1 + |lam| ||Delta||); at a norm above
    # sqrt(eps) that turns the direction by at most sqrt(eps) (1 + |lam| ||Delta||) radians
    floor = math.sqrt(float(xp.finfo(delta.dtype).eps))
    for name, x in shifted.items():
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{what} = {lam:g} shifts {name} beyond the range of {x.dtype}; "
                             "a shift of a few gaps (|lam| <= 10, say) is what the experiment "
                             "needs")
        norm = to_numpy(_row_norms(x, xp))  # (rows,)
        if np.min(norm) < floor:
            i = int(np.argmin(norm))
            raise ValueError(f"{what} = {lam:g} moves row {i} of {name} to within "
                             f"{float(norm[i]):.3g} of the origin, where rounding decides its "
                             f"direction; give {what} another value")
    if renormalize:
        return l2_normalize(shifted["image_embeds"])[0], l2_normalize(shifted["text_embeds"])[0]
    return shifted["image_embeds"], shifted["text_embeds"]


def _row_norms(x, xp):
    """Euclidean norms of the rows of ``x``, scaled by each row's largest entry first so
    that a row of size 1e30 (far shifted, in float32) does not overflow its squares."""
    m = xp.max(xp.abs(x), axis=1)  # (rows,)
    safe = xp.where(m == 0, xp.ones_like(m), m)[:, None]  # (rows, 1) a zero row stays zero
    return m * xp.sqrt(xp.vecdot(x / safe, x / safe))  # (rows,)


def gap_shift_losses(image_embeds, text_embeds, logit_scale, lams, *,
                     batch_size: int | None = None):
    r"""CLIP's loss after shifting both modalities by each ``lam``: the paper's Figure 3.

    For each :math:`\lambda` in ``lams``, the pairs are shifted as
    :func:`shift_embeddings` does (the gap measured over all N pairs) and scored with
    :func:`numclip.losses.clip_loss`, the symmetric InfoNCE loss at scale
    :math:`e^{s}`.  Where the loss is lowest says whether the contrastive objective
    holds the modalities apart (a minimum near ``lam = 0``) or would rather close the
    gap (a minimum near ``lam = 1``).

    Args:
        image_embeds: ``(N, D)`` image embeddings, ``N >= 2``; row ``i`` pairs with
            ``text_embeds[i]``.
        text_embeds: ``(N, D)`` text embeddings, one dtype and library with the images.
        logit_scale: ``s = log(1/tau)``, as :func:`numclip.losses.clip_loss` takes it
            (the *log* of the scale: the paper's :math:`\tau = 1/100` is ``log(100)``).
        lams: the shifts :math:`\lambda`: a 1-D array or list of finite real numbers,
            e.g. ``numpy.linspace(-0.5, 1, 7)``.
        batch_size: ``None`` scores all N pairs as one batch; an int B >= 2 that divides
            N scores ``N / B`` consecutive batches of B pairs and averages them, as the
            paper does (B = 50 over 5,000 MSCOCO pairs).  The loss grows with the batch
            (about ``log B`` at chance), so compare curves of one B.

    Returns:
        ``(K,)`` losses, one per entry of ``lams``, in the embeddings' library and dtype;
            each a mean over the pairs of both directions (and over the batches).

    Raises:
        TypeError, ValueError: as :func:`numclip.backend.as_embedding_pair`; fewer than
            2 pairs; ``logit_scale`` as :func:`numclip.backend.as_log_scale` refuses it;
            ``lams`` empty, not 1-D, not real numbers or not finite; ``batch_size`` not an
            int, below 2 or not a divisor of N; a shift refused as in
            :func:`shift_embeddings` (the message names the entry of ``lams``).
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds)
    n = image_embeds.shape[0]
    if n < 2:
        raise ValueError(f"image_embeds and text_embeds must hold at least 2 pairs: a "
                         f"contrastive loss needs negatives, got {n}")
    logit_scale = as_log_scale(logit_scale)
    lams = _as_lams(lams)
    batch = _batch_size(batch_size, n)
    xp = array_namespace(image_embeds)
    image_unit, text_unit, delta = _units_and_gap(image_embeds, text_embeds)
    losses = []
    for k, lam in enumerate(lams):
        image_shifted, text_shifted = _shift(image_unit, text_unit, delta, lam, f"lams[{k}]")
        parts = [clip_loss(image_shifted[i:i + batch, ...], text_shifted[i:i + batch, ...],
                           logit_scale, normalize=False)[0]  # rows are unit already
                 for i in range(0, n, batch)]
        losses.append(sum(parts[1:], parts[0]) / len(parts))  # () mean over the batches
    return xp.stack(losses)  # (K,)


def _as_lams(lams) -> list[float]:
    """``lams`` as a list of Python floats: 1-D, non-empty, real and finite."""
    if array_api_compat.is_array_api_obj(lams) or isinstance(lams, list | tuple | range):
        values = as_numpy(lams, "lams")
    else:  # a bare number too: a curve needs a list of shifts
        raise TypeError(f"lams must be a 1-D array or a list of real numbers (e.g. "
                        f"[0.0, 0.5, 1.0]), got {type(lams).__name__}")
    if values.dtype.kind not in "iuf":
        raise TypeError(f"lams must hold real numbers (ints or floats), got a "
                        f"{type(lams).__name__} of dtype {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"lams must be 1-D (one shift per entry), got shape {values.shape}")
    if values.size == 0:
        raise ValueError("lams must be non-empty: give at least one shift, e.g. [0.0]")
    if not np.all(np.isfinite(values)):
        i = int(np.argmin(np.isfinite(values)))
        raise ValueError(f"lams must be finite, got lams[{i}] = {values[i]}")
    return [float(v) for v in values]


def _batch_size(batch_size, n: int) -> int:
    """The batch the loss is scored in: all ``n`` pairs, or a divisor of ``n`` >= 2."""
    batch_size = as_tile_size(batch_size, "batch_size")
    if batch_size is None:
        return n
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2: a contrastive batch needs "
                         f"negatives, got {batch_size}")
    if n % batch_size:
        raise ValueError(f"batch_size ({batch_size}) must divide the number of pairs N ({n}), "
                         "so that every batch has as many negatives (the paper drops the "
                         "rest; pass fewer pairs to do the same)")
    return batch_size
