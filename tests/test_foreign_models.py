"""Model objects built from binary convs that are not ours: a look-alike of the official IR-Net
conv written here from the paper's equations (Qin et al., CVPR 2020, eqs. for Libra-PB and the
power-of-two scale), under another name, in look-alike networks. Each converts from the model
object and the engine's outputs equal the look-alike's own PyTorch forward."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import irnet_infer
from export.convert import convert, main
from export.irnet import IRConv2d
from export.models import ARCH_DEFAULTS, MODELS, create_model
from helpers import calibrate_bn, randomize_bn
from test_model_e2e import first_flip_is_on_boundary

SMALL = {"resnet18": (3, 32, 32), "resnet34": (3, 32, 32)}  # layer4 at 1x1: fast


class PaperBinaryConv(nn.Conv2d):
    """Binary conv from the paper: w balanced and standardized per output channel,
    Q_w = sign(w_std) * 2^round(log2(mean|w_std|)), Q_a = sign(a); EDE's k and t as plain
    tensors (the official module keeps them as attributes, not buffers)."""
    float_activations = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.k = torch.tensor([10.0])
        self.t = torch.tensor([0.1])

    def forward(self, a):
        w = self.weight
        w = w - w.mean(dim=(1, 2, 3), keepdim=True)
        w = w / w.flatten(1).std(dim=1).view(-1, 1, 1, 1)
        s = torch.round(torch.log2(w.abs().mean(dim=(1, 2, 3), keepdim=True)))
        q_w = torch.sign(w) * torch.pow(2.0, s)
        q_a = a if self.float_activations else torch.sign(a)
        return F.conv2d(q_a, q_w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class PaperBinaryWeightConv(PaperBinaryConv):
    """The 1W/32A setting: binary weights, float activations."""
    float_activations = True


class CudaOnlyConv(PaperBinaryWeightConv):
    """The official module's forward creates tensors with .cuda(): it cannot run on CPU."""

    def forward(self, a):
        raise RuntimeError("Torch not compiled with CUDA enabled")


def swap_convs(model, cls):
    """Every IRConv2d of one of our models replaced by `cls`, with the same weights."""
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, IRConv2d):
                new = cls(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                          child.padding, bias=child.bias is not None)
                new.weight.data.copy_(child.weight.data)
                setattr(m, child_name, new)
    return model


def _pair_of_models(arch):
    """(our model, the look-alike with the same weights), both eval. BatchNorm statistics as in
    tests/test_model_e2e.py for 1W/1A (few activations near a sign boundary, so float rounding
    flips none); calibrated for 1W/32A, whose float activations would otherwise blow up."""
    torch.manual_seed(0)
    ours = create_model(arch, input_size=SMALL.get(arch.replace("_1w32a", "")))
    if arch.endswith("_1w32a"):
        calibrate_bn(ours, torch.randn(16, *ours.input_size))
    else:
        randomize_bn(ours).eval()
    lookalike = create_model(arch, input_size=ours.input_size)
    lookalike.load_state_dict(ours.state_dict())
    cls = PaperBinaryWeightConv if arch.endswith("_1w32a") else PaperBinaryConv
    return ours, swap_convs(lookalike, cls).eval()


REL_TOL = 1e-4


