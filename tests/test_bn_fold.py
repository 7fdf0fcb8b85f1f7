"""BatchNorm after a conv, with and without a conv bias, any shift, against PyTorch.

- PyTorch's x86 BatchNorm kernel (AVX2/AVX-512 builds) rounds as two fmas:
  shift = fma(-mean, scale, bias), y = fma(x, scale, shift), scale = weight * (1/sqrt(var+eps)).
  The engine's batch_norm op computes the same, bit for bit (test below, BatchNorm2d and 1d).
- A BatchNorm is folded into the conv only without a conv bias (the IR-Net networks): the binary
  conv's epilogue then computes fma(dot, 2^s * scale, shift), one rounding of the exact
  dot * 2^s * scale + shift, which is what PyTorch computes from its exact conv output
  dot * 2^s: bit for bit the same, for any weight shift s and any BatchNorm shift.
- With a conv bias the batch_norm runs as its own op: folding the bias computes
  acc * (2^s * scale) + (b * scale + shift), which rounds differently from PyTorch's
  ((acc * 2^s + b) * scale) + shift in many cases (test below). Not bit-identical there:
  PyTorch's conv2d does not round as acc * 2^s + b (its backend accumulates the bias with the
  products, in its own order); within a few roundings of the value's size."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import irnet_infer
from export.convert import convert
from export.irnet import IRConv2d, binary_weight
from export.reference import reference_forward


def _net(conv_cls, bias, cin=64, cout=32, seed=0):
    torch.manual_seed(seed)
    conv = conv_cls(cin, cout, 3, padding=1, bias=bias)
    bn = nn.BatchNorm2d(cout)
    with torch.no_grad():
        if bias:
            conv.bias.copy_(torch.randn(cout) * 7.3)
        bn.running_mean.copy_(torch.randn(cout) * 5)
        bn.running_var.copy_(torch.rand(cout) * 3 + 0.1)
        bn.weight.copy_(torch.randn(cout))
        bn.bias.copy_(torch.randn(cout) * 3)  # non-zero shift
    net = nn.Sequential(conv, bn).eval()
    net.input_size = (cin, 9, 9)
    return net


def _sparse_weights(conv, seed):
    """One large weight per output channel among small ones: mean|w_std| shrinks to about
    1/sqrt(fan-in), so the weight shifts s are negative (-2 to -5 here), not the usual 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = torch.randn(conv.weight.shape, generator=gen) * 1e-3
        w.view(w.size(0), -1)[:, 0] = 1.0
        w.view(w.size(0), -1)[:, 1::7] *= torch.rand(1, generator=gen) * 400
        conv.weight.copy_(w)


@pytest.mark.parametrize("shifts", ["s=0", "s<0"])
def test_binary_conv_bn_bit_exact_with_pytorch(tmp_path, shifts):
    net = _net(IRConv2d, False)
    if shifts == "s<0":
        _sparse_weights(net[0], seed=3)
    s = binary_weight(net[0])[1]
    assert (s == 0).all() if shifts == "s=0" else (s < 0).all(), s
    path = str(tmp_path / "m.irb")
    convert(net, path)
    engine = irnet_infer.Model(path)
    assert [st["type"] for st in engine.steps()] == ["bconv2d"]  # BatchNorm folded
    x = torch.randn(16, *net.input_size, generator=torch.Generator().manual_seed(1))
    want = reference_forward(net, x).numpy()  # PyTorch's own eval forward
    # The oracle is not trivially matched: a multiply, then an add, rounds differently.
    with torch.no_grad():
        conv = net[0](torch.where(x < 0, -1.0, 1.0)).numpy()  # deployment sign rule
    bn = net[1]
    f32 = np.float32
    scale = bn.weight.detach().numpy() * (f32(1) / np.sqrt(bn.running_var.numpy() + f32(bn.eps)))
    shift = (bn.bias.detach().numpy().astype(np.float64)
             - bn.running_mean.numpy().astype(np.float64) * scale).astype(f32)
    unfused = conv * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    assert (unfused != want).mean() > 0.05
    np.testing.assert_array_equal(engine.predict(x.numpy()), want)


