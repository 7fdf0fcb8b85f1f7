"""The same networks and layers in OpenVINO, built the way its CPU plugin runs binary
convolutions: every `bconv2d` of an `.irb` graph becomes FakeQuantize(levels=2) with both
thresholds at the largest float below 0 (so x < 0 -> 0 -> -1, x >= 0 -> 1 -> +1, the deployment
sign rule), then BinaryConvolution `xnor-popcount` with u1 weights and pad_value 0 (padded taps
add nothing, as zero padding in PyTorch), then the per-channel 2^shift and bias. The other ops
map one to one onto opset operations. Built from the graph description with openvino's Python
opset API, compiled for the CPU with f32 inference precision forced and a given thread count.

`binary_primitives` reads the compiled model's execution graph, so a benchmark can check that
the binary convs really run as u1 binary kernels and not as a float fallback.

Needs `openvino` (the `bench` extra); `unavailable_reason()` says why it cannot be used."""
from __future__ import annotations

import numpy as np

EXTRA_HINT = "pip install -e '.[bench]' (the bench extra installs openvino)"


def unavailable_reason() -> str | None:
    """None when openvino imports, else the reason a benchmark row is skipped."""
    try:
        import openvino  # noqa: F401
        import openvino.opset13  # noqa: F401
    except ImportError as e:
        return f"openvino is not installed ({e}); {EXTRA_HINT}"
    return None


# Largest float32 below 0: FakeQuantize maps x <= t to the low output and x > t to the high one.
_SIGN_THRESHOLD = float(np.nextafter(np.float32(0), np.float32(-1)))


def _const(ops, array):
    return ops.constant(np.array(array, dtype=np.float32))  # keeps 0-d scalars 0-d


def _per_channel(ops, values, rank):
    """[C] -> a [1, C, 1, ...] constant for broadcasting over NCHW (rank 4) or NC (rank 2)."""
    v = np.asarray(values, dtype=np.float32)
    return _const(ops, v.reshape((1, -1) + (1,) * (rank - 2)))


def _u1_constant(ov, bits: np.ndarray):
    """A u1 Constant holding `bits` (bool, any shape) in the order the CPU plugin reads them:
    element i at bit i % 8 (least significant first) of byte i // 8. (opset.constant with
    dtype u1 packs the most significant bit first, which the plugin reads mirrored.)"""
    tensor = ov.Tensor(ov.Type.u1, ov.Shape(list(bits.shape)))
    tensor.data[:] = np.packbits(bits.ravel().astype(np.uint8), bitorder="little")
    return ov.op.Constant(tensor)


def _binary_conv(ops, ov, x, attrs, tensors, params):
    from irnet_infer.format import unpack_signs
    cin = attrs["in_channels"]
    if cin % 8:
        # Measured with openvino 2026.4: Cin 3 and 100 give wrong outputs (1x1 Cin 3 does not
        # compile); every binary conv of the networks we compare has Cin % 8 == 0.
        raise NotImplementedError(f"binary conv with {cin} input channels: the OpenVINO twin needs a multiple of 8")
    signs = unpack_signs(tensors[params["weight_bits"]], cin)  # +/-1, (Cout, Cin, kh, kw)
    t = _const(ops, np.float32(_SIGN_THRESHOLD))
    bits = ops.fake_quantize(x, t, t, _const(ops, np.float32(0)), _const(ops, np.float32(1)), 2)
    weights = _u1_constant(ov, signs > 0)  # 1 = +1, 0 = -1
    pad = list(attrs["padding"])
    y = ops.binary_convolution(bits, weights, list(attrs["stride"]), pad, pad, [1, 1],
                               "xnor-popcount", 0.0)
    scale = np.ldexp(np.float32(1), tensors[params["shift"]].astype(np.int32)).astype(np.float32)
    y = ops.multiply(y, _per_channel(ops, scale, 4))
    if "bias" in params:
        y = ops.add(y, _per_channel(ops, tensors[params["bias"]], 4))
    return y


def _sign_weight_conv(ops, x, attrs, tensors, params):
    """1W/32A (`bwconv2d`): float input, +/-1 weights scaled by 2^shift per output channel, as
    an ordinary float Convolution (OpenVINO has no binary-weight, float-input primitive)."""
    from irnet_infer.format import unpack_signs
    signs = unpack_signs(tensors[params["weight_bits"]], attrs["in_channels"]).astype(np.float32)
    pad = list(attrs["padding"])
    y = ops.convolution(x, _const(ops, signs), list(attrs["stride"]), pad, pad, [1, 1])
    scale = np.ldexp(np.float32(1), tensors[params["shift"]].astype(np.int32)).astype(np.float32)
    y = ops.multiply(y, _per_channel(ops, scale, 4))
    if "bias" in params:
        y = ops.add(y, _per_channel(ops, tensors[params["bias"]], 4))
    return y


