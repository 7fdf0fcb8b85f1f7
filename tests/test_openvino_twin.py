"""The benchmark suite's OpenVINO twin (benchmarks/openvino_twin.py) computes what we compute:
single binary convs equal a PyTorch conv of the signs (exact integers times 2^shift), with every
binary conv running as a u1 binary primitive, and whole networks equal the IR-Net reference
forward in PyTorch up to float rounding. Skipped without openvino (the `bench` extra)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import openvino_twin  # noqa: E402
from one_op_graphs import bconv_graph, random_signs  # noqa: E402

_missing = openvino_twin.unavailable_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))


def _bconv_graph(cin, cout, k, stride, pad, h, w, rng, bias):
    weights = random_signs(rng, cout, cin, k)
    shift = rng.integers(-3, 4, size=cout).astype(np.int8)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    graph, tensors = bconv_graph(weights, h, w, stride, pad, shift, b)
    return graph, tensors, weights, shift


@pytest.mark.parametrize("cin,cout,k,stride,pad,h,w", [
    (64, 64, 3, 1, 1, 9, 7), (16, 16, 3, 1, 1, 8, 8), (8, 5, 3, 1, 1, 6, 6), (104, 24, 3, 2, 1, 9, 9),
    (128, 32, 1, 2, 0, 8, 8), (32, 8, 3, 1, 0, 5, 6)])
def test_binary_conv_equals_torch_conv_of_signs(cin, cout, k, stride, pad, h, w):
    rng = np.random.default_rng(cin * 7 + k)
    graph, tensors, weights, shift = _bconv_graph(cin, cout, k, stride, pad, h, w, rng, bias=cin == 104)
    x = rng.standard_normal((2, cin, h, w)).astype(np.float32)
    x[0, 0, 0, :3] = [0.0, -0.0, -1e-45]  # the sign rule's edge: 0 and -0 -> +1, the tiniest negative -> -1
    compiled = openvino_twin.compile_model(openvino_twin.build(graph, tensors, 2), 1)
    prims = openvino_twin.binary_primitives(compiled)
    assert len(prims) == 1 and openvino_twin.is_u1_binary(prims[0][2]), prims
    got = openvino_twin.runner(compiled)(x).copy()
    signs = torch.from_numpy(np.where(x < 0, -1.0, 1.0).astype(np.float32))
    dot = F.conv2d(signs, torch.from_numpy(weights), stride=stride, padding=pad)  # zero padding
    want = dot * torch.from_numpy(np.ldexp(1.0, shift.astype(np.int32)).astype(np.float32)).view(1, -1, 1, 1)
    if "bias" in tensors:
        want = want + torch.from_numpy(tensors["bias"]).view(1, -1, 1, 1)
    np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.parametrize("arch,size", [("resnet20", (3, 32, 32)), ("vgg_small", (3, 32, 32)),
                                       ("resnet20_1w32a", (3, 32, 32))])
def test_network_equals_irnet_reference(tmp_path, arch, size):
    from export.convert import convert
    from export.models import create_model
    from export.reference import reference_forward
    from irnet_infer.format import read_irb
    from helpers import randomize_bn
    torch.manual_seed(0)
    model = randomize_bn(create_model(arch, input_size=size)).eval()
    path = tmp_path / f"{arch}.irb"
    convert(model, str(path), arch=arch)
    f = read_irb(path)
    x = torch.randn((3,) + size, generator=torch.Generator().manual_seed(1))
    compiled = openvino_twin.compile_model(openvino_twin.build(f.graph, f.tensors, 3), 2)
    prims = openvino_twin.binary_primitives(compiled)
    assert len(prims) == sum(op["type"] == "bconv2d" for op in f.graph["ops"])
    assert all(openvino_twin.is_u1_binary(p) for _, _, p in prims), prims
    got = openvino_twin.runner(compiled)(x.numpy()).copy()
    want = reference_forward(model, x).numpy()
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_input_channels_not_a_multiple_of_8_are_refused():
    graph, tensors, _, _ = _bconv_graph(100, 8, 3, 1, 1, 5, 5, np.random.default_rng(0), bias=False)
    with pytest.raises(NotImplementedError, match="multiple of 8"):
        openvino_twin.build(graph, tensors, 1)


def test_unavailable_reason_names_the_extra(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_openvino(name, *a, **k):
        if name.startswith("openvino"):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_openvino)
    assert "[bench]" in openvino_twin.unavailable_reason()
