"""Whole networks at batch 1, 8 and 32, at 1 thread and all cores: `Model.predict` on an `.irb`
converted from the architecture (random weights; timing does not depend on them) against the
same graph in OpenVINO (benchmarks/openvino_twin.py: binary convs as u1 BinaryConvolution,
checked in the execution graph, outputs checked equal to ours first) and against PyTorch: the
float twin of the model (every IRConv2d replaced by a plain nn.Conv2d: the same network in
float, without IR-Net's per-call weight binarization, always faster than the IR-Net model in
eval mode) under torch.no_grad(), at batch 1 and 8 (batch 32 in PyTorch takes seconds a call).
All three run interleaved in one test, one call each per round. GOPS count the MACs of
Model.steps() (binary and float) for all."""
import numpy as np
import pytest

from benchmarks import openvino_twin
from benchmarks._common import NETWORKS
from benchmarks.conftest import interleaved, thread_counts

BATCHES = (1, 8, 32)
TORCH_BATCHES = (1, 8)
# |OpenVINO - engine| <= OV_TOLERANCE * max(1, max |engine|): float rounding of the float stem,
# classifier and batch norms in another order; a single flipped sign in a binary layer moves
# outputs by orders of magnitude more.
OV_TOLERANCE = 1e-5


def _cases():
    return [pytest.param(net, threads, batch, id=f"{net}-{threads}t-b{batch}")
            for threads in thread_counts() for batch in BATCHES for net in NETWORKS]



@pytest.fixture(scope="session")
def networks(tmp_path_factory):
    """name -> (torch model in eval mode, .irb path, (binary, float) MACs per image), built once."""
    torch = pytest.importorskip("torch")
    from export.convert import convert
    from export.models import create_model
    from irnet_infer import Model
    directory = tmp_path_factory.mktemp("networks")
    built = {}

    def get(name):
        if name not in built:
            torch.manual_seed(0)
            model = create_model(name, input_size=NETWORKS[name]).eval()
            path = directory / f"{name}.irb"
            convert(model, str(path), arch=name)
            steps = Model(str(path), num_threads=1).steps()
            built[name] = (model, str(path), (sum(s["binary_macs"] for s in steps), sum(s["float_macs"] for s in steps)))
        return built[name]
    return get


def openvino_network(path, batch, threads, reference_in, reference_out):
    """The compiled OpenVINO twin of the .irb at `path`, checked: every binary conv runs as a
    u1 binary primitive, and its output on `reference_in` equals ours within OV_TOLERANCE."""
    from irnet_infer.format import read_irb
    f = read_irb(path)
    compiled = openvino_twin.compile_model(openvino_twin.build(f.graph, f.tensors, batch), threads)
    prims = openvino_twin.binary_primitives(compiled)
    n_binary = sum(op["type"] == "bconv2d" for op in f.graph["ops"])
    assert len(prims) == n_binary, f"{len(prims)} BinaryConvolution nodes run, graph has {n_binary}: {prims}"
    assert all(openvino_twin.is_u1_binary(p) for _, _, p in prims), prims
    run = openvino_twin.runner(compiled)
    out = run(reference_in).copy()
    err = float(np.abs(out - reference_out).max())
    assert err <= OV_TOLERANCE * max(1.0, float(np.abs(reference_out).max())), f"OpenVINO differs from ours by {err}"
    return run


@pytest.mark.parametrize("net,threads,batch", _cases())
def test_network(benchmark, collector, torch_threads, networks, net, threads, batch):
    import torch

    from irnet_infer import Model
    model, path, (binary_macs, float_macs) = networks(net)
    macs = binary_macs + float_macs
    benchmark.group = f"network {net}, batch {batch}, {threads} thread(s)"
    benchmark.extra_info.update({"network": net, "macs": macs, "batch": batch})
    x = np.random.default_rng(0).standard_normal((batch,) + NETWORKS[net]).astype(np.float32)
    label = f"{net} {'x'.join(map(str, NETWORKS[net][1:]))}"
    engine = Model(path, num_threads=threads)
    ours = engine.predict(x)
    others = {}
    missing = openvino_twin.unavailable_reason()
    if missing:
        collector.note(f"OpenVINO rows are missing: {missing}")
    else:
        others["openvino"] = openvino_network(path, batch, threads, x, ours)
    if batch in TORCH_BATCHES:
        torch_threads(threads)
        from export.float_twin import float_twin
        twin = float_twin(model)
        xt = torch.from_numpy(x)

        def torch_call(_):
            with torch.no_grad():
                return twin(xt)
        others["torch"] = torch_call
    out, medians = interleaved(benchmark, engine.predict, (x,), others)
    assert out.shape[0] == batch
    common = dict(group="networks", case=net, label=label, threads=threads, batch=batch, ops=2 * macs * batch)
    for impl, seconds in medians.items():
        collector.add(impl=impl, isa=engine.isa if impl == "openvino" else None,
                      layout="float twin" if impl == "torch" else "nchw",
                      seconds=seconds, extra_info={}, **common)
    collector.add(impl="engine", isa=engine.isa, layout="nchw", seconds=float(benchmark.stats.stats.median),
                  extra_info=benchmark.extra_info, macs_per_image=(binary_macs, float_macs), **common)
