"""IR-Net binary convolution (Qin et al., CVPR 2020): Libra-PB weights and EDE gradients.

Forward of `IRConv2d`, per output channel o:

    w_std = (w - mean(w[o])) / std(w[o])          # balance, then standardize (unbiased, no eps)
    s[o]  = round(log2(mean(|w_std[o]|)))          # power-of-two scale, detached
    y     = conv2d(sign(x), sign(w_std) * 2**s, bias, stride, padding, dilation, groups)

Padding is zero padding applied by `F.conv2d` after `sign()`, exactly as in the official code.
`IRConv2dW` is the paper's 1W/32A setting (official `ir_1w32a`): the same binary weights, and
the input x used as is (no sign).

Sign rule. Training mode uses `torch.sign`, as the official code does, so `sign(0) = 0`.
A binary engine cannot represent 0, so deployment uses `x < 0 -> -1, otherwise +1` (0.0 and -0.0
both become +1), for activations and weights alike. `deploy_sign(model)` switches every IRConv2d
to that rule; the reference forward and the converter use it, so the engine and the reference
agree bit for bit. The two rules differ only where an input or a standardized weight is exactly 0.

Backward (EDE): d sign(x)/dx is approximated by `k * t * (1 - tanh(t*x)**2)`, with `t` growing
from `t_min` to `t_max` over training (`ede_schedule`) and `k = max(1/t, 1)`.
"""
import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class EDESign(torch.autograd.Function):
    """sign() forward with the EDE surrogate gradient backward."""

    @staticmethod
    def forward(ctx, x, k, t, deploy):
        ctx.save_for_backward(x, k, t)
        if deploy:
            return deploy_sign_rule(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad_out):
        x, k, t = ctx.saved_tensors
        grad = k * t * (1 - torch.tanh(t * x) ** 2) * grad_out
        return grad, None, None, None


def deploy_sign_rule(x):
    """The engine's sign: -1 where x < 0, +1 elsewhere (so 0 -> +1)."""
    return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))


def standardize_weight(w):
    """Libra-PB balance + standardize per output channel (unbiased std, no epsilon)."""
    flat = w.reshape(w.size(0), -1)
    bw = w - flat.mean(-1).view(-1, 1, 1, 1)
    return bw / bw.reshape(bw.size(0), -1).std(-1).view(-1, 1, 1, 1)


def weight_shift(w_std):
    """Per-channel power-of-two exponent round(log2(mean|w_std|)), as an int64 tensor."""
    return torch.round(torch.log2(w_std.abs().reshape(w_std.size(0), -1).mean(-1))).long()


class IRConv2d(nn.Conv2d):
    """Conv2d with binary weights and activations (IR-Net 1W/1A). State dict = nn.Conv2d's."""

    binary_activations = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Not persistent: official checkpoints hold only weight (and bias) for these convs.
        self.register_buffer("k", torch.tensor([10.0]), persistent=False)
        self.register_buffer("t", torch.tensor([0.1]), persistent=False)
        self.deploy = False

    def forward(self, x):
        w_std = standardize_weight(self.weight)
        scale = torch.pow(2.0, weight_shift(w_std).to(w_std.dtype)).view(-1, 1, 1, 1).detach()
        bw = EDESign.apply(w_std, self.k, self.t, self.deploy) * scale
        ba = EDESign.apply(x, self.k, self.t, self.deploy) if self.binary_activations else x
        return F.conv2d(ba, bw, self.bias, self.stride, self.padding, self.dilation, self.groups)


class IRConv2dW(IRConv2d):
    """IR-Net 1W/32A: binary weights (as IRConv2d), float activations. Same state dict."""

    binary_activations = False


def binary_weight(conv):
    """(w_std [Cout,Cin,kh,kw], shift int64 [Cout]) computed exactly as IRConv2d.forward does."""
    with torch.no_grad():
        w_std = standardize_weight(conv.weight)
        return w_std, weight_shift(w_std)


def ede_schedule(epoch, epochs, t_min=0.1, t_max=10.0):
    """EDE (k, t) for an epoch: t grows log-linearly from t_min to t_max, k = max(1/t, 1)."""
    t = 10 ** (math.log10(t_min) + (math.log10(t_max) - math.log10(t_min)) * epoch / epochs)
    k = max(1 / t, 1.0)
    return k, t


def set_ede(model, k, t):
    """Set the EDE k and t on every IRConv2d of the model."""
    for m in model.modules():
        if isinstance(m, IRConv2d):
            m.k.fill_(k)
            m.t.fill_(t)


def set_deploy(model, deploy):
    """Switch every IRConv2d between torch.sign (False) and the deployment rule (True)."""
    for m in model.modules():
        if isinstance(m, IRConv2d):
            m.deploy = bool(deploy)


@contextlib.contextmanager
def deploy_sign(model):
    """Within the block every IRConv2d uses the deployment sign rule; restored after."""
    saved = [(m, m.deploy) for m in model.modules() if isinstance(m, IRConv2d)]
    set_deploy(model, True)
    try:
        yield model
    finally:
        for m, flag in saved:
            m.deploy = flag
