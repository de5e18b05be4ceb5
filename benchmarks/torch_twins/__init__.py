"""PyTorch twins of jgen's reference networks, for benchmarks/vs_pytorch.py (PyTorch is a benchmark-only
dependency: `pip install -e .[bench]`; jgen itself never imports it).

`build(name, config, spec, device, dtype, init_batch)` gives the twin of one jgen model: `config` the jgen
config resolved to plain dicts (config.to_dict()), `spec` the dataset's DataSpec as JSON.
"""

import importlib

from torch_twins.common import Unsupported  # noqa: F401

TWINS = {"vae": ("vae", "VAETwin"), "dcgan": ("dcgan", "DCGANTwin"), "unet": ("unet", "DDPMTwin"),
         "pixelcnn": ("pixelcnn", "PixelCNNTwin"), "glow": ("glow", "GlowTwin"),
         "transformer": ("transformer", "TransformerTwin")}


def build(name: str, config: dict, spec: dict, device="cpu", dtype: str = "float32", init_batch=None):
  module, cls = TWINS[name]
  twin_cls = getattr(importlib.import_module(f"torch_twins.{module}"), cls)
  return twin_cls(config, spec, device, dtype, init_batch)
