"""Hostile files (issue 11): loading costs what the file is, not what it declares; every
refusal of a model file is an IrbFormatError, whatever the parser underneath raised; a crafted
CIFAR-10 pickle cannot run code; planning lets other Python threads run."""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fuzz_cases  # noqa: E402

import irnet_infer  # noqa: E402
from irnet_infer import IrbFormatError, _engine  # noqa: E402

SANITIZED = os.environ.get("IRNET_SANITIZED") == "1"

# Model(path) in a fresh process: its CPU time and how far it raised the process's peak RSS
# above the RSS it started from.
LOAD_SCRIPT = r"""
import json, resource, sys, time
import irnet_infer

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

try:  # reset the kernel's peak-RSS mark (Linux >= 4.0) so the peak is the load's own
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_kib("VmRSS")
except OSError:  # else the growth of the process's peak so far (an underestimate)
    before = status_kib("VmHWM")
t0 = time.process_time()
try:
    irnet_infer.Model(sys.argv[1], num_threads=1)
    outcome = "loaded"
except irnet_infer.IrbFormatError as e:
    outcome = "IrbFormatError: " + str(e)
cpu = time.process_time() - t0
peak = status_kib("VmHWM") - before
print(json.dumps({"outcome": outcome, "cpu_s": cpu, "peak_growth_bytes": peak * 1024}))
"""


def load_in_child(path: str) -> dict:
    package_root = os.path.dirname(os.path.dirname(irnet_infer.__file__))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    p = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, path], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


# (cin, h, w, kernel, padding, what main did before issue 11: file size, CPU, peak RSS)
CRAFTED = [
    (1, 16384, 16384, 1, 0),   # 721 bytes: 8.7 s, 4.1 GiB
    (1, 4096, 4096, 1, 0),     # 721 bytes: 0.8 s, 290 MiB
    (1, 1024, 1024, 31, 15),   # 8.4 KB: 2.1 s
    (64, 2048, 2048, 3, 1),    # the activation limit exactly, taps read in place
    (1, 1024, 1024, 255, 127),  # 520 KB of weights, the largest border table a 255 kernel has
]


@pytest.mark.parametrize("cin,h,w,k,pad", CRAFTED)
def test_declared_map_size_costs_nothing_at_load(tmp_path, cin, h, w, k, pad):
    path = fuzz_cases.single_bconv(str(tmp_path / "crafted.irb"), cin, h, w, k, pad)
    size = os.path.getsize(path)
    r = load_in_child(path)
    print(f"\n{cin}x{h}x{w}, {k}x{k} kernel, {size} bytes: {r['outcome']}, {r['cpu_s']:.3f} s CPU, "
          f"peak RSS +{r['peak_growth_bytes'] / 2**20:.1f} MiB")
    assert r["outcome"] == "loaded"
    # Bounds in the file's size: reading it, hashing it, and a few copies of its weights.
    assert r["cpu_s"] <= (0.25 + size / 2**20) * (5 if SANITIZED else 1)
    if not SANITIZED:  # ASan's shadow memory makes RSS meaningless
        assert r["peak_growth_bytes"] <= 16 * 2**20 + 8 * size


def _relu_chain(path: str, n: int) -> str:
    from irnet_infer.format import write_irb
    ops, x = [], "x"
    for i in range(n):
        ops.append({"type": "relu", "name": f"r{i}", "inputs": [x], "outputs": [f"r{i}"]})
        x = f"r{i}"
    write_irb(path, {"inputs": [{"name": "x", "shape": [1, 1, 1]}], "outputs": [x], "ops": ops}, {},
              {"input_size": [1, 1, 1]})
    return path


def test_op_count_limit_and_long_graph_load_cost(tmp_path):
    """Planning compares ops pairwise; the 4096-op cap keeps the longest allowed graph cheap."""
    path = _relu_chain(str(tmp_path / "long.irb"), 4096)
    size = os.path.getsize(path)
    r = load_in_child(path)
    print(f"\n4096 ops, {size} bytes: {r['outcome']}, {r['cpu_s']:.3f} s CPU")
    assert r["outcome"] == "loaded"
    assert r["cpu_s"] <= (0.25 + size / 2**20) * (5 if SANITIZED else 1)
    meta, _, tensors = fuzz_cases.split(open(path, "rb").read())
    g = json.loads(meta["graph"])
    g["ops"].append({"type": "relu", "name": "one_more", "inputs": ["r4095"], "outputs": ["one_more"]})
    g["outputs"] = ["one_more"]
    with open(path, "wb") as f:
        f.write(fuzz_cases.join(dict(meta, graph=json.dumps(g)), tensors))
    with pytest.raises(IrbFormatError, match="4097 ops, more than the limit of 4096"):
        irnet_infer.Model(path)


