"""Loading open_clip checkpoints (placeholder: being written)."""

__all__ = ["load_open_clip", "OpenCLIP", "model_config", "CONFIG_NAMES"]

CONFIG_NAMES = ("ViT-B-32", "ViT-B-16", "ViT-L-14")


class OpenCLIP:
    pass


def model_config(name):
    raise NotImplementedError


def load_open_clip(path, config):
    raise NotImplementedError
