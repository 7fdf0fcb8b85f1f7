"""Mutations of valid `.irb` files for the robustness fuzz test and the atheris harness.

`make_seeds(dir)` writes the seed models; `mutate(seed_bytes, case_id)` returns one hostile file,
chosen deterministically from the case id (so a failing case can be replayed by its number).
Mutations: bit flips and byte splices, truncations, header-length edits, structured edits of the
graph JSON (op types, attributes, references, ops removed, duplicated or reordered), tensor edits
with a recomputed content hash (swaps, dtype/shape relabels, NaN/Inf, extreme values, extra and
missing tensors), metadata edits (format, version, keys) and raw header edits (offsets, dtypes);
and structure-aware ones: inflated spatial sizes, kernel sizes and channel counts with the
parameters refitted so the file stays consistent (the engine's planning is reached, so its load
cost is measured), and JSON extremes (huge integers, 1e308, NaN/Infinity, deep nesting,
duplicate keys) in the graph, preprocess, producer and safetensors header JSON.
`mutation_kind(case)` names the mutation a case gets.
"""
from __future__ import annotations

import copy
import json
import os
import random
import struct

import numpy as np

from irnet_infer import _engine
from irnet_infer.format import content_hash, write_irb
from one_op_graphs import bconv_graph

_NP = {"F32": np.dtype("<f4"), "U64": np.dtype("<u8"), "I8": np.dtype("i1")}

INTERESTING = [0, -1, 1, 2, 3, 7, 64, 65, 2**20, 2**30, 2**30 + 1, 2**31, 2**32, 2**62, 2**63,
               2**64, 10**30, -2**31, -2**63, 1.5, -0.5, 1e-30, 1e300, float("nan"), float("inf"),
               float("-inf"), True, False, None, "3", [], [1], [0, 0], [1, 1], [2, 2], [3, 3],
               [0, 1], [1, 0], [-1, -1], [2**30, 2**30], [2**31, 1], [1, 2, 3], [[1]], {"a": 1}]
# Every op type the engine runs (a new op is fuzzed without an edit here), and some it does not.
OP_TYPES = _engine.op_types() + ["conv3d", "", "Conv2d", None, 5]
ATTR_NAMES = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "eps", "min_val",
              "max_val", "count_include_pad", "in_features", "out_features", "pad_before",
              "pad_after", "dilation", "groups"]


# -- seeds --------------------------------------------------------------------------------------