def test_activation_limit(tmp_path):
    # The graph input over 2^28 elements (write_irb refuses to write it: edited in): refused
    # by the reader.
    path = fuzz_cases.single_bconv(str(tmp_path / "input.irb"), 1, 16384, 16384, 1, 0)
    meta, _, tensors = fuzz_cases.split(open(path, "rb").read())
    edit = lambda text: text.replace("16384]", "16385]")  # noqa: E731
    with open(path, "wb") as f:
        f.write(fuzz_cases.join(dict(meta, graph=edit(meta["graph"]), preprocess=edit(meta["preprocess"])), tensors))
    with pytest.raises(IrbFormatError, match=r"more than 2\^28 elements"):
        irnet_infer.Model(path)
    # An op output over it (2 channels of 16384 x 16384): refused by the engine as it plans.
    path = fuzz_cases.single_bconv(str(tmp_path / "output.irb"), 1, 16384, 16384, 1, 0, cout=2)
    with pytest.raises(IrbFormatError, match=r"too large \(over 2\^28 elements\)"):
        irnet_infer.Model(path)


def test_batch_memory_limit_holds_before_anything_is_allocated(tmp_path):
    path = fuzz_cases.single_bconv(str(tmp_path / "big.irb"), 1, 2048, 2048, 3, 1)
    model = irnet_infer.Model(path, num_threads=1, max_batch_bytes=64 * 2**20)
    x = np.zeros((2, 1, 2048, 2048), np.float32)
    with pytest.raises(ValueError, match="max_batch_bytes"):
        model.predict(x)


# -- every refusal of a file is named -----------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = fuzz_cases.make_seeds(str(tmp_path_factory.mktemp("files")), with_torch=False)[0]
    return open(path, "rb").read()


def _with_metadata_text(seed: bytes, key: str, old: str, new: str) -> bytes:
    meta, _, tensors = fuzz_cases.split(seed)
    text = meta.get(key, "{}")
    assert old in text, (key, old)
    return fuzz_cases.join(dict(meta, **{key: text.replace(old, new, 1)}), tensors)


HUGE = "9" * 5000
NESTED = "[" * 100000 + "]" * 100000


@pytest.mark.parametrize("key,old,new,message", [
    ("graph", '"eps": 1e-05', '"eps": ' + HUGE, "not valid JSON.*digits"),
    ("preprocess", '"resize": 8', '"resize": ' + HUGE, "not valid JSON.*digits"),
    ("producer", '"name": "fuzz"', '"name": ' + HUGE, "not valid JSON.*digits"),
    ("graph", '"eps": 1e-05', '"eps": NaN', "NaN is not a JSON number"),
    ("graph", '"eps": 1e-05', '"eps": -Infinity', "-Infinity is not a JSON number"),
    ("graph", '"eps": 1e-05', '"eps": 1e999', "out of float range"),
    ("preprocess", '"scale": ', '"scale": 1, "scale": ', "duplicate key 'scale'"),
    ("graph", '"eps": 1e-05', '"eps": ' + NESTED, "nested too deeply"),
    ("producer", '"name": "fuzz"', '"name": ' + NESTED, "nested too deeply"),
    ("graph", '"eps": 1e-05', '"eps": 1e308', "out of float range"),  # the engine: eps as float
])
def test_metadata_json_extremes_are_format_errors(tiny, tmp_path, key, old, new, message):
    p = tmp_path / "bad.irb"
    p.write_bytes(_with_metadata_text(tiny, key, old, new))
    with pytest.raises(IrbFormatError, match=message):
        irnet_infer.Model(p)


@pytest.mark.parametrize("new", ['"data_offsets":[0,' + HUGE + "]", '"data_offsets":[0,NaN]',
                                 '"data_offsets":[0,1e999]'])
def test_safetensors_header_extremes_are_format_errors(tiny, new):
    (n,) = np.frombuffer(tiny[:8], "<u8")
    header = tiny[8:8 + int(n)].decode()
    i = re.search(r'"data_offsets":\s*\[', header).start()
    j = header.index("]", i) + 1
    text = (header[:i] + new + header[j:]).encode()
    text += b" " * (-len(text) % 8)
    data = np.uint64(len(text)).tobytes() + text + tiny[8 + int(n):]
    with pytest.raises(IrbFormatError, match="safetensors header is not valid JSON"):
        irnet_infer.format.parse_irb(data)


def test_duplicate_tensor_names_in_header_are_format_errors(tiny):
    (n,) = np.frombuffer(tiny[:8], "<u8")
    header = tiny[8:8 + int(n)].decode()
    name = json.loads(header)
    first = next(k for k in name if k != "__metadata__")
    entry = json.dumps({first: name[first]})[1:-1]
    text = ("{" + entry + ", " + header[1:]).encode()
    text += b" " * (-len(text) % 8)
    data = np.uint64(len(text)).tobytes() + text + tiny[8 + int(n):]
    with pytest.raises(IrbFormatError, match="duplicate key"):
        irnet_infer.format.parse_irb(data)


# -- planning releases the GIL ------------------------------------------------------------------

