"""What an `.irb` model file holds (docs/FORMAT.md): its format name and version, the limits a
file must keep, the tensor dtypes, the parsed file (`IrbFile`), the error every bad file raises,
and the content hash that both the reader and the writer compute."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

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

# safetensors dtype names of the tensors a file may hold, and back.
DTYPES = {"F32": np.dtype("<f4"), "U64": np.dtype("<u8"), "I8": np.dtype("i1")}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


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
        h.update(DTYPE_NAMES.get(t.dtype, t.dtype.str).encode())
        h.update(json.dumps(list(t.shape)).encode())
        h.update(t.tobytes())
    return h.hexdigest()
