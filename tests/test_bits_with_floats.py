"""A binary conv whose output is read both as floats (a residual, an add) and as the input of
other binary convs writes the floats and their sign bits (graph/pass_sign_bits.cpp); a map of
bits read only by convs of one padding carries that padding as a zero border, which the readers
take their taps from in place. The outputs must equal PyTorch's float computation exactly."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import irnet_infer
from irnet_infer import _engine
from irnet_infer.format import pack_signs

ISAS = irnet_infer.available_isas()


def conv(name, src, dst, cin, cout, k, stride, pad):
    return {"type": "bconv2d", "name": name, "inputs": [src], "outputs": [dst],
            "attrs": {"in_channels": cin, "out_channels": cout, "kernel_size": [k, k],
                      "stride": [stride, stride], "padding": [pad, pad]},
            "params": {"weight_bits": name + "_w", "shift": name + "_s"}}


def bn(name, src, dst):
    return {"type": "batch_norm", "name": name, "inputs": [src], "outputs": [dst], "attrs": {"eps": 0.0},
            "params": {"mean": name + "_m", "var": name + "_v", "weight": name + "_g", "bias": name + "_b"}}


def op(kind, name, inputs, dst, attrs=None):
    return {"type": kind, "name": name, "inputs": inputs, "outputs": [dst], "attrs": attrs or {}, "params": {}}


HT = {"min_val": -1.0, "max_val": 1.0}


def block_graph(c, h, stride, rng):
    """a = ht(bn(conv_a(x)) + x); b = ht(bn(conv_b(a)) + a); then conv_c (3x3, pad 1) and
    conv_d and conv_p (1x1, pad 0) read b: y = bn(conv_d(b)) + bn(conv_c(b)) + pool(conv_p(b)).
    a is floats and bits (one reader of the bits: bordered when the taps are read in place); b
    is floats and bits read with two paddings (no common border). BatchNorm with var 0.25 and
    integer mean and bias keeps every conv output an exact integer, so only the adds round,
    as in PyTorch."""
    pool = {"kernel_size": [stride, stride], "stride": [stride, stride], "padding": [0, 0]}
    ops = [conv("ca", "x", "ca", c, c, 3, 1, 1), bn("ba", "ca", "ba"), op("add", "aa", ["ba", "x"], "sa"),
           op("hardtanh", "ha", ["sa"], "a", HT),
           conv("cb", "a", "cb", c, c, 3, 1, 1), bn("bb", "cb", "bb"), op("add", "ab", ["bb", "a"], "sb"),
           op("hardtanh", "hb", ["sb"], "b", HT),
           conv("cc", "b", "cc", c, 8, 3, stride, 1), bn("bc", "cc", "bc"),
           conv("cd", "b", "cd", c, 8, 1, stride, 0), bn("bd", "cd", "bd"), op("add", "ad", ["bd", "bc"], "e"),
           conv("cp", "b", "cp", c, 8, 1, 1, 0), op("max_pool2d", "pool", ["cp"], "pp", pool),
           op("add", "ay", ["e", "pp"], "y")]
    tensors, weights = {}, {}
    for name, cin, cout, k in [("ca", c, c, 3), ("cb", c, c, 3), ("cc", c, 8, 3), ("cd", c, 8, 1), ("cp", c, 8, 1)]:
        w = rng.choice([-1.0, 1.0], size=(cout, cin, k, k)).astype(np.float32)
        weights[name] = w
        tensors[name + "_w"] = pack_signs(w)
        tensors[name + "_s"] = np.zeros(cout, np.int8)
    for name, cout in [("ba", c), ("bb", c), ("bc", 8), ("bd", 8)]:
        tensors[name + "_m"] = rng.integers(-6, 7, cout).astype(np.float32)
        tensors[name + "_v"] = np.full(cout, 0.25, np.float32)
        tensors[name + "_g"] = rng.choice([-1.0, 1.0], cout).astype(np.float32)
        tensors[name + "_b"] = rng.integers(-3, 4, cout).astype(np.float32)
    graph = {"inputs": [{"name": "x", "shape": [c, h, h]}], "outputs": ["y"], "ops": ops}
    return graph, tensors, weights


def torch_block(x, t, w, stride):
    sign = lambda v: torch.where(v < 0, -1.0, 1.0)  # noqa: E731
    conv_ = lambda v, n, s, p: F.conv2d(sign(v), torch.from_numpy(w[n]), stride=s, padding=p)  # noqa: E731
    bn_ = lambda v, n: F.batch_norm(v, *(torch.from_numpy(t[n + s]) for s in ("_m", "_v", "_g", "_b")),  # noqa: E731
                                    eps=0.0)
    x = torch.from_numpy(x)
    a = F.hardtanh(bn_(conv_(x, "ca", 1, 1), "ba") + x)
    b = F.hardtanh(bn_(conv_(a, "cb", 1, 1), "bb") + a)
    e = bn_(conv_(b, "cd", stride, 0), "bd") + bn_(conv_(b, "cc", stride, 1), "bc")
    return (e + F.max_pool2d(conv_(b, "cp", 1, 0), stride)).numpy()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
# Bit-row readers (16 channels), taps in place (64), a word tail (130); strides 1 and 2.
@pytest.mark.parametrize("c,h,stride", [(16, 12, 1), (64, 10, 2), (130, 8, 1), (64, 14, 1)])
def test_block_outputs_equal_pytorch(isa, threads, c, h, stride):
    rng = np.random.default_rng(c + h)
    graph, tensors, weights = block_graph(c, h, stride, rng)
    engine = _engine.Engine(graph, tensors, threads, isa)
    x = rng.standard_normal((3, c, h, h)).astype(np.float32)
    x[0, 0, 0, :3] = [0.0, -0.0, -1e-30]  # the sign rule at zero: 0 and -0 are +1
    np.testing.assert_array_equal(engine.run(x), torch_block(x, tensors, weights, stride))
    np.testing.assert_array_equal(engine.run(x[:1]), torch_block(x[:1], tensors, weights, stride))


def test_plan_reads_bits_beside_floats():
    graph, tensors, _ = block_graph(64, 9, 1, np.random.default_rng(0))
    engine = _engine.Engine(graph, tensors, 1, "scalar")
    inputs = {s["name"]: s["inputs"] for s in engine.steps()}
    # The second conv reads a's sign bits and a's floats (its residual); the convs reading b
    # take b's bits; the graph's own tensors are all there is in tensor_shapes.
    assert inputs["cb"] == ["a (sign bits)", "a"]
    assert inputs["cc"][0] == inputs["cd"][0] == inputs["cp"][0] == "b (sign bits)"
    assert not any("sign bits" in name for name in engine.tensor_shapes())
