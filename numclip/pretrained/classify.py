"""Zero-shot classification with a real CLIP: prompts from labels, then a softmax.

As in the CLIP paper (section 3.1.2): write each label into a prompt ("a photo of a
cat."), encode the prompts and the images, and read the probabilities from the
softmax of the logits ``exp(logit_scale) * cos(image, prompt)`` over the labels.
"""

from __future__ import annotations

from numclip.backend import to_numpy
from numclip.pretrained.checkpoint import OpenCLIP
from numclip.pretrained.tokenizer import tokenize
from numclip.softmax import softmax
from numclip.text import as_texts
from numclip.zeroshot import check_template

__all__ = ["zero_shot_classify", "DEFAULT_TEMPLATE"]

DEFAULT_TEMPLATE = "a photo of a {}."  # the CLIP paper's default prompt


def zero_shot_classify(model: OpenCLIP, images, labels, *, template: str = DEFAULT_TEMPLATE,
                       merges=None):
    """Probabilities ``(B, C)`` that each image shows each label.

    Args:
        model: an :class:`~numclip.pretrained.OpenCLIP` (:func:`load_open_clip`).
        images: ``(B, 3, S, S)`` preprocessed images (:func:`preprocess` of each, stacked),
            in the model's dtype.
        labels: ``C`` class names, e.g. ``["cat", "dog", "bird"]``, each different.
        template: a prompt with one ``{}`` for the label.
        merges: the BPE merges file (see :func:`~numclip.pretrained.tokenize`).

    Returns:
        a ``(B, C)`` NumPy array whose rows sum to 1.

    Raises:
        TypeError, ValueError: naming the argument; a model whose token table is smaller
            than CLIP's tokenizer's ids (49408) is refused as ``model``.
    """
    if not isinstance(model, OpenCLIP):
        raise TypeError(f"model must be an OpenCLIP (load_open_clip), got {type(model).__name__}")
    labels = as_texts(labels, "labels")
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise ValueError(f"labels must be different from each other; {repeated[0]!r} repeats")
    template = check_template(template)
    tokens = tokenize([template.format(label) for label in labels],
                      context_length=model.text.context_length, merges=merges)  # (C, L)
    ids = int(tokens.max()) + 1  # the end-of-text id, CLIP's largest, ends every row
    if model.text.vocab_size < ids:  # else encode_text refuses 'tokens', which no one passed
        raise ValueError(f"model's text encoder has {model.text.vocab_size} token ids, but "
                         f"CLIP's tokenizer writes ids up to {ids - 1}: the model needs "
                         f"vocab_size {ids}, as CLIP's checkpoints have")
    logits = model.logits(images, tokens)  # (B, C)
    return to_numpy(softmax(logits, axis=1))
