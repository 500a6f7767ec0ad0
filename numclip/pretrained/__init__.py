"""Running real open_clip checkpoints with numclip's hand-written encoders.

``load_open_clip`` reads a checkpoint (``.safetensors`` or ``.npz`` of open_clip's
``CLIP.state_dict()``), ``tokenize`` is open_clip's byte-level BPE tokenizer and
``preprocess`` its evaluation transform.  Nothing here downloads anything: the
weights and the BPE merges are files the user names (docs/pretrained.md says
where to get them).  Needs the ``[pretrained]`` extra (safetensors, regex, ftfy),
imported only when a function needs it, so ``import numclip.pretrained`` is cheap.
"""

from numclip.pretrained.checkpoint import (
    CONFIG_NAMES,
    OpenCLIP,
    encoders_from_config,
    load_open_clip,
    model_config,
)
from numclip.pretrained.classify import DEFAULT_TEMPLATE, zero_shot_classify
from numclip.pretrained.image import preprocess
from numclip.pretrained.tokenizer import tokenize

__all__ = ["load_open_clip", "OpenCLIP", "model_config", "encoders_from_config", "CONFIG_NAMES",
           "tokenize", "preprocess", "zero_shot_classify", "DEFAULT_TEMPLATE"]
