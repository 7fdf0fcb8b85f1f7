"""Turns a traced model into the `.irb` graph (docs/FORMAT.md): one op per fx node.

Tensor names are fx node names; an op's `name` is its module path (or enclosing module path +
function name), made unique with a suffix (`layer1.0.add`, `layer1.0.add_1`): it is the one
name `irnet-infer info`, `Model.steps`/`run_debug` and `convert --check` all show.
The model is run once on an example input so every node has a concrete value: non-tensor
values (`x.size()[3]`, ...) are folded into attributes, and shapes decide what a
view/reshape means."""
import operator

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.utils import _pair

from .blocks import ShortcutA
from .foreign import has_own_forward, looks_like_ir_conv
from .irnet import IRConv2d, binary_weight
from irnet_infer.format import pack_signs

# Argument names and defaults of the functions we map, to read their calls uniformly.
_FUNCTION_SIGNATURES = {
    F.hardtanh: (("input", None), ("min_val", -1.0), ("max_val", 1.0), ("inplace", False)),
    F.relu: (("input", None), ("inplace", False)),
    torch.relu: (("input", None),),
    F.max_pool2d: (("input", None), ("kernel_size", None), ("stride", None), ("padding", 0),
                   ("dilation", 1), ("ceil_mode", False), ("return_indices", False)),
    F.avg_pool2d: (("input", None), ("kernel_size", None), ("stride", None), ("padding", 0),
                   ("ceil_mode", False), ("count_include_pad", True),
                   ("divisor_override", None)),
    F.adaptive_avg_pool2d: (("input", None), ("output_size", None)),
    torch.flatten: (("input", None), ("start_dim", 0), ("end_dim", -1)),
    operator.add: (("input", None), ("other", None)),
    operator.iadd: (("input", None), ("other", None)),
    torch.add: (("input", None), ("other", None), ("alpha", 1)),
    F.log_softmax: (("input", None), ("dim", None), ("_stacklevel", 3), ("dtype", None)),
    torch.log_softmax: (("input", None), ("dim", None), ("dtype", None)),
    F.dropout: (("input", None), ("p", 0.5), ("training", True), ("inplace", False)),
    operator.getitem: (("input", None), ("index", None)),
    F.pad: (("input", None), ("pad", None), ("mode", "constant"), ("value", None)),
}

_METHOD_SIGNATURES = {
    "add": (("input", None), ("other", None), ("alpha", 1)),
    "add_": (("input", None), ("other", None), ("alpha", 1)),
    "relu": (("input", None),),
    "view": None, "reshape": None, "flatten": None,  # judged by shapes, not arguments
    "contiguous": None,
}


def _type_name(cls):
    """'torch.nn.GELU' for torch.nn classes, else the full module path."""
    if getattr(nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _function_name(target):
    if isinstance(target, str):
        return target
    mod = getattr(target, "__module__", None) or ""
    return f"{mod}.{getattr(target, '__name__', repr(target))}".lstrip(".")


def _op_name(node):
    """Report name of a function/method call: enclosing module path + short function name
    (e.g. 'layer1.0.add'), so a report points at the block it came from."""
    short = node.target if isinstance(node.target, str) else getattr(
        node.target, "__name__", str(node.target))
    stack = node.meta.get("nn_module_stack") or {}
    return f"{list(stack)[-1]}.{short}" if stack else short


def _bind(signature, args, kwargs):
    bound = dict(signature)
    for (name, _), value in zip(signature, args):
        bound[name] = value
    bound.update(kwargs)
    return bound


def _ints(value):
    return [int(v) for v in _pair(value)]


def _f32(t):
    return np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy())


