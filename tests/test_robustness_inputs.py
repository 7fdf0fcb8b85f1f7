"""Bad inputs and bad arguments fail with a clear error naming the problem; odd layouts work.

(Channels-last and strided float32 inputs are covered in test_model_e2e.py.)
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_cases  # noqa: E402

import irnet_infer  # noqa: E402
from irnet_infer import IrbFormatError  # noqa: E402


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return fuzz_cases.make_seeds(str(tmp_path_factory.mktemp("inputs")), with_torch=False)[0]


@pytest.fixture(scope="module")
def model(path):
    return irnet_infer.Model(path, num_threads=1)


def x_of(*shape, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", [(8, 8), (3, 8), (1, 1, 3, 8, 8), ()])
def test_wrong_ndim(model, shape):
    with pytest.raises(ValueError, match=r"input must be \(N, C, H, W\) or \(C, H, W\)"):
        model.predict(x_of(*shape))


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (2, 1, 8, 8), (2, 3, 8, 9), (2, 3, 16, 16), (3, 7, 8)])
def test_wrong_channels_or_spatial_size(model, shape):
    # The message names the shape as passed (not with a batch axis added).
    with pytest.raises(ValueError, match=r"input must be \(3, 8, 8\) or \(N, 3, 8, 8\), got shape "
                       + re.escape(str(shape))):
        model.predict(x_of(*shape))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex64, np.bool_, object, np.uint16])
def test_unsupported_dtype(model, dtype):
    x = np.zeros((1, 3, 8, 8), dtype=dtype)
    with pytest.raises(TypeError, match="unsupported input dtype"):
        model.predict(x)


def test_not_an_array(model):
    with pytest.raises(TypeError, match="predict takes a numpy array"):
        model.predict([[[0.0] * 8] * 8] * 3)


def test_empty_batch(model):
    with pytest.raises(ValueError, match="empty batch"):
        model.predict(np.zeros((0, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="empty batch"):
        model.predict(np.zeros((0, 8, 8, 3), np.uint8))


def test_batch_over_memory_limit_is_refused_before_allocating(path, model):
    # 2^40 samples as a zero-stride view: refused from its shape alone, nothing is copied.
    huge = np.broadcast_to(np.float32(0), (2**40, 3, 8, 8))
    with pytest.raises(ValueError, match="max_batch_bytes"):
        model.predict(huge)
    small = irnet_infer.Model(path, num_threads=1, max_batch_bytes=1 << 20)
    per_sample = small._arena_bytes_per_sample
    ok = (1 << 20) // per_sample
    assert ok >= 1
    assert small.predict(x_of(ok, 3, 8, 8)).shape == (ok, 10)
    with pytest.raises(ValueError, match=r"batch of \d+ needs about .* over max_batch_bytes=1048576"):
        small.predict(np.broadcast_to(np.float32(0), (ok + 1, 3, 8, 8)))


def test_other_float_dtypes_and_layouts_give_the_same_result(model):
    x = x_of(4, 3, 8, 8)
    want = model.predict(x)
    np.testing.assert_array_equal(model.predict(x.astype(np.float64)), want)
    np.testing.assert_array_equal(model.predict(np.asfortranarray(x)), want)
    flipped = np.ascontiguousarray(x[:, :, ::-1, :])[:, :, ::-1, :]  # negative strides
    np.testing.assert_array_equal(model.predict(flipped), want)
    np.testing.assert_array_equal(model.predict(x[::-1])[::-1], want)
    readonly = x.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(model.predict(readonly), want)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused(model, bad):
    # Documented behaviour (docs/ROBUSTNESS.md): ValueError, whatever the position.
    x = x_of(2, 3, 8, 8)
    x[1, 2, 7, 7] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.predict(x)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, False, "2", 10**6, 2**64, 1025])
def test_bad_num_threads(path, n):
    with pytest.raises(ValueError, match="num_threads must be an int in 1..1024"):
        irnet_infer.Model(path, num_threads=n)


def test_bad_isa(path):
    with pytest.raises(ValueError, match="unknown ISA 'sse9'") as e:
        irnet_infer.Model(path, isa="sse9")
    assert not isinstance(e.value, IrbFormatError)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.irb"):
        irnet_infer.Model(tmp_path / "nope.irb")


def test_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        irnet_infer.Model(tmp_path)


def test_permission_denied(tmp_path, path):
    p = tmp_path / "locked.irb"
    p.write_bytes(open(path, "rb").read())
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as a user who can read a mode-000 file (root)")
        with pytest.raises(PermissionError, match="locked.irb"):
            irnet_infer.Model(p)
    finally:
        p.chmod(0o600)


def test_not_an_irb_file(tmp_path):
    p = tmp_path / "x.irb"
    p.write_bytes(b"hello")
    with pytest.raises(IrbFormatError, match="not a safetensors/.irb file"):
        irnet_infer.Model(p)
    p.write_bytes(b"")
    with pytest.raises(IrbFormatError, match="only 0 bytes"):
        irnet_infer.Model(p)