def test_binary_conv_with_bias_bn_within_roundings(tmp_path):
    net = _net(IRConv2d, True)
    path = str(tmp_path / "m.irb")
    convert(net, path)
    engine = irnet_infer.Model(path)
    assert [s["type"] for s in engine.steps()] == ["bconv2d", "batch_norm"]
    x = torch.randn(16, *net.input_size, generator=torch.Generator().manual_seed(1))
    want = reference_forward(net, x).numpy()
    got = engine.predict(x.numpy())
    # Why not bit for bit: PyTorch's own conv with a bias is not the once-rounded exact
    # acc + b (the engine's bconv2d output), on many outputs.
    conv = net[0]
    with torch.no_grad():
        signs = torch.where(x < 0, -1.0, 1.0)
        with_bias = conv(signs).numpy()
        w_std, shift = binary_weight(conv)
        weights = torch.sign(w_std) * torch.pow(2.0, shift.float()).view(-1, 1, 1, 1)
        acc = F.conv2d(signs, weights, None, padding=1).numpy()  # integers times 2^s: exact
    exact = (acc.astype(np.float64) + conv.bias.detach().numpy().reshape(1, -1, 1, 1)).astype(np.float32)
    assert (with_bias != exact).mean() > 0.05
    # A few roundings of the value's size apart (see the module docstring), never more.
    bound = 4 * np.spacing(np.abs(want).max())
    assert np.abs(got - want).max() <= bound, (np.abs(got - want).max(), bound)


@pytest.mark.parametrize("dims", [2, 1])  # BatchNorm2d on maps; BatchNorm1d on vectors (classifiers)
def test_batch_norm_op_bit_exact_with_pytorch(tmp_path, dims):
    torch.manual_seed(0)
    bn = _net(nn.Conv2d, False)[1]
    if dims == 1:
        bn1d = nn.BatchNorm1d(bn.num_features)
        bn1d.load_state_dict(bn.state_dict())
        bn = bn1d
    # As in the ResNet-18 classifier: pooled maps flattened to vectors, then BatchNorm1d.
    net = nn.Sequential(bn).eval() if dims == 2 else nn.Sequential(nn.Flatten(), bn).eval()
    net.input_size = (32, 9, 9) if dims == 2 else (32, 1, 1)
    path = str(tmp_path / "m.irb")
    convert(net, path)
    engine = irnet_infer.Model(path)
    assert [s["type"] for s in engine.steps()] == (["batch_norm"] if dims == 2 else ["flatten", "batch_norm"])
    x = torch.randn(16, *net.input_size, generator=torch.Generator().manual_seed(1)) * 100
    with torch.no_grad():
        want = net(x).numpy()
    x = x.flatten(1) if dims == 1 else x
    # The oracle holds: PyTorch rounds as two fmas here (else this test would not say much).
    # Float32 steps, and an fma as an exact float64 product plus one rounding (x * scale and
    # mean * scale are exact in float64).
    f32 = np.float32
    weight, bias, mean, var = (t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var))
    scale = (weight * (f32(1) / np.sqrt(var + f32(bn.eps)))).astype(np.float64)
    shift = (bias - mean * scale).astype(f32)
    per_channel = (1, -1) + (1,) * (x.dim() - 2)
    fmas = (x.numpy() * scale.reshape(per_channel) + shift.reshape(per_channel)).astype(f32)
    np.testing.assert_array_equal(fmas, want)
    np.testing.assert_array_equal(engine.predict(x.reshape(16, *net.input_size).numpy()), want)


def test_fold_with_bias_would_round_differently():
    """The oracle for why the bias case is not folded: in float32, the folded form
    acc * (2^s * scale) + (b * scale + shift) differs from PyTorch's order on many values."""
    gen = np.random.default_rng(0)
    acc = gen.integers(-576, 577, 10000).astype(np.float32) * np.float32(0.5)
    b, scale, shift = (gen.standard_normal(10000).astype(np.float32) * k for k in (7.3, 1, 3))
    pytorch = (acc + b) * scale + shift
    folded = acc * scale + (b * scale + shift)
    assert (pytorch != folded).mean() > 0.1


@pytest.mark.parametrize("bias", [False, True])
def test_float_conv_bn_matches(tmp_path, bias):
    net = _net(nn.Conv2d, bias, cin=3, cout=16)
    path = str(tmp_path / "m.irb")
    convert(net, path)
    engine = irnet_infer.Model(path)
    assert [s["type"] for s in engine.steps()] == (["conv2d", "batch_norm"] if bias else ["conv2d"])
    x = torch.randn(16, *net.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net(x).numpy()
    got = engine.predict(x.numpy())
    # The float conv sums in another order than PyTorch: float rounding, not fold error.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
