"""`irnet-infer predict model.irb IMAGE...`: the top classes and their probabilities per image.

Images are preprocessed with the model file's own settings (resize, crop, normalize). A `.npy`
file holds either a float32 network input, (C, H, W) or (N, C, H, W), taken as is, or uint8
(H, W, C) / (N, H, W, C) images. Probabilities are the softmax of the logits, or their exp
when the network already ends in log_softmax.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from irnet_infer.progress import progress

EPILOG = """examples:
  irnet-infer predict model.irb cat.png dog.jpg
  irnet-infer predict model.irb photos/*.jpg --top 3
  irnet-infer predict model.irb batch.npy --json
"""


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="top classes and probabilities per image",
                              description=__doc__.split("\n\n")[1].replace("\n", " "),
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the .irb file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (or .npy arrays)")
    p.add_argument("--top", "-k", type=int, default=5, metavar="K", help="classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    p.add_argument("--threads", type=int, help="engine threads (default: physical cores)")
    p.add_argument("--isa", help="force a kernel set: avx512, avx2, neon or scalar")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def ends_in_log_softmax(graph: dict) -> bool:
    out = graph["outputs"][0]
    return any(op["type"] == "log_softmax" and out in op["outputs"] for op in graph["ops"])


def probabilities(logits: np.ndarray, log_softmax: bool) -> np.ndarray:
    """(N, C) float64 probabilities from the network output."""
    z = np.asarray(logits, dtype=np.float64)
    if log_softmax:
        return np.exp(z)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _inputs(path: str):
    """(label, input for Model.predict) pairs for one IMAGE argument."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"image {path!r} does not exist")
    if path.lower().endswith(".npy"):
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {path!r} as a .npy array: {e}") from None
        batched = (a.dtype == np.uint8 and a.ndim == 4) or (a.dtype.kind == "f" and a.ndim == 4)
        if batched:
            return [(f"{path}[{i}]", a[i]) for i in range(a.shape[0])]
        return [(path, a)]
    return [(path, path)]


def predict(model, images, top=5, show_progress=True) -> list[dict]:
    """[{"image", "top": [{"index", "class", "probability"}, ...]}] per image."""
    log_softmax = ends_in_log_softmax(model.graph)
    items = [item for path in images for item in _inputs(path)]
    results = []
    with progress(len(items), show_progress and len(items) > 1) as bar:
        for label, x in items:
            try:
                logits = model.predict(x)
            except TypeError as e:
                raise ValueError(f"{label}: {e}") from None
            except ValueError as e:
                raise ValueError(f"{label}: {e}") from None
            p = probabilities(np.atleast_2d(logits), log_softmax)[0]
            order = np.argsort(-p, kind="stable")[:max(1, top)]
            names = model.classes
            results.append({"image": label, "top": [
                {"index": int(i), "class": names[i] if names else f"class {int(i)}",
                 "probability": float(p[i])} for i in order]})
            bar.update(1)
    return results


def run(args):
    from irnet_infer.model import Model
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    for path in args.images:  # fail on a missing image before the model loads
        if not os.path.exists(path):
            raise FileNotFoundError(f"image {path!r} does not exist")
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"model file {args.model!r} does not exist")
    model = Model(args.model, num_threads=args.threads, isa=args.isa)
    results = predict(model, args.images, args.top, not args.no_progress)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(r["image"])
        width = max(len(t["class"]) for t in r["top"])
        for t in r["top"]:
            print(f"  {t['class']:<{width}}  {t['probability']:8.4%}")
    return 0
