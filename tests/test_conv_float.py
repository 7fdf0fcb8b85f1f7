"""Float convolution matches torch.nn.functional.conv2d over the geometries its in-place
left operand has to handle: padded or not, strided, non-square kernels, 1x1 convs whose rows
run on across output rows, batches, and outputs split across threads."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import irnet_infer
from irnet_infer import _engine
from one_op_graphs import one_op_graph

ISAS = irnet_infer.available_isas()


def conv_engine(cin, cout, kernel, stride, pad, h, w, isa, threads=1, bias=None):
    weights = np.random.default_rng(0).standard_normal((cout, cin, *kernel)).astype(np.float32)
    attrs = {"in_channels": cin, "out_channels": cout, "kernel_size": list(kernel),
             "stride": [stride, stride], "padding": list(pad)}
    params = {"weight": weights} if bias is None else {"weight": weights, "bias": bias}
    graph, tensors = one_op_graph("conv2d", (cin, h, w), attrs, params, "conv")
    return _engine.Engine(graph, tensors, threads, isa), weights


# (cin, cout, kernel, stride, padding, h, w): the ResNet-18 stem shape scaled down, CIFAR stem,
# 1x1 downsample and plain 1x1, and odd sizes that leave row and column tails everywhere.
SHAPES = [
    (3, 64, (7, 7), 2, (3, 3), 23, 19),
    (3, 16, (3, 3), 1, (1, 1), 12, 10),
    (64, 128, (1, 1), 2, (0, 0), 14, 14),
    (70, 33, (1, 1), 1, (0, 0), 9, 11),
    (5, 70, (3, 1), 1, (0, 1), 8, 13),
    (4, 17, (1, 3), 2, (2, 0), 7, 9),
    (2, 200, (5, 5), 3, (0, 2), 16, 15),
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cin,cout,kernel,stride,pad,h,w", SHAPES)
def test_conv_matches_torch(isa, cin, cout, kernel, stride, pad, h, w):
    bias = np.random.default_rng(2).standard_normal(cout).astype(np.float32)
    engine, weights = conv_engine(cin, cout, kernel, stride, pad, h, w, isa, bias=bias)
    x = np.random.default_rng(1).standard_normal((3, cin, h, w)).astype(np.float32)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(weights), torch.from_numpy(bias),
                    stride=stride, padding=pad).numpy()
    got = engine.run(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * np.sqrt(cin * kernel[0] * kernel[1]))


# Threads split a map by output rows and, on small maps, by output channels: the same values.
@pytest.mark.parametrize("cin,cout,size,kernel,stride,pad", [(3, 64, 64, (7, 7), 2, (3, 3)),
                                                              (256, 512, 14, (1, 1), 2, (0, 0))])
@pytest.mark.parametrize("threads", [2, 3])
def test_conv_same_values_for_every_thread_count(threads, cin, cout, size, kernel, stride, pad):
    x = np.random.default_rng(3).standard_normal((2, cin, size, size)).astype(np.float32)
    for isa in ISAS:
        one = conv_engine(cin, cout, kernel, stride, pad, size, size, isa)[0].run(x)
        np.testing.assert_array_equal(conv_engine(cin, cout, kernel, stride, pad, size, size, isa, threads)[0].run(x), one)
