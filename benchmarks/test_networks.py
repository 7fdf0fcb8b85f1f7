"""Whole networks at batch 1: `Model.predict` on an `.irb` converted from the architecture
(random weights; timing does not depend on them) against the same PyTorch model in eval mode
under torch.no_grad() (what users run), and against its float twin (every IRConv2d replaced
by a plain nn.Conv2d: the same network in float, without IR-Net's per-call weight
binarization), at 1 thread and all cores. The engine is paired with the faster of the two.
GOPS count the MACs of Model.steps() (binary and float) for all."""
import numpy as np
import pytest

from benchmarks._common import NETWORKS
from benchmarks.conftest import record, thread_counts, timing

pytestmark = pytest.mark.benchmark(**timing())


def _cases():
    return [pytest.param(net, threads, impl, id=f"{net}-{threads}t-{impl}")
            for threads in thread_counts() for net in NETWORKS for impl in ("torch", "float_twin", "engine")]


@pytest.fixture(scope="session")
def networks(tmp_path_factory):
    """name -> (torch model in eval mode, .irb path, MACs per image), built once."""
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
            built[name] = (model, str(path), sum(s["binary_macs"] + s["float_macs"] for s in steps))
        return built[name]
    return get


@pytest.mark.parametrize("net,threads,impl", _cases())
def test_network(benchmark, collector, torch_threads, networks, net, threads, impl):
    import torch
    model, path, macs = networks(net)
    benchmark.group = f"network {net}, {threads} thread(s)"
    benchmark.extra_info.update({"network": net, "macs": macs})
    x = np.random.default_rng(0).standard_normal((1,) + NETWORKS[net]).astype(np.float32)
    label = f"{net} {'x'.join(map(str, NETWORKS[net][1:]))}"
    if impl == "engine":
        from irnet_infer import Model
        engine = Model(path, num_threads=threads)
        out = benchmark(engine.predict, x)
        record(benchmark, collector, group="networks", case=net, label=label, threads=threads,
               impl="engine", isa=engine.isa, layout="nchw", ops=2 * macs)
    else:
        torch_threads(threads)
        xt = torch.from_numpy(x)
        from export.float_twin import float_twin
        twin = float_twin(model) if impl == "float_twin" else model
        with torch.no_grad():
            out = benchmark(twin, xt)
        record(benchmark, collector, group="networks", case=net, label=label, threads=threads,
               impl="torch", isa=None, layout="float twin" if impl == "float_twin" else "IR-Net eval",
               ops=2 * macs)
    assert out.shape[0] == 1
