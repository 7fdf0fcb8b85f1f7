"""PyTorch side of irnet-infer: IR-Net layers, the paper's networks, the reference forward
with deployment semantics, and the converter to the `.irb` file (docs/FORMAT.md)."""
