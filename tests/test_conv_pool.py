"""A float conv followed by a max pool runs as one step that pools a band of conv rows at a
time (graph/fuse_max_pools.cpp). The pool is exact: its output equals torch's max_pool2d of the
same conv run alone, bit for bit, NaN included, for every band and thread split; the conv
itself stays within float rounding of torch's."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import irnet_infer
from irnet_infer import _engine

ISAS = irnet_infer.available_isas()


def graph(cin, cout, kernel, stride, pad, h, w, pool=None):
    """conv2d -> relu (-> max_pool2d with (kernel, stride, padding) `pool`), and its tensors."""
    rng = np.random.default_rng(0)
    tensors = {"w": rng.standard_normal((cout, cin, kernel, kernel)).astype(np.float32),
               "b": rng.standard_normal(cout).astype(np.float32)}
    ops = [{"type": "conv2d", "name": "conv", "inputs": ["x"], "outputs": ["c"],
            "attrs": {"in_channels": cin, "out_channels": cout, "kernel_size": [kernel, kernel],
                      "stride": [stride, stride], "padding": [pad, pad]},
            "params": {"weight": "w", "bias": "b"}},
           {"type": "relu", "name": "act", "inputs": ["c"], "outputs": ["r"], "attrs": {}, "params": {}}]
    if pool:
        k, s, p = pool
        ops.append({"type": "max_pool2d", "name": "pool", "inputs": ["r"], "outputs": ["y"],
                    "attrs": {"kernel_size": [k, k], "stride": [s, s], "padding": [p, p]}, "params": {}})
    g = {"inputs": [{"name": "x", "shape": [cin, h, w]}], "outputs": ["y" if pool else "r"], "ops": ops}
    return g, tensors


# (cin, cout, conv kernel, stride, padding, h, w, pool (kernel, stride, padding)): the ResNet-18
# stem on a small map, and geometries whose bands end mid-map, overlap by several rows, or
# have pool windows clipped at every border.
CASES = [
    (3, 64, 7, 2, 3, 64, 64, (3, 2, 1)),
    (3, 64, 7, 2, 3, 45, 37, (3, 2, 1)),
    (3, 17, 3, 1, 1, 30, 11, (2, 2, 0)),
    (5, 40, 3, 1, 0, 41, 9, (5, 1, 2)),
    (2, 8, 1, 1, 0, 3, 5, (3, 3, 1)),
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cin,cout,kernel,stride,pad,h,w,pool", CASES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fused_pool_is_max_pool2d_of_the_conv(isa, cin, cout, kernel, stride, pad, h, w, pool, threads):
    fused = _engine.Engine(*graph(cin, cout, kernel, stride, pad, h, w, pool), threads, isa)
    steps = fused.steps()
    assert len(steps) == 1 and any("max_pool2d" in f for f in steps[0]["fused"])
    conv = _engine.Engine(*graph(cin, cout, kernel, stride, pad, h, w), 1, isa)
    x = np.random.default_rng(1).standard_normal((3, cin, h, w)).astype(np.float32)
    x[1, 0, h // 2, w // 3] = np.nan  # a NaN pixel: NaN conv outputs around it, which the pool keeps
    c = conv.run(x)
    k, s, p = pool
    want = F.max_pool2d(torch.from_numpy(c), k, s, p).numpy()
    for batch in (x[:1], x):
        got = fused.run(batch)
        assert np.isnan(got).any() == (len(batch) > 1)
        np.testing.assert_array_equal(got, want[:len(batch)])
    tensors = graph(cin, cout, kernel, stride, pad, h, w)[1]
    ref = F.conv2d(torch.from_numpy(x[[0, 2]]), torch.from_numpy(tensors["w"]), torch.from_numpy(tensors["b"]),
                   stride=stride, padding=pad)
    ref = F.max_pool2d(F.relu(ref), k, s, p).numpy()
    np.testing.assert_allclose(want[[0, 2]], ref, rtol=1e-5, atol=1e-4 * np.sqrt(cin * kernel * kernel))


def test_pool_of_a_conv_output_with_another_reader_stays_a_step():
    g, tensors = graph(3, 8, 3, 1, 1, 10, 10, (3, 1, 1))
    g["ops"][-1]["outputs"] = ["p"]
    g["ops"].append({"type": "add", "name": "sum", "inputs": ["p", "r"], "outputs": ["y"], "attrs": {}, "params": {}})
    engine = _engine.Engine(g, tensors, 1, ISAS[0])
    assert [s["type"] for s in engine.steps()].count("max_pool2d") == 1
    x = np.random.default_rng(1).standard_normal((2, 3, 10, 10)).astype(np.float32)
    r = _engine.Engine(*graph(3, 8, 3, 1, 1, 10, 10), 1, ISAS[0]).run(x)
    want = F.max_pool2d(torch.from_numpy(r), 3, 1, 1).numpy() + r
    np.testing.assert_array_equal(engine.run(x), want)