class GraphBuilder:
    """Collects ops and parameter tensors while walking the traced graph in order."""

    def __init__(self, gm, values, input_size, foreign=None):
        self.gm = gm
        self.foreign = foreign or {}  # foreign IR-Net conv path -> "1w1a" | "1w32a"
        self.values = values
        self.input_size = [int(v) for v in input_size]
        self.modules = dict(gm.named_modules())
        self.alias = {}   # node name -> tensor name, for no-op nodes (identity, dropout, ...)
        self.subsampled = {}  # node name of x[:, :, ::s, ::s] -> (tensor name of x, s)
        self.ops = []
        self.op_names = set()
        self.tensors = {}
        self.input_name = None
        self.output_name = None

    # --- helpers -----------------------------------------------------------------------------

    def value(self, arg):
        """Concrete value of an argument: node values looked up, literals kept."""
        return torch.fx.node.map_arg(arg, lambda n: self.values[n.name])

    def tensor_input(self, arg, where):
        if isinstance(arg, torch.fx.Node) and arg.name in self.subsampled:
            raise ValueError(f"{where}: indexing at node '{arg.name}' is supported only as the "
                             "option-A shortcut F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, a, b))")
        if not isinstance(arg, torch.fx.Node) or not torch.is_tensor(self.values.get(arg.name)):
            raise ValueError(f"{where}: expected a tensor input, got {arg!r}")
        return self.alias.get(arg.name, arg.name)

    def add_param(self, path, node, role, array):
        name = f"{path}.{role}"
        if name in self.tensors:  # a parameterized module called twice: keep names unique
            name = f"{node.name}.{role}"
        self.tensors[name] = array
        return name

    def unique_name(self, name):
        """`name`, or `name_1`, `name_2`, ... when a block calls the same function twice."""
        candidate, i = name, 0
        while candidate in self.op_names:
            i += 1
            candidate = f"{name}_{i}"
        self.op_names.add(candidate)
        return candidate

    def emit(self, op_type, name, node, inputs, attrs=None, params=None):
        name = self.unique_name(name)
        param_names = {role: self.add_param(name, node, role, arr)
                       for role, arr in (params or {}).items() if arr is not None}
        self.ops.append({"type": op_type, "name": name, "inputs": inputs,
                         "outputs": [node.name], "attrs": attrs or {}, "params": param_names})

    def make_alias(self, node, arg):
        self.alias[node.name] = self.tensor_input(arg, node.name)

    # --- walk ----------------------------------------------------------------------------------

    def build(self):
        for node in self.gm.graph.nodes:
            getattr(self, f"_on_{node.op}")(node)
        if self.input_name is None or self.output_name is None:
            raise ValueError("model graph needs one tensor input and one tensor output")
        graph = {"inputs": [{"name": self.input_name, "shape": self.input_size}],
                 "outputs": [self.output_name], "ops": self.ops}
        return graph, self.tensors

    def _on_placeholder(self, node):
        if self.input_name is not None:
            raise ValueError(f"only one model input is supported (extra input '{node.name}')")
        self.input_name = node.name

    def _on_get_attr(self, node):
        if torch.is_tensor(self.values.get(node.name)):
            raise ValueError(f"unsupported constant tensor '{node.target}' in the forward")

    def _on_output(self, node):
        out = node.args[0]
        if not isinstance(out, torch.fx.Node):
            raise ValueError("the model must return a single tensor")
        self.output_name = self.tensor_input(out, "output")

    def _on_call_module(self, node):
        module = self.modules[node.target]
        path = node.target
        x = node.args[0] if node.args else None
        if isinstance(module, IRConv2d):
            return _bconv(self, node, path, module, x,
                          "1w1a" if module.binary_activations else "1w32a")
        if looks_like_ir_conv(module):
            return _bconv(self, node, path, module, x, self.foreign[path])
        for cls, handler in _MODULE_HANDLERS:
            # A subclass with its own forward computes something else: unknown.
            if isinstance(module, cls) and not has_own_forward(module, cls):
                return handler(self, node, path, module, x)
        raise ValueError(f"unsupported module '{path}' ({_type_name(type(module))})")

    def _on_call_function(self, node):
        if not torch.is_tensor(self.values.get(node.name)):
            return  # size arithmetic etc.: folded into the attributes that use it
        handler = _FUNCTION_HANDLERS.get(node.target)
        if handler is None:
            raise ValueError(f"unsupported function '{_function_name(node.target)}' "
                             f"at node '{node.name}'")
        signature = _FUNCTION_SIGNATURES[node.target]
        handler(self, node, _op_name(node), self.bind(node, signature))

    def _on_call_method(self, node):
        if not torch.is_tensor(self.values.get(node.name)):
            return
        if node.target not in _METHOD_SIGNATURES:
            raise ValueError(f"unsupported tensor method '.{node.target}()' at node '{node.name}'")
        signature = _METHOD_SIGNATURES[node.target]
        bound = self.bind(node, signature) if signature else {"input": node.args[0]}
        _METHOD_HANDLERS[node.target](self, node, _op_name(node), bound)

    def bind(self, node, signature):
        """Arguments by name; every argument except `input`/`other` as a concrete value."""
        bound = _bind(signature, node.args, node.kwargs)
        return {k: (v if k in ("input", "other") else self.value(v)) for k, v in bound.items()}

    # --- shared op emitters ---------------------------------------------------------------------

    def pool(self, node, name, x, kind, kernel, stride, padding, ceil_mode, dilation=1,
             count_include_pad=True):
        kernel = _ints(kernel)
        stride = _ints(kernel if stride is None or stride == [] else stride)
        padding = _ints(padding)
        if ceil_mode or _ints(dilation) != [1, 1]:
            raise ValueError(f"'{name}': only floor mode and dilation 1 pooling is supported")
        in_hw = list(self.values[x.name].shape[-2:])
        src = self.tensor_input(x, name)
        if kind == "avg_pool2d" and kernel == in_hw and padding == [0, 0]:
            return self.emit("global_avg_pool", name, node, [src])
        attrs = {"kernel_size": kernel, "stride": stride, "padding": padding}
        if kind == "avg_pool2d":
            attrs["count_include_pad"] = bool(count_include_pad)
        self.emit(kind, name, node, [src], attrs)

    def adaptive_avg(self, node, name, x, output_size):
        if _ints(output_size) != [1, 1]:
            raise ValueError(f"'{name}': only adaptive average pooling to 1x1 is supported")
        self.emit("global_avg_pool", name, node, [self.tensor_input(x, name)])

    def flatten(self, node, name, x):
        src, out = self.values[x.name], self.values[node.name]
        if out.dim() != 2 or out.shape[0] != src.shape[0]:
            raise ValueError(f"'{name}' at node '{node.name}': only flattening to "
                             f"(N, -1) is supported, got {tuple(src.shape)} -> {tuple(out.shape)}")
        if src.dim() == 2:
            return self.make_alias(node, x)
        self.emit("flatten", name, node, [self.tensor_input(x, name)])

    def add(self, node, name, a, b, alpha=1):
        if not isinstance(b, torch.fx.Node) or alpha != 1:
            raise ValueError(f"'{name}' at node '{node.name}': only tensor + tensor is supported")
        if self.values[a.name].shape != self.values[b.name].shape:
            raise ValueError(f"'{name}' at node '{node.name}': add needs equal shapes")
        self.emit("add", name, node, [self.tensor_input(a, name), self.tensor_input(b, name)])

    def log_softmax(self, node, name, x, dim):
        if self.values[x.name].dim() != 2 or dim not in (1, -1):
            raise ValueError(f"'{name}': log_softmax is supported over the class vector only")
        self.emit("log_softmax", name, node, [self.tensor_input(x, name)])


