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


def calibrate_bn(model, x, seed=0):
    """BatchNorm running statistics set to the batch statistics of `x` through the model
    (as training leaves them), then gamma in +/-[0.5, 1.5] and small betas: the network keeps
    activations at scale 1. Float-activation nets (1W/32A) with random statistics blow up, and
    their float rounding differences grow with them."""
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(x)
    for m in bns:
        m.momentum = 0.1
        n = m.num_features
        sign = torch.where(torch.rand(n, generator=gen) < 0.2, -1.0, 1.0)
        m.weight.data.copy_(sign * (0.5 + torch.rand(n, generator=gen)))
        m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model.eval()
