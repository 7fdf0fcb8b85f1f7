"""Fuzz: hostile `.irb` files fail with IrbFormatError, never crash, hang or raise anything else.

Mutations of valid small models (tests/fuzz_cases.py) are loaded in child processes, in batches,
so that a segfault, abort or hang is caught and pinned to its case number. Files that still load
are run once on a small input. Every load, accepted or refused, is measured: its CPU time and
its peak RSS growth (the kernel's high-water mark, reset before each load) must stay within a
bound proportional to the file's size. Environment: IRNET_FUZZ_CASES (default 5000),
IRNET_FUZZ_SEED (offset of the case numbers, default 0), IRNET_FUZZ_WORKERS (default 2).
Counts are printed per mutation kind (run with -s).

Replay one case:  python tests/test_robustness_fuzz.py --replay SEEDS_DIR CASE
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fuzz_cases  # noqa: E402

import irnet_infer  # noqa: E402
from irnet_infer import IrbFormatError  # noqa: E402

N_CASES = int(os.environ.get("IRNET_FUZZ_CASES", "5000"))
FIRST = int(os.environ.get("IRNET_FUZZ_SEED", "0"))
WORKERS = int(os.environ.get("IRNET_FUZZ_WORKERS", "2"))
BATCH = 250
BATCH_TIMEOUT_S = 120
SANITIZED = os.environ.get("IRNET_SANITIZED") == "1"

# What one load may cost: before this work, a 721-byte file took 8.7 s and 4 GiB (issue 11).
# The fixed parts cover the interpreter's own work (JSON, hashing, numpy views); the per-byte
# parts the copies a load makes of the file (bytes read, tensors, the engine's packed weights).
LOAD_CPU_S = 0.5
LOAD_CPU_S_PER_MIB = 0.25
LOAD_PEAK_BYTES = 48 * 2**20
LOAD_PEAK_PER_FILE_BYTE = 8


def load_bounds(file_bytes: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS growth bytes) one load of a file of that size may take."""
    return (LOAD_CPU_S + LOAD_CPU_S_PER_MIB * file_bytes / 2**20,
            LOAD_PEAK_BYTES + LOAD_PEAK_PER_FILE_BYTE * file_bytes)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measured_load(path: str):
    """Model(path) with its CPU time and peak RSS growth: (model or the exception, seconds,
    bytes or None where the peak cannot be reset)."""
    can_reset = reset_peak_rss()
    rss0 = _status_kib("VmRSS")
    t0 = time.process_time()
    try:
        result = irnet_infer.Model(path, num_threads=1, max_batch_bytes=256 * 2**20)
    except Exception as e:  # returned: the caller decides what is allowed
        result = e
    cpu = time.process_time() - t0
    peak = (_status_kib("VmHWM") - rss0) * 1024 if can_reset else None
    return result, cpu, peak


def load_case(path: str) -> str:
    """Load (and if it loads, run) one file. Returns 'ok' or 'format'; raises anything else,
    and AssertionError for a load over the bounds of load_bounds."""
    model, cpu, peak = measured_load(path)
    size = os.path.getsize(path)
    max_cpu, max_peak = load_bounds(size)
    if SANITIZED:  # ASan's shadow memory and quarantine: RSS says nothing, CPU runs ~3x slower
        max_cpu, peak = 5 * max_cpu, None
    assert cpu <= max_cpu, f"load of a {size}-byte file took {cpu:.2f} s of CPU (bound {max_cpu:.2f})"
    assert peak is None or peak <= max_peak, \
        f"load of a {size}-byte file grew the peak RSS by {peak / 2**20:.0f} MiB (bound {max_peak / 2**20:.0f})"
    print(f"L {cpu:.4f} {-1 if peak is None else peak} {size}", flush=True)
    if isinstance(model, IrbFormatError):
        return "format"
    if isinstance(model, Exception):
        raise model
    x = np.random.default_rng(0).standard_normal((1, *model.input_shape)).astype(np.float32)
    try:
        out = model.predict(x)
    except ValueError as e:  # the documented refusal of a batch over max_batch_bytes
        if "max_batch_bytes" not in str(e):
            raise
        return "ok"
    assert out.shape == (1, *model.output_shape)
    return "ok"


def worker(seeds_dir: str, first: int, last: int) -> None:
    """Child process: cases [first, last); prints 'S n' before and 'D n outcome' after each."""
    seeds = sorted(os.path.join(seeds_dir, f) for f in os.listdir(seeds_dir) if f.endswith(".irb"))
    blobs = [open(p, "rb").read() for p in seeds]
    fd, path = tempfile.mkstemp(suffix=".irb")
    os.close(fd)
    print(f"E {irnet_infer._engine.__file__}", flush=True)
    try:
        for case in range(first, last):
            print(f"S {case}", flush=True)
            kind, data = fuzz_cases.mutate_named(blobs[case % len(blobs)], case)
            with open(path, "wb") as f:
                f.write(data)
            try:
                outcome = load_case(path)
            except Exception as e:  # reported, not raised: the parent fails the test
                outcome = f"BAD {type(e).__name__}: {str(e)[:300]!r}"
            print(f"D {case} {kind} {outcome}", flush=True)
    finally:
        os.unlink(path)


