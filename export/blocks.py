"""Residual blocks of the IR-Net networks, with the official module names (htqin/IR-Net)
so official checkpoints load unchanged. Activation modules have no parameters, so their
names do not matter for state_dict; blocks avoid in-place ops so traced graphs stay pure."""
import torch.nn as nn
import torch.nn.functional as F

from .irnet import IRConv2d


class ShortcutA(nn.Module):
    """ResNet option-A shortcut: subsample by `stride`, zero-pad channels. No parameters;
    kept a leaf module so the converter sees one `shortcut_a` op."""

    def __init__(self, stride, pad_before, pad_after):
        super().__init__()
        self.stride = stride
        self.pad_before = pad_before
        self.pad_after = pad_after

    def forward(self, x):
        s = self.stride
        return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, self.pad_before, self.pad_after))

    def extra_repr(self):
        return f"stride={self.stride}, pad_before={self.pad_before}, pad_after={self.pad_after}"


def _binary3x3(in_planes, planes, stride, conv=IRConv2d):
    return conv(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BiRealBlockA(nn.Module):
    """CIFAR ResNet-20 block: two Bi-Real shortcuts, option-A projection."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = _binary3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _binary3x3(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = ShortcutA(stride, planes // 4, planes // 4)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.hardtanh(self.bn1(self.conv1(x)) + self.shortcut(x))
        return F.hardtanh(self.bn2(self.conv2(out)) + out)


class BasicBlockB(nn.Module):
    """CIFAR ResNet-18 block: one shortcut per block, 1x1 float projection (option B)."""

    def __init__(self, in_planes, planes, stride=1, conv=IRConv2d):
        super().__init__()
        self.conv1 = _binary3x3(in_planes, planes, stride, conv)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _binary3x3(planes, planes, 1, conv)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.hardtanh(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.hardtanh(out)


class BiRealBlockImageNet(nn.Module):
    """ImageNet ResNet-18/34 block: two Bi-Real shortcuts, optional `downsample` on the first."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _binary3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.nonlinear1 = nn.Hardtanh()
        self.conv2 = _binary3x3(planes, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.nonlinear2 = nn.Hardtanh()
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.nonlinear1(self.bn1(self.conv1(x)) + residual)
        return self.nonlinear2(self.bn2(self.conv2(out)) + out)


# --- 1W/32A (binary weights, float activations): the official 1w32a networks are classic
# ResNets, ReLU after each BatchNorm and one shortcut per block, not the Bi-Real blocks above.

class BasicBlockA1w32a(nn.Module):
    """CIFAR ResNet-20 1W/32A block: relu(bn1(conv1)), bn2(conv2) + option-A shortcut, relu."""

    def __init__(self, in_planes, planes, stride=1, conv=IRConv2d):
        super().__init__()
        self.conv1 = _binary3x3(in_planes, planes, stride, conv)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _binary3x3(planes, planes, 1, conv)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = ShortcutA(stride, planes // 4, planes // 4)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class BasicBlockImageNet1w32a(nn.Module):
    """ImageNet ResNet-18/34 1W/32A block: as torchvision's BasicBlock, binary-weight convs."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, conv=IRConv2d):
        super().__init__()
        self.conv1 = _binary3x3(inplanes, planes, stride, conv)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _binary3x3(planes, planes, 1, conv)
        self.bn2 = nn.BatchNorm2d(planes)
        self.nonlinear = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.nonlinear(self.bn1(self.conv1(x)))
        return self.nonlinear(self.bn2(self.conv2(out)) + residual)
