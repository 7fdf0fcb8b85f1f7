"""One Model shared by many threads gives exactly the serial results; memory stays flat over
many calls and many loads (figures printed with -s)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_cases  # noqa: E402

import irnet_infer  # noqa: E402


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return fuzz_cases.make_seeds(str(tmp_path_factory.mktemp("resources")), with_torch=False)[0]


sanitized = pytest.mark.skipif(os.environ.get("IRNET_SANITIZED") == "1",
                               reason="ASan's quarantine keeps freed memory resident")


@pytest.fixture(scope="module")
def big_path(tmp_path_factory):
    """Two 256-channel 3x3 binary convs on a 28x28 map: 460 M binary MACs each, far above the
    engine's threshold for starting a second OpenMP thread (4 M MACs per thread)."""
    from irnet_infer.format import pack_signs, write_irb
    rng = np.random.default_rng(0)
    c, size = 256, 28
    tensors, ops, x = {}, [], "x"
    for i in range(2):
        tensors[f"b{i}.bits"] = pack_signs(rng.standard_normal((c, c, 3, 3)).astype(np.float32))
        tensors[f"b{i}.shift"] = np.zeros(c, np.int8)
        tensors[f"b{i}.bias"] = rng.standard_normal(c).astype(np.float32)
        ops.append({"type": "bconv2d", "name": f"b{i}", "inputs": [x], "outputs": [f"b{i}"],
                    "attrs": {"in_channels": c, "out_channels": c, "kernel_size": [3, 3],
                              "stride": [1, 1], "padding": [1, 1]},
                    "params": {"weight_bits": f"b{i}.bits", "shift": f"b{i}.shift", "bias": f"b{i}.bias"}})
        x = f"b{i}"
    ops.append({"type": "global_avg_pool", "name": "gap", "inputs": [x], "outputs": ["gap"]})
    graph = {"inputs": [{"name": "x", "shape": [c, size, size]}], "outputs": ["gap"], "ops": ops}
    path = str(tmp_path_factory.mktemp("resources") / "big.irb")
    write_irb(path, graph, tensors, {"input_size": [c, size, size]})
    return path


def thread_cpu_ticks() -> dict[int, int]:
    """OS thread id -> CPU time (user + system clock ticks) of every thread of this process."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        ticks[int(tid)] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks


@pytest.mark.parametrize("num_threads", [1, 2])
def test_eight_threads_share_one_model(big_path, num_threads):
    model = irnet_infer.Model(big_path, num_threads=num_threads)
    rng = np.random.default_rng(0)
    # Different batch sizes per thread, so concurrent runs use differently sized arenas.
    inputs = [rng.standard_normal((1 + i % 2, 256, 28, 28)).astype(np.float32) for i in range(8)]
    want = [model.predict(x) for x in inputs]
    rounds = 6  # each worker must reach a few 10 ms clock ticks even on a fast AVX-512 core
    got: list[list] = [[] for _ in inputs]
    errors = []
    python_tids = {threading.get_native_id()}
    start = threading.Barrier(len(inputs))
    # Callers wait here after their work until the CPU times are read: libgomp ends a caller's
    # team when the caller exits, taking the workers' /proc entries with it.
    done = threading.Barrier(len(inputs) + 1)
    release = threading.Event()
    before = thread_cpu_ticks()

    def work(i):
        python_tids.add(threading.get_native_id())
        try:
            start.wait()
            for _ in range(rounds):
                got[i].append(model.predict(inputs[i]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        done.wait()
        release.wait()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    done.wait()
    after = thread_cpu_ticks()
    release.set()
    for t in threads:
        t.join()
    assert not errors
    for i in range(len(inputs)):
        assert len(got[i]) == rounds
        for out in got[i]:
            np.testing.assert_array_equal(out, want[i])
    # Threads that are neither the test's Python threads nor there before: OpenMP workers
    # (each calling thread gets its own team). With num_threads=2 they must have computed.
    workers = {t: c - before.get(t, 0) for t, c in after.items() if t not in python_tids}
    busy = [t for t, c in workers.items() if c > 0 and t not in before]
    print(f"\nnum_threads={num_threads}: OpenMP worker threads that used CPU: {len(busy)}")
    if num_threads == 1:
        assert not busy
    else:
        assert len(busy) >= 1


# The RSS tests measure in a fresh interpreter: in the pytest process, heap fragmentation left by
# hundreds of earlier tests and other libraries' background threads move RSS by a megabyte or so.
RSS_GROWTH = """
import gc, sys
import numpy as np
import irnet_infer

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

path, job = sys.argv[1], sys.argv[2]
x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
if job == "predicts":
    model = irnet_infer.Model(path, num_threads=1)
    def step():
        model.predict(x)
    warm, n = 500, 10_000  # warm-up: arena pool, thread scratch, numpy caches
else:
    def step():
        m = irnet_infer.Model(path, num_threads=1)
        m.predict(x)
        del m
    warm, n = 100, 1000
for _ in range(warm):
    step()
gc.collect()
before = rss()
for _ in range(n):
    step()
gc.collect()
print(rss() - before, before)
"""


def rss_growth(path: str, job: str) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", RSS_GROWTH, path, job], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    growth, before = map(int, done.stdout.split())
    return growth, before


@sanitized
def test_rss_flat_over_10000_predicts(path):
    growth, before = rss_growth(path, "predicts")
    print(f"\nRSS growth over 10,000 predict calls: {growth / 1024:.0f} KiB (RSS {before / 2**20:.1f} MiB)")
    assert growth < 1 << 20


@sanitized
def test_rss_flat_over_1000_loads(path):
    growth, _ = rss_growth(path, "loads")
    print(f"\nRSS growth over 1,000 load/predict/unload cycles: {growth / 1024:.0f} KiB "
          f"(file {os.path.getsize(path) / 1024:.0f} KiB)")
    # A leak of the file's tensors or the plan per load would be >= 1,000 x ~20 KiB.
    assert growth < 1 << 20
