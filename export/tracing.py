"""torch.fx tracing shared by the converter and the reference, so that tensor names (fx node
names) are the same on both sides."""
import torch
import torch.fx
import torch.nn as nn

from .blocks import ShortcutA


class IRTracer(torch.fx.Tracer):
    """Keeps every Conv2d (ours, a foreign IR-Net conv, any subclass) and ShortcutA whole:
    each maps to one op of the file format, or is refused by name (export/graph_builder.py)."""

    def is_leaf_module(self, m, qualname):
        if isinstance(m, (nn.Conv2d, ShortcutA)):
            return True
        return super().is_leaf_module(m, qualname)


def trace(model):
    """Symbolically trace a model into a GraphModule that shares the model's submodules."""
    graph = IRTracer().trace(model)
    return torch.fx.GraphModule(model, graph)


class RecordingInterpreter(torch.fx.Interpreter):
    """Runs a GraphModule and keeps every node's output, by node name, in execution order.
    Tensors are cloned because a later in-place op would otherwise change what we recorded."""

    def __init__(self, gm, overrides=None):
        super().__init__(gm)
        self.values = {}
        self.overrides = overrides or {}  # module path -> callable run instead of the module

    def call_module(self, target, args, kwargs):
        if target in self.overrides:
            return self.overrides[target](*args, **kwargs)
        return super().call_module(target, args, kwargs)

    def run_node(self, n):
        result = super().run_node(n)
        if n.op != "output":
            self.values[n.name] = result.detach().clone() if torch.is_tensor(result) else result
        return result


def run_recording(gm, x, overrides=None):
    """(output, {node name: value}) of running the traced module on x; `overrides` maps module
    paths to callables run in their place (foreign IR-Net convs, export/foreign.py)."""
    interp = RecordingInterpreter(gm, overrides)
    out = interp.run(x)
    return out, interp.values
