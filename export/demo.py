"""The whole job in one command: train a binary ResNet-20 on the built-in digits data (or reuse
the checkpoint already in --out-dir), convert it to .irb, and print one report comparing the
PyTorch model with the engine on the test split: accuracy (also from PNG files), agreement,
speed, size. Minutes on 2 cores, nearly all of it training (each phase prints when it starts
and how long it took).

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
from irnet_infer.preprocess_defaults import digits_preprocess

from . import train
from .convert import convert, load_model
from .float_twin import float_twin
from .reference import reference_forward

DEMO_ARCH, DEMO_DATA = "resnet20", "digits"
PHASES = 4


def _parser():
    p = argparse.ArgumentParser(prog="python -m export.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", default=os.path.join("runs", "demo"))
    # 20 epochs reach ~97-99% on digits in a few minutes on 2 cores; more helps little.
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    p.add_argument("--timing-images", type=int, default=100,
                   help="images timed one at a time on each side")
    p.add_argument("--seed", type=int, default=0)
    return p


class Phases:
    """Prints `[i/N] what ...` when a phase starts and its duration when the next one does, so
    a log never goes silent for long and says where the time went."""

    def __init__(self, total):
        self.total, self.index, self.started = total, 0, None

    def start(self, what):
        self.done()
        self.index += 1
        self.started = time.time()
        print(f"[{self.index}/{self.total}] {what} ...", flush=True)

    def done(self):
        if self.started is not None:
            print(f"      done in {time.time() - self.started:.1f}s", flush=True)
            self.started = None


def _reusable(path):
    """A checkpoint from an earlier demo run (same arch, data and preprocessing, with a test
    accuracy from a held-out validation split), else None."""
    if not os.path.isfile(path):
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None  # unreadable: train again rather than fail
    opts = ckpt.get("options") or {}
    pre = ckpt.get("preprocess") or {}
    if (ckpt.get("arch") != DEMO_ARCH or opts.get("data") != DEMO_DATA or "test_accuracy" not in ckpt
            or pre != digits_preprocess(pre.get("input_size", (3, 32, 32)))):
        return None
    return ckpt


def _top1(logits, y):
    return float((np.asarray(logits).argmax(1) == y).mean())


def png_accuracy(engine, images, labels, directory):
    """Top-1 of the engine on the test digits written as ordinary 8-bit grayscale PNG files
    and read back by path: what a user with a picture of a digit gets."""
    from PIL import Image
    os.makedirs(directory, exist_ok=True)
    correct = 0
    for i, (image, label) in enumerate(zip(images, labels)):
        path = os.path.join(directory, f"{i:04d}_{label}.png")
        Image.fromarray(image[:, :, 0], mode="L").save(path)
        correct += int(engine.predict(path).argmax() == label)
    return correct / len(labels)


def time_interleaved(contenders, x, n, rounds=5, on_round=None):
    """{name: (median ms, [per-round median ms])} at batch 1. Every image is run by every
    contender back to back, in an order that rotates, so all see the same machine load; the
    first few runs are warm-up and not counted. `contenders` maps name -> callable(x1);
    `on_round(r, rounds)` is called as each round of n/rounds images ends."""
    names = list(contenders)
    times = {name: [] for name in names}
    n = max(rounds, min(n, len(x)))
    ends = {int(e) - 1 for e in np.linspace(0, n, rounds + 1)[1:]}
    for i in range(-5, n):
        xi = x[i % len(x)][None]
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            t0 = time.perf_counter()
            contenders[name](xi)
            dt = (time.perf_counter() - t0) * 1e3
            if i >= 0:
                times[name].append(dt)
        if on_round is not None and i in ends:
            on_round(sorted(ends).index(i) + 1, rounds)
    out = {}
    for name, t in times.items():
        per_round = [float(np.median(part)) for part in np.array_split(np.asarray(t), rounds)]
        out[name] = (float(np.median(t)), per_round)
    return out


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
    phases = Phases(PHASES)

    ckpt = None if args.retrain else _reusable(pth)
    if ckpt is None:
        phases.start(f"training binary {DEMO_ARCH} on {DEMO_DATA}, {args.epochs} epochs "
                     f"(one line per epoch)")
        for stale in (pth, pth + ".last"):  # a fresh run must not resume or keep an old best
            if os.path.exists(stale):
                os.remove(stale)
        train.run(train._parser().parse_args([
            "--arch", DEMO_ARCH, "--data", DEMO_DATA, "--epochs", str(args.epochs),
            "--out", pth, "--threads", str(threads), "--seed", str(args.seed)]))
        ckpt = torch.load(pth, map_location="cpu", weights_only=True)
        trained = f"trained {args.epochs} epochs in {time.time() - t_start:.0f}s"
    else:
        phases.start(f"reusing {pth} (--retrain to train again)")
        trained = f"reused {pth}"
    epochs = (ckpt.get("options") or {}).get("epochs", "?")
    kept = (f"kept epoch {ckpt['epoch'] + 1} of {epochs}, picked on a validation split "
            f"(val top-1 {ckpt['accuracy']:.2%})")

    phases.start("converting to .irb")
    t_convert = time.time()
    convert(pth, irb)
    convert_s = time.time() - t_convert

    phases.start("accuracy on the test images: PyTorch, reference, engine, engine from PNG files")
    model, _, input_size, _, _ = load_model(pth)
    model.eval()
    data = datasets.load_digits_split(input_size)
    x, y = data["x_test"], data["y_test"]
    xt = torch.from_numpy(x)
    with torch.no_grad():
        plain = model(xt).numpy()  # plain eval mode: torch.sign, as trained
    reference = reference_forward(model, xt).numpy()  # deployment semantics
    engine = Model(irb, num_threads=threads)
    got = engine.predict(x)
    png_dir = os.path.join(args.out_dir, "test_png")
    png_top1 = png_accuracy(engine, data["images_test"], y, png_dir)

    phases.start(f"timing batch 1, {threads} thread(s): IR-Net model, its float twin, engine, interleaved")
    twin = float_twin(model)
    with torch.no_grad():
        timed = time_interleaved({
            "irnet": lambda xi: model(torch.from_numpy(xi)),
            "twin": lambda xi: twin(torch.from_numpy(xi)),
            "engine": engine.predict,
        }, x, args.timing_images,
            on_round=lambda r, total: print(f"      round {r}/{total}", flush=True))
    phases.done()
    fastest = min(("irnet", "twin"), key=lambda k: timed[k][0])
    label = {"irnet": "IR-Net model, eval()", "twin": "float twin (plain convs)"}
    engine_ms, engine_rounds = timed["engine"]
    torch_ms, torch_rounds = timed[fastest]
    ratios = [min(timed["irnet"][1][r], timed["twin"][1][r]) / engine_rounds[r]
              for r in range(len(engine_rounds))]

    def speed_line(name, text):
        ms, per_round = timed[name]
        return f"    {text:<34} {ms:9.3f} ms/image  (rounds {min(per_round):.3f}-{max(per_round):.3f})"

    irb_bytes, f32 = os.path.getsize(irb), float32_bytes(model)
    n_timed = max(5, min(args.timing_images, len(x)))
    lines = [
        "",
        f"irnet-infer demo: binary {DEMO_ARCH} on {DEMO_DATA} "
        f"({len(data['y_train'])} train+val / {len(y)} test images, input {list(input_size)})",
        f"  model            {trained}; {kept}; converted in {convert_s:.1f}s -> {irb}",
        f"  accuracy (top-1 on the {len(y)} test images, used neither for training nor to pick the epoch)",
        f"    PyTorch eval()                      {_top1(plain, y):7.2%}",
        f"    PyTorch reference (deploy sign)     {_top1(reference, y):7.2%}",
        f"    engine                              {_top1(got, y):7.2%}",
        f"    engine on 0..255 PNG files          {png_top1:7.2%}   ({png_dir}/)",
        f"    engine vs reference top-1 agreement {np.mean(got.argmax(1) == reference.argmax(1)):.2%}"
        f", max |logit diff| {np.abs(got - reference).max():.2e}",
        f"  speed (batch 1, {threads} thread(s), median of {n_timed} images each, interleaved; "
        f"range of 5 round medians)",
        speed_line("irnet", "PyTorch " + label["irnet"]),
        speed_line("twin", "PyTorch " + label["twin"]),
        speed_line("engine", f"engine ({engine.isa})"),
        f"    engine vs the faster PyTorch ({label[fastest]}): {torch_ms / engine_ms:.1f}x "
        f"(rounds {min(ratios):.1f}x-{max(ratios):.1f}x)",
    ]
    if max(ratios) > 1.5 * min(ratios):
        lines.append("    rounds differ by more than 1.5x: the machine is busy and this ratio is not a stable"
                     " figure; rerun when it is idle, or see `pytest benchmarks --benchmark-only`")
    lines += [
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
