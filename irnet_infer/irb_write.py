"""Writing `.irb` model files: checked with the reader's own rules before anything is written."""
from __future__ import annotations

import json
import os

import numpy as np

from irnet_infer.irb_spec import DTYPE_NAMES, FORMAT, FORMAT_VERSION, IrbFile, content_hash
from irnet_infer.irb_validate import validate


def write_irb(path: str | os.PathLike, graph: dict, tensors: dict[str, np.ndarray], preprocess: dict,
              classes: list[str] | None = None, producer: dict | None = None) -> None:
    """Write a model file. Tensors must be float32, uint64 or int8 numpy arrays."""
    from safetensors.numpy import save

    clean = {}
    for name, t in tensors.items():
        t = np.ascontiguousarray(t)
        if t.dtype not in DTYPE_NAMES:
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