def tiny_graph() -> tuple[dict, dict]:
    """Every op type in one small graph (input 3x8x8): conv with bias, bconv with Cin=70 (a
    partial last word) and bias, both poolings, shortcut_a + add, batch_norm on a vector."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    from irnet_infer.format import pack_signs
    t = {"c1.w": f(70, 3, 3, 3), "c1.b": f(70),
         "bn.mean": f(70), "bn.var": np.abs(f(70)) + 0.5, "bn.weight": f(70), "bn.bias": f(70),
         "b1.bits": pack_signs(f(16, 70, 3, 3)), "b1.shift": rng.integers(-3, 2, 16).astype(np.int8),
         "b1.bias": f(16), "fc.w": f(10, 16), "fc.b": f(10),
         "bn2.mean": f(10), "bn2.var": np.abs(f(10)) + 0.5, "bn2.weight": f(10), "bn2.bias": f(10)}
    win = lambda k, s, p: {"kernel_size": [k, k], "stride": [s, s], "padding": [p, p]}  # noqa: E731
    ops = [
        ("conv2d", ["x"], "c1", {"in_channels": 3, "out_channels": 70, **win(3, 1, 1)},
         {"weight": "c1.w", "bias": "c1.b"}),
        ("batch_norm", ["c1"], "bn", {"eps": 1e-5},
         {"mean": "bn.mean", "var": "bn.var", "weight": "bn.weight", "bias": "bn.bias"}),
        ("hardtanh", ["bn"], "ht", {"min_val": -1.0, "max_val": 1.0}, {}),
        ("bconv2d", ["ht"], "b1", {"in_channels": 70, "out_channels": 16, **win(3, 2, 1)},
         {"weight_bits": "b1.bits", "shift": "b1.shift", "bias": "b1.bias"}),
        ("relu", ["b1"], "r1", {}, {}),
        ("avg_pool2d", ["r1"], "ap", {**win(2, 1, 1), "count_include_pad": False}, {}),
        ("max_pool2d", ["ap"], "mp", win(2, 2, 0), {}),
        ("shortcut_a", ["mp"], "sc", {"stride": 1, "pad_before": 0, "pad_after": 0}, {}),
        ("add", ["mp", "sc"], "sum", {}, {}),
        ("global_avg_pool", ["sum"], "gap", {}, {}),
        ("flatten", ["gap"], "fl", {}, {}),
        ("linear", ["fl"], "fc", {"in_features": 16, "out_features": 10},
         {"weight": "fc.w", "bias": "fc.b"}),
        ("batch_norm", ["fc"], "bn2", {"eps": 1e-5},
         {"mean": "bn2.mean", "var": "bn2.var", "weight": "bn2.weight", "bias": "bn2.bias"}),
        ("log_softmax", ["bn2"], "out", {}, {}),
    ]
    graph = {"inputs": [{"name": "x", "shape": [3, 8, 8]}], "outputs": ["out"],
             "ops": [{"type": ty, "name": out, "inputs": ins, "outputs": [out], "attrs": a, "params": p}
                     for ty, ins, out, a, p in ops]}
    return graph, t


def make_seeds(directory: str, with_torch: bool = True) -> list[str]:
    """Writes the seed files into `directory` and returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    graph, tensors = tiny_graph()
    pre = {"input_size": [3, 8, 8], "resize": 8, "channel_order": "RGB", "mean": [0.5] * 3,
           "std": [0.25] * 3, "scale": 1 / 255}
    p = os.path.join(directory, "tiny.irb")
    write_irb(p, graph, tensors, pre, classes=[f"c{i}" for i in range(10)], producer={"name": "fuzz"})
    paths.append(p)
    if with_torch:
        import torch
        from export.convert import convert
        from export.models import create_model
        for arch in ("resnet20", "vgg_small"):
            torch.manual_seed(0)
            p = os.path.join(directory, f"{arch}.irb")
            convert(create_model(arch, input_size=(3, 16, 16)).eval(), p, arch=arch)
            paths.append(p)
    return paths


def single_bconv(path: str, cin: int, h: int, w: int, k: int, pad: int, cout: int = 1) -> str:
    """A tiny file with one binary conv on a declared cin x h x w input: the issue-11 shape of
    file whose size says nothing about the map it declares."""
    signs = np.where(np.random.default_rng(0).standard_normal((cout, cin, k, k)) < 0, -1.0, 1.0)
    write_irb(path, *bconv_graph(signs.astype(np.float32), h, w, 1, pad), {"input_size": [cin, h, w]})
    return path


# -- file <-> parts -----------------------------------------------------------------------------

