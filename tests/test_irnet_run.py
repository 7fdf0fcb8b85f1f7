"""irnet-run, the runtime without Python, against the Python package on the same files.

Skipped unless the binary is built (cmake -S . -B build/runtime -DIRNET_BUILD_RUNTIME=ON
-DIRNET_BUILD_PYTHON=OFF && cmake --build build/runtime --target irnet-run), or IRNET_RUN names
one (CI points it at a sanitized build). Same outputs as Model.predict (the same engine behind
a C++ reader of .irb and .npy), the same summary, and over the fuzz corpus the same verdict on
every file: loads, or refused as an invalid model (exit status 1); anything else, a crash or a
sanitizer report included, fails. IRNET_RUN_FUZZ_CASES (default 400) and IRNET_RUN_FUZZ_SEED
(first case number, default 0) size that test.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import fuzz_cases  # noqa: E402

import irnet_infer  # noqa: E402
from irnet_infer import IrbFormatError  # noqa: E402

IRNET_RUN = os.environ.get("IRNET_RUN") or os.path.join(ROOT, "build", "runtime", "irnet-run")
N_CASES = int(os.environ.get("IRNET_RUN_FUZZ_CASES", "400"))
FIRST = int(os.environ.get("IRNET_RUN_FUZZ_SEED", "0"))

pytestmark = pytest.mark.skipif(not os.access(IRNET_RUN, os.X_OK),
                                reason=f"irnet-run not built ({IRNET_RUN})")


def irnet_run(*args, timeout=120):
    return subprocess.run([IRNET_RUN, *map(str, args)], capture_output=True, text=True, errors="replace",
                          timeout=timeout)


@pytest.fixture(scope="module")
def cifar_models(tmp_path_factory):
    import torch
    from export.convert import convert
    from export.models import create_model
    from helpers import calibrate_bn, randomize_bn

    d = tmp_path_factory.mktemp("irnet_run_models")
    out = {}
    for arch in ("resnet20", "vgg_small", "resnet20_1w32a"):
        torch.manual_seed(1)
        net = create_model(arch).eval()
        # Float activations (1W/32A) with random statistics blow up: calibrated ones instead.
        net = calibrate_bn(net, torch.randn(16, 3, 32, 32)) if "1w32a" in arch else randomize_bn(net, seed=2)
        path = d / f"{arch}.irb"
        convert(net, str(path), arch=arch)
        out[arch] = (str(path), net)
    return out


@pytest.mark.parametrize("arch", ["resnet20", "vgg_small", "resnet20_1w32a"])
def test_outputs_equal_model_predict(cifar_models, arch, tmp_path):
    import torch

    path, net = cifar_models[arch]
    x = np.random.default_rng(3).standard_normal((5, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = irnet_run(path, tmp_path / "x.npy", tmp_path / "y.npy", "--threads", 2)
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "y.npy")
    model = irnet_infer.Model(path, num_threads=2)
    want = model.predict(x)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # same engine, same kernels: bit for bit
    with torch.no_grad():  # and the PyTorch model itself, up to float rounding
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_unbatched_input_gives_a_batch_of_one(cifar_models, tmp_path):
    path, _ = cifar_models["resnet20"]
    x = np.random.default_rng(4).standard_normal((3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = irnet_run(path, tmp_path / "x.npy", tmp_path / "y.npy", "--threads", 1)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), irnet_infer.Model(path, num_threads=1).predict(x[None]))


def test_summary_is_model_summary(cifar_models):
    path, _ = cifar_models["vgg_small"]
    r = irnet_run(path, "--threads", 3)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n") == irnet_infer.Model(path, num_threads=3).summary()


def test_bad_arguments_and_inputs_are_named(cifar_models, tmp_path):
    path, _ = cifar_models["resnet20"]
    x = np.zeros((2, 3, 32, 32), np.float32)
    cases = {
        "f64.npy": (x.astype(np.float64), 2, "float32"),
        "shape.npy": (np.zeros((2, 3, 16, 16), np.float32), 2, "input must be (N, 3, 32, 32)"),
        "nan.npy": (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x).astype(np.float32), 2, "NaN"),
        "empty.npy": (np.zeros((0, 3, 32, 32), np.float32), 2, "empty batch"),
        "fortran.npy": (np.asfortranarray(np.zeros((2, 3, 32, 32), np.float32)), 2, "Fortran"),
    }
    for name, (arr, code, message) in cases.items():
        np.save(tmp_path / name, arr)
        r = irnet_run(path, tmp_path / name, tmp_path / "y.npy")
        assert (r.returncode, message in r.stderr) == (code, True), (name, r.stderr)
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'")
    np.save(tmp_path / "ok.npy", x)
    for args, code, message in [
        ((tmp_path / "junk.npy", tmp_path / "y.npy"), 2, "header"),
        ((tmp_path / "missing.npy", tmp_path / "y.npy"), 3, "OSError"),
        ((tmp_path / "ok.npy", tmp_path / "no_such_dir" / "y.npy"), 3, "OSError"),
        ((tmp_path / "ok.npy",), 2, "expected MODEL.irb"),
        ((tmp_path / "ok.npy", tmp_path / "y.npy", "--threads", "0"), 2, "--threads"),
        ((tmp_path / "ok.npy", tmp_path / "y.npy", "--isa", "sse9"), 2, "unknown ISA"),
    ]:
        r = irnet_run(path, *args)
        assert (r.returncode, message in r.stderr) == (code, True), (args, r.stderr)
    for model, code, message in [(tmp_path / "missing.irb", 3, "OSError"), (tmp_path, 3, "directory"),
                                 (tmp_path / "ok.npy", 1, "IrbFormatError")]:
        r = irnet_run(model)
        assert (r.returncode, message in r.stderr) == (code, True), (model, r.stderr)


def python_verdict(path: str) -> str:
    try:
        irnet_infer.Model(path, num_threads=1, max_batch_bytes=256 * 2**20)
    except IrbFormatError:
        return "format"
    return "ok"


def test_fuzz_corpus_same_verdicts(tmp_path):
    """Every mutated file: irnet-run loads it exactly when irnet_infer does, and then computes
    the same outputs; refuses it (status 1, IrbFormatError) exactly when irnet_infer does."""
    seeds = fuzz_cases.make_seeds(str(tmp_path / "seeds"))
    blobs = [open(p, "rb").read() for p in seeds]
    path = str(tmp_path / "case.irb")
    mismatches, loaded = [], 0
    for case in range(FIRST, FIRST + N_CASES):
        with open(path, "wb") as f:
            f.write(fuzz_cases.mutate(blobs[case % len(blobs)], case))
        want = python_verdict(path)
        r = irnet_run(path, "--threads", 1)
        got = {0: "ok", 1: "format"}.get(r.returncode, f"status {r.returncode}")
        if "Sanitizer" in r.stderr or "runtime error:" in r.stderr:  # a sanitized build's report
            got = "sanitizer report"
        if got != want:
            mismatches.append((case, want, got, r.stderr[-300:]))
            continue
        if want == "ok":
            loaded += 1
            model = irnet_infer.Model(path, num_threads=1)
            x = np.random.default_rng(case).standard_normal((1, *model.input_shape)).astype(np.float32)
            np.save(tmp_path / "x.npy", x)
            r = irnet_run(path, tmp_path / "x.npy", tmp_path / "y.npy", "--threads", 1)
            try:
                want_out = model.predict(x)
            except ValueError as e:  # a map too large for one sample: both must refuse the batch
                if "max_batch_bytes" not in str(e):
                    raise
                if r.returncode != 2 or "split the batch" not in r.stderr:
                    mismatches.append((case, "batch refused", f"status {r.returncode}", r.stderr[-300:]))
                continue
            if r.returncode != 0 or not np.array_equal(np.load(tmp_path / "y.npy"), want_out, equal_nan=True):
                mismatches.append((case, "same outputs", f"status {r.returncode}", r.stderr[-300:]))
    print(f"{N_CASES} cases, {loaded} loaded by both")
    assert not mismatches, mismatches[:10]
