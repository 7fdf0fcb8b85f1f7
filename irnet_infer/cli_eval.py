"""`irnet-infer eval model.irb --data SOURCE`: top-1 (top-5 when there are more than 5
classes) and throughput of a converted model on a dataset's held-out split, with the
runtime package only (no torch). Data comes from irnet_infer.datasets, preprocessed with
the model file's own settings, so digits/CIFAR see exactly what training evaluated."""
import argparse
import time

import numpy as np

from irnet_infer.progress import progress as progress_bar

EPILOG = """examples:
  irnet-infer eval model.irb --data digits
  irnet-infer eval model.irb --data cifar10:~/data/cifar-10-batches-py --threads 1
  irnet-infer eval model.irb --data imagefolder:val/ --batch-size 32 --limit 1000
  irnet-infer eval model.irb --data imagefolder:data/ --ray --actors 2 --threads 1
  irnet-infer eval model.irb --data imagefolder:/shared/data/ --ray --address ray://head:10001
"""


def add_parser(subparsers):
    p = subparsers.add_parser("eval", help="accuracy and images/s on a dataset's held-out split",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the .irb file")
    p.add_argument("--data", required=True, help="digits | cifar10:DIR | imagefolder:DIR")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, help="engine threads (default: physical cores)")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples")
    p.add_argument("--no-progress", action="store_true")
    group = p.add_argument_group("Ray Data (pip install 'irnet-infer[ray]'; image folders only)")
    group.add_argument("--ray", action="store_true", help="run on Ray Data, one model per actor; "
                     "--threads is then per actor (default 1)")
    group.add_argument("--address", help="the Ray cluster to join (default: start a local Ray)")
    group.add_argument("--actors", type=int, help="model actors (default: the cluster's CPUs / threads)")
    p.set_defaults(func=run)
    return p


def evaluate(model, batches, total, progress=True, limit=None):
    """{"count", "top1", "top5" (None when <= 5 classes), "seconds"} for (x, y) batches;
    seconds counts engine time only, not data loading."""
    count = top1 = top5 = 0
    seconds = 0.0
    with progress_bar(total if limit is None else min(total, limit), progress) as bar:
        for x, y in batches:
            if limit is not None and count + len(y) > limit:
                x, y = x[:limit - count], y[:limit - count]
            if len(y) == 0:
                break
            t0 = time.perf_counter()
            logits = model.predict(x)
            seconds += time.perf_counter() - t0
            top1 += int((logits.argmax(1) == y).sum())
            if logits.shape[1] > 5:
                best5 = np.argpartition(-logits, 5, axis=1)[:, :5]
                top5 += int((best5 == y[:, None]).any(1).sum())
            count += len(y)
            bar.update(len(y))
            bar.set_postfix(top1=f"{top1 / count:.2%}")
            if limit is not None and count >= limit:
                break
    if count == 0:
        raise ValueError("the dataset has no samples to evaluate")
    classes = model.output_shape[-1]
    return {"count": count, "top1": top1 / count, "top5": top5 / count if classes > 5 else None,
            "seconds": seconds}


def run(args):
    from irnet_infer import datasets
    from irnet_infer.model import Model
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.ray:
        from irnet_infer import cli_eval_ray  # imports ray: only here
        return cli_eval_ray.run(args)
    if args.address is not None or args.actors is not None:
        raise ValueError("--address and --actors go with --ray")
    datasets.parse_source(args.data)  # a bad source fails before the model loads
    model = Model(args.model, num_threads=args.threads)
    total, batches = datasets.eval_batches(args.data, model.preprocess_settings, args.batch_size)
    r = evaluate(model, batches, total, not args.no_progress, args.limit)
    line = f"{args.model} on {args.data}: {r['count']} images  top-1 {r['top1']:.2%}"
    if r["top5"] is not None:
        line += f"  top-5 {r['top5']:.2%}"
    rate = r["count"] / r["seconds"] if r["seconds"] > 0 else float("inf")
    line += f"  {rate:.0f} images/s (batch {args.batch_size}, {model.num_threads} threads, {model.isa})"
    print(line)
    return 0
