"""A differential sweep of the engine's fused binary-conv paths: small random networks built
from export/'s layers (IR-Net binary convs, the Bi-Real / option-A / option-B residual blocks,
BatchNorm, hardtanh / relu, max pools after float and binary convs, float stems and downsample
shortcuts; kernels 1 and 3, strides 1 and 2, paddings 0 and 1, channel counts on and off the
multiples of 8 / 64, odd map sizes), converted with export.convert, run by the engine at 1, 2
and 3 threads and batches of 1, 2 and 5 on every ISA this CPU runs, against the PyTorch model
in eval mode (export.reference.reference_forward): the oracle is PyTorch, never the engine.

The standard, as the focused tests state it:
- A network of binary convs, BatchNorms, adds, hardtanh / relu, max pools and option-A
  shortcuts only computes what PyTorch computes, bit for bit: the binary conv's integers times
  2^shift are exact, the folded BatchNorm rounds once as PyTorch's fma does (test_bn_fold.py),
  an add rounds once on both sides, the rest is exact (test_bits_with_floats.py). Its outputs,
  at every thread count and batch size, must equal PyTorch's (np.array_equal).
- A network with float convs (a stem, 1x1 downsample shortcuts) sums those in another order
  than PyTorch: each sample within 1e-4 x max|output| of PyTorch's, or else its first sign flip
  on a genuine boundary (test_model_e2e.first_flip_is_on_boundary, its standard).
- Any network gives the same outputs at every thread count, and each sample of a batch equals
  its batch-1 run (np.array_equal), as test_model_e2e asserts on ResNet-18.

test_sweep_exercises_the_fused_paths checks from the plans (Model.steps, run_debug) that the
seeds really hit the paths under test, and counts them. `IRNET_SWEEP_SEEDS=1000:3000 pytest
tests/test_fused_paths_sweep.py` sweeps other seeds."""
import os
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import irnet_infer
from export.blocks import BasicBlockA1w32a, BasicBlockB, BiRealBlockA, BiRealBlockImageNet
from export.convert import convert
from export.irnet import IRConv2d
from export.reference import reference_forward
from helpers import calibrate_bn
from test_model_e2e import REL_TOL, first_flip_is_on_boundary

ISAS = irnet_infer.available_isas()
# IRNET_SWEEP_SEEDS=FIRST:END sweeps other seeds (a longer hunt than the suite's).
SEEDS = range(*map(int, os.environ.get("IRNET_SWEEP_SEEDS", "0:150").split(":")))
THREADS = (1, 2, 3)
BATCHES = (1, 2, 5)
CHANNELS = (8, 16, 24, 32, 48, 64, 72, 96, 128, 136)
SIZES = (5, 7, 9, 13)
# Max pools (kernel, stride, padding): VGG's, the ResNet-18 stem's, and overlapping stride 1.
POOLS = ((2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0))
# 57 words a tap: a 3x3 conv's K is 513 words, past the AVX2 kernel's 512-word buffer (its
# long-K path).
LONG_K_CHANNELS = 57 * 64


