"""`irnet-infer info model.irb`: what is in a model file, layer by layer.

One row per graph op: type, input and output shape (per sample), whether it computes in binary
or float, its parameter count, the bytes it occupies in the file and its MACs; then the totals:
file size, the size of the same network stored as float32, the compression ratio, the share of
MACs that are binary, the format version and the producer. The shapes are the engine's, from
planning the network; nothing runs.
"""
from __future__ import annotations

import argparse
import json
import os

EPILOG = """examples:
  irnet-infer info model.irb
  irnet-infer info model.irb --json > info.json
  python -m irnet_infer info resnet18.irb
"""


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="layers, sizes, compression and MACs of a model file",
                              description=__doc__.split("\n\n")[1].replace("\n", " "),
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the .irb file")
    p.add_argument("--json", action="store_true", help="print the layers and totals as JSON")
    p.set_defaults(func=run)
    return p


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def layer_rows(f, shapes: dict) -> list[dict]:
    """One dict per op of an IrbFile: name, type, input/output shape, kind, params, bytes,
    float32_bytes (the same op stored in float32), binary_macs, float_macs. `shapes` holds the
    per-sample shape of every tensor, as the engine inferred them (Model.tensor_shapes)."""
    rows = []
    for op in f.graph["ops"]:
        t, a = op["type"], op.get("attrs", {})
        tensors = [f.tensors[n] for n in op.get("params", {}).values()]
        stored = sum(int(x.nbytes) for x in tensors)
        out = shapes[op["outputs"][0]]
        binary_macs = float_macs = 0
        if t in ("conv2d", "bconv2d", "bwconv2d"):
            kh, kw = _pair(a["kernel_size"])
            weights = int(a["out_channels"]) * int(a["in_channels"]) * kh * kw
            macs = weights * out[1] * out[2]
            params = weights + sum(int(x.size) for k, x in zip(op["params"], tensors)
                                   if k not in ("weight", "weight_bits", "shift"))
            if t in ("bconv2d", "bwconv2d"):
                # 1W/32A (bwconv2d) stores binary weights but multiplies float activations
                kind = "binary" if t == "bconv2d" else "binary-weight"
                binary_macs, float_macs = (macs, 0) if t == "bconv2d" else (0, macs)
                # float32 twin: the real-valued weight plus bias; the shift folds into the weight
                float32 = 4 * (weights + (int(f.tensors[op["params"]["bias"]].size)
                                          if "bias" in op["params"] else 0))
            else:
                kind, float_macs, float32 = "float", macs, stored
        elif t == "linear":
            params = sum(int(x.size) for x in tensors)
            kind, float_macs, float32 = "float", int(a["in_features"]) * int(a["out_features"]), stored
        else:
            params = sum(int(x.size) for x in tensors)
            kind, float32 = ("float" if tensors else "-"), stored
        rows.append({"name": op["name"], "type": t,
                     "input_shape": [list(shapes[i]) for i in op["inputs"]],
                     "output_shape": list(out), "kind": kind, "params": params, "bytes": stored,
                     "float32_bytes": float32, "binary_macs": binary_macs, "float_macs": float_macs})
    return rows


def model_info(path) -> dict:
    """{"layers": [...], "totals": {...}} for an .irb file; IrbFormatError on a bad file."""
    from irnet_infer.format import read_irb
    from irnet_infer.model import Model
    path = os.fspath(path)
    f = read_irb(path)
    # The engine plans the graph (one thread; nothing runs) and says what shape each op makes.
    rows = layer_rows(f, Model(path, num_threads=1).tensor_shapes())
    file_bytes = os.path.getsize(path)
    float32 = sum(r["float32_bytes"] for r in rows)
    binary = sum(r["binary_macs"] for r in rows)
    total_macs = binary + sum(r["float_macs"] for r in rows)
    totals = {
        "file_bytes": file_bytes,
        "param_bytes": sum(r["bytes"] for r in rows),
        "float32_bytes": float32,
        "compression": float32 / file_bytes if file_bytes else 0.0,
        "params": sum(r["params"] for r in rows),
        "binary_macs": binary,
        "total_macs": total_macs,
        "binary_mac_share": binary / total_macs if total_macs else 0.0,
        "format_version": f.format_version,
        "producer": f.producer,
        "input_shape": list(f.graph["inputs"][0]["shape"]),
        "classes": len(f.classes) if f.classes is not None else None,
        "ops": len(rows),
    }
    return {"model": path, "layers": rows, "totals": totals}


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _shape(s) -> str:
    return "x".join(str(d) for d in s)


def format_table(headers, rows, align=None) -> str:
    """A plain-text table; `align` is a string of 'l'/'r' per column."""
    align = align or "l" * len(headers)
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(r, widths, align)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def format_info(info: dict) -> str:
    rows = []
    for r in info["layers"]:
        macs = r["binary_macs"] + r["float_macs"]
        rows.append([r["name"], r["type"], ", ".join(_shape(s) for s in r["input_shape"]),
                     _shape(r["output_shape"]), r["kind"], f"{r['params']:,}" if r["params"] else "",
                     human_bytes(r["bytes"]) if r["bytes"] else "", f"{macs / 1e6:.1f}M" if macs else ""])
    table = format_table(["layer", "type", "input", "output", "compute", "params", "bytes", "MACs"],
                         rows, "llllrrrr")
    t = info["totals"]
    p = t["producer"] or {}
    producer = " ".join(str(p[k]) for k in ("name", "version") if k in p) or "unknown"
    extras = ", ".join(f"{k} {p[k]}" for k in ("arch", "torch") if k in p)
    lines = [
        f"model: {info['model']}",
        f"input: {_shape(t['input_shape'])}   classes: {t['classes'] if t['classes'] is not None else 'unnamed'}"
        f"   ops: {t['ops']}",
        "",
        table,
        "",
        f"parameters:        {t['params']:,}",
        f"file size:         {human_bytes(t['file_bytes'])} ({t['file_bytes']:,} bytes)",
        f"float32 size:      {human_bytes(t['float32_bytes'])} (the same network with float32 weights)",
        f"compression:       {t['compression']:.1f}x",
        f"MACs:              {t['total_macs'] / 1e6:,.1f} M, {t['binary_mac_share']:.1%} binary",
        f"format version:    {t['format_version']}",
        f"producer:          {producer}" + (f" ({extras})" if extras else ""),
    ]
    return "\n".join(lines)


def run(args):
    info = model_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0
