"""`irnet-infer bench model.irb`: latency percentiles and images/s of a model on this machine.

Runs the network on a fixed random input of the model's shape (the float network input, so
image decoding is not counted), after a few warm-up runs. With --per-layer it also profiles
every engine step (fused ops count with the step that runs them) and prints its median time,
its share of the total and its GOPS (2 x MACs / time), so you see where the time goes.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from irnet_infer.model import isa_help
from irnet_infer.progress import progress

EPILOG = """examples:
  irnet-infer bench model.irb
  irnet-infer bench model.irb --threads 1 --batch 8
  irnet-infer bench model.irb --per-layer --isa avx2
  irnet-infer bench model.irb --seconds 10 --json > bench.json
"""


def add_parser(subparsers):
    p = subparsers.add_parser("bench", help="latency percentiles, images/s and a per-layer profile",
                              description=__doc__.split("\n\n")[1].replace("\n", " "),
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the .irb file")
    p.add_argument("--threads", type=int, help="engine threads (default: physical cores)")
    p.add_argument("--batch", type=int, default=1, help="images per run (default 1)")
    p.add_argument("--isa", help=isa_help())
    p.add_argument("--per-layer", action="store_true", help="also time every engine step")
    p.add_argument("--iterations", type=int, help="timed runs (default: runs until --seconds of them, at least 10)")
    p.add_argument("--seconds", type=float, default=2.0, help="time budget for the timed runs (default 2)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


MIN_ITERATIONS = 10
MAX_ITERATIONS = 100_000


def latency(model, x, iterations=None, seconds=2.0, show_progress=True, desc="runs"):
    """Seconds of each timed predict() call: exactly `iterations` calls when given, else calls
    until `seconds` of them have run (at least MIN_ITERATIONS, at most MAX_ITERATIONS). The
    budget is checked against the clock as the runs go, not estimated from the warm-up, whose
    first runs are slower and made the estimate fall short."""
    times = []
    spent = 0.0
    with progress(iterations, show_progress, unit="run", desc=desc) as bar:
        while True:
            if iterations is not None:
                if len(times) >= iterations:
                    break
            elif (spent >= seconds and len(times) >= MIN_ITERATIONS) or len(times) >= MAX_ITERATIONS:
                break
            t0 = time.perf_counter()
            model.predict(x)
            dt = time.perf_counter() - t0
            times.append(dt)
            spent += dt
            bar.update(1)
    return np.asarray(times)


def per_layer(model, x, repeats, show_progress=True):
    """One dict per engine step with median seconds, share of the total and GOPS."""
    runs = []
    with progress(repeats, show_progress, unit="run", desc="profile") as bar:
        for _ in range(repeats):
            runs.append(model.profile(x))
            bar.update(1)
    batch = x.shape[0]
    medians = np.median(np.array([[s["seconds"] for s in r] for r in runs]), axis=0)
    total = float(medians.sum())
    rows = []
    for step, sec in zip(runs[0], medians):
        macs = (step["binary_macs"] + step["float_macs"]) * batch
        rows.append({"name": step["name"], "type": step["type"], "fused": list(step["fused"]),
                     "output_shape": list(step["output_shape"]), "binary_macs": step["binary_macs"],
                     "float_macs": step["float_macs"], "seconds": float(sec),
                     "share": float(sec) / total if total > 0 else 0.0,
                     "gops": 2 * macs / sec / 1e9 if sec > 0 and macs else None})
    return rows


def benchmark(model, batch=1, iterations=None, seconds=2.0, warmup=3, layers=False, show_progress=True):
    """The numbers `irnet-infer bench` prints, as a dict."""
    x = np.random.default_rng(0).standard_normal((batch,) + tuple(model.input_shape)).astype(np.float32)
    for _ in range(max(1, warmup)):
        model.predict(x)
    times = latency(model, x, iterations, seconds, show_progress)
    n = len(times)
    steps = model.steps()
    macs = sum(s["binary_macs"] + s["float_macs"] for s in steps)
    binary = sum(s["binary_macs"] for s in steps)
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    result = {
        "model": model.path, "arch": model.producer.get("arch"), "isa": model.isa,
        "threads": model.num_threads, "batch": batch, "input_shape": list(model.input_shape),
        "iterations": n, "warmup": warmup,
        "latency_ms": {"p50": p50 * 1e3, "p90": p90 * 1e3, "p99": p99 * 1e3,
                       "mean": float(times.mean()) * 1e3, "min": float(times.min()) * 1e3},
        "images_per_second": batch / float(times.mean()),
        "macs_per_image": macs, "binary_mac_share": binary / macs if macs else 0.0,
        "gops": 2 * macs * batch / p50 / 1e9 if p50 > 0 else None,
    }
    if layers:
        result["layers"] = per_layer(model, x, max(5, min(n, 50)), show_progress)
    return result


def format_result(r: dict) -> str:
    from irnet_infer.cli_info import format_table
    lat = r["latency_ms"]
    lines = [
        f"model: {r['model']} ({r['arch'] or '?'})   input: {r['batch']}x" + "x".join(map(str, r["input_shape"])),
        f"isa: {r['isa']}   threads: {r['threads']}   batch: {r['batch']}   runs: {r['iterations']} "
        f"(+{r['warmup']} warm-up)",
        f"latency ms:  p50 {lat['p50']:.3f}   p90 {lat['p90']:.3f}   p99 {lat['p99']:.3f}   "
        f"mean {lat['mean']:.3f}   min {lat['min']:.3f}",
        f"throughput:  {r['images_per_second']:,.1f} images/s   "
        f"{r['gops']:,.1f} GOPS at p50 ({r['macs_per_image'] / 1e6:,.1f} M MACs/image, "
        f"{r['binary_mac_share']:.1%} binary)",
    ]
    if "layers" in r:
        rows = []
        for s in r["layers"]:
            fused = f" +{len(s['fused'])}" if s["fused"] else ""
            kind = "binary" if s["binary_macs"] else ("float" if s["float_macs"] else "-")
            rows.append([s["name"], s["type"] + fused, "x".join(map(str, s["output_shape"])), kind,
                         f"{s['seconds'] * 1e3:.3f}", f"{s['share']:.1%}",
                         f"{s['gops']:,.1f}" if s["gops"] else ""])
        total = sum(s["seconds"] for s in r["layers"])
        rows.append(["total", "", "", "", f"{total * 1e3:.3f}", "100.0%", ""])
        lines += ["", "per layer (median of profiled runs; +N = ops fused into the step):",
                  format_table(["step", "type", "output", "compute", "ms", "share", "GOPS"], rows, "llllrrr")]
    return "\n".join(lines)


def run(args):
    from irnet_infer.model import Model
    from irnet_infer.paths import require_file
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    if args.iterations is not None and args.iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {args.iterations}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    require_file(args.model, "model file")
    model = Model(args.model, num_threads=args.threads, isa=args.isa)
    r = benchmark(model, args.batch, args.iterations, args.seconds, args.warmup, args.per_layer,
                  not args.no_progress)
    print(json.dumps(r, indent=2) if args.json else format_result(r))
    return 0
