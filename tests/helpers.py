"""Shared test helpers (imported by test modules; pytest puts tests/ on sys.path)."""
import torch
import torch.nn as nn


def randomize_bn(model, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, so that checks are not about
    identity BatchNorms: means around 0, variances in [0.2, 2.2], random signs of gamma."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
            m.weight.data.copy_(torch.randn(n, generator=gen))
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)
    return model