def test_planning_lets_other_python_threads_run():
    """A Python thread keeps running while the engine plans a large model. The counting thread
    can only run between the call's start and end if the call released the GIL: a C call that
    holds it blocks every other Python thread until it returns."""
    rng = np.random.default_rng(0)
    c, tensors, ops, x = 1024, {}, [], "x"
    for i in range(8):
        tensors[f"w{i}"] = rng.integers(0, 2**63, (c, 3, 3, c // 64), dtype=np.uint64)
        tensors[f"s{i}"] = np.zeros(c, np.int8)
        ops.append({"type": "bconv2d", "name": f"b{i}", "inputs": [x], "outputs": [f"b{i}"],
                    "attrs": {"in_channels": c, "out_channels": c, "kernel_size": [3, 3],
                              "stride": [1, 1], "padding": [1, 1]},
                    "params": {"weight_bits": f"w{i}", "shift": f"s{i}"}})
        x = f"b{i}"
    graph = {"inputs": [{"name": "x", "shape": [c, 8, 8]}], "outputs": [x], "ops": ops}
    ticks: list[float] = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    _engine.Engine(graph, tensors, 1, "")
    t1 = time.perf_counter()
    stop.set()
    t.join()
    during = [s for s in ticks if t0 + 0.01 < s < t1 - 0.01]
    print(f"\nplanning took {t1 - t0:.3f} s; the other thread ran {len(during)} iterations meanwhile")
    assert t1 - t0 > 0.05  # long enough for the check to mean something
    assert during


# -- no code from data ----------------------------------------------------------------------------

class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("payload", ["system", "eval", "nested"])
def test_cifar_pickle_that_would_run_code_is_refused(tmp_path, payload):
    from irnet_infer.datasets import read_cifar10_batch
    marker = tmp_path / "ran"
    evil = {"system": _RunsCode(marker), "eval": _Evals(),
            "nested": {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_RunsCode(marker)]}}[payload]
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(evil if payload == "nested" else {b"data": evil, b"labels": [0]}))
    with pytest.raises(ValueError, match=r"data_batch_1.*refusing (posix|os|builtins)\.(system|eval)"):
        read_cifar10_batch(str(path))
    assert not marker.exists()


def test_cifar_pickle_of_real_layout_still_reads(tmp_path):
    """What CIFAR-10's own files hold (a dict of bytes keys, a uint8 array, int lists, bytes)
    goes through the restricted unpickler, at every protocol."""
    from irnet_infer.datasets import read_cifar10_batch
    data = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    for protocol in (2, 4, 5):
        path = tmp_path / f"batch_{protocol}"
        path.write_bytes(pickle.dumps({b"batch_label": b"x", b"labels": [1, 2, np.int64(3)], b"data": data,
                                       b"filenames": [b"a.png"] * 3}, protocol=protocol))
        images, labels = read_cifar10_batch(str(path))
        assert labels.tolist() == [1, 2, 3]
        assert images[0, 0, 0].tolist() == [data[0, 0], data[0, 1024], data[0, 2048]]


# -- a failed allocation inside an OpenMP region ---------------------------------------------------

OOM_SCRIPT = r"""
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import fuzz_cases, irnet_infer
# A 511x511 kernel over 63 channels on a 518x518 map: 8x8 outputs, split into two tasks of 32
# pixels, whose im2col rows (32 x 257,041 words, 66 MB per thread) are each thread's scratch,
# taken inside the binary conv's OpenMP region; the arena (the 68 MB input) is allocated before
# it, on the calling thread.
path = fuzz_cases.single_bconv(sys.argv[2], 63, 518, 518, 511, 0)
m = irnet_infer.Model(path, num_threads=2)
x = np.zeros((1, 63, 518, 518), np.float32)
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
mb = 2**20
# Address space for the arena, one thread's scratch and 30 MB to spare, not for two scratches.
limit = size + (68 + 4 + 66 + 30) * mb
_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
try:
    m.predict(x)
    print("ran")
except MemoryError:
    print("MemoryError")
resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
print(m.predict(x).shape)  # the model still works once memory is there
"""


@pytest.mark.skipif(SANITIZED, reason="ASan reserves terabytes of address space")
def test_allocation_failure_inside_openmp_region_is_a_memory_error(tmp_path):
    """A std::bad_alloc in one OpenMP thread must not end the process (an exception leaving a
    region is std::terminate) nor hang the others at a barrier: it becomes a MemoryError."""
    env = dict(os.environ, OMP_NUM_THREADS="2", MALLOC_ARENA_MAX="1",
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(irnet_infer.__file__)),
                                                       os.environ.get("PYTHONPATH")])))
    p = subprocess.run([sys.executable, "-c", OOM_SCRIPT, HERE, str(tmp_path / "oom.irb")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, f"exit status {p.returncode}: {p.stderr[-1000:]}"
    assert p.stdout.split() == ["MemoryError", "(1,", "1,", "8,", "8)"], p.stdout
