"""Binary convolution integers equal torch.nn.functional.conv2d on the same +/-1 tensors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import irnet_infer
from irnet_infer import _engine
from irnet_infer.format import pack_signs, unpack_signs
from one_op_graphs import bconv_graph, random_signs

ISAS = irnet_infer.available_isas()


def bconv_engine(cin, cout, k, stride, pad, h, w, isa, threads=1, seed=0):
    weights = random_signs(np.random.default_rng(seed), cout, cin, k)
    graph, tensors = bconv_graph(weights, h, w, stride, pad)
    return _engine.Engine(graph, tensors, threads, isa), weights


SHAPES = [(cin, k, stride, pad) for cin in (3, 16, 32, 63, 64, 65, 130)
          for (k, pad) in ((1, 0), (3, 0), (3, 1)) for stride in (1, 2)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cin,k,stride,pad", SHAPES)
def test_bconv_matches_torch(isa, cin, k, stride, pad):
    cout, h, w = 19, 9, 7
    engine, weights = bconv_engine(cin, cout, k, stride, pad, h, w, isa)
    x = np.random.default_rng(1).standard_normal((2, cin, h, w)).astype(np.float32)
    x[0, 0, 0, :3] = [0.0, -0.0, -1e-30]  # the sign rule at zero: 0 and -0 are +1
    signs = torch.from_numpy(np.where(x < 0, -1.0, 1.0).astype(np.float32))
    want = F.conv2d(signs, torch.from_numpy(weights), stride=stride, padding=pad).numpy()
    got = engine.run(x)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# Large enough that the engine really starts every thread (small layers use fewer): a map with
# many row blocks, a 7x7 map (one row block) whose output channels are split across threads,
# and a 32-channel layer (bit-row im2col path).
@pytest.mark.parametrize("cin,cout,size", [(130, 96, 28), (200, 512, 7), (32, 64, 32)])
@pytest.mark.parametrize("threads", [2, 3])
# Batch 1 splits each layer across the threads; batch 4 on 2 threads splits the batch (two
# single-thread runs of 2 samples, Plan::run), on 3 threads each layer again.
@pytest.mark.parametrize("batch", [1, 4])
def test_bconv_same_integers_for_every_thread_count_and_isa(threads, batch, cin, cout, size):
    x = np.random.default_rng(2).standard_normal((batch, cin, size, size)).astype(np.float32)
    base = bconv_engine(cin, cout, 3, 1, 1, size, size, "scalar", 1)[0].run(x)
    for isa in ISAS:
        np.testing.assert_array_equal(bconv_engine(cin, cout, 3, 1, 1, size, size, isa, threads)[0].run(x), base)


def test_pack_unpack_roundtrip():
    w = np.random.default_rng(3).standard_normal((5, 130, 3, 3)).astype(np.float32)
    packed = pack_signs(w)
    assert packed.shape == (5, 3, 3, 3) and packed.dtype == np.uint64
    assert not (packed[..., -1] >> np.uint64(2)).any()  # tail bits beyond Cin=130 are 0
    np.testing.assert_array_equal(unpack_signs(packed, 130), np.where(w < 0, -1.0, 1.0))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
# Bit-row (Cin < 64) and in-place consumers, a word tail (130 channels), and an 8x8 map whose
# output channels are split across threads in whole 64-bit words.
@pytest.mark.parametrize("cin,mid,h", [(16, 32, 16), (64, 130, 16), (128, 192, 8)])
@pytest.mark.parametrize("gamma", [1.0, -1.0])
def test_sign_bits_between_binary_convs(isa, threads, cin, mid, h, gamma):
    """bconv -> max_pool -> batch_norm -> hardtanh -> bconv (VGG-Small's order). With gamma > 0
    the plan moves the batch_norm and hardtanh ahead of the pool and the convs pass sign bits
    (through a bit pool); with gamma < 0 it cannot, and floats flow. Either way the output equals PyTorch's
    float computation exactly: the batch_norm (scale 2, integer shifts) is exact in float."""
    w = h
    rng = np.random.default_rng(3)
    wa = rng.choice([-1.0, 1.0], size=(mid, cin, 3, 3)).astype(np.float32)
    wb = rng.choice([-1.0, 1.0], size=(8, mid, 3, 3)).astype(np.float32)
    mean = rng.integers(-6, 7, mid).astype(np.float32)
    bias = rng.integers(-3, 4, mid).astype(np.float32)
    var, weight = np.full(mid, 0.25, np.float32), np.full(mid, gamma, np.float32)
    conv = lambda name, i, o, src, dst, wt: {  # noqa: E731
        "type": "bconv2d", "name": name, "inputs": [src], "outputs": [dst],
        "attrs": {"in_channels": i, "out_channels": o, "kernel_size": [3, 3], "stride": [1, 1],
                  "padding": [1, 1]}, "params": {"weight_bits": wt, "shift": wt + "_s"}}
    graph = {"inputs": [{"name": "x", "shape": [cin, h, w]}], "outputs": ["y"], "ops": [
        conv("a", cin, mid, "x", "a", "wa"),
        {"type": "max_pool2d", "name": "pool", "inputs": ["a"], "outputs": ["pool"],
         "attrs": {"kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0]}, "params": {}},
        {"type": "batch_norm", "name": "bn", "inputs": ["pool"], "outputs": ["bn"], "attrs": {"eps": 0.0},
         "params": {"mean": "m", "var": "v", "weight": "g", "bias": "b"}},
        {"type": "hardtanh", "name": "act", "inputs": ["bn"], "outputs": ["act"],
         "attrs": {"min_val": -1.0, "max_val": 1.0}, "params": {}},
        conv("b", mid, 8, "act", "y", "wb")]}
    tensors = {"wa": pack_signs(wa), "wa_s": np.zeros(mid, np.int8), "wb": pack_signs(wb),
               "wb_s": np.zeros(8, np.int8), "m": mean, "v": var, "g": weight, "b": bias}
    engine = _engine.Engine(graph, tensors, threads, isa)
    assert len(engine.steps()) == (3 if gamma > 0 else 5)  # conv, pool, conv when moved
    x = rng.standard_normal((2, cin, h, w)).astype(np.float32)
    sign = lambda t: torch.where(t < 0, -1.0, 1.0)  # noqa: E731
    a = F.conv2d(sign(torch.from_numpy(x)), torch.from_numpy(wa), padding=1)
    a = F.batch_norm(F.max_pool2d(a, 2), torch.from_numpy(mean), torch.from_numpy(var),
                     torch.from_numpy(weight), torch.from_numpy(bias), eps=0.0)
    a = F.hardtanh(a)
    want = F.conv2d(sign(a), torch.from_numpy(wb), padding=1).numpy()
    np.testing.assert_array_equal(engine.run(x), want)


@pytest.mark.parametrize("isa", ISAS)
def test_batch_norm_that_would_overflow_the_fold_is_not_folded(isa):
    """shift 100 (2^100) times a BatchNorm scale of 1e10 is inf in float32: folded, a dot of 0
    would give inf * 0 = NaN where PyTorch gives 0 * scale + shift. The plan keeps it apart."""
    cin, cout = 2, 4
    wa = np.array([[1, 1], [1, -1], [-1, 1], [1, 1]], np.float32).reshape(cout, cin, 1, 1)
    graph = {"inputs": [{"name": "x", "shape": [cin, 4, 4]}], "outputs": ["y"], "ops": [
        {"type": "bconv2d", "name": "a", "inputs": ["x"], "outputs": ["a"],
         "attrs": {"in_channels": cin, "out_channels": cout, "kernel_size": [1, 1], "stride": [1, 1],
                   "padding": [0, 0]}, "params": {"weight_bits": "w", "shift": "s"}},
        {"type": "batch_norm", "name": "bn", "inputs": ["a"], "outputs": ["y"], "attrs": {"eps": 0.0},
         "params": {"mean": "m", "var": "v", "weight": "g", "bias": "b"}}]}
    tensors = {"w": pack_signs(wa), "s": np.full(cout, 100, np.int8), "m": np.zeros(cout, np.float32),
               "v": np.full(cout, 1e-20, np.float32), "g": np.ones(cout, np.float32),
               "b": np.full(cout, -1.0, np.float32)}
    engine = _engine.Engine(graph, tensors, 1, isa)
    assert [s["type"] for s in engine.steps()] == ["bconv2d", "batch_norm"]
    x = np.ones((1, cin, 4, 4), np.float32)
    a = F.conv2d(torch.from_numpy(x), torch.from_numpy(wa)) * 2.0 ** 100
    want = F.batch_norm(a, torch.zeros(cout), torch.full((cout,), 1e-20), torch.ones(cout),
                        torch.full((cout,), -1.0), eps=0.0).numpy()
    got = engine.run(x)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got, want)


# Depth in 64-bit words per output (kh * kw * ceil(Cin / 64) in place; kh * kw * Cin / 64 bit
# rows): across 28 words, where the AVX2 kernel's 8-bit counters flush, and up to 72.
DEEP = [(1, 1792, 0), (1, 1856, 0), (1, 4608, 0), (3, 512, 1), (3, 200, 1), (3, 48, 1), (5, 40, 2)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("k,cin,pad", DEEP)
def test_bconv_with_shift_and_bias_matches_torch(isa, k, cin, pad):
    """sign(x) conv (sign(w) * 2^shift) + bias, with a non-zero shift per channel and the conv's
    own bias (no BatchNorm). The dot times 2^shift is exact in float, so PyTorch's conv without
    bias gives it exactly; adding the bias then rounds once, as the engine's epilogue does: equal
    bit for bit. PyTorch's conv with the bias inside accumulates onto the bias in float32, so it
    rounds at every partial sum: it agrees only to a few ulps of the largest partial sum."""
    cout, h, w = 19, 6, 5
    rng = np.random.default_rng(k * 10000 + cin)
    signs_w = random_signs(rng, cout, cin, k)
    shift = rng.choice([-3, -2, -1, 1, 2, 3], size=cout).astype(np.int8)
    bias = rng.standard_normal(cout).astype(np.float32)
    engine = _engine.Engine(*bconv_graph(signs_w, h, w, 1, pad, shift, bias), 1, isa)
    x = rng.standard_normal((2, cin, h, w)).astype(np.float32)
    signs = torch.from_numpy(np.where(x < 0, -1.0, 1.0).astype(np.float32))
    weight = torch.from_numpy(signs_w * np.ldexp(1.0, shift.astype(np.int32))[:, None, None, None].astype(np.float32))
    exact = F.conv2d(signs, weight, padding=pad)
    want = (exact + torch.from_numpy(bias)[:, None, None]).numpy()
    got = engine.run(x)
    np.testing.assert_array_equal(got, want)
    fused = F.conv2d(signs, weight, torch.from_numpy(bias), padding=pad).numpy()
    # The textbook bound of a float sum of n terms: n * u * sum|terms| (u = eps / 2).
    n = cin * k * k + 1
    sum_abs = cin * k * k * 2.0 ** int(shift.max()) + np.abs(bias).max()
    np.testing.assert_allclose(got, fused, rtol=0, atol=n * np.finfo(np.float32).eps / 2 * sum_abs)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("k,pad,h,w", [(5, 4, 3, 3), (7, 3, 2, 9), (31, 15, 40, 33), (4, 3, 5, 5), (3, 2, 1, 1)])
@pytest.mark.parametrize("cin", [3, 70])
def test_bconv_border_classes_match_torch(isa, k, pad, h, w, cin):
    """Zero padding at large kernels and paddings: kernels larger than the map, paddings past
    half the kernel, even kernels, a 1x1 map, strides 1 and 2 (every border class of the
    kernel-sized correction table, ops/border_correction.h)."""
    for stride in (1, 2):
        engine, weights = bconv_engine(cin, 5, k, stride, pad, h, w, isa, seed=k + h)
        x = np.random.default_rng(k).standard_normal((1, cin, h, w)).astype(np.float32)
        signs = torch.from_numpy(np.where(x < 0, -1.0, 1.0).astype(np.float32))
        want = F.conv2d(signs, torch.from_numpy(weights), stride=stride, padding=pad).numpy()
        np.testing.assert_array_equal(engine.run(x), want)