def _agree(model, path, n=16, seed=1):
    """(max|diff|, max|diff| / max|output|, top-1 agreement) of the engine against the model's
    own forward, over the samples where no binary activation took the other sign. As in
    tests/test_model_e2e.py, a sample outside REL_TOL must have its first sign flip on a
    genuine boundary (float rounding), else the test fails."""
    x = torch.randn(n, *model.input_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    engine = irnet_infer.Model(str(path))
    got = engine.predict(x.numpy())
    scale = float(np.abs(ref).max())
    outside = np.flatnonzero(np.abs(got - ref).max(1) > REL_TOL * scale)
    assert len(outside) <= max(1, n // 16), f"{len(outside)} of {n} samples differ"
    for i in outside:
        ok, why = first_flip_is_on_boundary(model, engine, x, i)
        assert ok, f"sample {i}: {why}"
    inside = np.setdiff1d(np.arange(n), outside)
    diff = float(np.abs(got[inside] - ref[inside]).max())
    return diff, diff / scale, float((got.argmax(1) == ref.argmax(1)).mean())


ARCHS = sorted(MODELS) + [a + "_1w32a" for a in sorted(MODELS)]


@pytest.mark.parametrize("arch", ARCHS)
def test_lookalike_model_object_converts_and_matches(tmp_path, arch):
    ours, lookalike = _pair_of_models(arch)
    convert(lookalike, tmp_path / "obj.irb")  # no arch: the forward says which variant
    torch.save({"arch": arch, "state_dict": ours.state_dict()}, tmp_path / "ckpt.pth")
    convert(str(tmp_path / "ckpt.pth"), tmp_path / "ckpt.irb",
            input_size=ours.input_size)
    types = [s["type"] for s in irnet_infer.Model(str(tmp_path / "obj.irb")).steps()]
    assert ("bwconv2d" in types) == arch.endswith("_1w32a")
    diff, rel, top1 = _agree(lookalike, tmp_path / "obj.irb")
    assert top1 >= 0.96 and rel < REL_TOL, (diff, rel, top1)
    print(f"{arch}: look-alike object vs engine max|diff| {diff:.3g} (relative {rel:.3g}), "
          f"top-1 agreement {top1:.0%}")
    # The same network from the checkpoint gives the same file contents, hence outputs.
    x = np.random.default_rng(2).standard_normal((4, *ours.input_size)).astype(np.float32)
    a = irnet_infer.Model(str(tmp_path / "obj.irb")).predict(x)
    b = irnet_infer.Model(str(tmp_path / "ckpt.irb")).predict(x)
    assert np.array_equal(a, b)


class _LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class LookalikeBlock(nn.Module):
    """The official CIFAR ResNet-20 block's idioms: a lambda option-A shortcut, `+=`."""

    def __init__(self, cin, planes, stride, conv):
        super().__init__()
        self.weights_only = conv is PaperBinaryWeightConv
        self.conv1 = conv(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = _LambdaLayer(lambda x: F.pad(
                x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))

    def forward(self, x):
        if self.weights_only:  # 1W/32A: classic block with ReLU
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return F.relu(out)
        out = self.bn1(self.conv1(x))
        out += self.shortcut(x)
        out = F.hardtanh(out)
        x1 = out
        out = self.bn2(self.conv2(out))
        out += x1
        return F.hardtanh(out)


class LookalikeResNet20(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.weights_only = conv is PaperBinaryWeightConv
        self.input_size = (3, 32, 32)
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin, layers = 16, []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            layers.append(nn.Sequential(*[LookalikeBlock(cin if i == 0 else planes, planes,
                                                          stride if i == 0 else 1, conv)
                                          for i in range(3)]))
            cin = planes
        self.layer1, self.layer2, self.layer3 = layers
        self.bn2 = nn.BatchNorm1d(64)
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        if not self.weights_only:
            out = F.hardtanh(out)
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        out = self.bn2(out)
        if self.weights_only:
            out = F.relu(out)
        return self.linear(out)


@pytest.mark.parametrize("conv,arch", [(PaperBinaryConv, "resnet20"),
                                       (PaperBinaryWeightConv, "resnet20_1w32a")])
def test_lookalike_official_resnet20_with_lambda_shortcut(tmp_path, conv, arch):
    torch.manual_seed(0)
    net = LookalikeResNet20(conv)
    if conv is PaperBinaryWeightConv:
        calibrate_bn(net, torch.randn(16, 3, 32, 32))
    else:
        randomize_bn(net).eval()
    convert(net, tmp_path / "m.irb", arch=arch)
    diff, rel, top1 = _agree(net, tmp_path / "m.irb", n=64)
    assert top1 >= 0.96 and rel < REL_TOL, (diff, rel, top1)
    # Its state_dict is an official-style checkpoint for our arch of the same name.
    ours = create_model(arch)
    ours.load_state_dict(net.state_dict())
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), net(x), rtol=1e-5, atol=1e-5)


def test_unknown_conv_subclass_is_named(tmp_path):
    class MyQuantConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(torch.round(x))
    net = nn.Sequential(nn.Conv2d(3, 8, 3), MyQuantConv(8, 8, 3), nn.Flatten())
    with pytest.raises(ValueError, match=r"unsupported module '1' \(.*MyQuantConv\)"):
        convert(net, tmp_path / "m.irb", input_size=(3, 8, 8))


def test_ir_like_conv_with_other_forward_is_named(tmp_path):
    class SignOnlyConv(PaperBinaryConv):  # k and t, but no 2^s scale: not IR-Net
        def forward(self, a):
            return F.conv2d(torch.sign(a), torch.sign(self.weight), None, self.stride,
                            self.padding)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(SignOnlyConv(8, 8, 3, bias=False)),
                        nn.Flatten())
    with pytest.raises(ValueError, match=r"module '1.0' \(.*SignOnlyConv\).*neither"):
        convert(net, tmp_path / "m.irb", input_size=(3, 8, 8))


def test_forward_that_cannot_run_on_cpu_needs_the_arch(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 8, 3), CudaOnlyConv(8, 8, 3, bias=False), nn.Flatten())
    with pytest.raises(ValueError, match=r"module '1' \(.*CudaOnlyConv\).*fails on CPU.*_1w32a"):
        convert(net, tmp_path / "m.irb", input_size=(3, 8, 8))


def test_arch_name_says_the_variant_when_the_forward_cannot_run(tmp_path):
    torch.manual_seed(0)
    ours = create_model("resnet20_1w32a")
    calibrate_bn(ours, torch.randn(16, 3, 32, 32))
    cuda_only = swap_convs(create_model("resnet20_1w32a"), CudaOnlyConv)
    cuda_only.load_state_dict(ours.state_dict())
    convert(cuda_only, tmp_path / "m.irb", arch="resnet20_1w32a")
    diff, rel, top1 = _agree(ours, tmp_path / "m.irb")
    assert top1 >= 0.96 and rel < REL_TOL


def test_arch_name_contradicting_the_forward_is_refused(tmp_path):
    _, lookalike = _pair_of_models("resnet20")
    with pytest.raises(ValueError, match=r"computes IR-Net 1W1A, but the arch says 1W32A"):
        convert(lookalike, tmp_path / "m.irb", arch="resnet20_1w32a")
