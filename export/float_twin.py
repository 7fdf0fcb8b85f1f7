"""The float twin of an IR-Net network: every IRConv2d replaced by a plain nn.Conv2d holding
the same weights. It is the same network in float without IR-Net's per-call weight
binarization, the fair PyTorch baseline for speed (the demo and the benchmarks time both)."""
import copy

import torch.nn as nn

from .irnet import IRConv2d


def float_twin(model):
    """A copy of `model` in eval mode with each IRConv2d replaced by an nn.Conv2d."""
    twin = copy.deepcopy(model)
    for module in list(twin.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, IRConv2d):
                conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                 child.padding, child.dilation, child.groups, child.bias is not None)
                conv.load_state_dict(child.state_dict(), strict=False)
                setattr(module, child_name, conv)
    return twin.eval()