def split(data: bytes) -> tuple[dict, dict, list]:
    """A valid file -> (metadata, raw header entries, [(name, dtype, shape, bytes)])."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    body = data[8 + n:]
    tensors = [(k, v["dtype"], list(v["shape"]), body[v["data_offsets"][0]:v["data_offsets"][1]])
               for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])]
    return meta, header, tensors


def join(meta: dict | None, tensors: list, rehash: bool = False, raw_header: dict | None = None) -> bytes:
    """(metadata, tensors) -> file bytes, offsets laid out in order; optionally a new hash."""
    if rehash and meta is not None:
        arrays = {}
        try:
            for name, dt, shape, b in tensors:
                arrays[name] = np.frombuffer(b, dtype=_NP.get(dt, np.uint8)).reshape(shape)
            meta = dict(meta, content_hash=content_hash(arrays))
        except (ValueError, TypeError):
            pass
    header: dict = {}
    if meta is not None:
        header["__metadata__"] = meta
    off = 0
    for name, dt, shape, b in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
    if raw_header:
        header.update(raw_header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


# -- mutations ----------------------------------------------------------------------------------

def _pick_value(r: random.Random):
    v = r.choice(INTERESTING)
    return copy.deepcopy(v)


def _edit_graph(g: dict, r: random.Random, tensor_names: list[str]) -> None:
    ops = g.get("ops") or []
    kind = r.randrange(16)
    if not ops:
        g["ops"] = _pick_value(r)
        return
    i = r.randrange(len(ops))
    op = ops[i]
    if kind == 0:
        op["type"] = r.choice(OP_TYPES)
    elif kind in (1, 2, 3, 4):  # attribute value (most common: sizes, strides, channels)
        attrs = op.setdefault("attrs", {})
        keys = list(attrs) or ATTR_NAMES
        key = r.choice(keys) if r.random() < 0.85 else r.choice(ATTR_NAMES)
        if r.random() < 0.3 and isinstance(attrs.get(key), (int, float)) and not isinstance(attrs.get(key), bool):
            attrs[key] = attrs[key] + r.choice([-2, -1, 1, 2, 64])
        elif r.random() < 0.3 and isinstance(attrs.get(key), list) and attrs[key]:
            attrs[key][r.randrange(len(attrs[key]))] = _pick_value(r)
        else:
            attrs[key] = _pick_value(r)
    elif kind == 5:  # drop an attribute / attrs / params
        target = r.choice(["attrs", "params", "inputs", "outputs", "type", "name"])
        if target in ("attrs", "params") and op.get(target) and r.random() < 0.7:
            op[target].pop(r.choice(list(op[target])))
        else:
            op.pop(target, None)
    elif kind == 6:  # undefined, later (cyclic) or self reference
        later = [o["outputs"][0] for o in ops[i:] if isinstance(o.get("outputs"), list) and o["outputs"]]
        name = r.choice(later + ["nope", "", "x"])
        if op.get("inputs"):
            op["inputs"][r.randrange(len(op["inputs"]))] = name
        else:
            op["inputs"] = [name]
    elif kind == 7:  # outputs: duplicate, several, input name
        choices = [[ops[r.randrange(len(ops))]["outputs"][0] if ops[0].get("outputs") else "x"],
                   ["x"], [], ["a", "b"], [5]]
        op["outputs"] = r.choice(choices)
    elif kind == 8:
        del ops[i]
    elif kind == 9:
        ops.insert(r.randrange(len(ops) + 1), copy.deepcopy(op))
    elif kind == 10:
        j = r.randrange(len(ops))
        ops[i], ops[j] = ops[j], ops[i]
    elif kind == 11:  # params: point at another tensor, a missing one, or a wrong type
        params = op.setdefault("params", {})
        role = r.choice(list(params) or ["weight", "bias", "shift", "weight_bits", "mean"])
        params[role] = r.choice(tensor_names + ["missing", 3, None])
    elif kind == 12:  # graph input
        inp = g["inputs"][0] if g.get("inputs") else {}
        if r.random() < 0.7 and isinstance(inp.get("shape"), list) and inp["shape"]:
            inp["shape"][r.randrange(len(inp["shape"]))] = _pick_value(r)
        else:
            inp["shape"] = r.choice([[], [3, 8], [3, 8, 8, 1], [2**20, 2**20, 2**20], [1, 2**20, 2**20],
                                     [3, 1, 1], [3, 2**20, 1]])
    elif kind == 13:
        g["outputs"] = r.choice([[], ["x"], ["nope"], [ops[0]["outputs"][0]] if ops[0].get("outputs") else [],
                                 [ops[-1]["outputs"][0], "x"] if ops[-1].get("outputs") else [], "out", [1]])
    elif kind == 14:
        g[r.choice(["inputs", "outputs", "ops"])] = _pick_value(r)
    else:  # the input of one op becomes the graph input or some earlier output
        names = ["x"] + [o["outputs"][0] for o in ops[:i] if isinstance(o.get("outputs"), list) and o["outputs"]]
        if op.get("inputs"):
            op["inputs"] = [r.choice(names) for _ in op["inputs"]]


def _safe_edit_graph(g: dict, r: random.Random, tensor_names: list[str]) -> None:
    # A previous edit may have broken the structure the next one expects: then skip it.
    try:
        _edit_graph(g, r, tensor_names)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        pass


def _edit_tensors(tensors: list, r: random.Random) -> tuple[list, bool]:
    """Returns (tensors, rehash)."""
    tensors = list(tensors)
    i = r.randrange(len(tensors))
    name, dt, shape, b = tensors[i]
    kind = r.randrange(11)
    if kind == 0:  # swap the data of two tensors of the same byte size, or swap names
        same = [j for j, t in enumerate(tensors) if len(t[3]) == len(b) and j != i]
        if same:
            j = r.choice(same)
            tensors[i], tensors[j] = (name, dt, shape, tensors[j][3]), (tensors[j][0], tensors[j][1], tensors[j][2], b)
        else:
            j = r.randrange(len(tensors))
            tensors[i] = (tensors[j][0], dt, shape, b)
            tensors[j] = (name,) + tensors[j][1:]
    elif kind == 1:  # relabel the dtype
        tensors[i] = (name, r.choice(["F32", "U64", "I8", "F16", "BF16", "I32", "F64", "BOOL", "U8"]), shape, b)
    elif kind == 2:  # reshape keeping bytes
        n = int(np.prod(shape)) if shape else 1
        tensors[i] = (name, dt, r.choice([[n], [1, n], [n, 1, 1, 1], shape[::-1], shape + [1], [0] + shape]), b)
    elif kind == 3 and dt == "F32":  # non-finite and extreme floats
        a = np.frombuffer(b, "<f4").copy()
        if a.size:
            a[r.randrange(a.size)] = r.choice([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, 0.0, -1.0])
        tensors[i] = (name, dt, shape, a.tobytes())
    elif kind == 4 and dt == "I8":  # shift exponents at the extremes
        a = np.frombuffer(b, "i1").copy()
        a[r.randrange(a.size)] = r.choice([-128, 127, -101, 101, 100, -100, 30, -30])
        tensors[i] = (name, dt, shape, a.tobytes())
    elif kind == 5 and dt == "U64":  # set bits (tail bits beyond Cin included)
        a = np.frombuffer(b, "<u8").copy()
        a[r.randrange(a.size)] ^= np.uint64(1) << np.uint64(r.randrange(64))
        tensors[i] = (name, dt, shape, a.tobytes())
    elif kind == 6:
        del tensors[i]
    elif kind == 7:
        tensors.append((r.choice(["extra", name + ".x", ""]), "F32", [2], b"\0" * 8))
    elif kind == 8:  # truncate or extend one tensor's data and shape together
        item = _NP[dt].itemsize if dt in _NP else 1
        n = len(b) // item
        m = r.choice([0, 1, max(0, n - 1), n + 1, 2 * n])
        tensors[i] = (name, dt, [m], (b * 3)[:m * item])
    elif kind == 9:  # random bytes in one tensor, rehashed (a different but well-formed model)
        a = bytearray(b)
        for _ in range(r.randrange(1, 8)):
            if a:
                a[r.randrange(len(a))] = r.randrange(256)
        tensors[i] = (name, dt, shape, bytes(a))
    else:  # zero-size shapes
        tensors[i] = (name, dt, [0] * max(1, len(shape)), b"")
    return tensors, True


def _edit_meta(meta: dict, r: random.Random) -> dict:
    meta = dict(meta)
    kind = r.randrange(9)
    key = r.choice(["format", "format_version", "graph", "preprocess", "content_hash", "classes", "producer"])
    if kind == 0:
        meta.pop(key, None)
    elif kind == 1:
        meta["format"] = r.choice(["irb2", "", "IRB", "safetensors"])
    elif kind == 2:
        meta["format_version"] = r.choice(["2", "0", "01", "1.0", " 1", "", "-1", "99999999999999999999"])
    elif kind == 3:
        meta[key] = r.choice(["", "{", "null", "[]", "{}", "1", '"x"', "NaN", "[" * 50000])
    elif kind == 4:
        pre = json.loads(meta.get("preprocess", "{}"))
        pre[r.choice(["input_size", "resize", "mean", "std", "scale", "channel_order"])] = _pick_value(r)
        meta["preprocess"] = json.dumps(pre)
    elif kind == 5:
        meta["classes"] = json.dumps(r.choice([["a"], [1, 2], {"a": 1}, [None] * 10, ["x"] * 11, []]))
    elif kind == 6:
        meta["producer"] = json.dumps(_pick_value(r))
    elif kind == 7:
        meta["content_hash"] = r.choice(["", "0" * 64, meta.get("content_hash", "")[::-1]])
    else:
        meta[r.choice(["extra", "__metadata__", "graph "])] = "1"
    return meta


# -- structure-aware mutations ------------------------------------------------------------------

_WINDOW_OPS = ("conv2d", "bconv2d", "max_pool2d", "avg_pool2d")
_CONV_OPS = ("conv2d", "bconv2d")


def _param_shapes(op: dict) -> dict:
    """role -> (dtype, shape) the engine expects for op's parameters, from its attributes."""
    a = op.get("attrs", {})
    ty = op.get("type")
    if ty in _CONV_OPS:
        cin, cout = int(a["in_channels"]), int(a["out_channels"])
        kh, kw = (int(v) for v in a["kernel_size"])
        shapes = {"bias": ("F32", [cout])}
        if ty == "conv2d":
            shapes["weight"] = ("F32", [cout, cin, kh, kw])
        else:
            shapes["weight_bits"] = ("U64", [cout, kh, kw, (cin + 63) // 64])
            shapes["shift"] = ("I8", [cout])
        return shapes
    if ty == "linear":
        i, o = int(a["in_features"]), int(a["out_features"])
        return {"weight": ("F32", [o, i]), "bias": ("F32", [o])}
    return {}


def _refit(op: dict, tensors: list, r: random.Random, max_bytes: int = 1 << 24) -> list:
    """Replaces the tensors op uses with data of the shapes its attributes now need (sign bits
    within Cin, shifts in range, small floats), so the file stays consistent. Tensors over
    max_bytes are left alone: the file is then refused for a shape mismatch."""
    shapes = _param_shapes(op)
    by_name = {t[0]: i for i, t in enumerate(tensors)}
    out = list(tensors)
    for role, (dt, shape) in shapes.items():
        name = op.get("params", {}).get(role)
        if name not in by_name:
            continue
        n = int(np.prod(shape))
        if n * _NP[dt].itemsize > max_bytes:
            continue
        rng = np.random.default_rng(r.randrange(2**32))
        if dt == "F32":
            data = rng.standard_normal(n).astype("<f4")
        elif dt == "I8":
            data = rng.integers(-3, 3, n).astype("i1")
        else:
            cin = int(op["attrs"]["in_channels"])
            data = rng.integers(0, 2**63, n, dtype=np.uint64).astype("<u8")
            if cin % 64:
                data.reshape(-1, shape[-1])[:, -1] &= np.uint64((1 << (cin % 64)) - 1)
        out[by_name[name]] = (name, dt, shape, data.tobytes())
    return out


def _inflate(meta: dict, tensors: list, r: random.Random) -> tuple[str, bytes]:
    """Spatial sizes, kernel sizes or channel counts blown up, the rest of the file kept
    consistent where the engine's checks allow (weights refitted, preprocess input_size
    matching the graph input)."""
    g = json.loads(meta["graph"])
    pre = json.loads(meta["preprocess"])
    ops = g["ops"]
    what = r.choice(["spatial", "kernel", "channels"])
    if what == "spatial":
        c = g["inputs"][0]["shape"][0]
        side = lambda: r.choice([1, 2, 33, 257, 1024, 4096, 16384, 65536, 2**20])  # noqa: E731
        h, w = side(), side()
        if r.random() < 0.3:
            h, w = r.choice([(16384, 16384), (1, 2**20), (2**20, 1), (8192, 8192), (2048, 2048)])
        g["inputs"][0]["shape"] = [c, h, w]
        pre["input_size"] = [c, h, w]
        pre.pop("resize", None)
    else:
        cands = [op for op in ops if op.get("type") in (_WINDOW_OPS if what == "kernel" else _CONV_OPS + ("linear",))]
        op = r.choice(cands)
        a = op.setdefault("attrs", {})
        if what == "kernel":
            k = r.choice([2, 5, 15, 31, 63, 255, 1023, 2**16])
            kk = [k, k] if r.random() < 0.7 else [k, 1]
            a["kernel_size"] = kk
            a["padding"] = [kk[0] // 2, kk[1] // 2] if r.random() < 0.6 else r.choice([[0, 0], [k, k], [2**20, 0]])
            if op["type"] in _CONV_OPS and r.random() < 0.5:  # a map large enough for the window
                c = g["inputs"][0]["shape"][0]
                size = r.choice([256, 1024, 4096])
                g["inputs"][0]["shape"] = [c, size, size]
                pre["input_size"] = [c, size, size]
                pre.pop("resize", None)
        else:
            n = r.choice([64, 65, 1000, 4096, 2**16, 2**20])
            if op["type"] == "linear":
                a["out_features"] = n
            elif r.random() < 0.5:
                a["out_channels"] = n
            else:
                a["in_channels"] = n
        tensors = _refit(op, tensors, r)
    return what, join(dict(meta, graph=json.dumps(g), preprocess=json.dumps(pre)), tensors, rehash=True)


_SENTINEL = "\u0000extreme\u0000"


def _extreme_literal(r: random.Random) -> tuple[str, str]:
    depth = r.choice([64, 999, 5000, 100000])
    return r.choice([
        ("huge-int", r.choice(["", "-"]) + "9" * r.choice([4300, 4301, 5000, 100000])),
        ("big-int", str(r.choice([2**53 + 1, 2**63, 2**64, 10**30, -(2**63) - 1]))),
        ("1e308", r.choice(["1e308", "-1e308", "1.7976931348623157e308"])),
        ("float-overflow", r.choice(["1e309", "-1e400", "1" + "0" * 400 + ".0"])),
        ("tiny-float", r.choice(["5e-324", "1e-400", "-0.0"])),
        ("nan-inf", r.choice(["NaN", "Infinity", "-Infinity"])),
        ("deep-nesting", r.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])),
    ])


def _leaf_paths(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaf_paths(v, path + (k,))
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from _leaf_paths(v, path + (i,))
    else:
        yield path


def _dict_paths(obj, path=()):
    if isinstance(obj, dict):
        if obj:
            yield path
        for k, v in obj.items():
            yield from _dict_paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _dict_paths(v, path + (i,))


def _at(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _extreme_text(obj, r: random.Random) -> tuple[str, str]:
    """obj as JSON text with one value replaced by an extreme literal, or one object given a
    duplicate key (with a different value)."""
    if r.random() < 0.25 and list(_dict_paths(obj)):
        path = r.choice(list(_dict_paths(obj)))
        d = _at(obj, path)
        key = r.choice(list(d))
        text_of_d = json.dumps(d)
        dup = json.dumps(r.choice([0, 2**20, "x", [1, 2], None, {"a": 1}]))
        new_d = "{" + json.dumps(key) + ": " + dup + ", " + text_of_d[1:]
        if not path:
            return "duplicate-key", new_d
        parent = _at(obj, path[:-1])
        saved = parent[path[-1]]
        parent[path[-1]] = _SENTINEL
        text = json.dumps(obj)
        parent[path[-1]] = saved
        return "duplicate-key", text.replace(json.dumps(_SENTINEL), new_d, 1)
    paths = [p for p in _leaf_paths(obj) if p]
    path = r.choice(paths)
    parent = _at(obj, path[:-1])
    parent[path[-1]] = _SENTINEL
    kind, literal = _extreme_literal(r)
    return kind, json.dumps(obj).replace(json.dumps(_SENTINEL), literal, 1)


def _json_extreme(seed: bytes, meta: dict, tensors: list, r: random.Random) -> tuple[str, bytes]:
    target = r.choice(["graph", "graph", "preprocess", "producer", "header"])
    if target == "header":
        (n,) = struct.unpack("<Q", seed[:8])
        header = json.loads(seed[8:8 + n])
        kind, text = _extreme_text(header, r)
        h = text.encode()
        h += b" " * (-len(h) % 8)
        return kind, struct.pack("<Q", len(h)) + h + seed[8 + n:]
    value = json.loads(meta.get(target, "{}"))
    if not value:
        value = {"name": "fuzz"}
    kind, text = _extreme_text(value, r)
    return kind, join(dict(meta, **{target: text}), tensors)


def mutation_kind(case: int) -> str:
    """The name of the mutation `mutate(seed, case)` applies (for per-kind counts)."""
    kind = random.Random(case).randrange(130)
    for limit, name in ((12, "bit-flip"), (22, "header-bytes"), (30, "truncate"), (33, "header-length"),
                        (63, "graph-edit"), (83, "tensor-edit"), (93, "metadata-edit"), (100, "raw-header"),
                        (115, "inflate"), (130, "json-extreme")):
        if kind < limit:
            return name
    raise AssertionError(kind)


def mutate(seed: bytes, case: int) -> bytes:
    """One hostile variant of `seed`, deterministic in `case`."""
    return mutate_named(seed, case)[1]


def mutate_named(seed: bytes, case: int) -> tuple[str, bytes]:
    """(the mutation's name, one hostile variant of `seed`), deterministic in `case`; the
    structure-aware kinds say what they did (e.g. 'inflate:kernel', 'json-extreme:nan-inf')."""
    out = _mutate(seed, case)
    if isinstance(out, tuple):
        return f"{mutation_kind(case)}:{out[0]}", out[1]
    return mutation_kind(case), out


def _mutate(seed: bytes, case: int) -> bytes | tuple[str, bytes]:
    r = random.Random(case)
    meta, raw, tensors = split(seed)
    kind = r.randrange(130)
    if kind >= 115:
        return _json_extreme(seed, meta, tensors, r)
    if kind >= 100:
        return _inflate(meta, tensors, r)
    if kind < 12:  # bit flips anywhere
        a = bytearray(seed)
        for _ in range(r.choice([1, 1, 2, 4, 16])):
            a[r.randrange(len(a))] ^= 1 << r.randrange(8)
        return bytes(a)
    if kind < 22:  # bit flips / byte splices in the header only
        (n,) = struct.unpack("<Q", seed[:8])
        a = bytearray(seed)
        for _ in range(r.choice([1, 2, 3])):
            p = 8 + r.randrange(n)
            if r.random() < 0.5:
                a[p] ^= 1 << r.randrange(8)
            else:
                a[p] = ord(r.choice('{}[]",:0123456789-e.tfn \\'))
        return bytes(a)
    if kind < 30:  # truncations
        return seed[:r.choice([0, 1, 7, 8, 9, r.randrange(len(seed)), len(seed) - 1, len(seed) - 8])]
    if kind < 33:  # header length field
        (n,) = struct.unpack("<Q", seed[:8])
        new = r.choice([0, 1, n - 1, n + 1, n + 8, 2**63, 2**64 - 1, 2**26, len(seed)])
        return struct.pack("<Q", new) + seed[8:]
    if kind < 63:  # graph JSON edits; tensors untouched, so the hash stays valid
        g = json.loads(meta["graph"])
        names = [t[0] for t in tensors]
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            _safe_edit_graph(g, r, names)
        return join(dict(meta, graph=json.dumps(g)), tensors)
    if kind < 83:  # tensor edits with the hash recomputed, so deeper checks are reached
        tensors, rehash = _edit_tensors(tensors, r)
        if r.random() < 0.2:
            g = json.loads(meta["graph"])
            _safe_edit_graph(g, r, [t[0] for t in tensors])
            meta = dict(meta, graph=json.dumps(g))
        return join(meta, tensors, rehash=rehash)
    if kind < 93:
        return join(_edit_meta(meta, r), tensors)
    # raw header entries: offsets, dtypes, shapes that disagree with the data
    name = r.choice(tensors)[0]
    entry = dict(raw[name])
    field = r.choice(["data_offsets", "shape", "dtype"])
    entry[field] = r.choice([[0, 2**64], [-8, 0], [0, 0], [8, 4], [0, 1], [2**31, 2**31 + 8], "x", None,
                             [2**31, 2**31], [0, 2**30, 2**30], [1.5]])
    return join(meta, tensors, raw_header={name: entry, **({"junk": 1} if r.random() < 0.2 else {})})
