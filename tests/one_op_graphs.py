"""One-op graphs in the `.irb` graph format (docs/FORMAT.md): the single layers that the op
tests, the fuzz seeds and the layer benchmarks (benchmarks/test_layers.py) hand to the engine
or write to a file. numpy only: the fuzz workers import it without torch."""
import numpy as np

from irnet_infer.format import pack_signs


def one_op_graph(op_type: str, input_shape, attrs: dict, params: dict, name: str = "op"):
    """(graph, tensors): one `op_type` op reading input "x" (per-sample `input_shape`) and
    writing the output "y"; `params` maps each parameter role to its array, stored under the
    role's name."""
    op = {"type": op_type, "name": name, "inputs": ["x"], "outputs": ["y"], "attrs": dict(attrs),
          "params": {role: role for role in params}}
    graph = {"inputs": [{"name": "x", "shape": [int(d) for d in input_shape]}], "outputs": ["y"], "ops": [op]}
    return graph, dict(params)


def bconv_graph(signs: np.ndarray, h: int, w: int, stride: int = 1, pad: int = 0, shift=None, bias=None,
                name: str = "conv"):
    """(graph, tensors) of one bconv2d with the +/-1 weights `signs` (Cout, Cin, k, k) on a
    Cin x h x w input; `shift` (int8 per output channel) defaults to 0, `bias` to none."""
    cout, cin, kh, kw = signs.shape
    params = {"weight_bits": pack_signs(signs),
              "shift": np.zeros(cout, np.int8) if shift is None else np.asarray(shift, np.int8)}
    if bias is not None:
        params["bias"] = np.asarray(bias, np.float32)
    attrs = {"in_channels": cin, "out_channels": cout, "kernel_size": [kh, kw],
             "stride": [stride, stride], "padding": [pad, pad]}
    return one_op_graph("bconv2d", (cin, h, w), attrs, params, name)


def random_signs(rng: np.random.Generator, cout: int, cin: int, k: int) -> np.ndarray:
    """Binary weights: float32 +/-1 (cout, cin, k, k)."""
    return rng.choice([-1.0, 1.0], size=(cout, cin, k, k)).astype(np.float32)