# --- module handlers ---------------------------------------------------------------------------

def _conv_attrs(path, m):
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" \
            or isinstance(m.padding, str):
        raise ValueError(f"'{path}': only groups=1, dilation=1, numeric zero padding convs "
                         "are supported")
    return {"in_channels": int(m.in_channels), "out_channels": int(m.out_channels),
            "kernel_size": _ints(m.kernel_size), "stride": _ints(m.stride),
            "padding": _ints(m.padding)}


def _bias(m):
    return None if m.bias is None else _f32(m.bias)


def _bconv(b, node, path, m, x, variant):
    """IR-Net binary conv: `bconv2d` (1W/1A) or `bwconv2d` (1W/32A, float input)."""
    attrs = _conv_attrs(path, m)
    w_std, shift = binary_weight(m)
    if shift.min() < -128 or shift.max() > 127:
        raise ValueError(f"'{path}': weight scale exponent out of int8 range")
    params = {"weight_bits": pack_signs(w_std.detach().cpu().numpy()),
              "shift": np.ascontiguousarray(shift.numpy().astype(np.int8)), "bias": _bias(m)}
    op_type = "bconv2d" if variant == "1w1a" else "bwconv2d"
    b.emit(op_type, path, node, [b.tensor_input(x, path)], attrs, params)