def run_batch(seeds_dir: str, first: int, last: int) -> tuple[dict, list, dict]:
    """Runs cases [first, last) in child processes, restarting after a crash or hang. Returns
    (counts by outcome, failures, {mutation kind: {outcome: count}} plus the largest load
    costs seen under 'max_load')."""
    counts: dict[str, int] = {}
    failures = []
    by_kind: dict = {"max_load": {"cpu_s": 0.0, "peak_bytes": 0, "file_bytes": 0}}
    while first < last:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", seeds_dir, str(first), str(last)]
        # The child imports the very package this process tests (an installed or in-place one).
        package_root = os.path.dirname(os.path.dirname(irnet_infer.__file__))
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=BATCH_TIMEOUT_S, env=env)
            out, rc, hung = p.stdout, p.returncode, False
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            rc, hung = None, True
            p = None
        started = None
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if parts[0] == "E":  # the child must test the same engine build as this process
                assert parts[1] == irnet_infer._engine.__file__, (parts[1], irnet_infer._engine.__file__)
            elif parts[0] == "S":
                started = int(parts[1])
            elif parts[0] == "L":
                cpu, peak, size = float(parts[1]), int(parts[2].split()[0]), int(parts[2].split()[1])
                m = by_kind["max_load"]
                m["cpu_s"] = max(m["cpu_s"], cpu)
                m["peak_bytes"] = max(m["peak_bytes"], peak)
                m["file_bytes"] = max(m["file_bytes"], size)
            elif parts[0] == "D":
                started = None
                kind, outcome = parts[2].split(" ", 1)
                if outcome.startswith("BAD"):
                    failures.append((int(parts[1]), f"{kind}: {outcome}"))
                    outcome = "bad"
                counts[outcome] = counts.get(outcome, 0) + 1
                per = by_kind.setdefault(kind, {})
                per[outcome] = per.get(outcome, 0) + 1
                first = int(parts[1]) + 1
        if first >= last and not hung and rc == 0:
            break
        if started is None:  # died before its first case: a broken worker, not a case
            err = p.stderr[-2000:] if p else ""
            failures.append((first, f"worker failed (rc={rc}): {err}"))
            break
        why = "hang (timeout)" if hung else f"crash (exit status {rc}): {(p.stderr or '')[-500:]}"
        failures.append((started, f"{fuzz_cases.mutation_kind(started)}: {why}"))
        counts["crash"] = counts.get("crash", 0) + 1
        first = started + 1
    return counts, failures, by_kind


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fuzz_seeds"))
    fuzz_cases.make_seeds(d)
    return d


def test_seeds_load_and_run(seeds_dir):
    for f in sorted(os.listdir(seeds_dir)):
        assert load_case(os.path.join(seeds_dir, f)) == "ok", f


def test_flipped_weight_bit_is_caught_by_the_content_hash(seeds_dir):
    for f in sorted(os.listdir(seeds_dir)):
        data = open(os.path.join(seeds_dir, f), "rb").read()
        meta, _, tensors = fuzz_cases.split(data)
        body_start = len(data) - sum(len(t[3]) for t in tensors)
        for pos in (body_start, (body_start + len(data)) // 2, len(data) - 1):
            bad = bytearray(data)
            bad[pos] ^= 0x10
            with pytest.raises(IrbFormatError, match="content hash mismatch"):
                irnet_infer.format.parse_irb(bytes(bad))


def _edited(seeds_dir, tmp_path, edit, tensors_edit=None):
    """The tiny seed with its graph (and optionally tensors) edited; hash recomputed."""
    data = open(os.path.join(seeds_dir, "tiny.irb"), "rb").read()
    meta, _, tensors = fuzz_cases.split(data)
    g = json.loads(meta["graph"])
    edit(g)
    if tensors_edit:
        tensors = tensors_edit(tensors)
    p = tmp_path / "edited.irb"
    p.write_bytes(fuzz_cases.join(dict(meta, graph=json.dumps(g)), tensors, rehash=True))
    return p


def _set(op_index, key, value):
    def edit(g):
        g["ops"][op_index]["attrs"][key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(0, "stride", [0, 1]), "stride must be >= 1"),
    (_set(0, "kernel_size", [-1, 3]), "kernel_size must be >= 1"),
    (_set(0, "padding", [2**30, 2**30]), "is too large"),
    (_set(0, "out_channels", 2**30), "is too large"),
    (_set(0, "out_channels", 71), "must have shape"),
    (_set(3, "in_channels", 71), "expects 71 input channels"),
    (_set(3, "kernel_size", [2**30, 2**30]), "does not fit input|kernel"),
    (_set(0, "in_channels", 10**30), "finite number"),
    (_set(1, "eps", float("nan")), "NaN is not a JSON number"),
    (_set(1, "eps", 1e300), "out of float range"),
    (_set(7, "pad_before", 2**30), "is too large"),
    (lambda g: g["ops"][1].update(type="softmax"), "unknown op type 'softmax'"),
    (lambda g: g["ops"][1].update(inputs=["out"]), "not defined by an earlier op"),
    (lambda g: g["ops"][1].update(inputs=["bn"]), "not defined by an earlier op"),
    (lambda g: g["ops"][2].update(outputs=["c1"]), "defined twice"),
    (lambda g: g["inputs"][0].update(shape=[2**20, 2**20, 2**20]), "more than 2\\^28 elements"),
    (lambda g: g.update(outputs=["x"]), "not produced by any op"),
])
def test_named_graph_errors(seeds_dir, tmp_path, edit, message):
    with pytest.raises(IrbFormatError, match=message):
        irnet_infer.Model(_edited(seeds_dir, tmp_path, edit))


