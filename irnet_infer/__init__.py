"""irnet-infer: fast CPU inference for IR-Net binary neural networks trained in PyTorch.

    import irnet_infer
    model = irnet_infer.Model("model.irb")
    logits = model.predict(image)
"""
from irnet_infer._engine import all_isas, available_isas
from irnet_infer.format import IrbFormatError
from irnet_infer.model import Model

__version__ = "0.1.0"
__all__ = ["Model", "IrbFormatError", "all_isas", "available_isas", "__version__"]
