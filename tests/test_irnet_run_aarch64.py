"""Whole networks on aarch64: irnet-run cross-compiled and run under qemu-aarch64 (NEON kernels)
against this machine's engine (x86: AVX-512, AVX2 or scalar) on resnet20 and vgg_small.

Runs only where IRNET_RUN_AARCH64 gives the command, e.g. (as .ci/run sets it)
  IRNET_RUN_AARCH64="qemu-aarch64 -L /usr/aarch64-linux-gnu build/ci-aarch64/irnet-run"
Every tensor is compared (irnet-run --dump against Model.run_debug): the outputs of binary
convolutions must be identical (same sign bits in, same integer dot products out, the same
float epilogue), the logits within 1e-5 relative to their largest magnitude.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess

import numpy as np
import pytest

import irnet_infer

COMMAND = os.environ.get("IRNET_RUN_AARCH64", "")
pytestmark = pytest.mark.skipif(not COMMAND, reason="IRNET_RUN_AARCH64 not set (cross-built irnet-run under qemu)")


def safe_name(name: str) -> str:  # as irnet-run names its --dump files
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


@pytest.mark.parametrize("arch", ["resnet20", "vgg_small"])
def test_whole_network_under_qemu_matches_x86(arch, tmp_path):
    import torch
    from export.convert import convert
    from export.models import create_model
    from helpers import randomize_bn

    torch.manual_seed(5)
    path = str(tmp_path / f"{arch}.irb")
    convert(randomize_bn(create_model(arch).eval(), seed=6), path, arch=arch)
    x = np.random.default_rng(7).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    dump = tmp_path / "dump"
    dump.mkdir()
    r = subprocess.run([*shlex.split(COMMAND), path, str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                        "--threads", "1", "--dump", str(dump)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    model = irnet_infer.Model(path, num_threads=2)
    want = model.predict(x)
    got = np.load(tmp_path / "y.npy")
    assert got.shape == want.shape
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-5 * scale, (np.abs(got - want).max(), scale)

    debug = model.run_debug(x)  # by op name; irnet-run's --dump files are by tensor name
    op_of = model.tensor_op_names()
    binary = [op_of.get(s["output"], s["output"]) for s in model.steps() if s["type"] == "bconv2d"]
    assert binary
    identical = 0
    tensor_of = {op: t for t, op in op_of.items()}
    for name, ref in debug.items():
        mine = np.load(dump / f"{safe_name(tensor_of[name])}.npy")
        assert mine.shape == ref.shape, name
        if name in binary:
            np.testing.assert_array_equal(mine, ref, err_msg=f"binary conv {name}")
        identical += np.array_equal(mine, ref)
    print(f"{arch}: {len(binary)} binary convs identical; {identical} of {len(debug)} tensors bit-identical; "
          f"logits max |diff| {np.abs(got - want).max():.3g} (max |logit| {scale:.3g}); x86 isa {model.isa}")
