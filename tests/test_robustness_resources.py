"""One Model shared by many threads gives exactly the serial results; memory stays flat over
many calls and many loads (figures printed with -s)."""
from __future__ import annotations

import gc
import os
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


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("num_threads", [1, 2])
def test_eight_threads_share_one_model(path, num_threads):
    model = irnet_infer.Model(path, num_threads=num_threads)
    rng = np.random.default_rng(0)
    # Different batch sizes per thread, so concurrent runs use differently sized arenas.
    inputs = [rng.standard_normal((1 + i % 4, 3, 8, 8)).astype(np.float32) for i in range(8)]
    want = [model.predict(x) for x in inputs]
    rounds = 40
    got: list[list] = [[] for _ in inputs]
    errors = []
    start = threading.Barrier(len(inputs))

    def work(i):
        try:
            start.wait()
            for _ in range(rounds):
                got[i].append(model.predict(inputs[i]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(len(inputs)):
        assert len(got[i]) == rounds
        for out in got[i]:
            np.testing.assert_array_equal(out, want[i])


@sanitized
def test_rss_flat_over_10000_predicts(path):
    model = irnet_infer.Model(path, num_threads=1)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    for _ in range(500):  # warm-up: arena pool, thread scratch, numpy caches
        model.predict(x)
    gc.collect()
    before = rss_bytes()
    for _ in range(10_000):
        model.predict(x)
    gc.collect()
    growth = rss_bytes() - before
    print(f"\nRSS growth over 10,000 predict calls: {growth / 1024:.0f} KiB (RSS {before / 2**20:.1f} MiB)")
    assert growth < 1 << 20


@sanitized
def test_rss_flat_over_1000_loads(path):
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)

    def load_run_drop(n):
        for _ in range(n):
            m = irnet_infer.Model(path, num_threads=1)
            m.predict(x)
            del m

    load_run_drop(100)  # warm-up
    gc.collect()
    before = rss_bytes()
    load_run_drop(1000)
    gc.collect()
    growth = rss_bytes() - before
    print(f"\nRSS growth over 1,000 load/predict/unload cycles: {growth / 1024:.0f} KiB "
          f"(file {os.path.getsize(path) / 1024:.0f} KiB)")
    # A leak of the file's tensors or the plan per load would be >= 1,000 x ~20 KiB.
    assert growth < 1 << 20
