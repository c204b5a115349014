"""Segmentation network and its self-describing safetensors weights files."""

from xcalving.model.checkpoint import count_parameters, load_model, read_metadata, save_model
from xcalving.model.unet import ASPPUNet

__all__ = ["ASPPUNet", "count_parameters", "load_model", "read_metadata", "save_model"]
