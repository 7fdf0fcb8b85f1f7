"""Reading `.irb` model files: the safetensors header and offsets, strict JSON metadata, the
format version, the tensors and their content hash; then the structure checks of
irb_validate.py. Every problem with the contents is an IrbFormatError naming it."""
from __future__ import annotations

import json
import math
import os
import struct
import sys
from typing import Any

import numpy as np

from irnet_infer.irb_spec import (DTYPES, FORMAT, FORMAT_VERSION, MAX_HEADER_BYTES, IrbFile,
                                  IrbFormatError, content_hash)
from irnet_infer.irb_validate import validate
from irnet_infer.paths import require_file


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
        dtype = DTYPES.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
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
