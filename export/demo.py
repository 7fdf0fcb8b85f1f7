"""The whole job in one command: train a binary ResNet-20 on the built-in digits data (or reuse
the checkpoint already in --out-dir), convert it to .irb, and print one report comparing the
PyTorch model with the engine on the held-out split: accuracy, agreement, speed, size.

    python -m export.demo [--out-dir runs/demo] [--epochs 20] [--threads N] [--retrain]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

from irnet_infer import Model, datasets
from irnet_infer.model import default_num_threads

from . import train
from .convert import convert, load_model
from .reference import reference_forward

DEMO_ARCH, DEMO_DATA = "resnet20", "digits"


def _parser():
    p = argparse.ArgumentParser(prog="python -m export.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", default=os.path.join("runs", "demo"))
    # 20 epochs reach ~97-99% on digits in about 2 minutes on 2 cores; more helps little.
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    p.add_argument("--timing-images", type=int, default=100,
                   help="images timed one at a time on each side")
    p.add_argument("--seed", type=int, default=0)
    return p


def _reusable(path):
    """A checkpoint from an earlier demo run (same arch and data), else None."""
    if not os.path.isfile(path):
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None  # unreadable: train again rather than fail
    opts = ckpt.get("options") or {}
    if ckpt.get("arch") != DEMO_ARCH or opts.get("data") != DEMO_DATA:
        return None
    return ckpt


def _top1(logits, y):
    return float((np.asarray(logits).argmax(1) == y).mean())


def time_side_by_side(torch_model, engine, x, n):
    """Median ms per image at batch 1 for torch and the engine, alternating image by image so
    both see the same machine load; the first few runs are warm-up and not counted."""
    torch_ms, engine_ms = [], []
    n = min(n, len(x))
    with torch.no_grad():
        for i in range(-5, n):
            xi = x[i % len(x)][None]
            ti = torch.from_numpy(xi)
            t0 = time.perf_counter()
            torch_model(ti)
            t1 = time.perf_counter()
            engine.predict(xi)
            t2 = time.perf_counter()
            if i >= 0:
                torch_ms.append((t1 - t0) * 1e3)
                engine_ms.append((t2 - t1) * 1e3)
    return float(np.median(torch_ms)), float(np.median(engine_ms))


def float32_bytes(model):
    """What the network takes stored as float32: every float tensor of its state_dict."""
    return 4 * sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())


def run(args):
    t_start = time.time()
    threads = args.threads or default_num_threads()
    torch.set_num_threads(threads)
    os.makedirs(args.out_dir, exist_ok=True)
    pth = os.path.join(args.out_dir, "model.pth")
    irb = os.path.join(args.out_dir, "model.irb")

    ckpt = None if args.retrain else _reusable(pth)
    if ckpt is None:
        for stale in (pth, pth + ".last"):  # a fresh run must not resume or keep an old best
            if os.path.exists(stale):
                os.remove(stale)
        train.run(train._parser().parse_args([
            "--arch", DEMO_ARCH, "--data", DEMO_DATA, "--epochs", str(args.epochs),
            "--out", pth, "--threads", str(threads), "--seed", str(args.seed)]))
        trained = f"trained {args.epochs} epochs in {time.time() - t_start:.0f}s"
    else:
        trained = f"reused {pth} (epoch {ckpt.get('epoch', -1) + 1})"
    t_convert = time.time()
    convert(pth, irb)
    convert_s = time.time() - t_convert

    model, _, input_size, pre, classes = load_model(pth)
    model.eval()
    data = datasets.load_digits_split(input_size)
    x, y = data["x_test"], data["y_test"]
    xt = torch.from_numpy(x)
    with torch.no_grad():
        plain = model(xt).numpy()  # plain eval mode: torch.sign, as trained
    reference = reference_forward(model, xt).numpy()  # deployment semantics
    engine = Model(irb, num_threads=threads)
    got = engine.predict(x)
    torch_ms, engine_ms = time_side_by_side(model, engine, x, args.timing_images)

    irb_bytes, f32 = os.path.getsize(irb), float32_bytes(model)
    lines = [
        f"irnet-infer demo: binary {DEMO_ARCH} on {DEMO_DATA} "
        f"({len(data['y_train'])} train / {len(y)} held-out images, input {list(input_size)})",
        f"  model            {trained}; converted in {convert_s:.1f}s -> {irb}",
        f"  accuracy (held-out top-1)",
        f"    PyTorch eval()               {_top1(plain, y):7.2%}",
        f"    PyTorch reference (deploy)   {_top1(reference, y):7.2%}",
        f"    engine                       {_top1(got, y):7.2%}",
        f"    engine vs reference top-1 agreement {np.mean(got.argmax(1) == reference.argmax(1)):.2%}"
        f", max |logit diff| {np.abs(got - reference).max():.2e}",
        f"  speed (batch 1, {threads} thread(s), median of {min(args.timing_images, len(x))}"
        f" images, side by side)",
        f"    PyTorch float model  {torch_ms:8.3f} ms/image",
        f"    engine ({engine.isa:<7})     {engine_ms:8.3f} ms/image   speedup {torch_ms / engine_ms:.1f}x",
        f"  size",
        f"    .irb file {irb_bytes / 1024:8.1f} KiB   float32 weights {f32 / 1024:8.1f} KiB"
        f"   ({f32 / irb_bytes:.1f}x smaller)",
        f"  wall time {time.time() - t_start:.0f}s",
    ]
    print("\n".join(lines), flush=True)
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
