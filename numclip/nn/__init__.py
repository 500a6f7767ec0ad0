"""The layers of CLIP's real encoders, each a forward/backward pair, and the encoders.

``y, cache = layer(x, *weights)`` and ``dx, *dweights = layer_backward(dy, cache)``,
as in the core (CS231n's ``layers.py``).  One concept per file:

- :mod:`~numclip.nn.affine` (linear), :mod:`~numclip.nn.normalization` (layer norm),
  :mod:`~numclip.nn.activations` (GELU, QuickGELU), :mod:`~numclip.nn.attention`
  (multi-head self-attention),
  :mod:`~numclip.nn.block` (the pre-LN residual block and a stack of them),
  :mod:`~numclip.nn.embeddings` (patches, class token, positions, tokens, pooling);
- :mod:`~numclip.nn.encoders`: :class:`VisionTransformer` and :class:`TextTransformer`
  over a params dict with open_clip's ``state_dict()`` keys.

(The files are not named after their functions, so that ``numclip.nn.linear`` is
always the function and never hides a module of the same name.)
"""

from numclip.nn.activations import gelu, gelu_backward, quick_gelu, quick_gelu_backward
from numclip.nn.affine import linear, linear_backward
from numclip.nn.attention import causal_mask, multi_head_attention, multi_head_attention_backward
from numclip.nn.block import (
    residual_block,
    residual_block_backward,
    transformer,
    transformer_backward,
)
from numclip.nn.embeddings import (
    add_positions,
    add_positions_backward,
    class_token_pool,
    class_token_pool_backward,
    eot_pool,
    eot_pool_backward,
    patch_embed,
    patch_embed_backward,
    prepend_class_token,
    prepend_class_token_backward,
    take_rows,
    token_embed,
    token_embed_backward,
)
from numclip.nn.encoders import TextTransformer, VisionTransformer
from numclip.nn.normalization import layer_norm, layer_norm_backward

__all__ = [
    "linear", "linear_backward", "layer_norm", "layer_norm_backward",
    "gelu", "gelu_backward", "quick_gelu", "quick_gelu_backward",
    "multi_head_attention", "multi_head_attention_backward", "causal_mask",
    "residual_block", "residual_block_backward", "transformer", "transformer_backward",
    "patch_embed", "patch_embed_backward", "prepend_class_token", "prepend_class_token_backward",
    "add_positions", "add_positions_backward", "token_embed", "token_embed_backward",
    "class_token_pool", "class_token_pool_backward", "eot_pool", "eot_pool_backward",
    "take_rows", "VisionTransformer", "TextTransformer",
]