def _conv(b, node, path, m, x):
    params = {"weight": _f32(m.weight), "bias": _bias(m)}
    b.emit("conv2d", path, node, [b.tensor_input(x, path)], _conv_attrs(path, m), params)


def _batch_norm(b, node, path, m, x):
    if m.running_mean is None:
        raise ValueError(f"'{path}': batch norm without running statistics is not supported")
    ones, zeros = torch.ones_like(m.running_mean), torch.zeros_like(m.running_mean)
    params = {"mean": _f32(m.running_mean), "var": _f32(m.running_var),
              "weight": _f32(m.weight if m.affine else ones),
              "bias": _f32(m.bias if m.affine else zeros)}
    b.emit("batch_norm", path, node, [b.tensor_input(x, path)], {"eps": float(m.eps)}, params)


def _hardtanh(b, node, path, m, x):
    attrs = {"min_val": float(m.min_val), "max_val": float(m.max_val)}
    b.emit("hardtanh", path, node, [b.tensor_input(x, path)], attrs)


def _relu(b, node, path, m, x):
    b.emit("relu", path, node, [b.tensor_input(x, path)])


def _max_pool(b, node, path, m, x):
    if m.return_indices:
        raise ValueError(f"'{path}': max pooling with indices is not supported")
    b.pool(node, path, x, "max_pool2d", m.kernel_size, m.stride, m.padding, m.ceil_mode,
           m.dilation)


def _avg_pool(b, node, path, m, x):
    if m.divisor_override is not None:
        raise ValueError(f"'{path}': avg pooling with divisor_override is not supported")
    b.pool(node, path, x, "avg_pool2d", m.kernel_size, m.stride, m.padding, m.ceil_mode,
           count_include_pad=m.count_include_pad)


def _adaptive_avg(b, node, path, m, x):
    b.adaptive_avg(node, path, x, m.output_size)


def _linear(b, node, path, m, x):
    if b.values[x.name].dim() != 2:
        raise ValueError(f"'{path}': linear is supported on flattened (N, F) inputs only")
    attrs = {"in_features": int(m.in_features), "out_features": int(m.out_features)}
    b.emit("linear", path, node, [b.tensor_input(x, path)], attrs,
           {"weight": _f32(m.weight), "bias": _bias(m)})


def _shortcut_a(b, node, path, m, x):
    attrs = {"stride": int(m.stride), "pad_before": int(m.pad_before),
             "pad_after": int(m.pad_after)}
    b.emit("shortcut_a", path, node, [b.tensor_input(x, path)], attrs)


def _log_softmax(b, node, path, m, x):
    b.log_softmax(node, path, x, m.dim)


def _flatten_module(b, node, path, m, x):
    b.flatten(node, path, x)


def _no_op(b, node, path, m, x):
    b.make_alias(node, x)  # identity, and dropout (the file describes eval mode)


# IR-Net binary convs (ours and foreign ones) are recognised before these (_on_call_module).
_MODULE_HANDLERS = [
    (nn.Conv2d, _conv),
    (_BatchNorm, _batch_norm),
    (nn.Hardtanh, _hardtanh),  # ReLU6 is a Hardtanh too, with its own bounds
    (nn.ReLU, _relu),
    (nn.MaxPool2d, _max_pool),
    (nn.AvgPool2d, _avg_pool),
    (nn.AdaptiveAvgPool2d, _adaptive_avg),
    (nn.Linear, _linear),
    (ShortcutA, _shortcut_a),
    (nn.LogSoftmax, _log_softmax),
    (nn.Flatten, _flatten_module),
    (nn.Identity, _no_op),
    (nn.Dropout, _no_op),
]


# --- function and method handlers (get the bound arguments) ------------------------------------

def _fn_hardtanh(b, node, name, a):
    attrs = {"min_val": float(a["min_val"]), "max_val": float(a["max_val"])}
    b.emit("hardtanh", name, node, [b.tensor_input(a["input"], name)], attrs)


def _fn_relu(b, node, name, a):
    b.emit("relu", name, node, [b.tensor_input(a["input"], name)])


def _fn_max_pool(b, node, name, a):
    if a["return_indices"]:
        raise ValueError(f"'{name}': max pooling with indices is not supported")
    b.pool(node, name, a["input"], "max_pool2d", a["kernel_size"], a["stride"], a["padding"],
           a["ceil_mode"], a["dilation"])


