"""`irnet-infer predict model.irb IMAGE...`: the top classes and their probabilities per image.

Images are preprocessed with the model file's own settings (resize, crop, normalize). A `.npy`
file holds either a float32 network input, (C, H, W) or (N, C, H, W), taken as is, or uint8
(H, W, C) / (N, H, W, C) images. Probabilities are the softmax of the logits, or their exp
when the network already ends in log_softmax (Model.classify). Every image is tried: results
print as they come, each failure prints one error line, and the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from irnet_infer.classify import class_name, ranked
from irnet_infer.model import isa_help
from irnet_infer.paths import describe_os_error, require_file
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
    p.add_argument("--isa", help=isa_help())
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _inputs(path: str):
    """(label, input for Model.predict) pairs for one IMAGE argument."""
    require_file(path, "image")
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


def _one_line(label: str, e: Exception) -> str:
    """`label: reason`, naming the file once (image readers already name it)."""
    msg = describe_os_error(e) if isinstance(e, OSError) else str(e)
    return msg if repr(label) in msg or label in msg else f"{label}: {msg}"


def predict(model, images, top=5, show_progress=True, on_result=None, on_error=None) -> list[dict]:
    """Classifies every image; one unreadable or unfit image does not stop the others.
    Returns [{"image", "top": [{"index", "class", "probability"}, ...]} or {"image", "error"}]
    in argument order; `on_result(dict)` / `on_error(dict)` are called as each one finishes."""
    results = []

    def failed(label, e):
        r = {"image": label, "error": _one_line(label, e)}
        results.append(r)
        if on_error:
            on_error(r)

    items = []
    for path in images:
        try:
            items += _inputs(path)
        except (ValueError, OSError) as e:
            items.append((path, e))
    with progress(len(items), show_progress and len(items) > 1) as bar:
        for label, x in items:
            bar.update(1)
            if isinstance(x, Exception):
                failed(label, x)
                continue
            try:
                p = model.probabilities(x)
            except (ValueError, TypeError, OSError, ImportError) as e:
                failed(label, e)
                continue
            row = np.atleast_2d(p)[0]
            r = {"image": label, "top": [
                {"index": int(i), "class": class_name(model.classes, int(i)), "probability": float(row[i])}
                for i in ranked(row, max(1, top))]}
            results.append(r)
            if on_result:
                on_result(r)
    return results


def _print_text(r):
    print(r["image"])
    width = max(len(t["class"]) for t in r["top"])
    for t in r["top"]:
        print(f"  {t['class']:<{width}}  {t['probability']:8.4%}")
    sys.stdout.flush()


def _print_error(r):
    print(f"error: {r['error']}", file=sys.stderr, flush=True)


def run(args):
    from irnet_infer.model import Model
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    model = Model(args.model, num_threads=args.threads, isa=args.isa)
    # Text results print as they come, so a bar would only interleave with them.
    results = predict(model, args.images, args.top, args.json and not args.no_progress,
                      on_result=None if args.json else _print_text, on_error=_print_error)
    if args.json:
        print(json.dumps(results, indent=2))
    failures = sum("error" in r for r in results)
    if failures:
        if len(results) > 1:
            print(f"error: {failures} of {len(results)} images failed", file=sys.stderr)
        return 1
    return 0
