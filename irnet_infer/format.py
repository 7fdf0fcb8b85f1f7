"""Read, write and check `.irb` model files (docs/FORMAT.md).

An `.irb` file is a safetensors file with irnet-infer metadata. The reader checks the file's
integrity before the engine sees it: header, metadata keys and version, graph structure, tensor
references, dtypes, finite values and the content hash. The engine then checks shapes and
attributes again as it plans, and its errors are raised as `IrbFormatError` too.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irnet_infer.paths import require_file

FORMAT = "irb"
FORMAT_VERSION = 1

# The header of a model is small; a larger claim is a corrupt or hostile file.
MAX_HEADER_BYTES = 64 * 1024 * 1024
# Largest tensor (elements per sample) a graph may declare, its input or any op's output: 2^28
# floats, 1 GiB per sample (the engine refuses larger outputs with the same limit).
MAX_ACTIVATION_ELEMENTS = 2**28
# Ops in one graph: ResNet-34 has about 150. Planning passes compare ops pairwise, so the cap
# keeps a load of a long graph to a fraction of a second (the engine checks the same number).
MAX_OPS = 4096

OP_TYPES = frozenset({
    "add", "avg_pool2d", "batch_norm", "bconv2d", "bwconv2d", "conv2d", "flatten", "global_avg_pool",
    "hardtanh", "linear", "log_softmax", "max_pool2d", "relu", "shortcut_a",
})

_DTYPES = {"F32": np.dtype("<f4"), "U64": np.dtype("<u8"), "I8": np.dtype("i1")}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


class IrbFormatError(ValueError):
    """The file is not a valid `.irb` model; the message names the problem."""


@dataclass
class IrbFile:
    graph: dict
    tensors: dict[str, np.ndarray]
    preprocess: dict
    classes: list[str] | None = None
    producer: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def content_hash(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(_DTYPE_NAMES.get(t.dtype, t.dtype.str).encode())
        h.update(json.dumps(list(t.shape)).encode())
        h.update(t.tobytes())
    return h.hexdigest()


def write_irb(path: str | os.PathLike, graph: dict, tensors: dict[str, np.ndarray], preprocess: dict,
              classes: list[str] | None = None, producer: dict | None = None) -> None:
    """Write a model file. Tensors must be float32, uint64 or int8 numpy arrays."""
    from safetensors.numpy import save

    clean = {}
    for name, t in tensors.items():
        t = np.ascontiguousarray(t)
        if t.dtype not in _DTYPE_NAMES:
            raise ValueError(f"tensor {name!r}: dtype {t.dtype} is not one of float32, uint64, int8")
        clean[name] = t
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "graph": json.dumps(graph),
        "preprocess": json.dumps(preprocess),
        "producer": json.dumps(producer or {}),
        "content_hash": content_hash(clean),
    }
    if classes is not None:
        metadata["classes"] = json.dumps(list(classes))
    validate(IrbFile(graph, clean, preprocess, classes, producer or {}))
    data = save(clean, metadata=metadata)
    # Written with open(), not safetensors' save_file (which creates files 0600), so the file
    # gets the umask's permissions like any other: a model shared with a service account works.
    with open(os.fspath(path), "wb") as f:
        f.write(data)


def read_irb(path: str | os.PathLike) -> IrbFile:
    """Read and check a model file. Missing or unreadable files raise the usual OSError
    (FileNotFoundError, IsADirectoryError, PermissionError); bad contents raise IrbFormatError."""
    path = require_file(path, "model file")
    with open(path, "rb") as f:
        data = f.read()
    return parse_irb(data, name=path)


def parse_irb(data: bytes, name: str = "<bytes>") -> IrbFile:
    if len(data) < 8:
        raise IrbFormatError(f"{name}: not a safetensors/.irb file (only {len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise IrbFormatError(f"{name}: not a safetensors/.irb file, or truncated "
                             f"(header claims {header_len} bytes, file has {len(data)})")
    header = _strict_json(data[8:8 + header_len], f"{name}: safetensors header")
    if not isinstance(header, dict):
        raise IrbFormatError(f"{name}: safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise IrbFormatError(f"{name}: no irnet-infer metadata (is this an .irb file?)")
    if meta.get("format") != FORMAT:
        raise IrbFormatError(f"{name}: metadata 'format' is {meta.get('format')!r}, expected 'irb'")
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        raise IrbFormatError(f"{name}: format_version {version!r} is not supported; this "
                             f"irnet-infer reads version {FORMAT_VERSION}")
    for key in ("graph", "preprocess", "content_hash"):
        if key not in meta:
            raise IrbFormatError(f"{name}: metadata key {key!r} is missing")

    tensors = _read_tensors(header, data[8 + header_len:], name)
    if content_hash(tensors) != meta["content_hash"]:
        raise IrbFormatError(f"{name}: content hash mismatch: the tensors were changed or corrupted")

    f = IrbFile(
        graph=_json(meta, "graph", name, dict),
        tensors=tensors,
        preprocess=_json(meta, "preprocess", name, dict),
        classes=_json(meta, "classes", name, list) if "classes" in meta else None,
        producer=_json(meta, "producer", name, dict) if "producer" in meta else {},
    )
    validate(f, name)
    return f


def _no_duplicate_keys(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {dup!r:.80}")
    return d


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e999 parses to inf
        raise ValueError(f"number {text:.40} is out of float range")
    return v


def _float_range_int(text: str) -> int:
    v = int(text)  # over 4,300 digits: Python's own ValueError
    # Beyond the double range an integer is a number most JSON readers cannot hold (irnet-run's
    # overflows): refused here too, so that both readers give the same verdict.
    if abs(v) > sys.float_info.max:
        raise ValueError(f"integer {text:.40}... is out of float range")
    return v


def _no_constant(text: str):
    raise ValueError(f"{text} is not a JSON number")


def _strict_json(text: bytes | str, what: str) -> Any:
    """JSON as RFC 8259 has it: no NaN/Infinity literals, no numbers beyond float range, no
    duplicate keys (which two readers could resolve differently). Whatever the parser raises,
    a too-long integer (ValueError), a decoding error or nesting past the recursion limit, is
    an IrbFormatError."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_float=_finite_float,
                          parse_int=_float_range_int, parse_constant=_no_constant)
    except RecursionError:
        raise IrbFormatError(f"{what} JSON is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, int digit limit, the hooks
        raise IrbFormatError(f"{what} is not valid JSON ({str(e)[:200]})") from None


def _json(meta: dict, key: str, name: str, kind: type) -> Any:
    value = _strict_json(meta[key], f"{name}: metadata {key!r}")
    if not isinstance(value, kind):
        raise IrbFormatError(f"{name}: metadata {key!r} must be a JSON {kind.__name__}")
    return value


def _read_tensors(header: dict, body: bytes, name: str) -> dict[str, np.ndarray]:
    tensors = {}
    spans = []
    for tname, info in header.items():
        where = f"{name}: tensor {tname!r}"
        if not isinstance(info, dict):
            raise IrbFormatError(f"{where}: header entry is not an object")
        dtype = _DTYPES.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
        if dtype is None:
            raise IrbFormatError(f"{where}: dtype {info.get('dtype')!r} is not one of F32, U64, I8")
        shape = info.get("shape")
        offsets = info.get("data_offsets")
        if (not isinstance(shape, list) or not all(type(d) is int and 0 <= d < 2**31 for d in shape)):
            raise IrbFormatError(f"{where}: shape {shape!r} is not a list of sizes")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= len(body)):
            raise IrbFormatError(f"{where}: data_offsets {offsets!r} are out of the file (truncated?)")
        count = 1
        for d in shape:
            count *= d
        if count * dtype.itemsize != offsets[1] - offsets[0]:
            raise IrbFormatError(f"{where}: shape {shape} needs {count * dtype.itemsize} bytes, "
                                 f"the file gives {offsets[1] - offsets[0]}")
        spans.append((offsets[0], offsets[1], tname))
        tensors[tname] = np.frombuffer(body, dtype=dtype, count=count, offset=offsets[0]).reshape(shape)
    spans.sort()
    for (b0, e0, n0), (b1, _e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise IrbFormatError(f"{name}: tensors {n0!r} and {n1!r} overlap in the file")
    return tensors


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


def pack_signs(w: np.ndarray) -> np.ndarray:
    """Binary weights (Cout, Cin, kh, kw) -> packed sign words U64 (Cout, kh, kw, ceil(Cin/64)).

    Bit i % 64 of word i // 64 along Cin is 1 where w < 0 (-1) and 0 where w >= 0 (+1), the
    deployment sign rule; unused tail bits are 0."""
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"binary weights must be (Cout, Cin, kh, kw), got shape {w.shape}")
    cout, cin, kh, kw = w.shape
    words = (cin + 63) // 64
    bits = np.zeros((cout, kh, kw, words * 64), dtype=np.uint64)
    bits[..., :cin] = (w < 0).transpose(0, 2, 3, 1)
    shifts = np.arange(64, dtype=np.uint64)
    return (bits.reshape(cout, kh, kw, words, 64) << shifts).sum(axis=-1, dtype=np.uint64)


def unpack_signs(packed: np.ndarray, cin: int) -> np.ndarray:
    """Inverse of `pack_signs`: U64 (Cout, kh, kw, words) -> float32 +/-1 (Cout, Cin, kh, kw)."""
    shifts = np.arange(64, dtype=np.uint64)
    bits = (packed[..., None] >> shifts) & np.uint64(1)
    bits = bits.reshape(*packed.shape[:3], -1)[..., :cin]
    return (1.0 - 2.0 * bits.astype(np.float32)).transpose(0, 3, 1, 2).copy()
