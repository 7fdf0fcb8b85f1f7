"""The IR-Net paper's networks, registered by name, with the official module names.

`create_model(name, num_classes, input_size)` builds one; `load_checkpoint_state` adapts an
official state_dict (DataParallel `module.` prefix, the unused ImageNet `bn3.*`)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import (BasicBlockA1w32a, BasicBlockB, BasicBlockImageNet1w32a, BiRealBlockA,
                     BiRealBlockImageNet)
from .irnet import IRConv2d, IRConv2dW


class ResNet20(nn.Module):
    def __init__(self, num_classes=10, input_size=(3, 32, 32)):
        super().__init__()
        self.input_size = tuple(input_size)
        self.conv1 = nn.Conv2d(input_size[0], 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.in_planes = 16
        self.layer1 = self._make_layer(16, 3, 1)
        self.layer2 = self._make_layer(32, 3, 2)
        self.layer3 = self._make_layer(64, 3, 2)
        self.bn2 = nn.BatchNorm1d(64)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes, blocks, stride):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BiRealBlockA(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.hardtanh(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.linear(self.bn2(out))


class VGGSmall(nn.Module):
    def __init__(self, num_classes=10, input_size=(3, 32, 32), conv=IRConv2d):
        super().__init__()
        self.input_size = tuple(input_size)
        self.conv0 = nn.Conv2d(input_size[0], 128, kernel_size=3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(128)
        chans = [(128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
        for i, (cin, cout) in enumerate(chans, start=1):
            setattr(self, f"conv{i}", conv(cin, cout, kernel_size=3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout))
        self.pooling = nn.MaxPool2d(2, 2)
        self.nonlinear = nn.Hardtanh()
        # Three 2x2 pools: spatial size / 8 (floor each time, as MaxPool2d does).
        h, w = input_size[1] // 2 // 2 // 2, input_size[2] // 2 // 2 // 2
        self.fc = nn.Linear(512 * h * w, num_classes)

    def forward(self, x):
        x = self.nonlinear(self.bn0(self.conv0(x)))
        x = self.nonlinear(self.bn1(self.pooling(self.conv1(x))))
        x = self.nonlinear(self.bn2(self.conv2(x)))
        x = self.nonlinear(self.bn3(self.pooling(self.conv3(x))))
        x = self.nonlinear(self.bn4(self.conv4(x)))
        x = self.nonlinear(self.bn5(self.pooling(self.conv5(x))))
        return self.fc(torch.flatten(x, 1))


class ResNet18Cifar(nn.Module):
    def __init__(self, num_classes=10, input_size=(3, 32, 32), conv=IRConv2d):
        super().__init__()
        self.conv = conv
        self.input_size = tuple(input_size)
        self.conv1 = nn.Conv2d(input_size[0], 64, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.in_planes = 64
        self.layer1 = self._make_layer(64, 2, 1)
        self.layer2 = self._make_layer(128, 2, 2)
        self.layer3 = self._make_layer(256, 2, 2)
        self.layer4 = self._make_layer(512, 2, 2)
        self.bn2 = nn.BatchNorm1d(512)
        self.linear = nn.Linear(512, num_classes)
        self.softmax = nn.LogSoftmax(dim=1)

    def _make_layer(self, planes, blocks, stride):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlockB(self.in_planes, planes, s, self.conv))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(F.avg_pool2d(out, 4), 1)
        return self.softmax(self.linear(self.bn2(out)))


class ResNetImageNet(nn.Module):
    def __init__(self, layers, num_classes=1000, input_size=(3, 224, 224), weights_only=False):
        super().__init__()
        # 1W/32A (official 1w32a folders): classic blocks, ReLU instead of Hardtanh.
        self.weights_only = weights_only
        self.input_size = tuple(input_size)
        self.conv1 = nn.Conv2d(input_size[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.nonlinear1 = nn.ReLU() if weights_only else nn.Hardtanh()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = 64
        self.layer1 = self._make_layer(64, layers[0], 1)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        # Adaptive so any input size works; official AvgPool2d(7) equals it at 224x224.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.bn2 = nn.BatchNorm1d(512)
        self.fc = nn.Linear(512, num_classes)
        self.logsoftmax = nn.LogSoftmax(dim=1)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))
        if self.weights_only:
            block = lambda i, p, s=1, d=None: BasicBlockImageNet1w32a(i, p, s, d, IRConv2dW)
        else:
            block = BiRealBlockImageNet
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [block(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.nonlinear1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.logsoftmax(self.fc(self.bn2(x)))


class ResNet20W(nn.Module):
    """ResNet-20 1W/32A as in the official 1w32a folder: no activation after the stem, classic
    ReLU blocks, ReLU after the final BatchNorm1d. State dict keys equal ResNet20's."""

    def __init__(self, num_classes=10, input_size=(3, 32, 32)):
        super().__init__()
        self.input_size = tuple(input_size)
        self.conv1 = nn.Conv2d(input_size[0], 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for s in [stride, 1, 1]:
                blocks.append(BasicBlockA1w32a(in_planes, planes, s, IRConv2dW))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.bn2 = nn.BatchNorm1d(64)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.linear(F.relu(self.bn2(out)))


def resnet20(num_classes=10, input_size=(3, 32, 32)):
    return ResNet20(num_classes, input_size)


def vgg_small(num_classes=10, input_size=(3, 32, 32)):
    return VGGSmall(num_classes, input_size)


def resnet18_cifar(num_classes=10, input_size=(3, 32, 32)):
    return ResNet18Cifar(num_classes, input_size)


def resnet18(num_classes=1000, input_size=(3, 224, 224)):
    return ResNetImageNet([2, 2, 2, 2], num_classes, input_size)


def resnet34(num_classes=1000, input_size=(3, 224, 224)):
    return ResNetImageNet([3, 4, 6, 3], num_classes, input_size)


MODELS = {
    "resnet20": resnet20,
    "vgg_small": vgg_small,
    "resnet18_cifar": resnet18_cifar,
    "resnet18": resnet18,
    "resnet34": resnet34,
}

# 1W/32A twins, registered as NAME_1w32a (the official naming). VGG-Small and CIFAR ResNet-18
# have no official 1w32a network: theirs keep the 1W/1A structure with binary-weight convs.
MODELS_1W32A = {
    "resnet20": lambda num_classes=10, input_size=(3, 32, 32): ResNet20W(num_classes, input_size),
    "vgg_small": lambda num_classes=10, input_size=(3, 32, 32):
        VGGSmall(num_classes, input_size, conv=IRConv2dW),
    "resnet18_cifar": lambda num_classes=10, input_size=(3, 32, 32):
        ResNet18Cifar(num_classes, input_size, conv=IRConv2dW),
    "resnet18": lambda num_classes=1000, input_size=(3, 224, 224):
        ResNetImageNet([2, 2, 2, 2], num_classes, input_size, weights_only=True),
    "resnet34": lambda num_classes=1000, input_size=(3, 224, 224):
        ResNetImageNet([3, 4, 6, 3], num_classes, input_size, weights_only=True),
}
W32A_SUFFIX = "_1w32a"


def split_arch(name):
    """(registry name, "1w1a" | "1w32a") of an arch name; the official code's suffixes
    `_1w1a` and `_1w32a` are accepted. Raises ValueError for an unknown name."""
    text = str(name)
    base, variant = text, "1w1a"
    if text.endswith(W32A_SUFFIX):
        base, variant = text[: -len(W32A_SUFFIX)], "1w32a"
    elif text.endswith("_1w1a") and text not in MODELS:
        base = text[: -len("_1w1a")]
    if base not in MODELS:
        raise ValueError(f"unknown arch '{name}' (known: {', '.join(arch_names())})")
    return base, variant


def arch_names():
    """Every accepted --arch: the registry names and their NAME_1w32a twins."""
    return sorted(MODELS) + sorted(n + W32A_SUFFIX for n in MODELS_1W32A)

# Defaults per arch, and the state_dict key whose shape[0] is the number of classes.
ARCH_DEFAULTS = {
    "resnet20": {"num_classes": 10, "input_size": (3, 32, 32), "classifier": "linear.weight"},
    "vgg_small": {"num_classes": 10, "input_size": (3, 32, 32), "classifier": "fc.weight"},
    "resnet18_cifar": {"num_classes": 10, "input_size": (3, 32, 32),
                       "classifier": "linear.weight"},
    "resnet18": {"num_classes": 1000, "input_size": (3, 224, 224), "classifier": "fc.weight"},
    "resnet34": {"num_classes": 1000, "input_size": (3, 224, 224), "classifier": "fc.weight"},
}


def create_model(name, num_classes=None, input_size=None):
    """Build a registered network (NAME or NAME_1w32a); None arguments take the arch's
    defaults."""
    base, variant = split_arch(name)
    defaults = ARCH_DEFAULTS[base]
    num_classes = defaults["num_classes"] if num_classes is None else int(num_classes)
    input_size = defaults["input_size"] if input_size is None else tuple(int(v) for v in input_size)
    if len(input_size) != 3:
        raise ValueError(f"input_size must be (C, H, W), got {input_size}")
    factory = MODELS_1W32A[base] if variant == "1w32a" else MODELS[base]
    return factory(num_classes=num_classes, input_size=input_size)


def load_checkpoint_state(state_dict, arch=None):
    """An official state_dict made loadable: strip DataParallel's `module.` prefix and drop
    `bn3.*` of the official ImageNet ResNet (defined there, never used by its forward).
    Without `arch`, a state_dict is taken as an ImageNet ResNet when it has `fc.weight` and
    `layer1.*` keys (VGG-Small has a real bn3 and no layer1)."""
    out = {}
    for key, value in state_dict.items():
        out[key[len("module."):] if key.startswith("module.") else key] = value
    if arch is None:
        imagenet_resnet = "fc.weight" in out and any(k.startswith("layer1.") for k in out)
    else:
        imagenet_resnet = split_arch(arch)[0] in ("resnet18", "resnet34")
    if imagenet_resnet:
        out = {k: v for k, v in out.items() if not k.startswith("bn3.")}
    return out


def infer_num_classes(name, state_dict):
    """Number of classes from the classifier weight in a state_dict, or None."""
    key = ARCH_DEFAULTS.get(split_arch(name)[0], {}).get("classifier")
    weight = state_dict.get(key) if key else None
    return None if weight is None else int(weight.shape[0])
