"""From network outputs to class probabilities and ranked classes (Model.classify and
`irnet-infer predict`). A network that ends in log_softmax already outputs log-probabilities,
so they are exponentiated; any other output is taken as logits and goes through softmax."""
from __future__ import annotations

import numpy as np


def ends_in_log_softmax(graph: dict) -> bool:
    """Whether the graph's output tensor is written by a log_softmax op."""
    out = graph["outputs"][0]
    return any(op["type"] == "log_softmax" and out in op["outputs"] for op in graph["ops"])


def probabilities(outputs: np.ndarray, log_softmax: bool) -> np.ndarray:
    """(N, C) float64 probabilities from (N, C) network outputs."""
    z = np.asarray(outputs, dtype=np.float64)
    if log_softmax:
        return np.exp(z)
    z = z - z.max(axis=1, keepdims=True)  # softmax is shift-invariant; this keeps exp finite
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_name(classes: list[str] | None, index: int) -> str:
    return classes[index] if classes else f"class {index}"


def ranked(p: np.ndarray, top: int) -> np.ndarray:
    """Indices of the `top` largest entries of one probability row, largest first (ties in
    index order)."""
    return np.argsort(-p, kind="stable")[:top]