def _op(ops, ov, op, args, rank, tensors):
    kind, attrs, params = op["type"], op.get("attrs", {}), op.get("params", {})
    x = args[0]
    if kind == "bconv2d":
        return _binary_conv(ops, ov, x, attrs, tensors, params)
    if kind == "bwconv2d":
        return _sign_weight_conv(ops, x, attrs, tensors, params)
    if kind == "conv2d":
        pad = list(attrs["padding"])
        y = ops.convolution(x, _const(ops, tensors[params["weight"]]), list(attrs["stride"]), pad, pad, [1, 1])
        return ops.add(y, _per_channel(ops, tensors[params["bias"]], 4)) if "bias" in params else y
    if kind == "batch_norm":
        p = {k: tensors[params[k]] for k in ("weight", "bias", "mean", "var")}
        return ops.batch_norm_inference(x, _const(ops, p["weight"]), _const(ops, p["bias"]),
                                        _const(ops, p["mean"]), _const(ops, p["var"]), float(attrs["eps"]))
    if kind == "relu":
        return ops.relu(x)
    if kind == "hardtanh":
        return ops.clamp(x, float(attrs["min_val"]), float(attrs["max_val"]))
    if kind == "max_pool2d":
        import openvino.opset1 as ops1  # v1 has the single output; v8+ adds indices
        pad = list(attrs["padding"])
        return ops1.max_pool(x, list(attrs["stride"]), pad, pad, list(attrs["kernel_size"]), "floor")
    if kind == "avg_pool2d":
        pad = list(attrs["padding"])
        return ops.avg_pool(x, list(attrs["stride"]), pad, pad, list(attrs["kernel_size"]),
                            not attrs.get("count_include_pad", True), "floor")
    if kind == "global_avg_pool":
        return ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), True)
    if kind == "flatten":
        return ops.reshape(x, ops.constant(np.array([0, -1], np.int64)), True)
    if kind == "linear":
        y = ops.matmul(x, _const(ops, tensors[params["weight"]]), False, True)
        return ops.add(y, _per_channel(ops, tensors[params["bias"]], 2)) if "bias" in params else y
    if kind == "add":
        return ops.add(x, args[1])
    if kind == "shortcut_a":
        s = int(attrs["stride"])
        sub = ops.strided_slice(x, ops.constant(np.zeros(4, np.int64)), ops.constant(np.zeros(4, np.int64)),
                                ops.constant(np.array([1, 1, s, s], np.int64)), [1, 1, 1, 1], [1, 1, 1, 1])
        return ops.pad(sub, ops.constant(np.array([0, attrs["pad_before"], 0, 0], np.int64)),
                       ops.constant(np.array([0, attrs["pad_after"], 0, 0], np.int64)), "constant",
                       _const(ops, np.float32(0)))
    if kind == "log_softmax":
        return ops.log_softmax(x, rank - 1)
    raise NotImplementedError(f"op type {kind!r} has no OpenVINO mapping here")


def build(graph: dict, tensors: dict, batch: int):
    """An ov.Model of an `.irb` graph (its `graph` dict and tensors) for NCHW input of `batch`."""
    import openvino as ov
    import openvino.opset13 as ops
    (inp,) = graph["inputs"]
    param = ops.parameter([batch] + list(inp["shape"]), ov.Type.f32, name=inp["name"])
    values, ranks = {inp["name"]: param}, {inp["name"]: 1 + len(inp["shape"])}
    for op in graph["ops"]:
        args = [values[name] for name in op["inputs"]]
        rank = ranks[op["inputs"][0]]
        out = _op(ops, ov, op, args, rank, tensors)
        values[op["outputs"][0]] = out
        ranks[op["outputs"][0]] = {"flatten": 2, "linear": 2}.get(op["type"], rank)
    results = [ops.result(values[name]) for name in graph["outputs"]]
    return ov.Model(results, [param], "irnet_openvino_twin")


def compile_model(model, threads: int):
    """CPU compile with `threads` inference threads, one stream, f32 precision forced (no bf16
    or f16 rewrite), latency hint."""
    import openvino as ov
    config = {"INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": 1,
              "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    return ov.Core().compile_model(model, "CPU", config)


def runner(compiled):
    """A callable x -> first output (numpy, valid until the next call), on one reused infer
    request (what a latency user runs), with the input shared rather than copied."""
    request = compiled.create_infer_request()

    def run(x):
        request.infer({0: x}, share_inputs=True)
        return request.get_output_tensor(0).data
    run.compiled = compiled  # a request must not outlive its compiled model (use after free)
    return run


def binary_primitives(compiled) -> list[tuple[str, str, str]]:
    """(layer name, layer type, primitive type) of every BinaryConvolution in the compiled
    model's execution graph."""
    found = []
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        layer_type = info["layerType"].astype(str) if "layerType" in info else node.get_type_name()
        if "binary" not in layer_type.lower():
            continue
        primitive = info["primitiveType"].astype(str) if "primitiveType" in info else ""
        found.append((node.get_friendly_name(), layer_type, primitive))
    return found


def is_u1_binary(primitive: str) -> bool:
    """The CPU plugin names its binary kernels `jit_<isa>_u1` (or `ref_..._u1` as reference)."""
    return primitive.endswith("_u1") or "_u1_" in primitive
