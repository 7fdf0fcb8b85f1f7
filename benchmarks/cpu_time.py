"""One thread, CPU time: the engine and its OpenVINO twin on whole networks, interleaved.

    python -m benchmarks.cpu_time                          # resnet20, vgg_small, resnet18; batch 1, 8, 32
    python -m benchmarks.cpu_time --nets resnet20 --batches 1 --rounds 21

Each round times, for every (network, batch), a few engine calls and then a few OpenVINO calls
(or the other way round, alternating by round) with `time.process_time`: time the process spends
preempted on a shared machine does not count (cache pollution by other processes does). One
thread each. Prints a Markdown table of the medians per call over the rounds and their ratio.
Networks have random weights (as in benchmarks/test_networks.py); speed does not depend on them.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import openvino_twin
from benchmarks._common import NETWORKS


def _cpu_seconds_per_call(run, x, calls: int) -> float:
    t0 = time.process_time()
    for _ in range(calls):
        run(x)
    return (time.process_time() - t0) / calls


def _calls_for(run, x, budget: float = 0.05) -> int:
    """Calls that take about `budget` seconds of CPU time (at least 1)."""
    t = _cpu_seconds_per_call(run, x, 1)
    return max(1, int(budget / max(t, 1e-6)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", nargs="+", default=["resnet20", "vgg_small", "resnet18"], choices=sorted(NETWORKS))
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--rounds", type=int, default=21)
    args = p.parse_args(argv)

    import torch

    from export.convert import convert
    from export.models import create_model
    from irnet_infer import Model
    from irnet_infer.format import read_irb

    ov_missing = openvino_twin.unavailable_reason()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.nets:
            torch.manual_seed(0)
            path = str(Path(tmp) / f"{net}.irb")
            convert(create_model(net, input_size=NETWORKS[net]).eval(), path, arch=net)
            engine = Model(path, num_threads=1)
            f = read_irb(path)
            for batch in args.batches:
                x = np.random.default_rng(0).standard_normal((batch,) + NETWORKS[net]).astype(np.float32)
                runs = {"engine": engine.predict}
                if ov_missing is None:
                    compiled = openvino_twin.compile_model(openvino_twin.build(f.graph, f.tensors, batch), 1)
                    runs["openvino"] = openvino_twin.runner(compiled)
                calls = {k: _calls_for(run, x) for k, run in runs.items()}
                times = {k: [] for k in runs}
                for r in range(args.rounds):
                    for k in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                        times[k].append(_cpu_seconds_per_call(runs[k], x, calls[k]))
                med = {k: statistics.median(v) for k, v in times.items()}
                rows.append((net, batch, med["engine"], med.get("openvino")))
    print(f"CPU time per call, medians of {args.rounds} rounds, 1 thread"
          + ("" if ov_missing is None else f" (no OpenVINO: {ov_missing})"))
    print("| network | batch | engine ms | OpenVINO ms | OpenVINO / engine |\n|---|---:|---:|---:|---:|")
    for net, batch, e, o in rows:
        size = "x".join(map(str, NETWORKS[net][1:]))
        ov_cells = f"{o * 1e3:.3f} | {o / e:.2f}" if o is not None else "- | -"
        print(f"| {net} {size} | {batch} | {e * 1e3:.3f} | {ov_cells} |")


if __name__ == "__main__":
    main()