class Fork(nn.Module):
    """Two binary convs reading one map: hardtanh(bn_a(conv_a(x)) + bn_b(conv_b(x))), kernels
    1 or 3 with padding k // 2 (one border shared by both readers, or two different ones)."""

    def __init__(self, c, c2, ka, kb, stride):
        super().__init__()
        self.conv_a = IRConv2d(c, c2, ka, stride=stride, padding=ka // 2, bias=False)
        self.bn_a = nn.BatchNorm2d(c2)
        self.conv_b = IRConv2d(c, c2, kb, stride=stride, padding=kb // 2, bias=False)
        self.bn_b = nn.BatchNorm2d(c2)

    def forward(self, x):
        return F.hardtanh(self.bn_a(self.conv_a(x)) + self.bn_b(self.conv_b(x)))


class Residual(nn.Module):
    """A Bi-Real unit of any kernel size: hardtanh(bn(conv(x)) + x)."""

    def __init__(self, c, k):
        super().__init__()
        self.conv = IRConv2d(c, c, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.hardtanh(self.bn(self.conv(x)) + x)


def _out(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def _act(rng):
    return nn.ReLU() if rng.random() < 0.15 else nn.Hardtanh()


def _pool(rng, h):
    k, s, p = rng.choice([q for q in POOLS if h + 2 * q[2] >= q[0]])
    return nn.MaxPool2d(k, s, p), _out(h, k, s, p), f"maxpool{k}/{s}/{p}"


def _plain(rng, c, h, s, pool_probability):
    """binary conv (-> max pool) -> bn -> act, VGG-Small's order, or conv -> bn -> act (-> max
    pool): (modules, channels out, size out, note)."""
    k = rng.choice((1, 3))
    p = rng.choice((0, 1)) if h >= k else 1
    c2 = rng.choice(CHANNELS)
    unit = [IRConv2d(c, c2, k, stride=s, padding=p, bias=False), nn.BatchNorm2d(c2), _act(rng)]
    h2 = _out(h, k, s, p)
    if h2 >= 2 and rng.random() < pool_probability:
        pool, h2, _ = _pool(rng, h2)
        unit.insert(1 if rng.random() < 0.5 else 3, pool)
    note = f"conv{k} {c}->{c2} s{s} p{p} " + " ".join(
        f"maxpool{m.kernel_size}/{m.stride}/{m.padding}" if isinstance(m, nn.MaxPool2d) else type(m).__name__
        for m in unit[1:])
    return unit, c2, h2, note


def random_net(seed):
    """(model, notes): a random network for `seed` (deterministic), with `input_size` set, and
    a line per unit saying what it is."""
    rng = random.Random(seed)
    torch.manual_seed(seed)  # the layers' initial weights
    size = h = rng.choice(SIZES)
    layers, notes = [], []
    if rng.random() < 0.35:  # a float stem: conv -> bn -> act (-> max pool, fused into the conv)
        size = h = rng.choice(SIZES + (25, 25))  # 25: enough work for the pooled bands' threads
        c, k, s = rng.choice(CHANNELS), rng.choice((1, 3)), rng.choice((1, 2))
        p = rng.choice((0, 1))
        cin = 3
        layers += [nn.Conv2d(3, c, k, s, p, bias=False), nn.BatchNorm2d(c), _act(rng)]
        h = _out(h, k, s, p)
        notes.append(f"stem conv{k} 3->{c} s{s} p{p} {type(layers[-1]).__name__}")
        if rng.random() < 0.7:
            pool, h, note = _pool(rng, h)
            layers.append(pool)
            notes[-1] += " " + note
    else:
        c = cin = rng.choice(CHANNELS)
    for _ in range(rng.randint(2, 4)):
        s = 2 if h >= 3 and rng.random() < 0.3 else 1
        kind = rng.choice(["bireal", "bireal_a", "basic_b", "plain", "vgg", "residual", "fork", "relu_a",
                           "wide"])
        if kind == "wide" and not (h * h <= 49 and rng.random() < 0.5):
            kind = "plain"
        if kind in ("bireal_a", "relu_a") and (c % 2 or c > 72):
            kind = "bireal"
        if kind == "bireal":
            c2 = c if s == 1 and rng.random() < 0.5 else rng.choice(CHANNELS)
            down = None
            if s != 1 or c2 != c:
                down = nn.Sequential(nn.Conv2d(c, c2, 1, s, bias=False), nn.BatchNorm2d(c2))
            layers.append(BiRealBlockImageNet(c, c2, s, down))
        elif kind in ("bireal_a", "relu_a"):  # option A: same channels at stride 1, or twice
            c2 = 2 * c if s == 2 or rng.random() < 0.5 else c
            block = BiRealBlockA if kind == "bireal_a" else BasicBlockA1w32a
            layers.append(block(c, c2, s))
        elif kind == "basic_b":
            c2 = c if s == 1 and rng.random() < 0.5 else rng.choice(CHANNELS)
            layers.append(BasicBlockB(c, c2, s))
        elif kind == "fork":
            c2, ka, kb = rng.choice(CHANNELS), rng.choice((1, 3)), rng.choice((1, 3))
            layers.append(Fork(c, c2, ka, kb, s))
        elif kind == "residual":
            s, c2, k = 1, c, rng.choice((1, 3))
            layers.append(Residual(c, k))
        elif kind == "wide":  # c -> LONG_K_CHANNELS (1x1) -> few (3x3): binary GEMMs of long K
            s, c2 = 1, rng.choice((8, 16))
            layers += [IRConv2d(c, LONG_K_CHANNELS, 1, bias=False), nn.BatchNorm2d(LONG_K_CHANNELS),
                       nn.Hardtanh(), IRConv2d(LONG_K_CHANNELS, c2, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c2), nn.Hardtanh()]
        else:  # plain; vgg: a plain unit with a max pool, then one without
            for pool in ((1.0, 0.0) if kind == "vgg" else (0.6,)):
                unit, c, h, note = _plain(rng, c, h, s, pool)
                layers += unit
                notes.append(note)
                s = 1
            continue
        h = _out(h, 3, s, 1)
        notes.append(f"{kind} {c}->{c2} s{s}" + (f" k{k}" if kind == "residual" else "")
                     + (f" k{ka},{kb}" if kind == "fork" else ""))
        c = c2
    model = nn.Sequential(*layers)
    model.input_size = (cin, size, size)
    return model, notes


def sample_inputs(input_size, seed, n=5):
    x = np.random.default_rng(seed).standard_normal((n, *input_size)).astype(np.float32)
    x[0, 0, 0, :3] = [0.0, -0.0, -1e-30]  # the sign rule at zero: 0 and -0 are +1
    return x


@pytest.fixture(scope="module")
def sweep_net(tmp_path_factory):
    """seed -> (model in eval mode, .irb path, converted graph, notes), built once per module.
    BatchNorm statistics are calibrated on random inputs, so activations stay at scale 1 and
    the hardtanhs and adds see values inside (-1, 1) (random statistics saturate them); on
    every other seed all BatchNorm scales are positive, so that a batch_norm and hardtanh after
    a max pool move ahead of it and the pool works on sign bits (fuse_through_max_pools)."""
    cache = {}

    def get(seed):
        if seed not in cache:
            model, notes = random_net(seed)
            calibrate_bn(model, torch.randn(16, *model.input_size, generator=torch.Generator().manual_seed(seed)),
                         seed)
            if seed % 2 == 0:
                for m in model.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.weight.data.abs_()
            path = str(tmp_path_factory.mktemp("sweep") / f"net{seed}.irb")
            graph = convert(model, path)["graph"]
            cache[seed] = (model.eval(), path, graph, notes)
        return cache[seed]
    return get


def is_exact(graph):
    """Whether every op of the graph computes what PyTorch computes bit for bit (no float conv)."""
    return not any(op["type"] == "conv2d" for op in graph["ops"])


@pytest.mark.parametrize("seed", SEEDS)
def test_random_network_matches_pytorch(sweep_net, seed):
    model, path, graph, notes = sweep_net(seed)
    where = f"seed {seed}: " + " | ".join(notes)
    x = sample_inputs(model.input_size, seed)
    want = reference_forward(model, torch.from_numpy(x)).numpy()
    exact = is_exact(graph)
    for isa in ISAS:
        engines = {t: irnet_infer.Model(path, num_threads=t, isa=isa) for t in THREADS}
        base = engines[1].predict(x)
        assert base.shape == want.shape, where
        if exact:
            np.testing.assert_array_equal(base, want, err_msg=f"{where} [{isa}]")
        else:
            scale = np.abs(want).max()
            outside = np.flatnonzero(np.abs(base - want).reshape(len(x), -1).max(1) > REL_TOL * scale)
            for i in outside:
                ok, why = first_flip_is_on_boundary(model, engines[1], torch.from_numpy(x), i)
                assert ok, f"{where} [{isa}] sample {i}: {why}"
        # Every thread count and batch size gives the batch-5 single-thread outputs, and each
        # sample run alone its own (here on 2 threads: each layer split across them).
        for t, engine in engines.items():
            for b in BATCHES:
                np.testing.assert_array_equal(engine.predict(x[:b]), base[:b],
                                              err_msg=f"{where} [{isa}] threads {t} batch {b}")
        alone = np.concatenate([engines[2].predict(x[i:i + 1]) for i in range(len(x))])
        np.testing.assert_array_equal(alone, base, err_msg=f"{where} [{isa}] one sample at a time")


# Work per thread the engine starts a conv's threads for (ConvBase::threads_for: 4 M binary
# MACs, a float MAC counting 10): a layer below twice that runs on one thread whatever is asked.
MACS_PER_THREAD = 4 << 20


def fused_paths(model, path, graph):
    """The set of fused paths the plan of this network takes, read from its steps, its debug
    run (tensors held only as sign bits, or as values PyTorch never computes, are not in it)
    and the graph's conv attributes."""
    engine = irnet_infer.Model(path, num_threads=1)
    steps = engine.steps()
    names = engine.tensor_op_names()
    debug = engine.run_debug(sample_inputs(model.input_size, 0, 1))
    written = lambda t: names.get(t, t) in debug  # noqa: E731
    attrs = {op["name"]: op["attrs"] for op in graph["ops"]}
    readers = {}
    for s in steps:
        for k, t in enumerate(s["inputs"]):
            readers.setdefault(t, []).append((s, k))
    hit = set()
    for s in steps:
        fused = " ".join(s["fused"])
        if s["type"] == "bconv2d":
            a = attrs[s["name"]]
            cin, (kh, _), (ph, _) = a["in_channels"], a["kernel_size"], a["padding"]
            src = s["inputs"][0]
            if "(add)" in fused:
                hit.add("residual fused into a binary conv")
                producer = next((p for p in steps if p["output"] == s["inputs"][1]), None)
                if producer and producer["type"] == "shortcut_a":
                    hit.add("option-A shortcut fused as a residual")
            if src.endswith(" (sign bits)"):
                hit.add("floats and sign bits written together (Step::out_bits)")
            elif src != graph["inputs"][0]["name"] and not written(src):
                hit.add("sign bits only between convs (chain)")
            if src.endswith(" (sign bits)") or not written(src):
                rs = readers[src]
                if cin >= 64 and ph > 0 and all(
                        r["type"] == "bconv2d" and k == 0 and attrs[r["name"]]["padding"] == a["padding"]
                        and attrs[r["name"]]["in_channels"] >= 64 for r, k in rs):
                    hit.add("bordered map of sign bits (taps in place)")
            if cin < 64:
                hit.add({(3, 16): "bit-row im2col 3x48", (3, 32): "bit-row im2col 3x96"}.get(
                    (kh, cin), "bit-row im2col, generic"))
            if kh == 3 and cin * 9 > 512 * 64:
                hit.add("binary GEMM long-K path")
            if not src.endswith(" (sign bits)") and written(src) and cin in (8, 16, 32):
                hit.add("bitpack of 8/16/32-channel rows")
            if 5 * s["binary_macs"] >= 2 * MACS_PER_THREAD:
                hit.add("binary conv on several threads (batch 5)")
            if s["binary_macs"] >= 2 * MACS_PER_THREAD:
                hit.add("binary conv on several threads (batch 1)")
            if "moved before pooling" in fused:
                hit.add("batch_norm/clamp moved before a max pool")
        elif s["type"] == "conv2d":
            if "(max_pool2d)" in fused:
                hit.add("max pool folded into a float conv")
                if 10 * 5 * s["float_macs"] >= 2 * MACS_PER_THREAD:
                    hit.add("float conv + max pool bands on several threads (batch 5)")
            if "(add)" in fused:
                hit.add("residual fused into a float conv")
        elif s["type"] == "max_pool2d" and not written(s["inputs"][0]) and not written(s["output"]):
            hit.add("max pool of sign bits")
    return hit


# Each path the sweep is for, and the least share of the networks that must take it (a
# change of the generator or of the plan that stops a path being swept fails here).
PATHS = {
    "residual fused into a binary conv": 0.5,
    "floats and sign bits written together (Step::out_bits)": 0.5,
    "sign bits only between convs (chain)": 0.5,
    "bordered map of sign bits (taps in place)": 0.4,
    "option-A shortcut fused as a residual": 0.15,
    "residual fused into a float conv": 0.1,
    "max pool folded into a float conv": 0.15,
    "float conv + max pool bands on several threads (batch 5)": 0.04,
    "max pool of sign bits": 0.1,
    "batch_norm/clamp moved before a max pool": 0.08,
    "binary conv on several threads (batch 5)": 0.3,
    "binary conv on several threads (batch 1)": 0.1,
    "bit-row im2col 3x48": 0.1,
    "bit-row im2col 3x96": 0.1,
    "bit-row im2col, generic": 0.3,
    "bitpack of 8/16/32-channel rows": 0.15,
    "binary GEMM long-K path": 0.08,
}


def test_sweep_exercises_the_fused_paths(sweep_net):
    counts, exact = dict.fromkeys(PATHS, 0), 0
    for seed in SEEDS:
        model, path, graph, _ = sweep_net(seed)
        exact += is_exact(graph)
        for h in fused_paths(model, path, graph):
            counts[h] += 1
    print(f"\n{len(SEEDS)} networks, {exact} bit-exact (no float conv):")
    for h, n in counts.items():
        print(f"  {n:4d}  {h}")
    assert exact >= 0.25 * len(SEEDS)
    short = {h: n for h, n in counts.items() if n < PATHS[h] * len(SEEDS)}
    assert not short, short
