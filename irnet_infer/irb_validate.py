"""Structure checks of a parsed `.irb` model (docs/FORMAT.md), for the reader and the writer
alike: the graph (one input, op types, references in order, attributes, parameter tensors) and
the `preprocess` metadata. The engine checks shapes and attributes again as it plans."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from irnet_infer import _engine
from irnet_infer.irb_spec import MAX_ACTIVATION_ELEMENTS, MAX_OPS, IrbFile, IrbFormatError

# The engine's op registry (csrc/ops/registry.cpp) is the one list: a file is refused for an op
# type exactly when the engine could not run it.
OP_TYPES = frozenset(_engine.op_types())


def validate(f: IrbFile, name: str = "model") -> None:
    """Structure checks on a parsed model; the engine checks shapes and attributes again."""
    try:
        _validate(f, name)
    except RecursionError:  # repr() of a deeply nested value in a message
        raise IrbFormatError(f"{name}: graph or preprocess values are nested too deeply") from None


def _validate(f: IrbFile, name: str) -> None:
    g = f.graph

    def bad(msg: str) -> IrbFormatError:
        return IrbFormatError(f"{name}: {msg}")

    for key in ("inputs", "outputs", "ops"):
        if not isinstance(g.get(key), list):
            raise bad(f"graph {key!r} must be a list")
    if len(g["inputs"]) != 1 or not isinstance(g["inputs"][0], dict):
        raise bad("graph must have exactly one input object")
    inp = g["inputs"][0]
    shape = inp.get("shape")
    if (not isinstance(inp.get("name"), str) or not isinstance(shape, list) or len(shape) != 3
            or not all(type(d) is int and 1 <= d <= 2**20 for d in shape)):
        raise bad("graph input needs a name and a shape [C, H, W] of sizes in 1..2^20")
    if shape[0] * shape[1] * shape[2] > MAX_ACTIVATION_ELEMENTS:
        raise bad(f"graph input shape {shape} has more than 2^28 elements (the activation limit)")
    if len(g["ops"]) > MAX_OPS:
        raise bad(f"graph has {len(g['ops'])} ops, more than the limit of {MAX_OPS}")
    if len(g["outputs"]) != 1 or not isinstance(g["outputs"][0], str):
        raise bad("graph must have exactly one output name")
    defined = {inp["name"]}
    used: dict[str, str] = {}
    for i, op in enumerate(g["ops"]):
        if not isinstance(op, dict):
            raise bad(f"graph op #{i} is not an object")
        where = f"op #{i} {op.get('name', '')!r}"
        if not isinstance(op.get("type"), str) or op["type"] not in OP_TYPES:
            raise bad(f"{where}: unknown op type {op.get('type')!r}")
        ins, outs = op.get("inputs"), op.get("outputs")
        if not isinstance(ins, list) or not all(isinstance(t, str) for t in ins):
            raise bad(f"{where}: inputs must be a list of names")
        if not isinstance(outs, list) or len(outs) != 1 or not isinstance(outs[0], str):
            raise bad(f"{where}: must have exactly one output name")
        for t in ins:
            if t not in defined:
                raise bad(f"{where}: input {t!r} is not defined by an earlier op "
                          "(undefined or cyclic reference)")
        if outs[0] in defined:
            raise bad(f"{where}: output {outs[0]!r} is defined twice")
        defined.add(outs[0])
        attrs = op.get("attrs", {})
        if not isinstance(attrs, dict):
            raise bad(f"{where}: attrs must be an object")
        for key, value in attrs.items():
            values = value if isinstance(value, list) else [value]
            if not all(_finite_number(v) for v in values):
                raise bad(f"{where}: attribute {key!r} must be a finite number or a list of them, "
                          f"got {value!r:.80}")
        params = op.get("params", {})
        if not isinstance(params, dict):
            raise bad(f"{where}: params must be an object")
        for role, tname in params.items():
            if not isinstance(tname, str) or tname not in f.tensors:
                raise bad(f"{where}: parameter {role!r} names tensor {tname!r}, which is not in the file")
            if tname in used:
                raise bad(f"{where}: tensor {tname!r} is also used by {used[tname]}")
            used[tname] = where
            t = f.tensors[tname]
            if t.dtype.kind == "f" and not np.isfinite(t).all():
                raise bad(f"{where}: tensor {tname!r} has non-finite values")
    if g["outputs"][0] not in defined or g["outputs"][0] == inp["name"]:
        raise bad(f"graph output {g['outputs'][0]!r} is not produced by any op")
    extra = sorted(set(f.tensors) - set(used))
    if extra:
        raise bad(f"tensors not used by any op: {extra[:5]}")
    if f.classes is not None and not all(isinstance(c, str) for c in f.classes):
        raise bad("classes must be a list of strings")
    _validate_preprocess(f.preprocess, shape, bad)


def _finite_number(v: Any) -> bool:
    # bool is an int in Python (and in JSON files written by Python): accepted, as 0/1.
    # Integers are bounded so that the engine's conversion to double and int64 is exact.
    if isinstance(v, int):
        return abs(v) <= 2**53
    return isinstance(v, float) and math.isfinite(v)


def _validate_preprocess(pre: dict, input_shape: list, bad) -> None:
    size = pre.get("input_size")
    if size != input_shape:
        raise bad(f"preprocess input_size {size!r:.80} must equal the graph input shape {input_shape}")
    for key in ("mean", "std"):
        if key in pre:
            v = pre[key]
            if (not isinstance(v, list) or len(v) != input_shape[0]
                    or not all(_finite_number(x) and not isinstance(x, bool) for x in v)):
                raise bad(f"preprocess {key!r} must be a list of {input_shape[0]} finite numbers")
    if "std" in pre and any(x == 0 for x in pre["std"]):
        raise bad("preprocess 'std' must not contain 0")
    if "scale" in pre and (not _finite_number(pre["scale"]) or isinstance(pre["scale"], bool)):
        raise bad("preprocess 'scale' must be a finite number")
    resize = pre.get("resize")
    if resize is not None and (type(resize) is not int or not 1 <= resize <= 2**16):
        raise bad(f"preprocess 'resize' must be an integer in 1..65536, got {resize!r:.80}")
    if pre.get("channel_order", "RGB") not in ("RGB", "BGR"):
        raise bad("preprocess 'channel_order' must be 'RGB' or 'BGR'")