def _fn_avg_pool(b, node, name, a):
    if a["divisor_override"] is not None:
        raise ValueError(f"'{name}': avg pooling with divisor_override is not supported")
    b.pool(node, name, a["input"], "avg_pool2d", a["kernel_size"], a["stride"], a["padding"],
           a["ceil_mode"], count_include_pad=a["count_include_pad"])


def _fn_adaptive_avg(b, node, name, a):
    b.adaptive_avg(node, name, a["input"], a["output_size"])


def _fn_flatten(b, node, name, a):
    b.flatten(node, name, a["input"])


def _fn_add(b, node, name, a):
    b.add(node, name, a["input"], a["other"], a.get("alpha", 1))


def _fn_log_softmax(b, node, name, a):
    b.log_softmax(node, name, a["input"], a["dim"])


def _fn_getitem(b, node, name, a):
    """x[:, :, ::s, ::s] of a map: kept aside for the F.pad of an option-A shortcut (the
    official ResNet-20's LambdaLayer), which becomes one `shortcut_a` op."""
    x, index = a["input"], a["index"]
    whole = lambda sl: isinstance(sl, slice) and sl.start is None and sl.stop is None
    ok = (isinstance(x, torch.fx.Node) and b.values[x.name].dim() == 4
          and isinstance(index, tuple) and len(index) == 4 and all(map(whole, index))
          and index[0].step in (None, 1) and index[1].step in (None, 1)
          and (index[2].step or 1) == (index[3].step or 1) and (index[2].step or 1) >= 1)
    if not ok:
        raise ValueError(f"unsupported indexing at node '{node.name}' (only x[:, :, ::s, ::s] "
                         "feeding an option-A shortcut F.pad is supported)")
    b.subsampled[node.name] = (b.tensor_input(x, name), int(index[2].step or 1))


def _fn_pad(b, node, name, a):
    """Zero padding of channels only: a ResNet option-A shortcut (`shortcut_a`)."""
    x, pad = a["input"], [int(v) for v in a["pad"]]
    if (a["mode"] != "constant" or a["value"] not in (None, 0, 0.0) or len(pad) != 6
            or pad[:4] != [0, 0, 0, 0] or min(pad) < 0 or b.values[node.name].dim() != 4):
        raise ValueError(f"'{name}' at node '{node.name}': only zero padding of channels "
                         "(a ResNet option-A shortcut) is supported")
    if isinstance(x, torch.fx.Node) and x.name in b.subsampled:
        src, stride = b.subsampled[x.name]
    else:
        src, stride = b.tensor_input(x, name), 1
    attrs = {"stride": stride, "pad_before": pad[4], "pad_after": pad[5]}
    b.emit("shortcut_a", name, node, [src], attrs)


def _fn_dropout(b, node, name, a):
    if a["training"]:
        raise ValueError(f"'{name}': dropout with training=True cannot be exported")
    b.make_alias(node, a["input"])


_FUNCTION_HANDLERS = {
    F.hardtanh: _fn_hardtanh, F.relu: _fn_relu, torch.relu: _fn_relu,
    F.max_pool2d: _fn_max_pool, F.avg_pool2d: _fn_avg_pool,
    F.adaptive_avg_pool2d: _fn_adaptive_avg, torch.flatten: _fn_flatten,
    operator.add: _fn_add, operator.iadd: _fn_add, torch.add: _fn_add,
    F.log_softmax: _fn_log_softmax, torch.log_softmax: _fn_log_softmax,
    F.dropout: _fn_dropout, operator.getitem: _fn_getitem, F.pad: _fn_pad,
}

_METHOD_HANDLERS = {
    "add": _fn_add, "add_": _fn_add, "relu": _fn_relu,
    "view": _fn_flatten, "reshape": _fn_flatten, "flatten": _fn_flatten,
    "contiguous": lambda b, node, name, a: b.make_alias(node, a["input"]),
}


def build_graph(gm, values, input_size, foreign=None):
    """(graph dict, {tensor name: numpy array}) for a traced model and its node values.
    `foreign` maps the paths of foreign IR-Net convs to their variant (export/foreign.py)."""
    return GraphBuilder(gm, values, input_size, foreign).build()
