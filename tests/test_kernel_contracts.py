"""Kernel contracts a file can reach are refused at load with a clear error (csrc/kernels/*.h).

The binary GEMM's AVX-512 epilogue computes k_bits - 2 * count with one float FMA, exact only
below 2^24 (kernels/bgemm.h): a binary conv with kernel_h * kernel_w * in_channels >= 2^24 must
be refused when the model loads, not computed inexactly on one ISA."""
import numpy as np
import pytest

import irnet_infer
from irnet_infer.format import write_irb


def one_bconv_file(path, cin, k):
    """A file with one k x k binary conv over a cin x k x k input (all weights +1: zero bits)."""
    words = (cin + 63) // 64
    graph = {"inputs": [{"name": "x", "shape": [cin, k, k]}], "outputs": ["y"],
             "ops": [{"type": "bconv2d", "name": "big", "inputs": ["x"], "outputs": ["y"],
                      "attrs": {"in_channels": cin, "out_channels": 1, "kernel_size": [k, k],
                                "stride": [1, 1], "padding": [0, 0]},
                      "params": {"weight_bits": "w", "shift": "s"}}]}
    tensors = {"w": np.zeros((1, k, k, words), np.uint64), "s": np.zeros(1, np.int8)}
    write_irb(path, graph, tensors, {"input_size": [cin, k, k]})
    return path


@pytest.mark.parametrize("isa", irnet_infer.available_isas())
def test_bconv_with_2_pow_24_products_is_refused(tmp_path, isa):
    path = one_bconv_file(tmp_path / "big.irb", cin=4096, k=64)  # 64 * 64 * 4096 = 2^24
    with pytest.raises(irnet_infer.IrbFormatError, match=r"big.*16777216 exceeds the binary GEMM's limit of 2\^24 - 1"):
        irnet_infer.Model(path, num_threads=1, isa=isa)


def test_bconv_just_below_the_limit_loads(tmp_path):
    path = one_bconv_file(tmp_path / "ok.irb", cin=4095, k=64)  # 16773120 < 2^24
    assert irnet_infer.Model(path, num_threads=1, isa="scalar").output_shape == (1, 1, 1)
