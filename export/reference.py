"""The float reference forward with deployment semantics (eval mode, `x < 0 -> -1` sign rule),
which the engine must reproduce. Used by tests and by `convert --check`."""
import collections

import torch

from .foreign import deployed_overrides, foreign_variants
from .irnet import deploy_sign
from .tracing import run_recording, trace


def reference_forward(model, x, capture=False):
    """Output of `model` on `x` in eval mode with the deployment sign rule, without grad.
    With capture=True, returns (output, OrderedDict{fx node name: tensor}) holding every
    intermediate tensor; the names equal the converter's tensor names. Foreign IR-Net convs
    (export/foreign.py) run with the deployment sign rule too, in the captured forward."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), deploy_sign(model):
            if not capture:
                return model(x)
            overrides = deployed_overrides(model, foreign_variants(model))
            out, values = run_recording(trace(model), x, overrides)
    finally:
        model.train(was_training)
    tensors = collections.OrderedDict(
        (name, v) for name, v in values.items() if torch.is_tensor(v))
    return out, tensors