def test_named_tensor_errors(seeds_dir, tmp_path):
    def nan_weight(tensors):
        return [(n, d, s, np.full(len(b) // 4, np.nan, "<f4").tobytes() if n == "c1.w" else b)
                for n, d, s, b in tensors]

    def extra(tensors):
        return tensors + [("stray", "F32", [1], b"\0" * 4)]

    def missing(tensors):
        return [t for t in tensors if t[0] != "fc.b"]

    def tail_bits(tensors):
        out = []
        for n, d, s, b in tensors:
            if n == "b1.bits":
                a = np.frombuffer(b, "<u8").copy()
                a[1] |= np.uint64(1) << np.uint64(63)  # Cin = 70: bits 6..63 of word 1 are unused
                b = a.tobytes()
            out.append((n, d, s, b))
        return out

    for edit, message in [(nan_weight, "non-finite"), (extra, "not used by any op"),
                          (missing, "not in the file"), (tail_bits, "bits set beyond in_channels")]:
        with pytest.raises(IrbFormatError, match=message):
            irnet_infer.Model(_edited(seeds_dir, tmp_path, lambda g: None, edit))


def test_fuzz_hostile_files(seeds_dir):
    chunks = [(a, min(a + BATCH, FIRST + N_CASES)) for a in range(FIRST, FIRST + N_CASES, BATCH)]
    counts: dict[str, int] = {}
    failures = []
    by_kind: dict = {}
    worst = {"cpu_s": 0.0, "peak_bytes": 0, "file_bytes": 0}
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for c, f, k in pool.map(lambda ab: run_batch(seeds_dir, *ab), chunks):
            for name, v in c.items():
                counts[name] = counts.get(name, 0) + v
            failures += f
            for name, v in k.pop("max_load").items():
                worst[name] = max(worst[name], v)
            for kind, outcomes in k.items():
                per = by_kind.setdefault(kind, {})
                for name, v in outcomes.items():
                    per[name] = per.get(name, 0) + v
    total = sum(counts.values())
    print(f"\nfuzz: {total} cases (#{FIRST}..#{FIRST + N_CASES - 1}) in {time.time() - t0:.0f} s: {counts}")
    for kind in sorted(by_kind):
        print(f"  {kind:<28} {by_kind[kind]}")
    print(f"  largest load: {worst['cpu_s']:.3f} s CPU, peak RSS +{worst['peak_bytes'] / 2**20:.1f} MiB "
          f"(largest file {worst['file_bytes']} bytes; -1 = peak not measurable here)")
    assert not failures, "\n".join(f"case {n}: {why}" for n, why in sorted(failures)[:30])
    assert total == N_CASES
    assert counts.get("format", 0) > N_CASES // 2  # most mutations must be refused...
    assert counts.get("ok", 0) > 0                 # ...and some still load and run


if __name__ == "__main__":
    if sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "--replay":
        seeds = sorted(os.path.join(sys.argv[2], f) for f in os.listdir(sys.argv[2]) if f.endswith(".irb"))
        case = int(sys.argv[3])
        with tempfile.NamedTemporaryFile(suffix=".irb", delete=False) as f:
            f.write(fuzz_cases.mutate(open(seeds[case % len(seeds)], "rb").read(), case))
        print(f"case {case} ({fuzz_cases.mutation_kind(case)}) -> {f.name}: {load_case(f.name)}")
