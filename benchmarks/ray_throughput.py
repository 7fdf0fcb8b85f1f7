"""`python -m benchmarks.ray_throughput`: images/s of `irnet-infer eval` in one process against
the same evaluation on a local Ray Data (1 and 2 actors), on a generated JPEG image folder.

Rounds are interleaved (every configuration once per round) and the table gives medians, since
the machine may be shared. Rates are end to end: for Ray from the start of the run, so with the
actors' start-up (processes, imports, model load), with the time to the first result beside
it; for one-process eval reading, decoding, preprocessing and the engine (its own printed
images/s counts engine time only).
Needs the `ray` and `train` extras (torch makes the model).
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time

import numpy as np

# name -> (arch, input size, image side written to the folder)
MODELS = {"resnet20": ("resnet20", (3, 32, 32), 32), "resnet18": ("resnet18", (3, 224, 224), 256)}


def make_model(arch, size, path):
    import torch
    from export.convert import convert
    from export.models import create_model
    torch.manual_seed(0)
    convert(create_model(arch, input_size=size).eval(), path, arch=arch)


def make_folder(root, count, side, classes=10):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in range(classes):
        for sub in ("train", "val"):
            os.makedirs(os.path.join(root, sub, f"class{c}"), exist_ok=True)
    for i in range(count):
        # smooth image plus noise: JPEG sizes and decode times closer to photos than pure noise
        base = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize((side, side), Image.BILINEAR)
        noisy = np.clip(np.asarray(img, np.int16) + rng.integers(-20, 21, (side, side, 3)), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(
            os.path.join(root, "val", f"class{i % classes}", f"{i}.jpg"), quality=90)


def one_process(model_path, root, batch_size):
    """What `irnet-infer eval --data imagefolder:ROOT` runs, timed end to end."""
    from irnet_infer import Model, datasets
    from irnet_infer.cli_eval import evaluate
    t0 = time.perf_counter()
    model = Model(model_path)
    total, batches = datasets.eval_batches(f"imagefolder:{root}", model.preprocess_settings, batch_size)
    r = evaluate(model, batches, total, progress=False)
    return {"images/s": r["count"] / (time.perf_counter() - t0), "threads": model.num_threads}


def on_ray(model_path, root, batch_size, actors, threads):
    from irnet_infer import datasets
    from irnet_infer import ray as irnet_ray
    _, _, classes = datasets.list_image_folder(root, "val")
    t0 = time.perf_counter()
    # blocks of one batch each: actors share the work evenly and results arrive steadily
    images = irnet_ray.read_image_folder(os.path.join(root, "val"), classes,
                                         override_num_blocks=max(1, images_count(root) // batch_size))
    predictions = irnet_ray.predict(images, model_path, actors=actors, threads_per_actor=threads,
                                    batch_size=batch_size)
    rows = 0
    t_first = None
    # batch_size=None: each block as it arrives
    for b in predictions.select_columns(["error"]).iter_batches(batch_size=None, batch_format="numpy"):
        assert (b["error"] == "").all(), b["error"]
        rows += len(b["error"])
        if t_first is None:
            t_first = time.perf_counter()
    return {"images/s": rows / (time.perf_counter() - t0), "first result s": t_first - t0}


def images_count(root):
    return sum(len(files) for _, _, files in os.walk(os.path.join(root, "val")))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_throughput")
    p.add_argument("--model", choices=sorted(MODELS), default="resnet18")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    import ray
    arch, size, side = MODELS[args.model]
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, f"{arch}.irb")
        make_model(arch, size, model_path)
        make_folder(os.path.join(tmp, "data"), args.images, side)
        root = os.path.join(tmp, "data")
        cpus = os.cpu_count()
        # Ray runs its workers at nice 15 (RAY_worker_niceness); against nice-0 neighbours on a
        # shared machine that starves them, and the one-process run it is compared with runs at 0.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = False
        configs = {"irnet-infer eval, one process": lambda: one_process(model_path, root, args.batch_size),
                   "Ray, 1 actor x 1 thread": lambda: on_ray(model_path, root, args.batch_size, 1, 1),
                   "Ray, 2 actors x 1 thread": lambda: on_ray(model_path, root, args.batch_size, 2, 1),
                   "Ray, 1 actor x 2 threads": lambda: on_ray(model_path, root, args.batch_size, 1, 2)}
        results = {name: [] for name in configs}
        try:
            for r in range(args.rounds):
                for name, fn in configs.items():
                    results[name].append(fn())
                    print(f"round {r + 1} {name}: {results[name][-1]}", flush=True)
        finally:
            ray.shutdown()
    print(f"\n{args.model} {size}, {args.images} JPEG images {side}x{side}, batch {args.batch_size}, "
          f"{cpus} CPUs, medians of {args.rounds} interleaved rounds\n")
    print("| configuration | images/s end to end | first result after (s) |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        e2e = statistics.median(r["images/s"] for r in runs)
        first = (f"{statistics.median(r['first result s'] for r in runs):.1f}"
                 if "first result s" in runs[0] else "-")
        print(f"| {name} | {e2e:.1f} | {first} |")

if __name__ == "__main__":
    main()
