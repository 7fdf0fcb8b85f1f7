"""Single 3x3 binary convolution layers (stride 1, zero padding 1, batch 1): the engine
(float input -> sign + pack -> binary conv -> float output, channels-last input taken without a
transpose) against torch.nn.functional.conv2d in float32 on the same shapes, NCHW and
channels_last (the faster one is the twin), at 1 thread and at all cores. A-D also get rows
with the engine forced to each slower ISA (avx2, scalar) this CPU runs. The best-ISA rows run
interleaved with the same layer in OpenVINO (FakeQuantize + u1 BinaryConvolution, checked to
run as a u1 binary primitive and to give our output exactly), fed the same values as a
contiguous NCHW array, its API's layout (an NHWC input declared through its preprocessing
crashed the 2026.4 CPU plugin here)."""
import numpy as np
import pytest

import irnet_infer
from benchmarks._common import LAYERS, PER_ISA_LAYERS, layer_label, layer_ops
from benchmarks import openvino_twin
from benchmarks.conftest import interleaved, record, thread_counts, timing
from tests.one_op_graphs import bconv_graph, random_signs

pytestmark = pytest.mark.benchmark(**timing())

ISAS = irnet_infer.available_isas()
BEST = ISAS[0]
SLOWER = [isa for isa in ("avx2", "scalar") if isa in ISAS and isa != BEST]


def _cases():
    cases = []
    for threads in thread_counts():
        for name in LAYERS:
            cases.append(pytest.param(name, threads, "torch", "nchw", id=f"{name}-{threads}t-torch-nchw"))
            cases.append(pytest.param(name, threads, "torch", "channels_last",
                                      id=f"{name}-{threads}t-torch-channels_last"))
            cases.append(pytest.param(name, threads, "engine", BEST, id=f"{name}-{threads}t-engine-{BEST}"))
            if name in PER_ISA_LAYERS:
                cases += [pytest.param(name, threads, "engine", isa, id=f"{name}-{threads}t-engine-{isa}")
                          for isa in SLOWER]
    return cases


def layer_graph(name, seed=0):
    """(graph, tensors, rng) of the one-op bconv2d graph of layer `name`."""
    h, w, cin, cout = LAYERS[name]
    rng = np.random.default_rng(seed)
    graph, tensors = bconv_graph(random_signs(rng, cout, cin, 3), h, w, stride=1, pad=1, name=name)
    return graph, tensors, rng


def bconv_layer(name, threads, isa, seed=0):
    """(engine, channels-last float input) for layer `name`."""
    from irnet_infer import _engine
    h, w, cin, cout = LAYERS[name]
    graph, tensors, rng = layer_graph(name, seed)
    engine = _engine.Engine(graph, tensors, threads, isa)
    x = rng.standard_normal((1, h, w, cin)).astype(np.float32).transpose(0, 3, 1, 2)  # NHWC memory
    return engine, x


def openvino_layer(name, threads, x, ours):
    """OpenVINO's twin of layer `name` on contiguous NCHW `x`, checked: a u1 binary primitive,
    and outputs equal to ours (integers times 1: exact)."""
    graph, tensors, _ = layer_graph(name)
    compiled = openvino_twin.compile_model(openvino_twin.build(graph, tensors, 1), threads)
    prims = openvino_twin.binary_primitives(compiled)
    assert len(prims) == 1 and openvino_twin.is_u1_binary(prims[0][2]), prims
    run = openvino_twin.runner(compiled)
    np.testing.assert_array_equal(run(x), ours)
    return run


@pytest.mark.parametrize("name,threads,impl,variant", _cases())
def test_layer(benchmark, collector, torch_threads, name, threads, impl, variant):
    benchmark.group = f"layer {layer_label(name)}, {threads} thread(s)"
    benchmark.extra_info["layer"] = layer_label(name)
    if impl == "engine":
        engine, x = bconv_layer(name, threads, variant)
        assert engine.isa == variant
        missing = openvino_twin.unavailable_reason()
        if variant != BEST:
            out = benchmark(engine.run, x)
        elif missing:
            collector.note(f"OpenVINO rows are missing: {missing}")
            out = benchmark(engine.run, x)
        else:
            x_nchw = np.ascontiguousarray(x)
            ov_run = openvino_layer(name, threads, x_nchw, engine.run(x))
            out, medians = interleaved(benchmark, engine.run, (x,), {"openvino": lambda _: ov_run(x_nchw)})
            collector.add(group="layers", case=name, label=layer_label(name), threads=threads, impl="openvino",
                          isa=variant, layout="nchw", seconds=medians["openvino"], ops=layer_ops(name), extra_info={})
        assert out.shape == (1, LAYERS[name][3], LAYERS[name][0], LAYERS[name][1])
        record(benchmark, collector, group="layers", case=name, label=layer_label(name), threads=threads,
               impl="engine", isa=variant, layout="nchw view of nhwc", ops=layer_ops(name))
    else:
        import torch
        import torch.nn.functional as F
        torch_threads(threads)
        h, w, cin, cout = LAYERS[name]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, cin, h, w, generator=g)
        wt = torch.randn(cout, cin, 3, 3, generator=g)
        if variant == "channels_last":
            x, wt = x.to(memory_format=torch.channels_last), wt.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = benchmark(F.conv2d, x, wt, None, 1, 1)
        assert out.shape == (1, cout, h, w)
        record(benchmark, collector, group="layers", case=name, label=layer_label(name), threads=threads,
               impl="torch", isa=None, layout=variant, ops=layer_ops(name))
