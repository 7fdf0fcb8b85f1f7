"""torch.fx tracing shared by the converter and the reference, so that tensor names (fx node
names) are the same on both sides."""
import torch
import torch.fx

from .blocks import ShortcutA
from .irnet import IRConv2d


class IRTracer(torch.fx.Tracer):
    """Keeps IRConv2d and ShortcutA whole: each maps to one op of the file format."""

    def is_leaf_module(self, m, qualname):
        if isinstance(m, (IRConv2d, ShortcutA)):
            return True
        return super().is_leaf_module(m, qualname)


def trace(model):
    """Symbolically trace a model into a GraphModule that shares the model's submodules."""
    graph = IRTracer().trace(model)
    return torch.fx.GraphModule(model, graph)


class RecordingInterpreter(torch.fx.Interpreter):
    """Runs a GraphModule and keeps every node's output, by node name, in execution order.
    Tensors are cloned because a later in-place op would otherwise change what we recorded."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values = {}

    def run_node(self, n):
        result = super().run_node(n)
        if n.op != "output":
            self.values[n.name] = result.detach().clone() if torch.is_tensor(result) else result
        return result


def run_recording(gm, x):
    """(output, {node name: value}) of running the traced module on x."""
    interp = RecordingInterpreter(gm)
    out = interp.run(x)
    return out, interp.values
