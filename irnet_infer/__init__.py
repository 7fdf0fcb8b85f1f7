"""irnet-infer: fast CPU inference for IR-Net binary neural networks trained in PyTorch.

    import irnet_infer
    model = irnet_infer.Model("model.irb")
    logits = model.predict(image)
"""
import os as _os

# OpenMP workers sleep at a barrier instead of spinning (OMP_WAIT_POLICY=PASSIVE), unless the
# user chose a policy: on a host with more busy threads than cores, a spinning worker holds
# the core its preempted partner needs, and a layer split across 2 threads took 10-30x longer
# (docs/PERFORMANCE.md, "Batches and threads"). libgomp reads the variable once, when the
# extension loads it; it is removed again so that OpenMP runtimes loaded later (torch's own
# libgomp) keep their defaults. Where libgomp is already loaded (torch imported first), the
# engine binds to that runtime and this has no effect.
_SET_WAIT_POLICY = not any(v in _os.environ for v in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
if _SET_WAIT_POLICY:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from irnet_infer._engine import all_isas, available_isas
finally:
    if _SET_WAIT_POLICY:
        del _os.environ["OMP_WAIT_POLICY"]
from irnet_infer.format import IrbFormatError
from irnet_infer.model import Model

__version__ = "0.1.0"
__all__ = ["Model", "IrbFormatError", "all_isas", "available_isas", "__version__"]
