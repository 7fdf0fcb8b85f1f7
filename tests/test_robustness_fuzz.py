"""Fuzz: hostile `.irb` files fail with IrbFormatError, never crash, hang or raise anything else.

Mutations of valid small models (tests/fuzz_cases.py) are loaded in child processes, in batches,
so that a segfault, abort or hang is caught and pinned to its case number. Files that still load
are run once on a small input. Environment: IRNET_FUZZ_CASES (default 5000), IRNET_FUZZ_SEED
(offset of the case numbers, default 0), IRNET_FUZZ_WORKERS (default 2).

Replay one case:  python tests/test_robustness_fuzz.py --replay SEEDS_DIR CASE
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

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


def load_case(path: str) -> str:
    """Load (and if it loads, run) one file. Returns 'ok' or 'format'; raises anything else."""
    try:
        model = irnet_infer.Model(path, num_threads=1, max_batch_bytes=256 * 2**20)
    except IrbFormatError:
        return "format"
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
            with open(path, "wb") as f:
                f.write(fuzz_cases.mutate(blobs[case % len(blobs)], case))
            try:
                outcome = load_case(path)
            except Exception as e:  # reported, not raised: the parent fails the test
                outcome = f"BAD {type(e).__name__}: {str(e)[:300]!r}"
            print(f"D {case} {outcome}", flush=True)
    finally:
        os.unlink(path)


def run_batch(seeds_dir: str, first: int, last: int) -> tuple[dict, list]:
    """Runs cases [first, last) in child processes, restarting after a crash or hang."""
    counts: dict[str, int] = {}
    failures = []
    while first < last:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", seeds_dir, str(first), str(last)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
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
            elif parts[0] == "D":
                started = None
                outcome = parts[2]
                if outcome.startswith("BAD"):
                    failures.append((int(parts[1]), outcome))
                    outcome = "bad"
                counts[outcome] = counts.get(outcome, 0) + 1
                first = int(parts[1]) + 1
        if first >= last and not hung and rc == 0:
            break
        if started is None:  # died before its first case: a broken worker, not a case
            err = p.stderr[-2000:] if p else ""
            failures.append((first, f"worker failed (rc={rc}): {err}"))
            break
        why = "hang (timeout)" if hung else f"crash (exit status {rc}): {(p.stderr or '')[-500:]}"
        failures.append((started, why))
        counts["crash"] = counts.get("crash", 0) + 1
        first = started + 1
    return counts, failures


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
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for c, f in pool.map(lambda ab: run_batch(seeds_dir, *ab), chunks):
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
            failures += f
    total = sum(counts.values())
    print(f"\nfuzz: {total} cases (#{FIRST}..#{FIRST + N_CASES - 1}): {counts}")
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
        print(f"case {case} -> {f.name}: {load_case(f.name)}")
